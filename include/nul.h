/* nul: the NUL bytes a server's BODY[] hides.
 *
 * RFC 5322 has no place for a NUL byte, yet broken mailers write them, and
 * Dovecot answers BODY[] with every NUL turned into 0x80.  BINARY[] (RFC
 * 3516) gives the NULs back, but it also undoes base64 and
 * quoted-printable: BINARY[] of a whole multipart message is another
 * message.  So a message is checked part by part: only the parts whose
 * transfer encoding is the identity (none, 7bit, 8bit, binary) and whose
 * body shows a stray 0x80 (one that is not inside well-formed UTF-8, where
 * 0x80 is an ordinary continuation byte) are asked for with BINARY[n], and
 * their NULs are taken only where everything else lines up byte for byte.
 * A 0x80 nothing can check (in headers, in an encoded part, a server that
 * refuses BINARY) leaves the message as BODY[] shows it, and says why.
 */
#ifndef TRASLOCO_NUL_H
#define TRASLOCO_NUL_H

#include <stdbool.h>
#include <stddef.h>

#include "error.h"
#include "imap.h"
#include "stage.h"

/* Messages over this size that show a stray 0x80 are not checked: the check
 * needs the whole message in memory. */
#define NUL_MAX_CHECK (32u << 20)

/* libetpan's MIME parser recurses once per nesting level (40,000 nested
 * multiparts, 3 MB of mail, overflow a thread's stack; its time is levels
 * times size) and allocates a structure per part and per header field
 * (a 32 MB message of empty parts takes 700 MB).  A message is parsed only
 * when nul_mime_shape says it stays within these; else it is left
 * unchecked.  Parsing then costs at most NUL_MAX_MIME_DEPTH passes over the
 * message (about 3 s for 32 MB) and a few tens of MB. */
#define NUL_MAX_MIME_DEPTH 64
#define NUL_MAX_MIME_PARTS 10000
#define NUL_MAX_MIME_FIELDS 200000

/* Upper bounds, from one pass over the bytes, of what libetpan's
 * mailmime_parse would build from a message. */
struct nul_shape {
	size_t depth;    /* nesting levels it recurses through (the top counts 1) */
	size_t parts;    /* parts of multiparts */
	size_t fields;   /* header fields */
};
void nul_mime_shape(const char *msg, size_t len, struct nul_shape *sh);

/* One part of a message to ask BINARY[section] for. */
struct nul_part {
	char section[64];     /* IMAP part number ("1", "2.1"); "" for the whole message */
	size_t off, len;      /* its body within the message */
};

struct nul_plan {
	struct nul_part *v;   /* owned: nul_plan_free */
	size_t n;
	const char *unchecked;   /* static text: why some 0x80 cannot be checked, or NULL */
};

/* Is there a 0x80 in data[0, len) outside well-formed UTF-8? */
bool nul_stray(const char *data, size_t len);
/* The same over a message read in chunks: sc starts zeroed. */
struct nul_scan {
	unsigned char last[3];   /* the previous chunks' last bytes, nearest last */
	size_t n_last;           /* how many of them there are */
};
bool nul_scan(struct nul_scan *sc, const char *data, size_t len);

/* Does staged message m show a stray 0x80?  1 yes, 0 no, -1 on a read
 * failure (err set). */
int nul_suspect(const struct stage *sp, const struct stage_msg *m, struct tr_error *err);

/* The parts of msg (a whole message as BODY[] shows it) that may hide NUL
 * bytes.  Fails only when out of memory. */
int nul_plan(const char *msg, size_t len, struct nul_plan *plan, struct tr_error *err);
void nul_plan_free(struct nul_plan *plan);

/* body is a part as BODY[] shows it, bin the same part from BINARY[].  When
 * they differ only where body has 0x80 and bin has NUL (give or take a
 * trailing CRLF), write those NULs into body and return how many; else
 * return -1 and leave body alone. */
long nul_patch(char *body, size_t body_len, const char *bin, size_t bin_len);

/* What nul_recover did with one message. */
struct nul_result {
	bool stray;              /* it shows a stray 0x80 */
	unsigned asked;          /* BINARY[] FETCHes sent */
	long restored;           /* NUL bytes put back */
	const char *unchecked;   /* static text: why a 0x80 was left as it is, or NULL */
};

/* Message m of sp came from s with BODY[].  When it shows stray 0x80
 * bytes, ask s for BINARY[] of the parts concerned and put their NULs back
 * into the stage; m->literal8 is then set.  Returns -1 only on a local
 * failure or a broken session (imap_broken(s)); a refusal is in
 * res->unchecked. */
int nul_recover(struct imap_session *s, struct stage *sp, struct stage_msg *m,
		struct nul_result *res, struct tr_error *err);

#endif
