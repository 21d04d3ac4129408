/* mutf7: strict modified UTF-7 (RFC 3501 section 5.1.3) <-> UTF-8.
 *
 * Folder names travel on the wire in modified UTF-7.  We keep the raw name
 * for every command sent to the server that listed it, and decode only to
 * map and to display.  Decoding is strict: input that a canonical encoder
 * would never produce (a shifted run of printable ASCII, an unterminated
 * shift, "&-" split runs that could be one run, bad padding bits, unpaired
 * surrogates, raw 8-bit bytes) is refused, because accepting it would let
 * decode+encode change a name.
 *
 * Both functions return a new NUL-terminated string the caller frees, or
 * NULL with errno = EINVAL (invalid input) or ENOMEM.
 */
#ifndef TRASLOCO_MUTF7_H
#define TRASLOCO_MUTF7_H

#include <stdint.h>

char *mutf7_decode(const char *mutf7);  /* modified UTF-7 -> UTF-8 */
char *mutf7_encode(const char *utf8);   /* UTF-8 -> modified UTF-7; EINVAL on invalid UTF-8 */

/* Decode one strict UTF-8 character at *pp (no overlongs, surrogates,
 * values past U+10FFFF or truncated sequences) into *cp and advance *pp.
 * Returns 0, or -1 on invalid input (*pp unchanged).  Shared with folder.c,
 * which folds case on decoded names. */
int mutf7_utf8_next(const unsigned char **pp, uint32_t *cp);

#endif
