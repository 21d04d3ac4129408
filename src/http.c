/* http: libmicrohttpd carrying the API (http.h). */
#include "config.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <microhttpd.h>
#include <netdb.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "http.h"
#include "page.h"
#include "jobconf.h"
#include "log.h"
#include "secret.h"

/* A certificate or key file is small. */
#define PEM_MAX (1024 * 1024)
/* Event streams: how often the document is looked at, how often a comment
 * keeps the stream alive. */
#define EVENTS_POLL_MS 1000
#define EVENTS_KEEPALIVE_S 15

struct http {
	struct MHD_Daemon *d;
	struct api *api;
	char *cert, *key;               /* PEM text, the key wiped when freed */
	uint16_t port;
	pthread_mutex_t mu;
	pthread_cond_t cv;
	bool stopping;
	int log_fd;                     /* the access log, or -1 */
};

/* One request's body, gathered across libmicrohttpd's calls. */
struct req {
	char *buf;
	size_t len, cap;
	bool over;
};

/* ---- responses ---------------------------------------------------------- */

static void common_headers(struct MHD_Response *r)
{
	MHD_add_response_header(r, "Cache-Control", "no-store");
	MHD_add_response_header(r, "X-Content-Type-Options", "nosniff");
	MHD_add_response_header(r, "Referrer-Policy", "no-referrer");
	MHD_add_response_header(r, "X-Frame-Options", "DENY");
}

static enum MHD_Result send_buf(struct MHD_Connection *c, int status, const char *type,
				const char *body, size_t len, const struct api_reply *rp)
{
	struct MHD_Response *r;
	enum MHD_Result ret;

	r = MHD_create_response_from_buffer(len, (void *)(body != NULL ? body : ""),
					    MHD_RESPMEM_MUST_COPY);
	if (r == NULL)
		return MHD_NO;
	common_headers(r);
	if (type != NULL && len > 0)
		MHD_add_response_header(r, "Content-Type", type);
	if (rp != NULL && rp->allow != NULL)
		MHD_add_response_header(r, "Allow", rp->allow);
	if (rp != NULL && rp->location[0] != '\0')
		MHD_add_response_header(r, "Location", rp->location);
	if (status == 401)
		MHD_add_response_header(r, "WWW-Authenticate", "Bearer realm=\"trasloco\"");
	ret = MHD_queue_response(c, (unsigned)status, r);
	MHD_destroy_response(r);
	return ret;
}

/* ---- events ------------------------------------------------------------- */

struct stream {
	struct http *h;
	int64_t job;
	char *last;                     /* the document last sent */
	char *out;                      /* what is still to be written */
	size_t out_len, out_pos;
	time_t last_write;
	bool end;                       /* send out, then end the stream */
};

static void stream_free(void *cls)
{
	struct stream *s = cls;

	free(s->last);
	free(s->out);
	free(s);
}

static bool stopping(struct http *h)
{
	bool s;

	pthread_mutex_lock(&h->mu);
	s = h->stopping;
	pthread_mutex_unlock(&h->mu);
	return s;
}

/* Wait up to ms, or until the server stops. */
static void nap(struct http *h, int ms)
{
	struct timespec until;

	clock_gettime(CLOCK_REALTIME, &until);
	until.tv_sec += ms / 1000;
	until.tv_nsec += (long)(ms % 1000) * 1000000L;
	if (until.tv_nsec >= 1000000000L) {
		until.tv_sec++;
		until.tv_nsec -= 1000000000L;
	}
	pthread_mutex_lock(&h->mu);
	if (!h->stopping)
		pthread_cond_timedwait(&h->cv, &h->mu, &until);
	pthread_mutex_unlock(&h->mu);
}

