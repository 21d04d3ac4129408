/* oauth_text: the texts of OAuth2 over IMAP, parsed and made, without I/O:
 * a token source's output (a command's, a token endpoint's), the SASL
 * XOAUTH2 and OAUTHBEARER initial responses, a server's failure JSON.
 * Apart from oauth.c (the token pool and the command) and oauth_flow.c
 * (the token endpoints), which both use it.  Pure functions: any thread;
 * fuzzed (tests/fuzz/fuzz_oauth.c).
 */
#ifndef TRASLOCO_OAUTH_TEXT_H
#define TRASLOCO_OAUTH_TEXT_H

#include <stddef.h>

#include "error.h"

enum oauth_mech { OAUTH_NONE = 0, OAUTH_XOAUTH2, OAUTH_OAUTHBEARER };

/* A token source's output: a bare token (surrounding white space
 * ignored), or a JSON object with "access_token" (string) and optionally
 * "expires_in" (seconds, number or numeric string).  The token into tok
 * (NUL-terminated), *ttl_s its lifetime (0: not said).  -1 with err
 * (never quoting the output, which may hold a token) when it is neither. */
int oauth_parse_token(const char *out, size_t len, char *tok, size_t size, long *ttl_s,
		      struct tr_error *err);

/* A server's SASL failure challenge (RFC 7628 3.2.2: base64 of a JSON
 * object with status, schemes, scope; Google and Dovecot send it for
 * both mechanisms) decoded into a sentence for a person: "the token is
 * invalid or expired (status 401 / invalid_token)" and so on.  b64 is
 * the challenge as sent (after "+ ").  Always writes something to buf. */
void oauth_explain_failure(const char *b64, size_t len, char *buf, size_t size);

/* The SASL initial client response, base64-encoded, into out (size
 * bytes): XOAUTH2 "user=U^Aauth=Bearer T^A^A", OAUTHBEARER (RFC 7628)
 * "n,a=U,^Ahost=H^Aport=P^Aauth=Bearer T^A^A".  Returns its length, or
 * -1 when it does not fit.  The caller wipes out. */
long oauth_sasl_response(enum oauth_mech mech, const char *user, const char *token,
			 const char *host, int port, char *out, size_t size);

#endif
