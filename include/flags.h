/* flags: one canonical text form for a message's flags.
 *
 * "\Seen \Answered \Flagged \Draft \Deleted $Label1 NonJunk": system flags
 * first in that fixed order and spelling, then keywords sorted and without
 * case-insensitive duplicates; \Recent is dropped (no client may set it).
 * Two flag sets are equal exactly when their canonical strings are equal,
 * which is what the state store saves and compares.
 */
#ifndef TRASLOCO_FLAGS_H
#define TRASLOCO_FLAGS_H

#include <stdbool.h>

/* Canonical form of a space-separated flag list.  Returns a new string
 * ("" for none) the caller frees, or NULL on ENOMEM.  Tokens that are not
 * valid IMAP flags (contain a space, parenthesis, quote, ...) are dropped. */
char *flags_canon(const char *flags);

/* True when the canonical strings a and b are the same set. */
bool flags_equal(const char *a, const char *b);

#endif