static int stream_fill(struct stream *s)
{
	for (;;) {
		char *doc = NULL;
		bool gone = false;

		if (stopping(s->h))
			return -1;
		if (api_snapshot(s->h->api, s->job, &doc, &gone) == 0) {
			if (gone) {
				free(s->out);
				s->out = strdup("event: gone\ndata: {}\n\n");
				s->end = true;
			} else if (s->last == NULL || strcmp(s->last, doc) != 0) {
				free(s->out);
				s->out = NULL;
				if (asprintf(&s->out, "event: %s\ndata: %s\n\n",
					     s->job > 0 ? "job" : "jobs", doc) < 0)
					s->out = NULL;
				free(s->last);
				s->last = doc;
				doc = NULL;
			}
		}
		free(doc);
		if (s->out == NULL && time(NULL) - s->last_write >= EVENTS_KEEPALIVE_S)
			s->out = strdup(": keep-alive\n\n");
		if (s->out != NULL) {
			s->out_len = strlen(s->out);
			s->out_pos = 0;
			return 0;
		}
		nap(s->h, EVENTS_POLL_MS);
	}
}

/* libmicrohttpd's thread of this connection asks for more: block until
 * there is something (this thread is the connection's own). */
static ssize_t stream_read(void *cls, uint64_t pos, char *buf, size_t max)
{
	struct stream *s = cls;
	size_t n;

	(void)pos;
	if (s->out == NULL || s->out_pos == s->out_len) {
		if (s->end)
			return MHD_CONTENT_READER_END_OF_STREAM;
		free(s->out);
		s->out = NULL;
		if (stream_fill(s) < 0)
			return MHD_CONTENT_READER_END_OF_STREAM;
	}
	n = s->out_len - s->out_pos;
	if (n > max)
		n = max;
	memcpy(buf, s->out + s->out_pos, n);
	s->out_pos += n;
	s->last_write = time(NULL);
	return (ssize_t)n;
}

static enum MHD_Result send_events(struct http *h, struct MHD_Connection *c, int64_t job)
{
	struct stream *s = calloc(1, sizeof(*s));
	struct MHD_Response *r;
	enum MHD_Result ret;

	if (s == NULL)
		return MHD_NO;
	s->h = h;
	s->job = job;
	s->last_write = time(NULL);
	r = MHD_create_response_from_callback(MHD_SIZE_UNKNOWN, 8192, stream_read, s, stream_free);
	if (r == NULL) {
		free(s);
		return MHD_NO;
	}
	common_headers(r);
	MHD_add_response_header(r, "Content-Type", "text/event-stream");
	ret = MHD_queue_response(c, 200, r);
	MHD_destroy_response(r);
	return ret;
}

/* ---- requests ----------------------------------------------------------- */

static bool loopback(const struct sockaddr *sa)
{
	if (sa == NULL)
		return false;
	if (sa->sa_family == AF_INET) {
		const struct sockaddr_in *in = (const struct sockaddr_in *)sa;

		return (ntohl(in->sin_addr.s_addr) >> 24) == 127;
	}
	if (sa->sa_family == AF_INET6) {
		const struct in6_addr *a = &((const struct sockaddr_in6 *)sa)->sin6_addr;

		return IN6_IS_ADDR_LOOPBACK(a) ||
		       (IN6_IS_ADDR_V4MAPPED(a) && a->s6_addr[12] == 127);
	}
	return false;
}

