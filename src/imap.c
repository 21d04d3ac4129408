/* imap: see include/imap.h
 *
 * libetpan parses every response; we send some commands ourselves (APPEND
 * with LITERAL+ and MULTIAPPEND, pipelined STATUS, UID STORE) through its
 * public low-level calls: mailimap_send_current_tag, mailstream_write,
 * mailimap_read_line, mailimap_parse_response.
 */
#include "config.h"

#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>
#include <poll.h>

#include <libetpan/libetpan.h>

#include "flags.h"
#include "imap.h"
#include "log.h"
#include "net.h"
#include "text.h"
#include "throttle.h"
#include "tls.h"
#include "oauth.h"

/* Read buffer of a session's mailstream: big enough to move a large
 * literal in few reads. */
#define STREAM_BUFSIZE 65536
/* LOGOUT is a courtesy: never wait long for it. */
#define LOGOUT_TIMEOUT_S 3
/* A plain connection's greeting has a timeout of its own, far shorter
 * than the idle timeout: a port that speaks implicit TLS waits for our
 * handshake and never greets, and whoever set the wrong TLS mode should
 * learn it in seconds.  Past it the other mode is tried (wrong_mode_*);
 * when that does not work either, the greeting is awaited as before. */
#define GREETING_TIMEOUT_S 10

/* What a server may send us (budget.h; README "Known limits").  libetpan
 * holds a reply's whole text, and every literal outside a body, in memory,
 * and its parsed structures take several times that (16 MB of LIST lines,
 * 130,000 folders, cost about 100 MB): these bounds keep a hostile server
 * from choosing how much, and no honest server comes near them.
 *  - REPLY_MAX: any reply but a FETCH's (greeting, CAPABILITY, LOGIN, LIST,
 *    LSUB, NAMESPACE, STATUS, SELECT/EXAMINE, SEARCH, GETQUOTAROOT, APPEND,
 *    STORE), literals included.  A LIST of 20,000 folders is 2 to 4 MB.
 *  - A FETCH reply's text outside its literals, which libetpan also keeps
 *    until the tagged line: REPLY_MAX plus FETCH_TEXT_PER_MSG per message
 *    asked for (an honest one is 200-300 bytes: UID, FLAGS, INTERNALDATE,
 *    RFC822.SIZE and the literal's "{n}"), at most FETCH_TEXT_MAX.
 *  - FETCH_ONE_MAX: one message's metadata FETCH response, its header
 *    fields included (mail servers cap a header at 100 KB to 1 MB).
 * Bodies are streamed to the stage and have no bound here. */
#define REPLY_MAX ((uint64_t)16 << 20)
#define FETCH_TEXT_PER_MSG 2048
#define FETCH_TEXT_MAX ((uint64_t)1 << 30)
#define FETCH_ONE_MAX ((uint64_t)64 << 20)

struct imap_session {
	mailimap *imap;
	const struct store_endpoint *ep;
	struct imap_caps caps;
	bool broken;
	bool tuned;                 /* throttle_tune_socket was called on its socket */
	char where[300];
	/* The password this session sent, to take out of whatever the server
	 * says (an echo of the LOGIN line); wiped at close. */
	struct text_secrets secrets;

	/* per-FETCH state for the libetpan callbacks */
	int cb_what;              /* IMAP_META_* asked for */
	char *hdr;                /* header fields of the message being parsed */
	size_t hdr_len, hdr_cap;
	imap_fetched_cb *cb;
	void *cb_ctx;
	struct stage *stage;
	int cb_failed;
	struct tr_error cb_err;
};

/* ---- errors ---------------------------------------------------------- */

static const char *server_text(struct imap_session *s)
{
	if (s->imap != NULL && s->imap->imap_response != NULL && s->imap->imap_response[0] != '\0')
		return s->imap->imap_response;
	return "(no text)";
}

static const char *server_code(struct imap_session *s)
{
	struct mailimap_response_info *ri = s->imap != NULL ? s->imap->imap_response_info : NULL;

	if (ri == NULL)
		return "";
	if (ri->rsp_atom != NULL)
		return ri->rsp_atom;
	if (ri->rsp_trycreate)
		return "TRYCREATE";
	return "";
}

/* What a NO means, from its RFC 5530 code first and its text second:
 * servers that predate RFC 5530 say "Maximum number of connections" or
 * "Too many" in plain words. */
bool imap_throttled(const char *code, const char *text)
{
	return strcasecmp(code, "THROTTLED") == 0 || throttle_hint_ms(text) > 0 ||
	       strcasestr(text, "throttled") != NULL || strcasestr(text, "bandwidth limit") != NULL ||
	       strcasestr(text, "rate limit") != NULL;
}

enum tr_err_kind imap_classify_no(const char *code, const char *text, enum tr_err_kind dflt)
{
	if (strcasecmp(code, "LIMIT") == 0 || strcasecmp(code, "UNAVAILABLE") == 0 ||
	    strcasecmp(code, "INUSE") == 0 || strcasecmp(code, "SERVERBUG") == 0)
		return TR_ERR_WAIT;
	/* A server that throttles says so whatever code it chose: Office 365
	 * "Request is throttled. Suggested Backoff Time: N milliseconds",
	 * Gmail "[OVERQUOTA] Account exceeded command or bandwidth limits"
	 * (a limit of the session, not a message too big for a quota). */
	if (imap_throttled(code, text) || strcasestr(text, "session limit") != NULL)
		return TR_ERR_WAIT;
	if (strcasecmp(code, "AUTHENTICATIONFAILED") == 0 ||
	    strcasecmp(code, "AUTHORIZATIONFAILED") == 0 || strcasecmp(code, "EXPIRED") == 0 ||
	    strcasecmp(code, "CONTACTADMIN") == 0)
		return TR_ERR_AUTH;
	if (strcasecmp(code, "PRIVACYREQUIRED") == 0)
		return TR_ERR_TLS;
	if (strcasecmp(code, "OVERQUOTA") == 0 || strcasecmp(code, "TOOBIG") == 0)
		return TR_ERR_MESSAGE;
	if (strcasestr(text, "maximum number of connections") != NULL ||
	    strcasestr(text, "too many connections") != NULL ||
	    strcasestr(text, "too many simultaneous") != NULL ||
	    strcasestr(text, "connection limit") != NULL ||
	    strcasestr(text, "try again later") != NULL)
		return TR_ERR_WAIT;
	return dflt;
}

/* When a read failed because the server passed its budget: err says so.
 * Retrying would meet the same answer, so this is a protocol failure; but
 * one message's FETCH response too large is isolated like an unparseable
 * one (sync.c), so that the rest of its folder is copied. */
static bool over_budget(struct imap_session *s, mailstream_low *low, const char *what,
			struct tr_error *err)
{
	char resp[24];
	uint64_t bound;
	enum budget_over over = tls_low_over_budget(low, &bound, resp, sizeof(resp));

	if (over == BUDGET_OK)
		return false;
	s->broken = true;
	/* The response is named: pipelined replies arrive together, so the
	 * one that passes the bound may belong to a later command than `what`. */
	if (over == BUDGET_OVER_FETCH) {
		tr_error_set(err, TR_ERR_TEMP, "%s: reply to %s: a FETCH response for one message "
			     "over %" PRIu64 " MB, trasloco's bound for it", s->where, what,
			     bound >> 20);
		snprintf(err->code, sizeof(err->code), "%s", IMAP_CODE_UNPARSEABLE);
	} else {
		tr_error_set(err, TR_ERR_PROTOCOL, "%s: reply to %s: the server's %s%sresponse "
			     "takes it over %" PRIu64 " MB, trasloco's bound for a reply: session "
			     "dropped", s->where, what, resp, resp[0] != '\0' ? " " : "", bound >> 20);
	}
	return true;
}

/* Server text (a reply, a response code, a line) as an error may show it:
 * the session's password taken out of all of it, before anything is cut to
 * size, and control bytes and invalid UTF-8 escaped (text.h). */
static const char *clean_reply(struct imap_session *s, const char *raw, char *buf, size_t size)
{
	return text_clean_str(buf, size, raw, &s->secrets);
}

/* What fail() says, before it is cleaned. */
static int fail_set(struct imap_session *s, int r, const char *what, enum tr_err_kind dflt_no,
		    struct tr_error *err)
{
	mailstream_low *low = NULL;
	char text[640], code[sizeof(err->code)];
	const char *why;

	if (s->imap != NULL && s->imap->imap_stream != NULL)
		low = mailstream_get_low(s->imap->imap_stream);
	if (r != MAILIMAP_NO_ERROR && over_budget(s, low, what, err))
		return -1;
	clean_reply(s, server_text(s), text, sizeof(text));
	clean_reply(s, server_code(s), code, sizeof(code));
	switch (r) {
	case MAILIMAP_ERROR_STREAM:
	case MAILIMAP_ERROR_CONNECTION_REFUSED:
		why = tls_low_error(low);
		s->broken = true;
		if (net_cancelled()) {
			tr_error_set(err, TR_ERR_STOPPED, "%s: %s: stopped", s->where, what);
			return -1;
		}
		tr_error_set(err, TR_ERR_TEMP, "%s: %s: connection lost: %s", s->where, what,
			     why[0] != '\0' ? why : "read or write failed");
		return -1;
	case MAILIMAP_ERROR_PARSE:
		s->broken = true;
		tr_error_set(err, TR_ERR_TEMP, "%s: %s: the server's response could not be parsed",
			     s->where, what);
		/* The caller may isolate the message that broke the parser. */
		snprintf(err->code, sizeof(err->code), "%s", IMAP_CODE_UNPARSEABLE);
		return -1;
	case MAILIMAP_ERROR_MEMORY:
		s->broken = true;
		tr_error_set(err, TR_ERR_LOCAL, "%s: %s: out of memory (or transfer aborted)",
			     s->where, what);
		return -1;
	case MAILIMAP_ERROR_FATAL:
	case MAILIMAP_ERROR_DONT_ACCEPT_CONNECTION:
		s->broken = true;
		tr_error_set(err, imap_classify_no(server_code(s), server_text(s), TR_ERR_TEMP),
			     "%s: %s: server said BYE: %s", s->where, what, text);
		snprintf(err->code, sizeof(err->code), "%s", code);
		err->wait_ms = throttle_hint_ms(server_text(s));
		err->throttled = err->kind == TR_ERR_WAIT &&
				 imap_throttled(server_code(s), server_text(s));
		return -1;
	case MAILIMAP_ERROR_PROTOCOL:
		tr_error_set(err, TR_ERR_PROTOCOL, "%s: %s: server said BAD: %s", s->where, what,
			     text);
		return -1;
	case MAILIMAP_ERROR_BAD_STATE:
		tr_error_set(err, TR_ERR_PROTOCOL, "%s: %s: not allowed in this session state",
			     s->where, what);
		return -1;
	default: {
		tr_error_set(err, imap_classify_no(server_code(s), server_text(s), dflt_no),
			     "%s: %s: server said NO: %s%s%s%s", s->where, what,
			     code[0] ? "[" : "", code, code[0] ? "] " : "", text);
		snprintf(err->code, sizeof(err->code), "%s", code);
		if (err->kind == TR_ERR_WAIT) {
			err->wait_ms = throttle_hint_ms(server_text(s));
			err->throttled = imap_throttled(server_code(s), server_text(s));
		}
		return -1;
	}
	}
}

/* Fill err for libetpan result r of command `what`.  dflt_no is the kind of
 * a plain NO for this command.  Returns -1. */
static int fail(struct imap_session *s, int r, const char *what, enum tr_err_kind dflt_no,
		struct tr_error *err)
{
	fail_set(s, r, what, dflt_no, err);
	/* what may name a folder or a login as the server or a CSV wrote it. */
	text_clean_inplace(err->msg, sizeof(err->msg), &s->secrets);
	return -1;
}

/* ---- small helpers ----------------------------------------------------- */

const struct imap_caps *imap_caps(const struct imap_session *s)
{
	return &s->caps;
}

bool imap_broken(const struct imap_session *s)
{
	return s->broken;
}

const char *imap_where(const struct imap_session *s)
{
	return s->where;
}

const char *imap_transport(struct imap_session *s, char *buf, size_t len)
{
	mailstream_low *low = NULL;

	if (s->imap != NULL && s->imap->imap_stream != NULL)
		low = mailstream_get_low(s->imap->imap_stream);
	return tls_low_describe(low, buf, len);
}

/* ---- budgets (see REPLY_MAX) ----------------------------------------- */

static void arm(struct imap_session *s, uint64_t total, uint64_t fetch_one, bool literals_free)
{
	struct budget_limits lim = { total, fetch_one, literals_free };

	if (s->imap != NULL && s->imap->imap_stream != NULL)
		tls_low_set_budget(mailstream_get_low(s->imap->imap_stream), &lim);
}

/* Before reading the reply to anything but a FETCH. */
static void arm_reply(struct imap_session *s)
{
	arm(s, REPLY_MAX, 0, false);
}

/* Before reading the reply to a FETCH of (at most) n messages: bodies
 * are streamed, header fields kept up to HDR_MAX, so only the reply's text
 * outside literals counts toward the total. */
static struct budget_limits fetch_limits(uint64_t n, bool bodies)
{
	struct budget_limits lim = { FETCH_TEXT_MAX, bodies ? 0 : FETCH_ONE_MAX, true };

	if (n < (FETCH_TEXT_MAX - REPLY_MAX) / FETCH_TEXT_PER_MSG)
		lim.total = REPLY_MAX + n * FETCH_TEXT_PER_MSG;
	return lim;
}

