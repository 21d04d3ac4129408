/* oauth: OAuth2 access tokens for IMAP's SASL XOAUTH2 and OAUTHBEARER.
 *
 * Where an account's token comes from (struct oauth_conf, one per side of
 * a job): a command of the user's (--src-token-cmd / --dst-token-cmd), run
 * through /bin/sh -c with the account in TRASLOCO_EMAIL and its login on
 * that side in TRASLOCO_USER, that prints a token, or JSON with
 * access_token and expires_in; or a built-in flow (oauth_flow.c, libcurl):
 * Microsoft 365 app-only client credentials, Google Workspace domain-wide
 * delegation.
 *
 * An oauth_pool holds one token per account and side, in memory only:
 * taken by every session of the account, fetched again OAUTH_MARGIN ahead
 * of its expiry (expires_in when the source says it, else
 * OAUTH_DEFAULT_TTL_S) and when a server refused it (oauth_refused), so
 * that the reconnects of a long copy log in with a live token.  A token is
 * wiped when its account is done (oauth_pool_drop) and when the pool is
 * freed.  Tokens are never logged nor put in an error text, nor given to
 * a child (the command's environment is the caller's less every variable
 * whose name says PASSWORD, PASSWD, SECRET or TOKEN).
 *
 * Threads: an oauth_pool and its accounts may be used by any number of
 * threads at once (one lock per pool, one per account; a fetch holds only
 * its account's).  The texts (token responses, SASL strings, failure JSON)
 * are oauth_text's.
 */
#ifndef TRASLOCO_OAUTH_H
#define TRASLOCO_OAUTH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "error.h"
#include "oauth_text.h"

/* A token whose source did not say how long it lives is taken as good for
 * 45 minutes (Google's and Microsoft's last 60). */
#define OAUTH_DEFAULT_TTL_S (45 * 60)
/* A token command's exit code for "failed for now, try again later"
 * (sysexits' EX_TEMPFAIL): TR_ERR_TEMP, so the account's retries run it
 * again after their back-off, as after a time-out or a signal; any other
 * non-zero exit fails the account (TR_ERR_AUTH). */
#define OAUTH_CMD_TEMPFAIL 75
/* The longest token taken (Microsoft's JWTs are 1.5 to 3 KB). */
#define OAUTH_TOKEN_MAX 16384

enum oauth_provider { OAUTH_PROVIDER_CMD = 0, OAUTH_PROVIDER_MS365, OAUTH_PROVIDER_GOOGLE };

/* Borrowed strings; kept alive while a pool uses them. */
struct oauth_conf {
	const char *side;           /* "source" or "destination", for messages */
	const char *cmd;            /* the token command, for /bin/sh -c */
	int timeout_s;              /* the longest a fetch may take */
	/* the built-in flows (oauth_flow.c), when provider is not CMD */
	enum oauth_provider provider;
	const char *tenant, *client_id;   /* Microsoft 365 */
	const char *secret_file;    /* MS365: the client secret; Google: the service account key */
	const char *cert_file, *key_file; /* MS365: a certificate instead of a secret */
	const char *token_url;      /* NULL: the provider's (Google: the key's token_uri) */
	const char *ca_file;        /* NULL: the system store */
};

struct oauth_pool;
struct oauth_account;

struct oauth_pool *oauth_pool_new(const struct oauth_conf *conf);
void oauth_pool_free(struct oauth_pool *p);
/* The account's entry (made on first use; NULL: out of memory).  email
 * names the account, user is its login on this side. */
struct oauth_account *oauth_pool_get(struct oauth_pool *p, const char *email, const char *user);
/* The account is done: its token is wiped and the entry freed (entries
 * still in use by a session stay until the pool is freed). */
void oauth_pool_drop(struct oauth_pool *p, const char *email);

/* A live token for the account, copied into buf (NUL-terminated; wipe it
 * after use); *gen gets its generation, for oauth_refused, and *fresh
 * whether this call fetched it (a fresh token refused is not fetched again
 * at once: the source gives bad ones).  Fetches when
 * there is none or it expires within the margin.  Fails with TR_ERR_AUTH
 * when the source gives no usable token (the command failed, printed
 * nothing or something that is not a token), naming the account; with
 * TR_ERR_TEMP when it failed for now (the command timed out, was killed or
 * exited OAUTH_CMD_TEMPFAIL; a token endpoint unreachable or answering 5xx
 * or 429). */
int oauth_token(struct oauth_account *a, char *buf, size_t size, uint64_t *gen, bool *fresh,
		struct tr_error *err);
/* A server refused the token of generation gen: the next oauth_token
 * fetches a new one (unless another session already has). */
void oauth_refused(struct oauth_account *a, uint64_t gen);
/* How many tokens were fetched for the account (tests, logs). */
unsigned oauth_fetches(struct oauth_account *a);

/* The built-in flows (oauth_flow.c): one token for the account (user is
 * its login: Google's sub), its lifetime into *ttl (0: not said).
 * TR_ERR_AUTH when the endpoint refuses, TR_ERR_TEMP when it cannot be
 * reached or answers 5xx/429, TR_ERR_USAGE for an unreadable key. */
int oauth_flow_fetch(const struct oauth_conf *c, const char *email, const char *user, char *tok,
		     size_t size, long *ttl, struct tr_error *err);

#endif
