/* budget: how much an IMAP server may send, counted as it arrives.
 *
 * libetpan keeps the text of a whole reply (every untagged response up to
 * the tagged line) in one buffer, and allocates each literal at the size
 * the server announces before reading a byte of it; only literals of body
 * sections go to our handlers instead.  So, unchecked, a server decides how
 * much memory we use: a LIST with a 300 MB literal is 300 MB.
 *
 * A budget follows the bytes the stream driver (tls.c) hands to libetpan,
 * just far enough to tell responses and literals apart ("{n}" or "~{n}" at
 * the end of a line announces n bytes), and says stop when
 *  - the bytes since it was armed pass `total` (with fetch_literals_free,
 *    the literals of FETCH responses are not counted: those are streamed to
 *    a handler and never held whole), or
 *  - one FETCH response ("* n FETCH ..."), its literals included, passes
 *    `fetch_one`.
 * A literal is judged when it is announced, before libetpan sees the line
 * and allocates it.  Once over, a budget stays over: the bytes were not
 * delivered, so the session is unusable.
 *
 * The imap module arms a budget before each reply it reads, with the bounds
 * of that command (imap.c, README "Known limits").
 *
 * Plain data, no I/O, no allocation: one per stream, used by the thread that
 * owns the stream.
 */
#ifndef TRASLOCO_BUDGET_H
#define TRASLOCO_BUDGET_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct budget_limits {
	uint64_t total;            /* bytes from now on; 0: no bound */
	uint64_t fetch_one;        /* bytes of one FETCH response; 0: no bound */
	bool fetch_literals_free;  /* FETCH responses' literals do not count toward total */
};

enum budget_over { BUDGET_OK = 0, BUDGET_OVER_TOTAL, BUDGET_OVER_FETCH };

struct budget {
	struct budget_limits lim;
	uint64_t used;             /* counted toward lim.total since armed */
	uint64_t resp;             /* bytes of the current response so far */
	uint64_t lit_left;         /* bytes of the current literal still to come */
	uint64_t lit_n;            /* the number being read after '{' */
	int lit_state;             /* where the line is in "{digits}\r\n" */
	bool in_resp;              /* inside a response (else the next byte starts one) */
	int fetch;                 /* -1 not known yet, else whether this response is a FETCH */
	unsigned char head[24];    /* the first bytes of the current response */
	size_t head_len;
	enum budget_over over;
	char next_tag[16];         /* "" or: after the tagged line of this tag... */
	struct budget_limits next; /* ...these bounds apply */
	size_t keep;               /* see budget_keep */
};

/* No bounds; the stream is at the start of a response. */
void budget_init(struct budget *b);
/* New bounds, counted from here; the position in the stream is kept. */
void budget_arm(struct budget *b, const struct budget_limits *lim);
/* Pipelined commands of different kinds: once the tagged line of `tag`
 * has passed, `next` applies (counted from there), so that the start of
 * the next reply, read ahead with that line, is judged by its own bounds. */
void budget_arm_next(struct budget *b, const char *tag, const struct budget_limits *next);
/* Account for data (the next bytes of the stream).  Returns BUDGET_OK, or
 * which bound the bytes pass (then and on every later call). */
enum budget_over budget_feed(struct budget *b, const char *data, size_t len);
/* After a budget_feed that went over: how many of the bytes it was given
 * may still be handed on, those before the line at fault (the replies to
 * earlier commands, read ahead with it, stay intact). */
size_t budget_keep(const struct budget *b);
/* The bound that was passed (0 when none was). */
uint64_t budget_bound(const struct budget *b);
/* What the response being read is, for messages: "LIST", "FETCH",
 * "STATUS"... (the name after "* " and any number), "tagged" or
 * "continuation"; "" when its first bytes say nothing. */
const char *budget_response(const struct budget *b, char *buf, size_t size);

#endif