static void arm_fetch(struct imap_session *s, uint64_t n, bool bodies)
{
	struct budget_limits lim = fetch_limits(n, bodies);

	arm(s, lim.total, lim.fetch_one, lim.fetch_literals_free);
}

/* How many messages a UID set can name: "*" stands for the folder's
 * message count (the set is within the folder). */
static uint64_t set_size(struct imap_session *s, const char *uidset)
{
	uint64_t exists = 0, n = 0;
	const char *p = uidset;

	if (s->imap->imap_selection_info != NULL && s->imap->imap_selection_info->sel_has_exists)
		exists = s->imap->imap_selection_info->sel_exists;
	while (*p != '\0' && n < UINT32_MAX) {
		char *end;
		uint64_t a = strtoull(p, &end, 10), b = a;
		bool star = *p == '*';

		if (star)
			end = (char *)p + 1;
		if (*end == ':') {
			p = end + 1;
			star = star || *p == '*';
			b = strtoull(p, &end, 10);
			if (*p == '*')
				end = (char *)p + 1;
		}
		n += star ? (exists > 0 ? exists : 1) : (b > a ? b - a : a - b) + 1;
		if (*end != ',')
			break;
		p = end + 1;
	}
	return n;
}

static bool has_cap(struct imap_session *s, const char *name)
{
	return mailimap_has_extension(s->imap, (char *)name) != 0;
}

static void read_caps(struct imap_session *s)
{
	struct mailimap_capability_data *cd;
	clistiter *it;

	memset(&s->caps, 0, sizeof(s->caps));
	s->caps.uidplus = has_cap(s, "UIDPLUS");
	s->caps.literal_plus = has_cap(s, "LITERAL+");
	s->caps.literal_minus = has_cap(s, "LITERAL-");
	s->caps.multiappend = has_cap(s, "MULTIAPPEND");
	s->caps.condstore = has_cap(s, "CONDSTORE") || has_cap(s, "QRESYNC");
	s->caps.list_status = has_cap(s, "LIST-STATUS");
	s->caps.special_use = has_cap(s, "SPECIAL-USE");
	s->caps.namespace_ = has_cap(s, "NAMESPACE");
	s->caps.quota = has_cap(s, "QUOTA");
	s->caps.list_extended = has_cap(s, "LIST-EXTENDED");
	s->caps.move = has_cap(s, "MOVE");
	s->caps.binary = has_cap(s, "BINARY");
	cd = s->imap->imap_connection_info != NULL ? s->imap->imap_connection_info->imap_capability
						   : NULL;
	if (cd == NULL)
		return;
	for (it = clist_begin(cd->cap_list); it != NULL; it = clist_next(it)) {
		struct mailimap_capability *c = clist_content(it);

		if (c->cap_type == MAILIMAP_CAPABILITY_NAME &&
		    strncasecmp(c->cap_data.cap_name, "APPENDLIMIT=", 12) == 0)
			s->caps.appendlimit = strtoull(c->cap_data.cap_name + 12, NULL, 10);
	}
}

/* CAPABILITY: libetpan keeps the list in the session and hands us a copy to free. */
static int ask_caps(struct imap_session *s)
{
	struct mailimap_capability_data *copy = NULL;
	int r = mailimap_capability(s->imap, &copy);

	if (copy != NULL)
		mailimap_capability_data_free(copy);
	return r;
}

static struct mailimap_capability_data *cur_caps(struct imap_session *s)
{
	return s->imap->imap_connection_info != NULL ? s->imap->imap_connection_info->imap_capability
						     : NULL;
}

/* ---- raw commands -------------------------------------------------------- */

static int raw_write(struct imap_session *s, const void *data, size_t len)
{
	return mailstream_write(s->imap->imap_stream, data, len) < 0 ? -1 : 0;
}

static int raw_puts(struct imap_session *s, const char *str)
{
	return raw_write(s, str, strlen(str));
}

/* Write str as an IMAP quoted string. */
static int raw_quoted(struct imap_session *s, const char *str)
{
	char buf[1024];
	size_t n = 0;

	buf[n++] = '"';
	for (; *str != '\0'; str++) {
		if (n + 3 >= sizeof(buf)) {
			if (raw_write(s, buf, n) < 0)
				return -1;
			n = 0;
		}
		if (*str == '"' || *str == '\\')
			buf[n++] = '\\';
		buf[n++] = *str;
	}
	buf[n++] = '"';
	return raw_write(s, buf, n);
}

static int wait_continuation(struct imap_session *s, int *r_out);

/* Can a mailbox name travel as a quoted string?  RFC 3501: 7-bit
 * characters other than CR and LF (a C string holds no NUL).  A name with
 * CR or LF sent quoted would end our command line early and smuggle in
 * whatever follows it, and a hostile source can list such a name; libetpan's
 * own senders quote names as they are, so every command that carries a name
 * is written here, through raw_mailbox. */
static bool quotable(const char *name)
{
	for (; *name != '\0'; name++)
		if ((unsigned char)*name >= 0x80 || *name == '\r' || *name == '\n')
			return false;
	return true;
}

/* Can name go as a non-synchronizing literal, if it must be a literal?
 * LITERAL- allows those only up to 4096 bytes (RFC 7888). */
static bool literal_nonsync(struct imap_session *s, size_t len)
{
	return s->caps.literal_plus || (s->caps.literal_minus && len <= 4096);
}

/* Does name need a synchronizing literal (a wait for the server's "+")? */
static bool needs_sync_literal(struct imap_session *s, const char *name)
{
	return !quotable(name) && !literal_nonsync(s, strlen(name));
}

/* Write a mailbox name: quoted, else as a literal.  Returns 0 when written,
 * -1 on a stream failure (*r set), 1 when the server answered the command
 * instead of sending the "+" of a synchronizing literal (*r: its answer,
 * parsed; the command is over). */
static int raw_mailbox(struct imap_session *s, const char *name, int *r)
{
	size_t len = strlen(name);
	bool plus = literal_nonsync(s, len);
	char head[32];
	int w;

	*r = MAILIMAP_ERROR_STREAM;
	if (quotable(name))
		return raw_quoted(s, name) < 0 ? -1 : 0;
	snprintf(head, sizeof(head), "{%zu%s}\r\n", len, plus ? "+" : "");
	if (raw_puts(s, head) < 0)
		return -1;
	if (!plus && (w = wait_continuation(s, r)) != 0) {
		/* An OK to half a command means we no longer know where we are. */
		if (w > 0 && *r == MAILIMAP_NO_ERROR)
			*r = MAILIMAP_ERROR_PARSE;
		return w;
	}
	*r = MAILIMAP_ERROR_STREAM;
	return raw_write(s, name, len) < 0 ? -1 : 0;
}

/* Write "TAG VERB name SUFFIX" (suffix ends the line) and flush if asked.
 * MAILIMAP_NO_ERROR: sent, the answer is to be read; else a libetpan code,
 * with *answered when that is the server's (already read) answer. */
static int send_mailbox_cmd(struct imap_session *s, const char *verb, const char *name,
			    const char *suffix, bool flush, bool *answered)
{
	int r, w;

	*answered = false;
	if (mailimap_send_current_tag(s->imap) != MAILIMAP_NO_ERROR || raw_puts(s, verb) < 0 ||
	    raw_puts(s, " ") < 0)
		return MAILIMAP_ERROR_STREAM;
	w = raw_mailbox(s, name, &r);
	if (w != 0) {
		*answered = w > 0;
		return r;
	}
	if (raw_puts(s, suffix) < 0 || (flush && mailstream_flush(s->imap->imap_stream) < 0))
		return MAILIMAP_ERROR_STREAM;
	return MAILIMAP_NO_ERROR;
}

/* Parse one complete response to the current tag, whose first line is
 * already in libetpan's buffer.  *resp_r (if not NULL) receives the
 * response, to be freed with mailimap_response_free; else it is freed
 * here.  Returns a libetpan code; a tagged NO is
 * MAILIMAP_ERROR_CUSTOM_COMMAND. */
static int raw_parse(struct imap_session *s, struct mailimap_response **resp_r)
{
	struct mailimap_response *resp;
	int r, type;

	r = mailimap_parse_response(s->imap, &resp);
	if (r != MAILIMAP_NO_ERROR)
		return r;
	type = resp->rsp_resp_done->rsp_data.rsp_tagged->rsp_cond_state->rsp_type;
	if (resp_r != NULL)
		*resp_r = resp;
	else
		mailimap_response_free(resp);
	return type == MAILIMAP_RESP_COND_STATE_OK ? MAILIMAP_NO_ERROR
						   : MAILIMAP_ERROR_CUSTOM_COMMAND;
}

/* Flush (if asked), read and parse the response to the current tag. */
static int raw_finish(struct imap_session *s, bool flush, struct mailimap_response **resp_r)
{
	if (flush && mailstream_flush(s->imap->imap_stream) < 0)
		return MAILIMAP_ERROR_STREAM;
	if (mailimap_read_line(s->imap) == NULL)
		return MAILIMAP_ERROR_STREAM;
	return raw_parse(s, resp_r);
}

/* ---- open / close ---------------------------------------------------- */

static int do_starttls(struct imap_session *s, const char *name, struct tr_error *err)
{
	mailstream_low *plain, *secure;
	int r, fd;

	if (cur_caps(s) == NULL && (r = ask_caps(s)) != MAILIMAP_NO_ERROR)
		return fail(s, r, "CAPABILITY", TR_ERR_PROTOCOL, err);
	if (!has_cap(s, "STARTTLS")) {
		tr_error_set(err, TR_ERR_TLS,
			     "%s does not offer STARTTLS; use --%s-tls implicit (port 993) or, "
			     "on a trusted network only, none", s->where,
			     strcmp(s->ep->label, "source") == 0 ? "src" : "dst");
		return -1;
	}
	/* Sent by hand, not with mailimap_starttls: the check below must not
	 * depend on which distribution patched libetpan (CVE-2020-15953). */
	arm_reply(s);
	r = mailimap_send_current_tag(s->imap);
	if (r == MAILIMAP_NO_ERROR)
		r = raw_puts(s, "STARTTLS\r\n") < 0 ? MAILIMAP_ERROR_STREAM : raw_finish(s, true, NULL);
	if (r != MAILIMAP_NO_ERROR)
		return fail(s, r, "STARTTLS", TR_ERR_TLS, err);
	/* Whatever came after the OK, before our handshake, travelled in the
	 * clear and would be read as if the server had said it under TLS: a
	 * man in the middle's injection (CVE-2011-0411).  A server has nothing
	 * to say there. */
	if (s->imap->imap_stream->read_buffer_len != 0) {
		s->broken = true;
		tr_error_set(err, TR_ERR_TLS, "%s: the server sent %zu byte(s) after its answer to "
			     "STARTTLS, before the TLS handshake: an attempt to inject responses "
			     "(CVE-2011-0411)? Not going on with this connection", s->where,
			     s->imap->imap_stream->read_buffer_len);
		return -1;
	}
	plain = mailstream_get_low(s->imap->imap_stream);
	fd = mailstream_low_get_fd(plain);
	if (tls_low_start(s->ep->tls_ctx, fd, name, s->ep->timeout_s, &secure, err) < 0) {
		s->broken = true;
		tr_error_prefix(err, "%s", s->where);
		return -1;
	}
	tls_low_release_fd(plain);
	mailstream_low_free(plain);
	mailstream_set_low(s->imap->imap_stream, secure);
	/* What the server said before TLS could have been forged: ask again. */
	arm_reply(s);
	r = ask_caps(s);
	if (r != MAILIMAP_NO_ERROR)
		return fail(s, r, "CAPABILITY after STARTTLS", TR_ERR_PROTOCOL, err);
	return 0;
}

/* Can str travel in a LOGIN quoted string (RFC 3501: 7-bit, no CR/LF/NUL)? */
static bool login_safe(const char *str)
{
	for (; *str != '\0'; str++)
		if ((unsigned char)*str >= 0x80 || *str == '\r' || *str == '\n')
			return false;
	return true;
}

static int do_login(struct imap_session *s, const struct store_creds *cr, const char *name,
		    struct tr_error *err)
{
	struct mailimap_capability_data *before;
	char what[300];
	bool plain, has_plain;
	int r;

