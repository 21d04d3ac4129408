/* seal: passwords encrypted at rest (AES-256-GCM, OpenSSL), for the queue.
 *
 * A key file holds one or more keys, one per line: "ID HEX" where ID is 1 to
 * 16 characters of [A-Za-z0-9_-] and HEX the 32 bytes of the key in 64 hex
 * digits ('#' comments and blank lines ignored).  The first key seals; any
 * key of the file unseals (a sealed value names its key).  Rotation: put a
 * new key first, run `trasloco queue rekey`, which seals everything again
 * with it, then remove the old line.  seal_key_create writes a new file
 * with one random key, mode 0600, refusing to replace an existing file.
 * A key file readable by others, or writable by anyone but its owner, is
 * refused; one readable by its group is taken with a warning (Kubernetes
 * Secret volumes with an fsGroup are 0440).
 *
 * A sealed value: "TS1" | key id length (1 byte) | key id | 12-byte random
 * nonce | ciphertext | 16-byte tag.  The associated data (aad) binds the
 * value to its place (e.g. "job 7 account a@b.c password"): a value copied
 * to another row does not open.
 *
 * Ownership: a struct seal_keys is its creator's (seal_keys_free wipes
 * it); what the functions return through pointers is the caller's
 * (secret_free for plain texts, free for sealed values).  Threading: a
 * loaded key set is read-only and may be shared by threads.
 */
#ifndef TRASLOCO_SEAL_H
#define TRASLOCO_SEAL_H

#include <stddef.h>

#include "error.h"

struct seal_keys;

int seal_key_create(const char *path, struct tr_error *err);
int seal_keys_load(const char *path, struct seal_keys **k_r, struct tr_error *err);
void seal_keys_free(struct seal_keys *k);

/* Seal plain (a NUL-terminated secret) with the first key. */
int seal(const struct seal_keys *k, const char *aad, const char *plain, unsigned char **out,
	 size_t *out_len, struct tr_error *err);
/* Open a sealed value; *plain_r is NUL-terminated, freed with secret_free.
 * Errors (TR_ERR_LOCAL) name the key id when it is not in the file, and
 * say "altered or sealed for another place" when the tag does not match. */
int unseal(const struct seal_keys *k, const char *aad, const unsigned char *in, size_t len,
	   char **plain_r, struct tr_error *err);

#endif
