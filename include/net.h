/* net: TCP connections with timeouts, and waiting on one socket.
 *
 * Everything waits with poll(), never select(): a batch run holds hundreds
 * of sockets and select() corrupts memory once a descriptor passes 1024.
 */
#ifndef TRASLOCO_NET_H
#define TRASLOCO_NET_H

#include <pthread.h>
#include <signal.h>
#include <stdbool.h>

#include "error.h"

/* Resolve host (name or IP literal), connect to port within timeout_s
 * seconds, trying each address in turn.  On success *fd_r is a
 * non-blocking socket with TCP_NODELAY and SO_KEEPALIVE, owned by the
 * caller.  Errors are TR_ERR_CONNECT (refused, unreachable, DNS) or
 * TR_ERR_TEMP (timeout). */
int net_connect(const char *host, int port, int timeout_s, int *fd_r, struct tr_error *err);

/* Wait until fd is ready for events (POLLIN/POLLOUT) or timeout_ms passes.
 * Returns 1 ready, 0 timeout, -1 error (errno).  Wakes up early, returning
 * -1 with errno ECANCELED, when net_cancel_all() has been called or the
 * calling thread's scope has been cancelled (noticed within 200 ms). */
int net_wait(int fd, short events, int timeout_ms);

/* Ask every wait in the process to give up (SIGTERM handling): async-signal-safe. */
void net_cancel_all(void);
/* True once the process is stopping or the calling thread's scope was
 * cancelled: whatever waits without net_wait polls this. */
bool net_cancelled(void);

/* A scope: the sessions of one piece of work (an account: every thread it
 * starts) that can be stopped apart from the rest of the process (a worker
 * that lost an account's lease stops that account only).  A thread works
 * in at most one scope (thread-local); threads started for the work enter
 * their starter's scope (account.c, sync.c start_thread).  Once a scope is
 * cancelled, net_wait in its threads returns -1/ECANCELED and
 * net_cancelled() is true there, as after net_cancel_all.  The struct is
 * the caller's, zeroed to start; net_scope_cancel is async-signal-safe and
 * may be called from any thread. */
struct net_scope {
	volatile sig_atomic_t cancelled;
};
void net_scope_enter(struct net_scope *s);      /* NULL: leave */
struct net_scope *net_scope_current(void);
void net_scope_cancel(struct net_scope *s);
/* Start a thread that works in the starter's scope (a stop of the account
 * reaches it): 0, or -1 when it could not (the caller then does the work
 * itself, or gives up).  account.c and sync.c start their threads here. */
int net_thread_start(pthread_t *t, void *(*fn)(void *), void *arg);

/* True when host is a numeric IPv4 or IPv6 address. */
bool net_is_ip_literal(const char *host);
/* True for 127.0.0.0/8, ::1 and "localhost". */
bool net_is_loopback(const char *host);

#endif