	arm_reply(s);
	if (cur_caps(s) == NULL) {
		r = ask_caps(s);
		if (r != MAILIMAP_NO_ERROR)
			return fail(s, r, "CAPABILITY", TR_ERR_PROTOCOL, err);
	}
	before = cur_caps(s);
	has_plain = mailimap_has_authentication(s->imap, "PLAIN");
	if (cr->admin != NULL && cr->admin_separator == 0) {
		plain = true;
	} else if (cr->auth == STORE_AUTH_PLAIN) {
		plain = true;
	} else if (cr->auth == STORE_AUTH_LOGIN) {
		plain = false;
	} else {
		/* LOGIN costs one round trip, AUTHENTICATE through SASL two; but
		 * LOGIN's quoted strings cannot carry 8-bit or CR/LF bytes. */
		plain = has_cap(s, "LOGINDISABLED") || !login_safe(cr->user) ||
			!login_safe(cr->password);
	}
	/* LOGINDISABLED (RFC 3501 6.2.3): this connection takes no password in
	 * the clear, so neither LOGIN nor a PLAIN the server did not offer may
	 * carry one.  Not a login failure: the connection is not protected
	 * enough to log in. */
	if (has_cap(s, "LOGINDISABLED") && (!plain || !has_plain)) {
		const char *hint = s->ep->tls != TLS_MODE_NONE ? "" :
				   strcmp(s->ep->label, "source") == 0 ?
				   "; use --src-tls implicit or starttls" :
				   "; use --dst-tls implicit or starttls";

		if (plain)
			tr_error_set(err, TR_ERR_TLS, "%s announces LOGINDISABLED and offers no "
				     "AUTH=PLAIN: no password is sent over this connection%s",
				     s->where, hint);
		else
			tr_error_set(err, TR_ERR_TLS, "%s announces LOGINDISABLED: this login needs "
				     "LOGIN, and no password is sent over this connection%s",
				     s->where, hint);
		return -1;
	}
	if (plain && !has_plain && cr->auth != STORE_AUTH_PLAIN) {
		if (!login_safe(cr->user) || !login_safe(cr->password)) {
			tr_error_set(err, TR_ERR_AUTH,
				     "%s: the login or password of %s has non-ASCII characters, which "
				     "LOGIN cannot send, and the server offers no AUTH=PLAIN",
				     s->where, cr->user);
			return -1;
		}
		if (cr->admin != NULL) {
			tr_error_set(err, TR_ERR_AUTH,
				     "%s does not offer AUTH=PLAIN, needed to log in as %s for %s; "
				     "try --dst-admin-separator '*' (Dovecot master user form)",
				     s->where, cr->admin, cr->user);
			return -1;
		}
		plain = false;
	}
	if (plain) {
		const char *authcid = cr->admin != NULL ? cr->admin : cr->user;

		snprintf(what, sizeof(what), "AUTHENTICATE PLAIN as %s%s%s", cr->user,
			 cr->admin != NULL ? " by " : "", cr->admin != NULL ? cr->admin : "");
		r = mailimap_authenticate(s->imap, "PLAIN", name, NULL, NULL, cr->user, authcid,
					  cr->password, NULL);
	} else if (cr->admin != NULL) {
		char login[512];

		snprintf(login, sizeof(login), "%s%c%s", cr->user, cr->admin_separator, cr->admin);
		snprintf(what, sizeof(what), "LOGIN %s", login);
		r = mailimap_login(s->imap, login, cr->password);
		explicit_bzero(login, sizeof(login));
	} else {
		snprintf(what, sizeof(what), "LOGIN %s", cr->user);
		r = mailimap_login(s->imap, cr->user, cr->password);
	}
	/* The command that carried the password is still in the stream's
	 * write buffer: wipe it. */
	if (s->imap->imap_stream != NULL && s->imap->imap_stream->write_buffer != NULL)
		explicit_bzero(s->imap->imap_stream->write_buffer,
			       s->imap->imap_stream->buffer_max_size);
	if (r != MAILIMAP_NO_ERROR) {
		if (r == MAILIMAP_ERROR_LOGIN && s->imap->imap_response == NULL) {
			tr_error_set(err, TR_ERR_AUTH,
				     "%s: %s: SASL PLAIN could not start (is libsasl2-modules installed?)",
				     s->where, what);
			return -1;
		}
		fail(s, r, what, TR_ERR_AUTH, err);
		/* A refused login is often followed by a hang-up (Dovecot after
		 * [LIMIT]); this session is done either way. */
		s->broken = true;
		return -1;
	}
	if (cur_caps(s) == before) {
		r = ask_caps(s);
		if (r != MAILIMAP_NO_ERROR)
			return fail(s, r, "CAPABILITY", TR_ERR_PROTOCOL, err);
	}
	return 0;
}

/* ---- OAuth2 ---------------------------------------------------------- */

/* Room for a SASL initial response: base64 of a token and a little more. */
#define SASL_IR_MAX ((OAUTH_TOKEN_MAX + 1024) / 3 * 4 + 8)

static void wipe_write_buffer(struct imap_session *s)
{
	if (s->imap->imap_stream != NULL && s->imap->imap_stream->write_buffer != NULL)
		explicit_bzero(s->imap->imap_stream->write_buffer,
			       s->imap->imap_stream->buffer_max_size);
}

/* One AUTHENTICATE with token.  0: logged in.  -1 with err; *refused when
 * the server answered NO (the token, not the connection, failed). */
static int oauth_try(struct imap_session *s, const struct store_creds *cr, const char *name,
		     const char *token, bool *refused, struct tr_error *err)
{
	const char *mech = cr->oauth_mech == OAUTH_OAUTHBEARER ? "OAUTHBEARER" : "XOAUTH2";
	char what[300], why[300] = "", *ir, *line;
	int r = MAILIMAP_ERROR_STREAM, w, rounds = 0;
	long n;

	*refused = false;
	snprintf(what, sizeof(what), "AUTHENTICATE %s as %s", mech, cr->user);
	ir = malloc(SASL_IR_MAX);
	if (ir == NULL) {
		tr_error_set(err, TR_ERR_LOCAL, "out of memory");
		return -1;
	}
	n = oauth_sasl_response((enum oauth_mech)cr->oauth_mech, cr->user, token, name,
				s->ep->port, ir, SASL_IR_MAX);
	if (n < 0) {
		free(ir);
		tr_error_set(err, TR_ERR_AUTH, "%s: %s: the token is too long", s->where, what);
		return -1;
	}
	if (mailimap_send_current_tag(s->imap) != MAILIMAP_NO_ERROR ||
	    raw_puts(s, "AUTHENTICATE ") < 0 || raw_puts(s, mech) < 0)
		goto sent;
	if (has_cap(s, "SASL-IR")) {
		if (raw_puts(s, " ") < 0 || raw_write(s, ir, (size_t)n) < 0 || raw_puts(s, "\r\n") < 0)
			goto sent;
	} else {
		if (raw_puts(s, "\r\n") < 0)
			goto sent;
		w = wait_continuation(s, &r);
		if (w != 0)
			goto answered;
		r = MAILIMAP_ERROR_STREAM;
		if (raw_write(s, ir, (size_t)n) < 0 || raw_puts(s, "\r\n") < 0)
			goto sent;
	}
	/* RFC 7628 3.2.3: a failure comes as a challenge with the server's
	 * JSON, to which the client answers with an empty (XOAUTH2) or a
	 * ^A (OAUTHBEARER) response; then the tagged NO. */
	for (;;) {
		if (mailstream_flush(s->imap->imap_stream) < 0) {
			r = MAILIMAP_ERROR_STREAM;
			break;
		}
		wipe_write_buffer(s);
		line = mailimap_read_line(s->imap);
		if (line == NULL) {
			r = MAILIMAP_ERROR_STREAM;
			break;
		}
		if (line[0] == '+' && rounds++ < 2) {
			const char *c = line + 1;
			size_t len;

			while (*c == ' ')
				c++;
			len = strcspn(c, "\r\n");
			oauth_explain_failure(c, len, why, sizeof(why));
			if (raw_puts(s, cr->oauth_mech == OAUTH_OAUTHBEARER ? "AQ==\r\n" : "\r\n") < 0) {
				r = MAILIMAP_ERROR_STREAM;
				break;
			}
			continue;
		}
		if (line[0] == '*' && strchr(line, '{') == NULL)
			continue;
		r = raw_parse(s, NULL);
		break;
	}
	goto answered;
sent:
	r = MAILIMAP_ERROR_STREAM;
answered:
	wipe_write_buffer(s);
	explicit_bzero(ir, SASL_IR_MAX);
	free(ir);
	if (r == MAILIMAP_NO_ERROR) {
		s->imap->imap_state = MAILIMAP_STATE_AUTHENTICATED;
		r = ask_caps(s);
		if (r != MAILIMAP_NO_ERROR)
			return fail(s, r, "CAPABILITY", TR_ERR_PROTOCOL, err);
		return 0;
	}
	fail(s, r, what, TR_ERR_AUTH, err);
	if (r == MAILIMAP_ERROR_CUSTOM_COMMAND) {
		*refused = true;
		err->kind = TR_ERR_AUTH;
		if (why[0] != '\0')
			tr_error_prefix(err, "%s", why);
	}
	return -1;
}

/* Log in with the account's token; a refused one is fetched again once,
 * on the same connection (the server may simply have seen it expire). */
static int do_oauth(struct imap_session *s, const struct store_creds *cr, const char *name,
		    struct tr_error *err)
{
	const char *mech = cr->oauth_mech == OAUTH_OAUTHBEARER ? "OAUTHBEARER" : "XOAUTH2";
	char *tok;
	uint64_t gen;
	bool refused = false, fresh;
	int r = -1, attempt;

	if (cr->oauth == NULL) {
		tr_error_set(err, TR_ERR_LOCAL, "out of memory");
		return -1;
	}
	arm_reply(s);
	if (cur_caps(s) == NULL && (r = ask_caps(s)) != MAILIMAP_NO_ERROR)
		return fail(s, r, "CAPABILITY", TR_ERR_PROTOCOL, err);
	if (!mailimap_has_authentication(s->imap, (char *)mech)) {
		tr_error_set(err, TR_ERR_AUTH, "%s does not offer AUTH=%s (--%s-auth %s)", s->where,
			     mech, strcmp(s->ep->label, "source") == 0 ? "src" : "dst",
			     cr->oauth_mech == OAUTH_OAUTHBEARER ? "oauthbearer" : "xoauth2");
		return -1;
	}
	tok = malloc(OAUTH_TOKEN_MAX);
	if (tok == NULL) {
		tr_error_set(err, TR_ERR_LOCAL, "out of memory");
		return -1;
	}
	for (attempt = 0; attempt < 2; attempt++) {
		if (oauth_token(cr->oauth, tok, OAUTH_TOKEN_MAX, &gen, &fresh, err) < 0) {
			tr_error_prefix(err, "%s", s->where);
			r = -1;
			break;
		}
		if (text_secrets_add(&s->secrets, tok) < 0) {
			tr_error_set(err, TR_ERR_LOCAL, "out of memory");
			r = -1;
			break;
		}
		r = oauth_try(s, cr, name, tok, &refused, err);
		explicit_bzero(tok, OAUTH_TOKEN_MAX);
		if (r == 0 || !refused)
			break;
		oauth_refused(cr->oauth, gen);
		/* A token fetched just now for this login is not worth a second one. */
		if (fresh)
			break;
		log_debug(cr->user, "%s refused the cached token; fetching a new one", s->where);
	}
	explicit_bzero(tok, OAUTH_TOKEN_MAX);
	free(tok);
	if (r < 0 && refused)
		s->broken = true;
	return r;
}

/* ---- the other TLS mode ------------------------------------------------ */

/* The port speaks the other TLS mode than the one set: a setting to
 * change, said with the option that changes it.  Not switched to on our
 * own: the job stays what its file or command line says, on every run
 * and every host, and nothing (certainly no password) is sent before
 * the TLS the settings ask for is up. */

static const char *side_opt(const struct store_endpoint *ep)
{
	return strcmp(ep->label, "source") == 0 ? "src" : "dst";
}

static double mono_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static bool have_line(const char *b)
{
	return strstr(b, "\r\n") != NULL;
}

static bool have_cap_reply(const char *b)
{
	return strncmp(b, "p1 ", 3) == 0 || strstr(b, "\r\np1 ") != NULL;
}

/* Read into buf (kept NUL-terminated) until done(buf), a full buffer,
 * the server's close or the deadline (monotonic). */
static bool probe_recv(int fd, char *buf, size_t size, size_t *len, double deadline,
		       bool (*done)(const char *))
{
	while (!done(buf)) {
		double left = deadline - mono_s();
		ssize_t n;

		if (*len + 1 >= size || left <= 0 || net_wait(fd, POLLIN, (int)(left * 1000) + 1) <= 0)
			return false;
		n = recv(fd, buf + *len, size - 1 - *len, 0);
		if (n < 0 && (errno == EINTR || errno == EAGAIN || errno == EWOULDBLOCK))
			continue;
		if (n <= 0)
			return false;
		*len += (size_t)n;
		buf[*len] = '\0';
	}
	return true;
}

/* STARTTLS as a capability atom in a greeting or CAPABILITY reply. */
static bool names_starttls(const char *b)
{
	const char *p;

	for (p = b; (p = strcasestr(p, "STARTTLS")) != NULL; p += 8)
		if (p > b && (p[-1] == ' ' || p[-1] == '[') &&
		    (p[8] == ' ' || p[8] == ']' || p[8] == '\r' || p[8] == '\0'))
			return true;
	return false;
}

/* Does the port greet in plain IMAP, and offer STARTTLS?  A connection of
 * its own, on which only CAPABILITY and LOGOUT are sent.  1: plain IMAP
 * with STARTTLS, 0: plain IMAP without, -1: no plain IMAP greeting. */
static int probe_plain(const struct store_endpoint *ep, int timeout_s)
{
	char buf[16384];
	size_t len = 0;
	double deadline = mono_s() + timeout_s;
	struct tr_error e;
	int fd, r = -1;

	buf[0] = '\0';
	if (net_connect(ep->host, ep->port, timeout_s, &fd, &e) < 0)
		return -1;
	if (!probe_recv(fd, buf, sizeof(buf), &len, deadline, have_line) ||
	    (strncasecmp(buf, "* OK", 4) != 0 && strncasecmp(buf, "* PREAUTH", 9) != 0))
		goto out;
	*strstr(buf, "\r\n") = '\0';
	if (strcasestr(buf, "[CAPABILITY ") != NULL) {
		r = names_starttls(buf) ? 1 : 0;
		goto out;
	}
	len = 0;
	buf[0] = '\0';
	r = 0;
	if (send(fd, "p1 CAPABILITY\r\n", 15, MSG_NOSIGNAL) == 15 &&
	    probe_recv(fd, buf, sizeof(buf), &len, deadline, have_cap_reply) && names_starttls(buf))
		r = 1;
out:
	/* a courtesy: the answer is known either way */
	if (r >= 0)
		(void)send(fd, "p2 LOGOUT\r\n", 11, MSG_NOSIGNAL);
	close(fd);
	return r;
}