static bool is_secure(struct http *h, struct MHD_Connection *c)
{
	const union MHD_ConnectionInfo *ci;

	if (h->cert != NULL)
		return true;
	ci = MHD_get_connection_info(c, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
	return ci != NULL && loopback(ci->client_addr);
}

static void req_free(struct req *r)
{
	if (r == NULL)
		return;
	if (r->buf != NULL)
		explicit_bzero(r->buf, r->cap);
	free(r->buf);
	free(r);
}

static void completed(void *cls, struct MHD_Connection *c, void **con_cls,
		      enum MHD_RequestTerminationCode toe)
{
	(void)cls;
	(void)c;
	(void)toe;
	req_free(*con_cls);
	*con_cls = NULL;
}

static int append(struct req *r, const char *data, size_t n, size_t max)
{
	if (r->over || r->len + n > max) {
		r->over = true;
		return 0;
	}
	if (r->len + n + 1 > r->cap) {
		size_t cap = r->cap > 0 ? r->cap : 4096;
		char *b;

		while (cap < r->len + n + 1)
			cap *= 2;
		if ((b = malloc(cap)) == NULL)
			return -1;
		/* a copy, not realloc: the old buffer is wiped (it may hold
		 * passwords) before it is freed */
		if (r->buf != NULL) {
			memcpy(b, r->buf, r->len);
			explicit_bzero(r->buf, r->cap);
			free(r->buf);
		}
		r->buf = b;
		r->cap = cap;
	}
	memcpy(r->buf + r->len, data, n);
	r->len += n;
	r->buf[r->len] = '\0';
	return 0;
}

/* The status page's files: public, but allowed to do nothing but load
 * their own script and style and call this origin's API. */
#define PAGE_CSP "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; " \
	"connect-src 'self'; form-action 'none'; frame-ancestors 'none'; base-uri 'none'"

static enum MHD_Result send_page(struct MHD_Connection *c, const struct page_asset *pa)
{
	struct MHD_Response *r;
	enum MHD_Result ret;

	r = MHD_create_response_from_buffer(pa->len, (void *)pa->data, MHD_RESPMEM_PERSISTENT);
	if (r == NULL)
		return MHD_NO;
	common_headers(r);
	MHD_add_response_header(r, "Content-Type", pa->type);
	MHD_add_response_header(r, "Content-Security-Policy", PAGE_CSP);
	ret = MHD_queue_response(c, 200, r);
	MHD_destroy_response(r);
	return ret;
}

static enum MHD_Result add_arg(void *cls, enum MHD_ValueKind kind, const char *key,
			       const char *value)
{
	FILE *f = cls;

	(void)kind;
	fprintf(f, "%s%s%s%s", ftell(f) > 0 ? "&" : "", key, value != NULL ? "=" : "",
		value != NULL ? value : "");
	return MHD_YES;
}

/* One line of JSON per request: what an admin (and test_page.sh) wants to
 * know of who asked what, never a header's value. */
static void access_log(struct http *h, struct MHD_Connection *c, const char *method,
		       const char *url, int status, bool auth_sent, int authorized)
{
	char *query = NULL, *line;
	size_t qlen = 0;
	FILE *f;
	json_t *o;

	if (h->log_fd < 0)
		return;
	if ((f = open_memstream(&query, &qlen)) != NULL) {
		MHD_get_connection_values(c, MHD_GET_ARGUMENT_KIND, add_arg, f);
		fclose(f);
	}
	o = json_pack("{s:s, s:s, s:s?, s:i, s:b, s:o}", "method", method, "path", url,
		      "query", query != NULL && query[0] != '\0' ? query : NULL, "status", status,
		      "authorization", auth_sent, "authorized",
		      authorized < 0 ? json_null() : json_boolean(authorized));
	free(query);
	if (o == NULL)
		return;
	line = json_dumps(o, JSON_COMPACT | JSON_ENSURE_ASCII);
	json_decref(o);
	if (line != NULL) {
		size_t n = strlen(line);

		pthread_mutex_lock(&h->mu);
		if (write(h->log_fd, line, n) < 0 || write(h->log_fd, "\n", 1) < 0)
			log_debug(NULL, "http: the access log cannot be written: %s",
				  strerror(errno));
		pthread_mutex_unlock(&h->mu);
	}
	free(line);
}

static enum MHD_Result answer(struct http *h, struct MHD_Connection *c, const char *url,
			      const char *method, struct req *r)
{
	struct api_request rq;
	struct api_reply rp;
	const struct page_asset *pa;
	enum MHD_Result ret;
	int authorized;

	memset(&rq, 0, sizeof(rq));
	rq.method = method;
	rq.path = url;
	rq.authorization = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Authorization");
	if ((strcmp(method, "GET") == 0 || strcmp(method, "HEAD") == 0) &&
	    (pa = page_find(url)) != NULL) {
		access_log(h, c, method, url, 200, rq.authorization != NULL, -1);
		return send_page(c, pa);
	}
	rq.job = MHD_lookup_connection_value(c, MHD_GET_ARGUMENT_KIND, "job");
	rq.body = r->buf;
	rq.body_len = r->len;
	rq.body_over = r->over;
	rq.secure = is_secure(h, c);
	api_handle(h->api, &rq, &rp);
	authorized = strncmp(url, "/v1/", 4) != 0 && strcmp(url, "/metrics") != 0 ? -1 :
		     rp.status != 401;
	access_log(h, c, method, url, rp.status, rq.authorization != NULL, authorized);
	if (rp.events)
		ret = send_events(h, c, rp.events_job);
	else
		ret = send_buf(c, rp.status, rp.type, rp.body, rp.body_len, &rp);
	api_reply_free(&rp);
	return ret;
}

static enum MHD_Result handle(void *cls, struct MHD_Connection *c, const char *url,
			      const char *method, const char *version, const char *upload,
			      size_t *upload_size, void **con_cls)
{
	struct http *h = cls;
	struct req *r = *con_cls;
	size_t max = api_max_body(h->api);

	(void)version;
	if (r == NULL) {
		const char *cl = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Content-Length");

		if ((r = calloc(1, sizeof(*r))) == NULL)
			return MHD_NO;
		*con_cls = r;
		/* a body known to be too big is answered before it is read */
		if (cl != NULL && strtoull(cl, NULL, 10) > max) {
			r->over = true;
			return answer(h, c, url, method, r);
		}
		return MHD_YES;
	}
	if (*upload_size > 0) {
		if (append(r, upload, *upload_size, max) < 0)
			return MHD_NO;
		*upload_size = 0;
		return MHD_YES;
	}
	return answer(h, c, url, method, r);
}

static void mhd_log(void *cls, const char *fmt, va_list ap)
{
	char buf[512];

	(void)cls;
	vsnprintf(buf, sizeof(buf), fmt, ap);
	buf[strcspn(buf, "\n")] = '\0';
	log_debug(NULL, "http: %s", buf);
}

/* ---- start and stop ----------------------------------------------------- */

static char *read_pem(const char *path, bool key, struct tr_error *err)
{
	struct stat st;
	char *buf = NULL;
	ssize_t n;
	size_t len = 0;
	int fd = open(path, O_RDONLY | O_NOCTTY | O_NONBLOCK | O_CLOEXEC);

	if (fd < 0 || fstat(fd, &st) < 0 || !S_ISREG(st.st_mode) || st.st_size > PEM_MAX) {
		tr_error_set(err, TR_ERR_USAGE, "%s: %s", path,
			     fd < 0 ? strerror(errno) : "not a regular file of at most 1 MiB");
		if (fd >= 0)
			close(fd);
		return NULL;
	}
	if (key && (st.st_mode & 0077) != 0)
		log_warn(NULL, "serve: %s (the TLS key) can be read by others: chmod 600 it", path);
	if ((buf = malloc((size_t)st.st_size + 1)) == NULL) {
		close(fd);
		tr_error_set(err, TR_ERR_LOCAL, "out of memory");
		return NULL;
	}
	while (len < (size_t)st.st_size &&
	       (n = read(fd, buf + len, (size_t)st.st_size - len)) > 0)
		len += (size_t)n;
	close(fd);
	buf[len] = '\0';
	return buf;
}

static int resolve(const char *listen, struct sockaddr_storage *ss, struct tr_error *err)
{
	struct jobconf_server s;
	struct addrinfo hints, *ai = NULL;
	char port[8];
	int r;

	memset(&s, 0, sizeof(s));
	if (jobconf_parse_server(listen, &s, err) < 0) {
		tr_error_prefix(err, "--listen");
		return -1;
	}
	if (s.port == 0) {
		tr_error_set(err, TR_ERR_USAGE, "--listen %s: give a port (HOST:PORT)", listen);
		free(s.host);
		free(s.tls_name);
		return -1;
	}
	memset(&hints, 0, sizeof(hints));
	hints.ai_family = AF_UNSPEC;
	hints.ai_socktype = SOCK_STREAM;
	hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV;
	snprintf(port, sizeof(port), "%u", (unsigned)s.port);
	r = getaddrinfo(s.host, port, &hints, &ai);
	if (r != 0 || ai == NULL || ai->ai_addrlen > sizeof(*ss)) {
		tr_error_set(err, TR_ERR_USAGE, "--listen %s: %s", listen,
			     r != 0 ? gai_strerror(r) : "no address");
		if (ai != NULL)
			freeaddrinfo(ai);
		free(s.host);
		free(s.tls_name);
		return -1;
	}
	memset(ss, 0, sizeof(*ss));
	memcpy(ss, ai->ai_addr, ai->ai_addrlen);
	freeaddrinfo(ai);
	free(s.host);
	free(s.tls_name);
	return 0;
}

int http_start(const struct http_conf *c, struct http **h_r, struct tr_error *err)
{
	struct sockaddr_storage ss;
	struct http *h;
	unsigned flags = MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_THREAD_PER_CONNECTION |
			 MHD_USE_ERROR_LOG;
	const union MHD_DaemonInfo *di;

	*h_r = NULL;
	if ((c->tls_cert == NULL) != (c->tls_key == NULL)) {
		tr_error_set(err, TR_ERR_USAGE, "--tls-cert and --tls-key go together");
		return -1;
	}
	if (resolve(c->listen, &ss, err) < 0)
		return -1;
	if (ss.ss_family == AF_INET6)
		flags |= MHD_USE_IPv6;
	if ((h = calloc(1, sizeof(*h))) == NULL) {
		tr_error_set(err, TR_ERR_LOCAL, "out of memory");
		return -1;
	}
	h->api = c->api;
	h->log_fd = -1;
	pthread_mutex_init(&h->mu, NULL);
	if (c->access_log != NULL &&
	    (h->log_fd = open(c->access_log, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC | O_NOFOLLOW |
			      O_NOCTTY, 0600)) < 0) {
		tr_error_set(err, TR_ERR_USAGE, "--access-log %s: %s", c->access_log,
			     strerror(errno));
		goto fail;
	}
	pthread_cond_init(&h->cv, NULL);
	if (c->tls_cert != NULL) {
		if (MHD_is_feature_supported(MHD_FEATURE_TLS) != MHD_YES) {
			tr_error_set(err, TR_ERR_USAGE, "this libmicrohttpd has no TLS");
			goto fail;
		}
		if ((h->cert = read_pem(c->tls_cert, false, err)) == NULL ||
		    (h->key = read_pem(c->tls_key, true, err)) == NULL)
			goto fail;
		flags |= MHD_USE_TLS;
	}
	h->d = MHD_start_daemon(flags, 0, NULL, NULL, handle, h,
				MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&ss,
				MHD_OPTION_CONNECTION_LIMIT,
				c->max_connections > 0 ? c->max_connections : 256u,
				MHD_OPTION_CONNECTION_TIMEOUT, 60u,
				MHD_OPTION_NOTIFY_COMPLETED, completed, NULL,
				MHD_OPTION_EXTERNAL_LOGGER, mhd_log, NULL,
				h->cert != NULL ? MHD_OPTION_HTTPS_MEM_CERT : MHD_OPTION_END,
				h->cert, MHD_OPTION_HTTPS_MEM_KEY, h->key, MHD_OPTION_END);
	if (h->d == NULL) {
		tr_error_set(err, TR_ERR_LOCAL, "cannot serve on %s%s (in use? a TLS key that "
			     "does not fit the certificate?)", c->listen,
			     h->cert != NULL ? " with TLS" : "");
		goto fail;
	}
	di = MHD_get_daemon_info(h->d, MHD_DAEMON_INFO_BIND_PORT);
	h->port = di != NULL ? di->port : 0;
	*h_r = h;
	return 0;
fail:
	http_stop(h);
	return -1;
}

uint16_t http_port(const struct http *h)
{
	return h->port;
}

void http_stop(struct http *h)
{
	if (h == NULL)
		return;
	pthread_mutex_lock(&h->mu);
	h->stopping = true;
	pthread_cond_broadcast(&h->cv);
	pthread_mutex_unlock(&h->mu);
	if (h->d != NULL)
		MHD_stop_daemon(h->d);
	pthread_cond_destroy(&h->cv);
	pthread_mutex_destroy(&h->mu);
	if (h->log_fd >= 0)
		close(h->log_fd);
	free(h->cert);
	secret_free(h->key);
	free(h);
}
