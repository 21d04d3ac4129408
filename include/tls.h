/* tls: our TLS policy, and the stream libetpan reads and writes through.
 *
 * Debian's libetpan does TLS with GnuTLS and checks no certificate, so we
 * never let it touch a socket: every session runs over a mailstream_low
 * driver of ours, plain or OpenSSL, that waits with poll() and a timeout,
 * turns EOF into an error (libetpan 1.9.4 spins forever on EOF inside a
 * literal), holds the server to a byte budget (budget.h) and remembers why
 * it failed.
 *
 * Policy: TLS 1.2 or newer; the peer certificate is verified against the
 * system store or --ca-file, and its name against the name the user gave
 * (--src-tls-name) or the host; SNI carries that name.  --insecure turns
 * verification off, and only that does.
 */
#ifndef TRASLOCO_TLS_H
#define TRASLOCO_TLS_H

#include <stdbool.h>


#include "budget.h"
#include "error.h"

/* libetpan's low-level stream (mailstream_low), kept opaque here so that
 * this header does not bring libetpan's into the command layer. */
struct _mailstream_low;

struct tls_ctx;

/* One context per CA setting, shared by all threads once made.  ca_file may
 * be NULL (system store).  Free with tls_ctx_free after every stream using
 * it is gone. */
int tls_ctx_new(const char *ca_file, bool insecure, struct tls_ctx **ctx_r, struct tr_error *err);
void tls_ctx_free(struct tls_ctx *ctx);
bool tls_ctx_insecure(const struct tls_ctx *ctx);

/* A plain stream over a connected socket.  The stream owns fd from now on
 * (closed by mailstream_low_close). */
struct _mailstream_low *tls_low_plain(int fd, int timeout_s);

/* Run a TLS handshake on fd and verify the server as `name` (a DNS name, or
 * an IP literal, checked against the certificate's IP addresses).  On
 * success *low_r owns fd.  On failure fd is still the caller's.  A refused
 * certificate gives TR_ERR_TLS with OpenSSL's reason. */
int tls_low_start(struct tls_ctx *ctx, int fd, const char *name, int timeout_s,
		  struct _mailstream_low **low_r, struct tr_error *err);

/* tr_error.code of a tls_low_start failure on the server's certificate
 * (the handshake itself went through). */
#define TLS_CODE_CERT "CERTIFICATE"

/* Does host:port speak implicit TLS?  A new connection and a handshake
 * verifying the server as `name`, each within timeout_s, then closed
 * (nothing else is sent).  1: the handshake succeeded; 0: the server
 * answered the handshake but its certificate was refused (*why says
 * why); -1: no TLS there (or not reachable, or stopped). */
int tls_probe(struct tls_ctx *ctx, const char *host, int port, const char *name, int timeout_s,
	      struct tr_error *why);

/* Why the last read or write on this stream failed ("timeout after 60 s",
 * "connection closed by server", a TLS alert), or "" if it has not. */
const char *tls_low_error(struct _mailstream_low *low);
/* True when the last failure was a timeout. */
bool tls_low_timed_out(struct _mailstream_low *low);
/* "TLSv1.3 TLS_AES_256_GCM_SHA384" or "plain". */
const char *tls_low_describe(struct _mailstream_low *low, char *buf, size_t len);

/* Change the idle timeout of a stream (e.g. short for LOGOUT). */
void tls_low_set_timeout(struct _mailstream_low *low, int timeout_s);

/* Bound what the server may send from now on (budget.h); a new stream has
 * no bound.  Past it, reads fail (tls_low_error says so). */
void tls_low_set_budget(struct _mailstream_low *low, const struct budget_limits *lim);
/* ... and from the tagged line of `tag` on, `next` (budget_arm_next). */
void tls_low_set_budget_next(struct _mailstream_low *low, const char *tag,
			     const struct budget_limits *next);
/* Whether a read failed on the budget, the bound it passed (*bound) and in
 * which response (budget_response, into what). */
enum budget_over tls_low_over_budget(struct _mailstream_low *low, uint64_t *bound, char *what,
				     size_t what_size);

/* Detach fd from a plain stream so that STARTTLS can hand it to
 * tls_low_start; the plain stream is then freed by mailstream_low_free
 * without closing fd. */
void tls_low_release_fd(struct _mailstream_low *low);

#endif