/* A plain connection got no greeting in timeout_s: does the port answer a
 * TLS handshake instead?  true with err set when it does. */
static bool wrong_mode_plain(const struct imap_session *s, const char *name, int timeout_s,
			     struct tr_error *err)
{
	const struct store_endpoint *ep = s->ep;
	struct tr_error why;
	int r;

	if (net_cancelled())
		return false;
	r = tls_probe(ep->tls_ctx, ep->host, ep->port, name, timeout_s, &why);
	if (r < 0)
		return false;
	if (r > 0)
		tr_error_set(err, TR_ERR_TLS, "%s: no greeting in %d s, and the port answers a TLS "
			     "handshake (certificate verified as %s): is port %d implicit TLS? then "
			     "add --%s-tls implicit", s->where, timeout_s, name, ep->port,
			     side_opt(ep));
	else
		tr_error_set(err, TR_ERR_TLS, "%s: no greeting in %d s, and the port answers a TLS "
			     "handshake (%.300s): is port %d implicit TLS? then add --%s-tls "
			     "implicit", s->where, timeout_s, why.msg, ep->port, side_opt(ep));
	snprintf(err->code, sizeof(err->code), "%s", STORE_CODE_TLS_MODE);
	return true;
}

/* An implicit TLS handshake failed (not on the certificate): does the port
 * speak plain IMAP?  true with err (the handshake's failure) completed
 * when it does. */
static bool wrong_mode_implicit(const struct imap_session *s, int timeout_s, struct tr_error *err)
{
	const struct store_endpoint *ep = s->ep;
	char old[400];
	int r;

	if (net_cancelled() || strcmp(err->code, TLS_CODE_CERT) == 0 ||
	    (err->kind != TR_ERR_TLS && err->kind != TR_ERR_TEMP))
		return false;
	r = probe_plain(ep, timeout_s);
	if (r < 0)
		return false;
	snprintf(old, sizeof(old), "%s", err->msg);
	if (r > 0)
		tr_error_set(err, TR_ERR_TLS, "%s: %s; the port speaks plain IMAP and offers "
			     "STARTTLS: is port %d STARTTLS? then add --%s-tls starttls", s->where,
			     old, ep->port, side_opt(ep));
	else
		tr_error_set(err, TR_ERR_TLS, "%s: %s; the port speaks plain IMAP without STARTTLS: "
			     "no TLS on port %d (implicit TLS is usually port 993; --%s-tls none "
			     "only on a trusted network)", s->where, old, ep->port, side_opt(ep));
	snprintf(err->code, sizeof(err->code), "%s", STORE_CODE_TLS_MODE);
	return true;
}

int imap_open(const struct store_endpoint *ep, const struct store_creds *cr,
	      struct imap_session **s_r, struct tr_error *err)
{
	struct imap_session *s;
	mailstream_low *low = NULL;
	mailstream *stream;
	const char *name = ep->tls_name != NULL ? ep->tls_name : ep->host;
	int greet_s = ep->timeout_s < GREETING_TIMEOUT_S ? ep->timeout_s : GREETING_TIMEOUT_S;
	int fd = -1, r;

	*s_r = NULL;
	s = calloc(1, sizeof(*s));
	if (s == NULL) {
		tr_error_set(err, TR_ERR_LOCAL, "out of memory");
		return -1;
	}
	s->ep = ep;
	if (ep->tls_name != NULL && strcmp(ep->tls_name, ep->host) != 0)
		snprintf(s->where, sizeof(s->where), "%s %s:%d (%s)", ep->label, ep->host, ep->port,
			 ep->tls_name);
	else
		snprintf(s->where, sizeof(s->where), "%s %s:%d", ep->label, ep->host, ep->port);

	if (net_connect(ep->host, ep->port, ep->timeout_s, &fd, err) < 0) {
		tr_error_prefix(err, "%s", ep->label);
		free(s);
		return -1;
	}
	if (ep->tls == TLS_MODE_IMPLICIT) {
		if (tls_low_start(ep->tls_ctx, fd, name, ep->timeout_s, &low, err) < 0) {
			close(fd);
			if (!wrong_mode_implicit(s, greet_s, err))
				tr_error_prefix(err, "%s", s->where);
			free(s);
			return -1;
		}
	} else {
		if (net_wait(fd, POLLIN, greet_s * 1000) == 0 && wrong_mode_plain(s, name, greet_s, err)) {
			close(fd);
			free(s);
			return -1;
		}
		low = tls_low_plain(fd, ep->timeout_s);
		if (low == NULL) {
			close(fd);
			free(s);
			tr_error_set(err, TR_ERR_LOCAL, "out of memory");
			return -1;
		}
	}
	stream = mailstream_new(low, STREAM_BUFSIZE);
	if (stream == NULL) {
		mailstream_low_close(low);
		mailstream_low_free(low);
		free(s);
		tr_error_set(err, TR_ERR_LOCAL, "out of memory");
		return -1;
	}
	s->imap = mailimap_new(0, NULL);
	if (s->imap == NULL) {
		mailstream_close(stream);
		free(s);
		tr_error_set(err, TR_ERR_LOCAL, "out of memory");
		return -1;
	}
	mailimap_set_timeout(s->imap, ep->timeout_s);
	{
		/* The greeting is a reply like any other (see REPLY_MAX). */
		struct budget_limits lim = { REPLY_MAX, 0, false };

		tls_low_set_budget(low, &lim);
	}
	/* From here on the session owns the stream, even if connect fails
	 * (imap_close gives the socket's share of the throttle back). */
	throttle_tune_socket(ep->throttle, fd);
	s->tuned = true;
	r = mailimap_connect(s->imap, stream);
	if (r != MAILIMAP_NO_ERROR_NON_AUTHENTICATED && r != MAILIMAP_NO_ERROR_AUTHENTICATED) {
		fail(s, r, "greeting", TR_ERR_PROTOCOL, err);
		/* A TLS port waits for our handshake and never greets. */
		if (ep->tls != TLS_MODE_IMPLICIT && tls_low_timed_out(low))
			tr_error_prefix(err, "no greeting (is port %d implicit TLS? then add "
					"--%s-tls implicit)", ep->port,
					strcmp(ep->label, "source") == 0 ? "src" : "dst");
		goto fail;
	}
	/* From here on what the server says may hold the password (an echo). */
	if (text_secrets_add(&s->secrets, cr->password) < 0) {
		tr_error_set(err, TR_ERR_LOCAL, "out of memory");
		goto fail;
	}
	if (ep->tls == TLS_MODE_STARTTLS && do_starttls(s, name, err) < 0)
		goto fail;
	if (r != MAILIMAP_NO_ERROR_AUTHENTICATED &&
	    (cr->oauth != NULL ? do_oauth(s, cr, name, err) : do_login(s, cr, name, err)) < 0)
		goto fail;
	read_caps(s);
	*s_r = s;
	return 0;
fail:
	s->broken = true;
	imap_close(s);
	return -1;
}

void imap_close(struct imap_session *s)
{
	if (s == NULL)
		return;
	if (s->imap != NULL) {
		if (!s->broken && s->imap->imap_stream != NULL &&
		    mailimap_send_current_tag(s->imap) == MAILIMAP_NO_ERROR) {
			/* Say goodbye, but do not wait a round trip for the answer. */
			tls_low_set_timeout(mailstream_get_low(s->imap->imap_stream), LOGOUT_TIMEOUT_S);
			if (raw_puts(s, "LOGOUT\r\n") == 0)
				mailstream_flush(s->imap->imap_stream);
		}
		/* mailimap_free would send LOGOUT again and wait on a dead peer. */
		if (s->imap->imap_stream != NULL) {
			mailstream_close(s->imap->imap_stream);
			s->imap->imap_stream = NULL;
		}
		mailimap_free(s->imap);
	}
	if (s->tuned)
		throttle_socket_closed(s->ep->throttle);
	free(s->hdr);
	text_secrets_wipe(&s->secrets);
	free(s);
}

/* ---- folders ------------------------------------------------------------- */

/* The attributes of a LIST entry, for the sink. */
#define MAX_ATTRS 32

static void list_entry(struct mailimap_mailbox_list *mb, struct imap_list_entry *e,
		       const char **attrs)
{
	clistiter *it;

	memset(e, 0, sizeof(*e));
	e->raw = mb->mb_name;
	e->delim = mb->mb_delimiter;
	e->attrs = attrs;
	if (mb->mb_flag == NULL)
		return;
	if (mb->mb_flag->mbf_type == MAILIMAP_MBX_LIST_FLAGS_SFLAG &&
	    mb->mb_flag->mbf_sflag == MAILIMAP_MBX_LIST_SFLAG_NOSELECT)
		e->noselect = true;
	for (it = clist_begin(mb->mb_flag->mbf_oflags); it != NULL; it = clist_next(it)) {
		struct mailimap_mbx_list_oflag *of = clist_content(it);

		if (of->of_type != MAILIMAP_MBX_LIST_OFLAG_FLAG_EXT || of->of_flag_ext == NULL)
			continue;
		if (strcasecmp(of->of_flag_ext, "NonExistent") == 0 ||
		    strcasecmp(of->of_flag_ext, "Noselect") == 0)
			e->noselect = true;
		else if (strcasecmp(of->of_flag_ext, "Subscribed") == 0)
			e->subscribed = true;
		else if (e->n_attrs < MAX_ATTRS)
			attrs[e->n_attrs++] = of->of_flag_ext;
	}
}

/* The personal namespace from the NAMESPACE response just parsed. */
static int take_namespace(struct imap_session *s, const struct imap_list_sink *sink)
{
	struct mailimap_response_info *ri = s->imap->imap_response_info;
	const char *prefix = "";
	char delim = 0;
	clistiter *it;

	for (it = ri != NULL ? clist_begin(ri->rsp_extension_list) : NULL; it != NULL;
	     it = clist_next(it)) {
		struct mailimap_extension_data *ed = clist_content(it);
		struct mailimap_namespace_data *ns;
		clistiter *jt;

		if (ed->ext_extension->ext_id != MAILIMAP_EXTENSION_NAMESPACE || ed->ext_data == NULL)
			continue;
		ns = ed->ext_data;
		if (ns->ns_personal == NULL)
			break;
		jt = clist_begin(ns->ns_personal->ns_data_list);
		if (jt != NULL) {
			struct mailimap_namespace_info *ni = clist_content(jt);

			prefix = ni->ns_prefix != NULL ? ni->ns_prefix : "";
			delim = ni->ns_delimiter;
		}
		break;
	}
	return sink->personal(sink->ctx, prefix, delim);
}

/* LIST (or LSUB) entries of the response just parsed, to the sink. */
static int take_list(struct imap_session *s, const struct imap_list_sink *sink, bool lsub)
{
	struct mailimap_response_info *ri = s->imap->imap_response_info;
	const char *attrs[MAX_ATTRS];
	clistiter *it;

	if (ri == NULL)
		return 0;
	for (it = clist_begin(lsub ? ri->rsp_mailbox_lsub : ri->rsp_mailbox_list); it != NULL;
	     it = clist_next(it)) {
		struct mailimap_mailbox_list *mb = clist_content(it);
		struct imap_list_entry e;

		if (mb->mb_name == NULL)
			continue;
		list_entry(mb, &e, attrs);
		e.from_lsub = lsub;
		if (lsub)
			e.subscribed = true;
		if (sink->entry(sink->ctx, &e) < 0)
			return -1;
	}
	return 0;
}

int imap_list(struct imap_session *s, const struct imap_list_sink *sink, struct tr_error *err)
{
	/* NAMESPACE, LIST and the subscriptions in one round trip: with
	 * LIST-EXTENDED the subscriptions and special-use attributes come with
	 * the LIST; without it an LSUB follows in the same flight. */
	enum { C_NAMESPACE, C_LIST, C_LSUB, C_N };
	static const char *const what[C_N] = { "NAMESPACE", "LIST", "LSUB" };
	bool send[C_N] = { s->caps.namespace_, true, !s->caps.list_extended };
	int tag[C_N] = { 0 }, r, last = s->imap->imap_tag, c;

	for (c = 0; c < C_N; c++) {
		if (!send[c])
			continue;
		r = mailimap_send_current_tag(s->imap);
		if (r != MAILIMAP_NO_ERROR)
			return fail(s, r, what[c], TR_ERR_PROTOCOL, err);
		tag[c] = last = s->imap->imap_tag;
		if (c == C_NAMESPACE)
			r = raw_puts(s, "NAMESPACE\r\n");
		else if (c == C_LSUB)
			r = raw_puts(s, "LSUB \"\" \"*\"\r\n");
		else if (s->caps.list_extended)
			r = raw_puts(s, s->caps.special_use ?
				     "LIST \"\" \"*\" RETURN (SUBSCRIBED SPECIAL-USE)\r\n" :
				     "LIST \"\" \"*\" RETURN (SUBSCRIBED)\r\n");
		else
			r = raw_puts(s, "LIST \"\" \"*\"\r\n");
		if (r < 0)
			return fail(s, MAILIMAP_ERROR_STREAM, what[c], TR_ERR_PROTOCOL, err);
	}
	if (mailstream_flush(s->imap->imap_stream) < 0)
		return fail(s, MAILIMAP_ERROR_STREAM, "LIST", TR_ERR_PROTOCOL, err);
	for (c = 0; c < C_N; c++) {
		if (!send[c])
			continue;
		s->imap->imap_tag = tag[c];
		arm_reply(s);
		r = raw_finish(s, false, NULL);
		if (r != MAILIMAP_NO_ERROR) {
			/* The remaining replies are still on the wire. */
			s->broken = true;
			s->imap->imap_tag = last;
			return fail(s, r, what[c], TR_ERR_PROTOCOL, err);
		}
		if ((c == C_NAMESPACE ? take_namespace(s, sink) : take_list(s, sink, c == C_LSUB)) < 0) {
			s->imap->imap_tag = last;
			tr_error_set(err, TR_ERR_LOCAL, "out of memory");
			return -1;
		}
	}
	return 0;
}

