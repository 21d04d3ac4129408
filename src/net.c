/* net: see include/net.h */
#include "config.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "net.h"

static volatile sig_atomic_t cancel_flag;
/* The scope the calling thread works in (net.h); NULL: none. */
static _Thread_local struct net_scope *current_scope;

void net_cancel_all(void)
{
	cancel_flag = 1;
}

/* A scope's flag is set by another thread (the lease's watcher) than the
 * ones that read it: atomic accesses, lock-free on an int, so still
 * async-signal-safe. */
static bool scope_cancelled(const struct net_scope *s)
{
	return s != NULL && __atomic_load_n(&s->cancelled, __ATOMIC_ACQUIRE) != 0;
}

bool net_cancelled(void)
{
	return cancel_flag != 0 || scope_cancelled(current_scope);
}

void net_scope_enter(struct net_scope *s)
{
	current_scope = s;
}

struct net_scope *net_scope_current(void)
{
	return current_scope;
}

void net_scope_cancel(struct net_scope *s)
{
	if (s != NULL)
		__atomic_store_n(&s->cancelled, 1, __ATOMIC_RELEASE);
}

static long long now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int net_wait(int fd, short events, int timeout_ms)
{
	long long deadline = now_ms() + timeout_ms;
	struct pollfd pfd;
	int r;

	/* Poll in slices so that a stop request (of the process or of this
	 * thread's scope) is noticed within 200 ms even while a server is
	 * silent. */
	for (;;) {
		long long left = deadline - now_ms();
		int slice;

		if (net_cancelled()) {
			errno = ECANCELED;
			return -1;
		}
		if (left <= 0)
			return 0;
		slice = left > 200 ? 200 : (int)left;
		pfd.fd = fd;
		pfd.events = events;
		pfd.revents = 0;
		r = poll(&pfd, 1, slice);
		if (r < 0) {
			if (errno == EINTR)
				continue;
			return -1;
		}
		if (r > 0)
			return 1;   /* readiness, or an error/hangup the next I/O call will report */
	}
}

static void tune_socket(int fd)
{
	int one = 1;

	/* Commands are small and each waits for a reply: Nagle would only add delay. */
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	/* A NAT box dropping an idle session must not leave us waiting forever. */
	setsockopt(fd, SOL_SOCKET, SO_KEEPALIVE, &one, sizeof(one));
}

static int connect_one(const struct addrinfo *ai, int timeout_ms, int *fd_r, int *errno_r)
{
	socklen_t len = sizeof(int);
	int fd, r, soerr = 0;

	fd = socket(ai->ai_family, ai->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC, ai->ai_protocol);
	if (fd < 0) {
		*errno_r = errno;
		return -1;
	}
	r = connect(fd, ai->ai_addr, ai->ai_addrlen);
	if (r < 0 && errno != EINPROGRESS) {
		*errno_r = errno;
		close(fd);
		return -1;
	}
	if (r < 0) {
		r = net_wait(fd, POLLOUT, timeout_ms);
		if (r <= 0) {
			*errno_r = r == 0 ? ETIMEDOUT : errno;
			close(fd);
			return -1;
		}
		if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &soerr, &len) < 0)
			soerr = errno;
		if (soerr != 0) {
			*errno_r = soerr;
			close(fd);
			return -1;
		}
	}
	tune_socket(fd);
	*fd_r = fd;
	return 0;
}

int net_connect(const char *host, int port, int timeout_s, int *fd_r, struct tr_error *err)
{
	struct addrinfo hints, *res = NULL, *ai;
	char portstr[16];
	long long deadline;
	int r, last_errno = 0;

	memset(&hints, 0, sizeof(hints));
	hints.ai_family = AF_UNSPEC;
	hints.ai_socktype = SOCK_STREAM;
	hints.ai_flags = AI_ADDRCONFIG;
	snprintf(portstr, sizeof(portstr), "%d", port);
	r = getaddrinfo(host, portstr, &hints, &res);
	if (r != 0) {
		tr_error_set(err, r == EAI_AGAIN ? TR_ERR_TEMP : TR_ERR_CONNECT,
			     "cannot resolve %s: %s", host, gai_strerror(r));
		return -1;
	}
	deadline = now_ms() + (long long)timeout_s * 1000;
	for (ai = res; ai != NULL; ai = ai->ai_next) {
		long long left = deadline - now_ms();

		if (left <= 0) {
			last_errno = ETIMEDOUT;
			break;
		}
		if (connect_one(ai, (int)left, fd_r, &last_errno) == 0) {
			freeaddrinfo(res);
			return 0;
		}
		if (last_errno == ECANCELED)
			break;
	}
	freeaddrinfo(res);
	if (last_errno == ECANCELED)
		tr_error_set(err, TR_ERR_STOPPED, "connect to %s:%d: stopped", host, port);
	else
		tr_error_set(err, last_errno == ETIMEDOUT ? TR_ERR_TEMP : TR_ERR_CONNECT,
			     "cannot connect to %s:%d: %s", host, port, strerror(last_errno));
	return -1;
}

bool net_is_ip_literal(const char *host)
{
	unsigned char buf[sizeof(struct in6_addr)];

	return inet_pton(AF_INET, host, buf) == 1 || inet_pton(AF_INET6, host, buf) == 1;
}

bool net_is_loopback(const char *host)
{
	struct in_addr a4;
	struct in6_addr a6;

	if (strcasecmp(host, "localhost") == 0)
		return true;
	if (inet_pton(AF_INET, host, &a4) == 1)
		return (ntohl(a4.s_addr) >> 24) == 127;
	if (inet_pton(AF_INET6, host, &a6) == 1)
		return IN6_IS_ADDR_LOOPBACK(&a6);
	return false;
}

struct thread_start {
	void *(*fn)(void *);
	void *arg;
	struct net_scope *scope;
};

static void *thread_main(void *p)
{
	struct thread_start ts = *(struct thread_start *)p;

	free(p);
	net_scope_enter(ts.scope);
	return ts.fn(ts.arg);
}

int net_thread_start(pthread_t *t, void *(*fn)(void *), void *arg)
{
	struct thread_start *ts = malloc(sizeof(*ts));

	if (ts == NULL)
		return -1;
	*ts = (struct thread_start){ fn, arg, net_scope_current() };
	if (pthread_create(t, NULL, thread_main, ts) != 0) {
		free(ts);
		return -1;
	}
	return 0;
}
