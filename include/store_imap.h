/* store_imap: the IMAP store, one of store.h's drivers (src/store_imap.c):
 * everything IMAP the engine must not see (UID-set syntax, capabilities,
 * isolating a message whose response cannot be parsed, NUL bytes through
 * BINARY[]) over one imap.c session.  Picked by store.c as "imap". */
#ifndef TRASLOCO_STORE_IMAP_H
#define TRASLOCO_STORE_IMAP_H

#include "store.h"

extern const struct store_driver store_imap_driver;

#endif