static void status_from(struct mailimap_mailbox_data_status *ms, struct store_status *st)
{
	clistiter *it;

	memset(st, 0, sizeof(*st));
	if (ms == NULL)
		return;
	for (it = clist_begin(ms->st_info_list); it != NULL; it = clist_next(it)) {
		struct mailimap_status_info *si = clist_content(it);

		switch (si->st_att) {
		case MAILIMAP_STATUS_ATT_MESSAGES: st->messages = si->st_value; break;
		case MAILIMAP_STATUS_ATT_UIDNEXT: st->uidnext = si->st_value; break;
		case MAILIMAP_STATUS_ATT_UIDVALIDITY: st->uidvalidity = si->st_value; break;
		default:
			/* libetpan files HIGHESTMODSEQ (64 bits) as extension data. */
			if (si->st_ext_data != NULL &&
			    si->st_ext_data->ext_extension == &mailimap_extension_condstore &&
			    si->st_ext_data->ext_type == MAILIMAP_CONDSTORE_TYPE_STATUS_INFO &&
			    si->st_ext_data->ext_data != NULL) {
				struct mailimap_condstore_status_info *ci = si->st_ext_data->ext_data;

				st->highestmodseq = ci->cs_highestmodseq_value;
			}
			break;
		}
	}
}

/* Words with which servers refuse a name itself: Cyrus "Invalid mailbox
 * name", Dovecot "[CANNOT] Character not allowed in mailbox name: '.'",
 * "Mailbox name too long". */
static bool says_bad_name(const char *code, const char *text)
{
	static const char *const verdict[] = {
		"invalid", "illegal", "not allowed", "not permitted", "too long", "bad ",
		"unsupported", "not valid",
	};
	bool v = false;

	if (code[0] != '\0' && strcasecmp(code, "CANNOT") != 0)
		return false;       /* NOPERM, OVERQUOTA, LIMIT, ALREADYEXISTS ...: not the name */
	if (strcasestr(text, "exist") != NULL || strcasestr(text, "quota") != NULL ||
	    strcasestr(text, "permission") != NULL)
		return false;
	for (size_t i = 0; i < sizeof(verdict) / sizeof(verdict[0]) && !v; i++)
		v = strcasestr(text, verdict[i]) != NULL;
	return v && (strcasestr(text, "name") != NULL || strcasestr(text, "char") != NULL);
}

/* The refusal of one pipelined command, for the caller to report. */
static void reply_why(struct imap_session *s, int r, const char *verb, struct tr_error *why)
{
	fail(s, r, verb, TR_ERR_PROTOCOL, why);
	if (r == MAILIMAP_ERROR_CUSTOM_COMMAND || r == MAILIMAP_ERROR_PROTOCOL) {
		const char *code = server_code(s);

		if (strcasecmp(code, "ALREADYEXISTS") == 0 ||
		    (code[0] == '\0' && strcasestr(server_text(s), "already exists") != NULL))
			snprintf(why->code, sizeof(why->code), "%s", "ALREADYEXISTS");
		else if (says_bad_name(code, server_text(s)))
			snprintf(why->code, sizeof(why->code), "%s", IMAP_CODE_BAD_NAME);
	}
}

typedef void pipelined_cb(struct imap_session *s, size_t i, void *ctx);

/* names[a, b) in one flight: see pipelined. */
static int flight(struct imap_session *s, const char *verb, const char *suffix,
		  const char *const *names, size_t a, size_t b, bool *ok, struct tr_error *why,
		  pipelined_cb *on_ok, void *ctx, struct tr_error *err)
{
	int first_tag = s->imap->imap_tag + 1, r;
	bool answered;
	size_t i;

	arm_reply(s);
	for (i = a; i < b; i++) {
		/* A synchronizing literal flies alone (see pipelined). */
		r = send_mailbox_cmd(s, verb, names[i], suffix, b - a == 1, &answered);
		if (answered) {
			ok[i] = false;
			if (why != NULL)
				reply_why(s, r, verb, &why[i]);
			if (r == MAILIMAP_ERROR_CUSTOM_COMMAND || r == MAILIMAP_ERROR_PROTOCOL)
				return 0;
			s->broken = true;
		}
		if (r != MAILIMAP_NO_ERROR)
			return fail(s, r, verb, TR_ERR_PROTOCOL, err);
	}
	if (mailstream_flush(s->imap->imap_stream) < 0)
		return fail(s, MAILIMAP_ERROR_STREAM, verb, TR_ERR_PROTOCOL, err);
	for (i = a; i < b; i++) {
		s->imap->imap_tag = first_tag + (int)(i - a);
		arm_reply(s);
		r = raw_finish(s, false, NULL);
		ok[i] = r == MAILIMAP_NO_ERROR;
		if (ok[i] && on_ok != NULL)
			on_ok(s, i, ctx);
		if (!ok[i] && why != NULL)
			reply_why(s, r, verb, &why[i]);
		if (r != MAILIMAP_NO_ERROR && r != MAILIMAP_ERROR_CUSTOM_COMMAND &&
		    r != MAILIMAP_ERROR_PROTOCOL) {
			s->imap->imap_tag = first_tag + (int)(b - a) - 1;
			s->broken = true;
			return fail(s, r, verb, TR_ERR_PROTOCOL, err);
		}
	}
	return 0;
}

/* Send "VERB name SUFFIX" for every name in one flight, then read the
 * replies in order: libetpan has no pipelining, but it checks each reply
 * against imap_tag, so we walk the tag back over the commands sent.  A
 * name that must go as a synchronizing literal (no LITERAL+) gets a flight
 * of its own: the "+" it waits for must not be taken for, or come after,
 * the answer to another command.  ok[i] tells whether name i got OK, and
 * why[i] (why may be NULL) why not, when it did not; on_ok
 * (may be NULL) reads the untagged data of that reply before the next is
 * parsed.  Fails only when the session does. */
static int pipelined(struct imap_session *s, const char *verb, const char *suffix,
		     const char *const *names, size_t n, bool *ok, struct tr_error *why,
		     pipelined_cb *on_ok, void *ctx, struct tr_error *err)
{
	size_t a = 0, b;

	while (a < n) {
		b = a + 1;
		if (!needs_sync_literal(s, names[a]))
			while (b < n && !needs_sync_literal(s, names[b]))
				b++;
		if (flight(s, verb, suffix, names, a, b, ok, why, on_ok, ctx, err) < 0)
			return -1;
		a = b;
	}
	return 0;
}

static void take_status(struct imap_session *s, size_t i, void *ctx)
{
	struct store_status *st = ctx;

	status_from(s->imap->imap_response_info->rsp_status, &st[i]);
}

int imap_status_many(struct imap_session *s, const char *const *raw_names, size_t n,
		     struct store_status *st, struct tr_error *err)
{
	bool *ok = calloc(n + 1, sizeof(*ok));
	int r;

	if (ok == NULL) {
		tr_error_set(err, TR_ERR_LOCAL, "out of memory");
		return -1;
	}
	memset(st, 0, n * sizeof(*st));
	r = pipelined(s, "STATUS", s->caps.condstore ?
		      " (MESSAGES UIDNEXT UIDVALIDITY HIGHESTMODSEQ)\r\n" :
		      " (MESSAGES UIDNEXT UIDVALIDITY)\r\n", raw_names, n, ok, NULL, take_status, st,
		      err);
	free(ok);
	return r;
}

int imap_command_many(struct imap_session *s, const char *verb, const char *const *raw_names,
		      size_t n, bool *ok, struct tr_error *why, struct tr_error *err)
{
	return pipelined(s, verb, "\r\n", raw_names, n, ok, why, NULL, NULL, err);
}

int imap_bad_name_char(const struct tr_error *why, char *c)
{
	const char *p = strcasestr(why->msg, "char");

	/* "character not allowed in mailbox name: '.'", "invalid character '%'" */
	while (p != NULL && (p = strpbrk(p, "'\"")) != NULL) {
		if (p[1] != '\0' && p[2] == p[0] && ispunct((unsigned char)p[1])) {
			*c = p[1];
			return 1;
		}
		p++;
	}
	return 0;
}

/* The HIGHESTMODSEQ of the response just parsed (CONDSTORE), or 0. */
static uint64_t resp_highestmodseq(struct imap_session *s)
{
	struct mailimap_response_info *ri = s->imap->imap_response_info;
	uint64_t modseq = 0;
	clistiter *it;

	if (ri == NULL)
		return 0;
	for (it = clist_begin(ri->rsp_extension_list); it != NULL; it = clist_next(it)) {
		struct mailimap_extension_data *ext = clist_content(it);
		struct mailimap_condstore_resptextcode *code;

		if (ext->ext_extension->ext_id != MAILIMAP_EXTENSION_CONDSTORE ||
		    ext->ext_type != MAILIMAP_CONDSTORE_TYPE_RESP_TEXT_CODE)
			continue;
		code = ext->ext_data;
		if (code->cs_type == MAILIMAP_CONDSTORE_RESPTEXTCODE_HIGHESTMODSEQ)
			modseq = code->cs_data.cs_modseq_value;
		else if (code->cs_type == MAILIMAP_CONDSTORE_RESPTEXTCODE_NOMODSEQ)
			modseq = 0;
	}
	return modseq;
}

static bool can_select(struct imap_session *s)
{
	return s->imap->imap_state == MAILIMAP_STATE_AUTHENTICATED ||
	       s->imap->imap_state == MAILIMAP_STATE_SELECTED;
}

/* "SELECT name" or "EXAMINE name", with (CONDSTORE) when the server has it;
 * see send_mailbox_cmd. */
static int send_select(struct imap_session *s, const char *raw, bool readonly, bool flush,
		       bool *answered)
{
	return send_mailbox_cmd(s, readonly ? "EXAMINE" : "SELECT", raw,
				s->caps.condstore ? " (CONDSTORE)\r\n" : "\r\n", flush, answered);
}

/* Read the answer to SELECT or EXAMINE (the current tag) the way libetpan's
 * mailimap_select does: into fresh selection info, setting the session's
 * state.  On OK, st is filled (uidvalidity 0 when the server gave none).
 * Returns a libetpan code: MAILIMAP_ERROR_SELECT / _EXAMINE for a NO. */
static int read_select(struct imap_session *s, bool readonly, struct store_status *st)
{
	struct mailimap_selection_info *si;
	struct mailimap_response *resp = NULL;
	int r, type;

	if (mailimap_read_line(s->imap) == NULL)
		return MAILIMAP_ERROR_STREAM;
	if (s->imap->imap_selection_info != NULL)
		mailimap_selection_info_free(s->imap->imap_selection_info);
	s->imap->imap_selection_info = mailimap_selection_info_new();
	r = mailimap_parse_response(s->imap, &resp);
	if (r != MAILIMAP_NO_ERROR)
		return r;
	type = resp->rsp_resp_done->rsp_data.rsp_tagged->rsp_cond_state->rsp_type;
	mailimap_response_free(resp);
	si = s->imap->imap_selection_info;
	if (type != MAILIMAP_RESP_COND_STATE_OK || si == NULL) {
		/* RFC 3501 6.3.1: a failed SELECT leaves no folder selected. */
		if (si != NULL)
			mailimap_selection_info_free(si);
		s->imap->imap_selection_info = NULL;
		s->imap->imap_state = MAILIMAP_STATE_AUTHENTICATED;
		return readonly ? MAILIMAP_ERROR_EXAMINE : MAILIMAP_ERROR_SELECT;
	}
	s->imap->imap_state = MAILIMAP_STATE_SELECTED;
	memset(st, 0, sizeof(*st));
	st->uidvalidity = si->sel_uidvalidity;
	st->uidnext = si->sel_uidnext;
	st->messages = si->sel_has_exists ? si->sel_exists : 0;
	st->highestmodseq = resp_highestmodseq(s);
	return MAILIMAP_NO_ERROR;
}

int imap_open_folder(struct imap_session *s, const char *raw, bool readonly,
		     struct store_status *st, struct tr_error *err)
{
	char what[600];
	bool answered;
	int r;

	snprintf(what, sizeof(what), "%s %s", readonly ? "EXAMINE" : "SELECT", raw);
	if (!can_select(s))
		return fail(s, MAILIMAP_ERROR_BAD_STATE, what, TR_ERR_PROTOCOL, err);
	arm_reply(s);
	r = send_select(s, raw, readonly, true, &answered);
	if (r == MAILIMAP_NO_ERROR && !answered)
		r = read_select(s, readonly, st);
	if (r != MAILIMAP_NO_ERROR)
		return fail(s, r, what, TR_ERR_PROTOCOL, err);
	if (!s->caps.condstore)
		st->highestmodseq = 0;
	if (st->uidvalidity == 0) {
		tr_error_set(err, TR_ERR_PROTOCOL, "%s: %s: the server gave no UIDVALIDITY",
			     s->where, what);
		return -1;
	}
	return 0;
}

/* CREATE or SUBSCRIBE one name: a libetpan code (a NO is
 * MAILIMAP_ERROR_CUSTOM_COMMAND). */
static int mailbox_cmd(struct imap_session *s, const char *verb, const char *raw)
{
	bool answered;
	int r;

	if (!can_select(s))
		return MAILIMAP_ERROR_BAD_STATE;
	arm_reply(s);
	r = send_mailbox_cmd(s, verb, raw, "\r\n", true, &answered);
	if (r != MAILIMAP_NO_ERROR || answered)
		return r;
	return raw_finish(s, false, NULL);
}

