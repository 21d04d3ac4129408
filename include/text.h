/* text: untrusted text (server replies, CSV fields) made safe to show and
 * store, with the passwords taken out.
 *
 * A server's reply text and a CSV field may hold anything: terminal escape
 * sequences, bytes that are not UTF-8 (which JSON cannot carry), and the
 * password the client just sent (a server that echoes the LOGIN line in its
 * NO).  Every such text goes through text_clean before it reaches a
 * terminal, a log, a report or the state.
 *
 * Escaping: every control character -- C0 (0x00-0x1F, TAB included), DEL
 * (0x7F) and C1 (U+0080-U+009F) -- and every byte that is not part of
 * well-formed UTF-8 (a stray continuation byte, an overlong form, a
 * surrogate, a code point above U+10FFFF, a sequence cut short) becomes
 * "\xHH", one per byte, upper-case hex: ESC [ 2 J reads "\x1B[2J".  All
 * else, the backslash included, stays as it is: clean text comes out
 * unchanged, so cleaning twice is cleaning once.  (Not reversible: a server
 * may itself write "\x1B".)  The result is valid UTF-8, NUL-terminated, and
 * cut at a character boundary when it does not fit, never inside a UTF-8
 * sequence or an escape.
 *
 * Redaction: each password is replaced by TEXT_REDACTED wherever it
 * appears in the whole source, before anything is cut to size, in each form
 * it travels in or may come back in:
 *   - as it is (a LOGIN literal, or an echo);
 *   - as an IMAP quoted string's content, with \" and \\ (LOGIN);
 *   - as text_clean's own escaped form of those (text cleaned before);
 *   - inside base64: a run of base64 characters that decodes, from any of
 *     its first four characters, to bytes holding the password -- the SASL
 *     PLAIN blob authzid NUL authcid NUL password, whatever the ids -- is
 *     replaced as a whole;
 *   - an echo the server cut short: 4 bytes or more of the beginning of
 *     the first two forms that end the text, or end a base64 run's
 *     decoding.
 * Occurrences that overlap or touch are replaced as one.  An empty password
 * redacts nothing.  A very short password is taken out wherever its bytes
 * occur, which can take out innocent text too: the price of never showing
 * it.
 *
 * Ownership: a struct text_secrets holds private copies of the passwords
 * (one copy of each, and of a form only where it differs: a quote, a
 * backslash, a control byte or invalid UTF-8 in the password);
 * text_secrets_wipe zeroes and frees them.
 * Threading: no shared state; a filled text_secrets is only read by
 * text_clean, so threads may share it.
 */
#ifndef TRASLOCO_TEXT_H
#define TRASLOCO_TEXT_H

#include <stdbool.h>
#include <stddef.h>

#define TEXT_REDACTED "[password]"
/* Passwords one text_secrets holds: a session's own, an account's few. */
#define TEXT_SECRETS_MAX 4

struct text_secrets {
	size_t n;                          /* forms in use */
	char *form[TEXT_SECRETS_MAX * 4];  /* as is, quoted, escaped, quoted escaped */
	size_t len[TEXT_SECRETS_MAX * 4];
	bool owned[TEXT_SECRETS_MAX * 4];  /* false: the form is pw[i] itself */
	char *pw[TEXT_SECRETS_MAX];        /* the passwords, for the base64 check */
	size_t pw_len[TEXT_SECRETS_MAX];
	size_t n_pw;
};

/* Zero-initialise (a struct text_secrets = { 0 } is the same). */
void text_secrets_init(struct text_secrets *ts);
/* Add a password (NULL or "" is ignored, as is one already there).
 * Returns -1 when out of memory or when TEXT_SECRETS_MAX are held. */
int text_secrets_add(struct text_secrets *ts, const char *password);
/* Zero and free every copy; ts is empty (and reusable) afterwards. */
void text_secrets_wipe(struct text_secrets *ts);

/* Clean src[0..len) into dst (size bytes, at least 1): passwords of ts
 * (NULL: none) replaced, control bytes and invalid UTF-8 escaped.  Returns
 * strlen(dst). */
size_t text_clean(char *dst, size_t size, const char *src, size_t len,
		  const struct text_secrets *ts);
/* The same for a NUL-terminated string (NULL reads as ""); returns dst. */
const char *text_clean_str(char *dst, size_t size, const char *src,
			   const struct text_secrets *ts);
/* A malloc'd cleaned copy of a NUL-terminated string, never cut (NULL
 * reads as ""); NULL when out of memory. */
char *text_clean_dup(const char *src, const struct text_secrets *ts);
/* Clean a NUL-terminated buffer of size bytes in place (escapes may cut
 * its end, at a character boundary). */
void text_clean_inplace(char *buf, size_t size, const struct text_secrets *ts);
/* True when s needs no escaping (valid UTF-8 without control characters). */
bool text_is_clean(const char *s, size_t len);

#endif