int imap_create(struct imap_session *s, const char *raw, struct tr_error *err)
{
	char what[600];
	int r = mailbox_cmd(s, "CREATE", raw);

	if (r == MAILIMAP_NO_ERROR)
		return 0;
	snprintf(what, sizeof(what), "CREATE %s", raw);
	return fail(s, r, what, TR_ERR_PROTOCOL, err);
}

int imap_subscribe(struct imap_session *s, const char *raw, struct tr_error *err)
{
	char what[600];
	int r = mailbox_cmd(s, "SUBSCRIBE", raw);

	if (r == MAILIMAP_NO_ERROR)
		return 0;
	snprintf(what, sizeof(what), "SUBSCRIBE %s", raw);
	return fail(s, r, what, TR_ERR_PROTOCOL, err);
}

/* ---- fetch --------------------------------------------------------------- */

/* "1:*", "3,5:9": parsed into a libetpan set. */
static struct mailimap_set *set_parse(const char *str)
{
	struct mailimap_set *set = mailimap_set_new_empty();
	const char *p = str;

	if (set == NULL)
		return NULL;
	while (*p != '\0') {
		uint32_t a, b;
		char *end;

		if (*p == '*') {
			a = 0;
			end = (char *)p + 1;
		} else {
			a = (uint32_t)strtoul(p, &end, 10);
			if (end == p)
				goto bad;
		}
		b = a;
		if (*end == ':') {
			p = end + 1;
			if (*p == '*') {
				b = 0;
				end = (char *)p + 1;
			} else {
				b = (uint32_t)strtoul(p, &end, 10);
				if (end == p)
					goto bad;
			}
		}
		if (mailimap_set_add_interval(set, a, b) != MAILIMAP_NO_ERROR)
			goto bad;
		p = end;
		if (*p == ',')
			p++;
		else if (*p != '\0')
			goto bad;
	}
	return set;
bad:
	mailimap_set_free(set);
	return NULL;
}

static const char month_names[12][4] = {
	"Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
};

static void date_to_string(const struct mailimap_date_time *d, char *buf, size_t len)
{
	int zone = d->dt_zone, sign = zone < 0 ? '-' : '+';

	if (zone < 0)
		zone = -zone;
	snprintf(buf, len, "%02d-%s-%04d %02d:%02d:%02d %c%04d", d->dt_day,
		 month_names[(d->dt_month >= 1 && d->dt_month <= 12) ? d->dt_month - 1 : 0],
		 d->dt_year, d->dt_hour, d->dt_min, d->dt_sec, sign, zone);
}

/* Flags of a FETCH response into a canonical string (flags.h). */
static char *flags_from(struct mailimap_msg_att_dynamic *dyn)
{
	char buf[4096];
	size_t n = 0;
	clistiter *it;

	buf[0] = '\0';
	/* att_list is NULL for "FLAGS ()". */
	if (dyn != NULL && dyn->att_list != NULL) {
		for (it = clist_begin(dyn->att_list); it != NULL; it = clist_next(it)) {
			struct mailimap_flag_fetch *ff = clist_content(it);
			const char *name = NULL;

			if (ff->fl_type != MAILIMAP_FLAG_FETCH_OTHER || ff->fl_flag == NULL)
				continue;   /* \Recent */
			switch (ff->fl_flag->fl_type) {
			case MAILIMAP_FLAG_ANSWERED: name = "\\Answered"; break;
			case MAILIMAP_FLAG_FLAGGED: name = "\\Flagged"; break;
			case MAILIMAP_FLAG_DELETED: name = "\\Deleted"; break;
			case MAILIMAP_FLAG_SEEN: name = "\\Seen"; break;
			case MAILIMAP_FLAG_DRAFT: name = "\\Draft"; break;
			case MAILIMAP_FLAG_KEYWORD: name = ff->fl_flag->fl_data.fl_keyword; break;
			default: break;   /* unknown system flags cannot be appended */
			}
			if (name == NULL || n + strlen(name) + 2 >= sizeof(buf))
				continue;
			n += (size_t)snprintf(buf + n, sizeof(buf) - n, "%s%s", n ? " " : "", name);
		}
	}
	return flags_canon(buf);
}

static void meta_handler(struct mailimap_msg_att *att, void *ctx)
{
	struct imap_session *s = ctx;
	struct imap_fetched m;
	char *flags = NULL;
	bool have_uid = false, have_flags = false, have_size = false, have_date = false;
	clistiter *it;

	memset(&m, 0, sizeof(m));
	if (s->cb_failed)
		return;
	for (it = clist_begin(att->att_list); it != NULL; it = clist_next(it)) {
		struct mailimap_msg_att_item *item = clist_content(it);

		if (item->att_type == MAILIMAP_MSG_ATT_ITEM_DYNAMIC) {
			free(flags);
			flags = flags_from(item->att_data.att_dyn);
			have_flags = true;
			continue;
		}
		if (item->att_type != MAILIMAP_MSG_ATT_ITEM_STATIC)
			continue;
		switch (item->att_data.att_static->att_type) {
		case MAILIMAP_MSG_ATT_UID:
			m.uid = item->att_data.att_static->att_data.att_uid;
			have_uid = true;
			break;
		case MAILIMAP_MSG_ATT_RFC822_SIZE:
			m.size = item->att_data.att_static->att_data.att_rfc822_size;
			have_size = true;
			break;
		case MAILIMAP_MSG_ATT_INTERNALDATE:
			date_to_string(item->att_data.att_static->att_data.att_internal_date,
				       m.date, sizeof(m.date));
			have_date = true;
			break;
		case MAILIMAP_MSG_ATT_BODY_SECTION:
			/* streamed into s->hdr by hdr_handler */
			m.hdr = s->hdr != NULL ? s->hdr : "";
			m.hdr_len = s->hdr != NULL ? s->hdr_len : 0;
			m.has_hdr = true;
			break;
		default:
			break;
		}
	}
	/* An unsolicited FETCH (another session changed flags) is not an answer:
	 * it has no UID, or lacks what we asked for. */
	if (!have_uid || ((s->cb_what & IMAP_META_HEADER) && !m.has_hdr) ||
	    ((s->cb_what & (IMAP_META_DATE_SIZE | IMAP_META_HEADER)) && (!have_size || !have_date))) {
		s->hdr_len = 0;
		free(flags);
		return;
	}
	if (!have_flags)
		flags = flags_canon("");
	if (flags == NULL) {
		s->cb_failed = 1;
		tr_error_set(&s->cb_err, TR_ERR_LOCAL, "out of memory");
		return;
	}
	m.flags = flags;
	if (s->cb(&m, s->cb_ctx) < 0)
		s->cb_failed = 1;
	s->hdr_len = 0;
	free(flags);
}

/* Header fields never need much room; a server announcing a giant literal
 * must not make us allocate it (libetpan would, without a body handler). */
#define HDR_MAX (256 * 1024)

static bool hdr_handler(int type, struct mailimap_msg_att_body_section *section,
			const char *bytes, size_t len, void *ctx)
{
	struct imap_session *s = ctx;

	(void)type;
	(void)section;
	if (s->hdr_len + len > HDR_MAX)
		len = HDR_MAX > s->hdr_len ? HDR_MAX - s->hdr_len : 0;
	if (len == 0)
		return true;
	if (s->hdr_len + len > s->hdr_cap) {
		size_t cap = s->hdr_cap ? s->hdr_cap : 4096;
		char *nb;

		while (cap < s->hdr_len + len)
			cap *= 2;
		nb = realloc(s->hdr, cap);
		if (nb == NULL) {
			tr_error_set(&s->cb_err, TR_ERR_LOCAL, "out of memory");
			s->cb_failed = 1;
			return false;
		}
		s->hdr = nb;
		s->hdr_cap = cap;
	}
	memcpy(s->hdr + s->hdr_len, bytes, len);
	s->hdr_len += len;
	return true;
}

static void progress_noop(size_t current, size_t maximum, void *ctx)
{
	(void)current;
	(void)maximum;
	(void)ctx;
}

static void handlers_off(struct imap_session *s)
{
	mailimap_set_msg_att_handler(s->imap, NULL, NULL);
	mailimap_set_msg_body_handler(s->imap, NULL, NULL);
	mailimap_set_progress_callback(s->imap, NULL, NULL, NULL);
	s->cb = NULL;
	s->stage = NULL;
}

/* A UID FETCH with the callbacks of the session's cb/stage fields: the
 * att handler (and so each message freed as soon as it is parsed) works
 * only with a progress callback set.  Consumes ft; returns a libetpan
 * code, or -1 for a bad set (err filled). */
static int uid_fetch(struct imap_session *s, const char *uidset, struct mailimap_fetch_type *ft,
		     uint64_t changedsince, mailimap_msg_att_handler *att,
		     mailimap_msg_body_handler *body, struct tr_error *err)
{
	struct mailimap_set *set = set_parse(uidset);
	clist *result = NULL;
	int r;

	if (set == NULL || ft == NULL) {
		mailimap_set_free(set);
		mailimap_fetch_type_free(ft);
		tr_error_set(err, TR_ERR_LOCAL, "bad UID set \"%s\" or out of memory", uidset);
		return -1;
	}
	s->cb_failed = 0;
	tr_error_clear(&s->cb_err);
	mailimap_set_progress_callback(s->imap, progress_noop, progress_noop, s);
	mailimap_set_msg_att_handler(s->imap, att, s);
	if (body != NULL)
		mailimap_set_msg_body_handler(s->imap, body, s);
	if (changedsince > 0)
		r = mailimap_uid_fetch_changedsince(s->imap, set, ft, changedsince, &result);
	else
		r = mailimap_uid_fetch(s->imap, set, ft, &result);
	handlers_off(s);
	/* On a NO or BAD, libetpan 1.9 frees the list it put in result and
	 * leaves the pointer: ours to free only on success. */
	if (r == MAILIMAP_NO_ERROR && result != NULL)
		mailimap_fetch_list_free(result);
	mailimap_fetch_type_free(ft);
	mailimap_set_free(set);
	return r;
}

static void meta_cb_set(struct imap_session *s, int what, imap_fetched_cb *cb, void *ctx)
{
	s->cb = cb;
	s->cb_ctx = ctx;
	s->cb_what = what;
	s->hdr_len = 0;
}

/* The outcome of a metadata FETCH whose reply parsed to libetpan code r. */
static int meta_result(struct imap_session *s, int r, const char *what, struct tr_error *err)
{
	if (r != MAILIMAP_NO_ERROR)
		return fail(s, r, what, TR_ERR_PROTOCOL, err);
	if (s->cb_failed) {
		if (s->cb_err.kind != TR_ERR_NONE)
			*err = s->cb_err;
		else
			tr_error_set(err, TR_ERR_LOCAL, "%s: fetch aborted", s->where);
		return -1;
	}
	return 0;
}

int imap_fetch_meta(struct imap_session *s, const char *uidset, int what, const char *fields,
		    uint64_t changedsince, imap_fetched_cb *cb, void *ctx, struct tr_error *err)
{
	struct mailimap_fetch_type *ft = mailimap_fetch_type_new_fetch_att_list_empty();
	char cmd[256];
	int r;

	if (ft != NULL) {
		mailimap_fetch_type_new_fetch_att_list_add(ft, mailimap_fetch_att_new_uid());
		mailimap_fetch_type_new_fetch_att_list_add(ft, mailimap_fetch_att_new_flags());
	}
	if (fields == NULL)
		what &= ~IMAP_META_HEADER;
	if (ft != NULL && (what & (IMAP_META_DATE_SIZE | IMAP_META_HEADER))) {
		mailimap_fetch_type_new_fetch_att_list_add(ft, mailimap_fetch_att_new_internaldate());
		mailimap_fetch_type_new_fetch_att_list_add(ft, mailimap_fetch_att_new_rfc822_size());
	}
	if (ft != NULL && (what & IMAP_META_HEADER)) {
		clist *names = clist_new();
		char *copy = strdup(fields), *save = NULL, *tok;

		for (tok = copy != NULL ? strtok_r(copy, " ", &save) : NULL; tok != NULL;
		     tok = strtok_r(NULL, " ", &save))
			clist_append(names, strdup(tok));
		free(copy);
		mailimap_fetch_type_new_fetch_att_list_add(ft,
			mailimap_fetch_att_new_body_peek_section(
				mailimap_section_new_header_fields(mailimap_header_list_new(names))));
	}
	meta_cb_set(s, what, cb, ctx);
	arm_fetch(s, set_size(s, uidset), false);
	r = uid_fetch(s, uidset, ft, changedsince, meta_handler,
		      (what & IMAP_META_HEADER) ? hdr_handler : NULL, err);
	if (r < 0)
		return -1;
	snprintf(cmd, sizeof(cmd), "UID FETCH %.200s", uidset);
	return meta_result(s, r, cmd, err);
}

/* The fetch items of imap_fetch_meta, as sent on the wire. */
static void meta_items(int what, const char *fields, char *buf, size_t size)
{
	snprintf(buf, size, "(UID FLAGS%s%s%.300s%s)",
		 (what & (IMAP_META_DATE_SIZE | IMAP_META_HEADER)) ? " INTERNALDATE RFC822.SIZE" : "",
		 (what & IMAP_META_HEADER) ? " BODY.PEEK[HEADER.FIELDS (" : "",
		 (what & IMAP_META_HEADER) ? fields : "", (what & IMAP_META_HEADER) ? ")]" : "");
}

int imap_examine_fetch(struct imap_session *s, const char *raw, struct store_status *st,
		       bool *examined, const char *uidset, int what, const char *fields,
		       imap_fetched_cb *cb, void *ctx, struct tr_error *err)
{
	char items[400], what_ex[600], what_f[256];
	struct tr_error ex_err;
	bool answered;
	int tag1, r;

	*examined = false;
	tr_error_clear(&ex_err);
	snprintf(what_ex, sizeof(what_ex), "EXAMINE %s", raw);
	snprintf(what_f, sizeof(what_f), "UID FETCH %.200s", uidset);
	if (!can_select(s))
		return fail(s, MAILIMAP_ERROR_BAD_STATE, what_ex, TR_ERR_PROTOCOL, err);
	if (needs_sync_literal(s, raw)) {
		/* The name waits for a "+": the FETCH cannot fly with it. */
		if (imap_open_folder(s, raw, true, st, err) < 0)
			return -1;
		*examined = true;
		if (imap_fetch_meta(s, uidset, what, fields, 0, cb, ctx, err) == 0)
			return 0;
		if (st->messages == 0 && !s->broken && err->kind == TR_ERR_PROTOCOL) {
			tr_error_clear(err);   /* "n:*" refused in an empty folder: see below */
			return 0;
		}
		return -1;
	}
	if (fields == NULL)
		what &= ~IMAP_META_HEADER;
	meta_items(what, fields, items, sizeof(items));
	tag1 = s->imap->imap_tag + 1;
	arm_reply(s);
	{
		/* The FETCH's first responses come with the EXAMINE's tagged
		 * line: they are judged as FETCH responses (its size is set
		 * below, once EXISTS is known). */
		struct budget_limits lim = fetch_limits(0, false);
		char tag[16];

		snprintf(tag, sizeof(tag), "%d", tag1);
		tls_low_set_budget_next(mailstream_get_low(s->imap->imap_stream), tag, &lim);
	}
	if (send_select(s, raw, true, false, &answered) != MAILIMAP_NO_ERROR ||
	    mailimap_send_current_tag(s->imap) != MAILIMAP_NO_ERROR ||
	    raw_puts(s, "UID FETCH ") < 0 || raw_puts(s, uidset) < 0 || raw_puts(s, " ") < 0 ||
	    raw_puts(s, items) < 0 || raw_puts(s, "\r\n") < 0 ||
	    mailstream_flush(s->imap->imap_stream) < 0)
		return fail(s, MAILIMAP_ERROR_STREAM, what_ex, TR_ERR_PROTOCOL, err);

	/* The EXAMINE's answer. */
	s->imap->imap_tag = tag1;
	r = read_select(s, true, st);
	if (r == MAILIMAP_NO_ERROR && st->uidvalidity != 0) {
		*examined = true;
	} else if (r == MAILIMAP_NO_ERROR) {
		tr_error_set(&ex_err, TR_ERR_PROTOCOL, "%s: %s: the server gave no UIDVALIDITY",
			     s->where, what_ex);
	} else if (r == MAILIMAP_ERROR_EXAMINE) {
		/* A failed EXAMINE leaves no folder selected, so the FETCH
		 * behind it fails too; its answer is read and dropped. */
		fail(s, MAILIMAP_ERROR_EXAMINE, what_ex, TR_ERR_PROTOCOL, &ex_err);
	} else {
		/* A BAD, or another tag than ours: the two answers cannot be told apart. */
		s->imap->imap_tag = tag1 + 1;
		s->broken = true;
		return fail(s, r == MAILIMAP_ERROR_PROTOCOL ? MAILIMAP_ERROR_PARSE : r, what_ex,
			    TR_ERR_PROTOCOL, err);
	}

	/* The FETCH's answer, through the handlers imap_fetch_meta uses. */
	s->imap->imap_tag = tag1 + 1;
	meta_cb_set(s, what, cb, ctx);
	s->cb_failed = !*examined;     /* nothing of it is wanted without the EXAMINE */
	tr_error_clear(&s->cb_err);
	mailimap_set_progress_callback(s->imap, progress_noop, progress_noop, s);
	mailimap_set_msg_att_handler(s->imap, meta_handler, s);
	if (what & IMAP_META_HEADER)
		mailimap_set_msg_body_handler(s->imap, hdr_handler, s);
	arm_fetch(s, *examined ? set_size(s, uidset) : 0, false);
	r = raw_finish(s, false, NULL);
	handlers_off(s);
	if (!*examined) {
		if (r != MAILIMAP_NO_ERROR && r != MAILIMAP_ERROR_CUSTOM_COMMAND &&
		    r != MAILIMAP_ERROR_PROTOCOL)
			s->broken = true;
		*err = ex_err;
		return -1;
	}
	/* Some servers refuse "n:*" in an empty folder (there is no "*"):
	 * the folder has nothing to give, which is the answer. */
	if ((r == MAILIMAP_ERROR_CUSTOM_COMMAND || r == MAILIMAP_ERROR_PROTOCOL) &&
	    st->messages == 0 && !s->cb_failed)
		return 0;
	return meta_result(s, r, what_f, err);
}

static bool body_handler(int type, struct mailimap_msg_att_body_section *section,
			 const char *bytes, size_t len, void *ctx)
{
	struct imap_session *s = ctx;

	(void)type;
	(void)section;
	if (s->cb_failed)
		return false;
	/* Waiting here, before the bytes are taken, holds the server back
	 * through TCP: the rate is the server's, not just ours. */
	if ((!s->stage->open && throttle_message(s->ep->throttle) < 0) ||
	    throttle_bytes(s->ep->throttle, len) < 0) {
		tr_error_set(&s->cb_err, TR_ERR_STOPPED, "stopped");
		s->cb_failed = 1;
		return false;
	}
	if (!s->stage->open)
		stage_begin(s->stage);
	if (stage_write(s->stage, bytes, len, &s->cb_err) < 0) {
		s->cb_failed = 1;
		return false;
	}
	return true;
}

static void body_att_handler(struct mailimap_msg_att *att, void *ctx)
{
	struct imap_session *s = ctx;
	uint32_t uid = 0;
	bool have_body = false;
	clistiter *it;

	if (s->cb_failed)
		return;
	for (it = clist_begin(att->att_list); it != NULL; it = clist_next(it)) {
		struct mailimap_msg_att_item *item = clist_content(it);

		if (item->att_type != MAILIMAP_MSG_ATT_ITEM_STATIC)
			continue;
		if (item->att_data.att_static->att_type == MAILIMAP_MSG_ATT_UID)
			uid = item->att_data.att_static->att_data.att_uid;
		else if (item->att_data.att_static->att_type == MAILIMAP_MSG_ATT_BODY_SECTION)
			have_body = true;
	}
	/* A FETCH without the body (an unsolicited flags update, or a message
	 * expunged meanwhile) must not become an empty message. */
	if (uid == 0 || !have_body) {
		stage_abort(s->stage);
		return;
	}
	if (stage_end(s->stage, uid, &s->cb_err) < 0)
		s->cb_failed = 1;
}

int imap_fetch_bodies(struct imap_session *s, const char *uidset, struct stage *sp,
		      struct tr_error *err)
{
	struct mailimap_fetch_type *ft = mailimap_fetch_type_new_fetch_att_list_empty();
	char cmd[256];
	int r;

	if (ft != NULL) {
		mailimap_fetch_type_new_fetch_att_list_add(ft, mailimap_fetch_att_new_uid());
		mailimap_fetch_type_new_fetch_att_list_add(ft,
			mailimap_fetch_att_new_body_peek_section(mailimap_section_new(NULL)));
	}
	s->stage = sp;
	arm_fetch(s, set_size(s, uidset), true);
	r = uid_fetch(s, uidset, ft, 0, body_att_handler, body_handler, err);
	stage_abort(sp);
	if (r < 0)
		return -1;
	if (s->cb_failed) {
		/* The body handler refused data: libetpan stopped mid-response. */
		s->broken = true;
		*err = s->cb_err;
		tr_error_prefix(err, "%s: UID FETCH %.200s", s->where, uidset);
		return -1;
	}
	if (r != MAILIMAP_NO_ERROR) {
		snprintf(cmd, sizeof(cmd), "UID FETCH %.200s", uidset);
		return fail(s, r, cmd, TR_ERR_PROTOCOL, err);
	}
	return 0;
}

/* ---- append --------------------------------------------------------------- */

static int write_message(struct imap_session *s, const struct stage *sp,
			 const struct stage_msg *m, struct tr_error *err)
{
	char buf[65536];
	uint64_t off = 0;

	if (throttle_message(s->ep->throttle) < 0) {
		tr_error_set(err, TR_ERR_STOPPED, "stopped");
		return -1;
	}
	while (off < m->len) {
		size_t chunk = m->len - off > sizeof(buf) ? sizeof(buf) : (size_t)(m->len - off);
		const char *p = buf;

		if (throttle_bytes(s->ep->throttle, chunk) < 0) {
			tr_error_set(err, TR_ERR_STOPPED, "stopped");
			return -1;
		}
		if (m->mem != NULL)
			p = m->mem + off;
		else if (stage_read(sp, m, off, buf, chunk, err) < 0)
			return -1;
		if (raw_write(s, p, chunk) < 0)
			return 1;
		off += chunk;
	}
	return 0;
}

/* Wait for the "+" of a synchronizing literal.  Returns 0 when it came, 1
 * when the server answered the command instead (refused), -1 on failure. */
static int wait_continuation(struct imap_session *s, int *r_out)
{
	char *line;

	if (mailstream_flush(s->imap->imap_stream) < 0) {
		*r_out = MAILIMAP_ERROR_STREAM;
		return -1;
	}
	for (;;) {
		line = mailimap_read_line(s->imap);
		if (line == NULL) {
			*r_out = MAILIMAP_ERROR_STREAM;
			return -1;
		}
		if (line[0] == '+')
			return 0;
		if (line[0] == '*' && strchr(line, '{') == NULL)
			continue;   /* untagged data with no literal: not ours to act on */
		*r_out = raw_parse(s, NULL);
		return 1;
	}
}

/* The UIDs of the APPENDUID code of the last response, in order, into
 * uids[0..n); returns how many were found. */
static size_t appenduid(struct imap_session *s, uint32_t *uidvalidity, uint32_t *uids, size_t n)
{
	struct mailimap_response_info *ri = s->imap->imap_response_info;
	size_t k = 0;
	clistiter *it, *jt;

	*uidvalidity = 0;
	if (ri == NULL)
		return 0;
	for (it = clist_begin(ri->rsp_extension_list); it != NULL; it = clist_next(it)) {
		struct mailimap_extension_data *ed = clist_content(it);
		struct mailimap_uidplus_resp_code_apnd *ap;

		if (ed->ext_extension != &mailimap_extension_uidplus ||
		    ed->ext_type != MAILIMAP_UIDPLUS_RESP_CODE_APND)
			continue;
		ap = ed->ext_data;
		*uidvalidity = ap->uid_uidvalidity;
		if (ap->uid_set == NULL)
			return 0;
		for (jt = clist_begin(ap->uid_set->set_list); jt != NULL; jt = clist_next(jt)) {
			struct mailimap_set_item *si = clist_content(jt);
			uint32_t u;

			for (u = si->set_first; k < n && u <= si->set_last && u != 0; u++)
				uids[k++] = u;
		}
		return k;
	}
	return 0;
}

/* " (\Seen) "date" {123+}\r\n" for one message of an APPEND. */
static int write_item_head(struct imap_session *s, const struct store_append_item *it, bool plus)
{
	char buf[96];

	if (raw_puts(s, " (") < 0 || raw_puts(s, it->flags != NULL ? it->flags : "") < 0 ||
	    raw_puts(s, ")") < 0)
		return -1;
	if (it->date != NULL && it->date[0] != '\0') {
		if (raw_puts(s, " ") < 0 || raw_quoted(s, it->date) < 0)
			return -1;
	}
	snprintf(buf, sizeof(buf), " %s{%" PRIu64 "%s}\r\n", it->msg->literal8 ? "~" : "",
		 it->msg->len, plus ? "+" : "");
	return raw_puts(s, buf);
}

static void item_refused(struct imap_session *s, struct store_append_item *it, int r,
			 const char *raw)
{
	char what[600];

	snprintf(what, sizeof(what), "APPEND to %s of source UID %u", raw, it->msg->uid);
	fail(s, r, what, TR_ERR_MESSAGE, &it->err);
	it->failed = true;
}

/* Can this message go as a non-synchronizing literal?  LITERAL- allows it
 * only up to 4096 bytes (RFC 7888). */
static bool use_plus(struct imap_session *s, const struct stage_msg *m)
{
	return s->caps.literal_plus || (s->caps.literal_minus && m->len <= 4096);
}

/* Write message data and, for a synchronizing literal, wait for "+" first.
 * Returns 0 sent, 1 refused before data (tagged reply parsed, *r set),
 * -1 session failure (*r set). */
static int send_literal(struct imap_session *s, const struct stage *sp,
			const struct stage_msg *m, bool plus, int *r, struct tr_error *err)
{
	int w;

	if (!plus) {
		w = wait_continuation(s, r);
		if (w != 0)
			return w;
	}
	w = write_message(s, sp, m, err);
	if (w < 0) {
		*r = MAILIMAP_ERROR_MEMORY;   /* local stage failure: err is set */
		s->broken = true;
		return -2;
	}
	if (w > 0) {
		*r = MAILIMAP_ERROR_STREAM;
		return -1;
	}
	return 0;
}

/* One APPEND command carrying items[0..n) (n > 1 only with MULTIAPPEND).
 * Returns 0 when the server answered (OK or NO: see *refused), -1 when
 * the session failed. */
static int append_cmd(struct imap_session *s, const char *raw, const struct stage *sp,
		      struct store_append_item *items, size_t n, bool *refused,
		      uint32_t *uidvalidity_r, struct tr_error *err)
{
	uint32_t uids[256];
	size_t i, got;
	int r, w;

	*refused = false;
	arm_reply(s);
	r = mailimap_send_current_tag(s->imap);
	if (r != MAILIMAP_NO_ERROR)
		return fail(s, r, "APPEND", TR_ERR_PROTOCOL, err);
	if (raw_puts(s, "APPEND ") < 0)
		return fail(s, MAILIMAP_ERROR_STREAM, "APPEND", TR_ERR_PROTOCOL, err);
	w = raw_mailbox(s, raw, &r);
	if (w < 0)
		return fail(s, r, "APPEND", TR_ERR_PROTOCOL, err);
	if (w > 0)
		goto answered;
	for (i = 0; i < n; i++) {
		bool plus = use_plus(s, items[i].msg);

		if (write_item_head(s, &items[i], plus) < 0)
			return fail(s, MAILIMAP_ERROR_STREAM, "APPEND", TR_ERR_PROTOCOL, err);
		w = send_literal(s, sp, items[i].msg, plus, &r, err);
		if (w == -2)
			return -1;
		if (w < 0)
			return fail(s, r, "APPEND", TR_ERR_PROTOCOL, err);
		if (w > 0)
			goto answered;
	}
	if (raw_puts(s, "\r\n") < 0)
		return fail(s, MAILIMAP_ERROR_STREAM, "APPEND", TR_ERR_PROTOCOL, err);
	r = raw_finish(s, true, NULL);
answered:
	if (r == MAILIMAP_NO_ERROR) {
		got = appenduid(s, uidvalidity_r, uids, n <= 256 ? n : 256);
		for (i = 0; i < n; i++)
			items[i].dst_uid = got == n ? uids[i] : 0;
		return 0;
	}
	if (r == MAILIMAP_ERROR_CUSTOM_COMMAND || r == MAILIMAP_ERROR_PROTOCOL) {
		/* NO, or BAD (e.g. a literal the server will not take): per message. */
		*refused = true;
		for (i = 0; i < n; i++)
			item_refused(s, &items[i], r, raw);
		return 0;
	}
	return fail(s, r, "APPEND", TR_ERR_PROTOCOL, err);
}

/* Without MULTIAPPEND but with LITERAL+: n APPEND commands written at once,
 * n replies read in order, one round trip for the batch. */
static int append_pipelined(struct imap_session *s, const char *raw, const struct stage *sp,
			    struct store_append_item *items, size_t n, uint32_t *uidvalidity_r,
			    struct tr_error *err)
{
	int first_tag = s->imap->imap_tag + 1, r, w;
	size_t i;

	for (i = 0; i < n; i++) {
		r = mailimap_send_current_tag(s->imap);
		if (r != MAILIMAP_NO_ERROR)
			return fail(s, r, "APPEND", TR_ERR_PROTOCOL, err);
		/* LITERAL+ (see imap_append): the name never waits for a "+". */
		if (raw_puts(s, "APPEND ") < 0 || raw_mailbox(s, raw, &r) != 0 ||
		    write_item_head(s, &items[i], true) < 0)
			return fail(s, MAILIMAP_ERROR_STREAM, "APPEND", TR_ERR_PROTOCOL, err);
		w = send_literal(s, sp, items[i].msg, true, &r, err);
		if (w == -2)
			return -1;
		if (w != 0 || raw_puts(s, "\r\n") < 0)
			return fail(s, MAILIMAP_ERROR_STREAM, "APPEND", TR_ERR_PROTOCOL, err);
	}
	if (mailstream_flush(s->imap->imap_stream) < 0)
		return fail(s, MAILIMAP_ERROR_STREAM, "APPEND", TR_ERR_PROTOCOL, err);
	for (i = 0; i < n; i++) {
		uint32_t uid = 0;

		s->imap->imap_tag = first_tag + (int)i;
		arm_reply(s);
		r = raw_finish(s, false, NULL);
		if (r == MAILIMAP_NO_ERROR) {
			items[i].dst_uid = appenduid(s, uidvalidity_r, &uid, 1) == 1 ? uid : 0;
		} else if (r == MAILIMAP_ERROR_CUSTOM_COMMAND || r == MAILIMAP_ERROR_PROTOCOL) {
			item_refused(s, &items[i], r, raw);
		} else {
			s->imap->imap_tag = first_tag + (int)n - 1;
			return fail(s, r, "APPEND", TR_ERR_PROTOCOL, err);
		}
	}
	return 0;
}

int imap_append(struct imap_session *s, const char *raw, const struct stage *sp,
		struct store_append_item *items, size_t n, uint32_t *uidvalidity_r,
		struct tr_error *err)
{
	bool refused;
	size_t i;

	*uidvalidity_r = 0;
	for (i = 0; i < n; i++) {
		items[i].dst_uid = 0;
		items[i].failed = false;
		tr_error_clear(&items[i].err);
	}
	if (n == 0)
		return 0;
	if (n > 1 && s->caps.multiappend && n <= 256) {
		if (append_cmd(s, raw, sp, items, n, &refused, uidvalidity_r, err) < 0)
			return -1;
		if (!refused)
			return 0;
		/* A server throttling us refused the command, not a message:
		 * asking again at once, one by one, is what it asked us not to
		 * do (the caller waits, then retries the batch). */
		if (items[0].err.kind == TR_ERR_WAIT && items[0].err.throttled)
			return 0;
		/* All or nothing (RFC 3502): find the culprit one by one. */
		for (i = 0; i < n; i++) {
			items[i].failed = false;
			tr_error_clear(&items[i].err);
		}
	}
	if (n > 1 && s->caps.literal_plus)
		return append_pipelined(s, raw, sp, items, n, uidvalidity_r, err);
	for (i = 0; i < n; i++)
		if (append_cmd(s, raw, sp, &items[i], 1, &refused, uidvalidity_r, err) < 0)
			return -1;
	return 0;
}

int imap_store_flags(struct imap_session *s, const char *uidset, const char *flags,
		     struct tr_error *err)
{
	char what[300];
	int r;

	arm_reply(s);
	r = mailimap_send_current_tag(s->imap);
	if (r == MAILIMAP_NO_ERROR) {
		if (raw_puts(s, "UID STORE ") < 0 || raw_puts(s, uidset) < 0 ||
		    raw_puts(s, " FLAGS.SILENT (") < 0 || raw_puts(s, flags) < 0 ||
		    raw_puts(s, ")\r\n") < 0)
			r = MAILIMAP_ERROR_STREAM;
		else
			r = raw_finish(s, true, NULL);
	}
	if (r == MAILIMAP_NO_ERROR)
		return 0;
	snprintf(what, sizeof(what), "UID STORE %.200s FLAGS", uidset);
	return fail(s, r, what, TR_ERR_PROTOCOL, err);
}

int imap_quota(struct imap_session *s, uint64_t *used_kib, uint64_t *limit_kib,
	       struct tr_error *err)
{
	struct mailimap_quota_complete_data *q = NULL;
	clistiter *it, *jt;
	int r, found = 0;

	*used_kib = *limit_kib = 0;
	if (!s->caps.quota)
		return 0;
	arm_reply(s);
	r = mailimap_quota_getquotaroot(s->imap, "INBOX", &q);
	if (r != MAILIMAP_NO_ERROR) {
		/* A server may announce QUOTA and still have none for this user. */
		if (r == MAILIMAP_ERROR_EXTENSION || r == MAILIMAP_ERROR_CUSTOM_COMMAND)
			return 0;
		return fail(s, r, "GETQUOTAROOT INBOX", TR_ERR_PROTOCOL, err);
	}
	for (it = q != NULL ? clist_begin(q->quota_list) : NULL; it != NULL; it = clist_next(it)) {
		struct mailimap_quota_quota_data *qd = clist_content(it);

		for (jt = clist_begin(qd->quota_list); jt != NULL; jt = clist_next(jt)) {
			struct mailimap_quota_quota_resource *res = clist_content(jt);

			if (strcasecmp(res->resource_name, "STORAGE") == 0) {
				*used_kib += res->usage;
				*limit_kib += res->limit;
				found = 1;
			}
		}
	}
	if (q != NULL)
		mailimap_quota_complete_data_free(q);
	return found;
}

int imap_uid_exists(struct imap_session *s, uint32_t uid, bool *exists, struct tr_error *err)
{
	struct mailimap_set *set = mailimap_set_new_single(uid);
	struct mailimap_search_key *key = set != NULL ? mailimap_search_key_new_uid(set) : NULL;
	clist *result = NULL;
	char what[64];
	int r;

	*exists = false;
	if (key == NULL) {
		mailimap_set_free(set);
		tr_error_set(err, TR_ERR_LOCAL, "out of memory");
		return -1;
	}
	arm_reply(s);
	r = mailimap_uid_search(s->imap, NULL, key, &result);
	mailimap_search_key_free(key);
	if (r != MAILIMAP_NO_ERROR) {
		snprintf(what, sizeof(what), "UID SEARCH UID %u", uid);
		return fail(s, r, what, TR_ERR_PROTOCOL, err);
	}
	/* Look for the UID itself: a sloppy server may answer with more. */
	for (clistiter *it = result != NULL ? clist_begin(result) : NULL; it != NULL;
	     it = clist_next(it))
		if (*(uint32_t *)clist_content(it) == uid)
			*exists = true;
	mailimap_search_result_free(result);
	return 0;
}

/* The number in "{123}" or "~{123}" at the end of line, or -1. */
static long long literal_len(const char *line)
{
	const char *end = line + strlen(line), *open;

	while (end > line && (end[-1] == '\n' || end[-1] == '\r'))
		end--;
	if (end == line || end[-1] != '}')
		return -1;
	open = end - 1;
	while (open > line && *open != '{')
		open--;
	if (*open != '{' || open + 1 >= end - 1)
		return -1;
	return strtoll(open + 1, NULL, 10);
}

/* Does the literal that ends line directly follow item ("... BINARY[1] ~{5}")? */
static bool literal_follows(const char *line, const char *item)
{
	const char *open = strrchr(line, '{');
	size_t n = strlen(item);

	if (open == NULL)
		return false;
	if (open > line && open[-1] == '~')
		open--;
	if (open - line < (ptrdiff_t)n + 1 || open[-1] != ' ')
		return false;
	return strncasecmp(open - 1 - n, item, n) == 0;
}

int imap_fetch_binary(struct imap_session *s, uint32_t uid, const char *section, size_t max,
		      char **data, size_t *len, struct tr_error *err)
{
	char cmd[160], tag[24], what[128], item[80], text[640];
	int r;

	*data = NULL;
	*len = 0;
	snprintf(what, sizeof(what), "UID FETCH %u (BINARY.PEEK[%s])", uid, section);
	snprintf(item, sizeof(item), "BINARY[%s]", section);
	/* The literal we read ourselves is checked against max below. */
	arm(s, REPLY_MAX + max, 0, false);
	r = mailimap_send_current_tag(s->imap);
	snprintf(cmd, sizeof(cmd), "%s\r\n", what);
	if (r != MAILIMAP_NO_ERROR || raw_puts(s, cmd) < 0 ||
	    mailstream_flush(s->imap->imap_stream) < 0)
		return fail(s, MAILIMAP_ERROR_STREAM, what, TR_ERR_PROTOCOL, err);
	snprintf(tag, sizeof(tag), "%d ", s->imap->imap_tag);
	for (;;) {
		char *line = mailimap_read_line(s->imap);
		long long n;
		char *buf = NULL;
		bool ours;
		size_t got = 0;

		if (line == NULL) {
			free(*data);
			*data = NULL;
			return fail(s, MAILIMAP_ERROR_STREAM, what, TR_ERR_PROTOCOL, err);
		}
		if (strncmp(line, tag, strlen(tag)) == 0) {
			if (strncasecmp(line + strlen(tag), "OK", 2) == 0 && *data != NULL)
				return 0;
			free(*data);
			*data = NULL;
			*len = 0;
			tr_error_set(err, TR_ERR_PROTOCOL, "%s: %s: %s", s->where, what,
				     strncasecmp(line + strlen(tag), "OK", 2) == 0
					     ? "the answer holds no message"
					     : clean_reply(s, line + strlen(tag), text, sizeof(text)));
			return -1;
		}
		n = literal_len(line);
		if (n < 0)
			continue;   /* untagged data without a literal */
		/* A literal: ours if it follows our item, else read and dropped. */
		ours = *data == NULL && strncmp(line, "* ", 2) == 0 && literal_follows(line, item);
		if ((unsigned long long)n > max) {
			free(*data);
			*data = NULL;
			s->broken = true;   /* the rest of the literal is still on the wire */
			tr_error_set(err, TR_ERR_PROTOCOL, "%s: %s: the server announces %lld bytes, "
				     "more than the %zu expected", s->where, what, n, max);
			return -1;
		}
		if (ours && (buf = malloc((size_t)n + 1)) == NULL) {
			s->broken = true;
			tr_error_set(err, TR_ERR_LOCAL, "out of memory");
			return -1;
		}
		while (got < (size_t)n) {
			char sink[16384];
			size_t want = (size_t)n - got;
			ssize_t k;

			if (!ours && want > sizeof(sink))
				want = sizeof(sink);
			k = mailstream_read(s->imap->imap_stream, ours ? buf + got : sink, want);
			if (k <= 0) {
				free(buf);
				return fail(s, MAILIMAP_ERROR_STREAM, what, TR_ERR_PROTOCOL, err);
			}
			got += (size_t)k;
		}
		if (ours) {
			buf[got] = '\0';
			*data = buf;
			*len = got;
		}
	}
}
