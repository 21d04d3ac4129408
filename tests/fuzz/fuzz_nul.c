/* libFuzzer target for the NUL check's view of a message (src/nul.c):
 * libetpan's MIME parser walked into IMAP part numbers, the stray-0x80
 * scan, and the patch rule.  Built and run by tests/fuzz/run.sh, not by
 * make.
 *
 * Input: a message as a source server's BODY[] could show it.  Besides
 * crashes and leaks it checks the plan's promises (parts inside the
 * message, in order, not overlapping, each showing a stray 0x80, sections
 * made of part numbers) and the patch's (BINARY[] made by turning every
 * 0x80 of a part into NUL patches exactly those bytes); the memchr scan,
 * whole, in two chunks or byte by byte, agrees with a forward UTF-8 state
 * machine.  And it checks nul_mime_shape's promise: what libetpan's
 * mailmime_parse builds (nesting depth, parts, header fields) is within the
 * bounds it gives. */
#include "config.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <libetpan/libetpan.h>

#include "nul.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check_section(const char *s)
{
	const char *p;
	bool digit = false;

	for (p = s; *p != '\0'; p++) {
		if (*p >= '1' && *p <= '9')
			digit = true;
		else if (*p == '0' && digit)
			;
		else if (*p == '.' && digit)
			digit = false;
		else
			abort();   /* not a part number */
	}
	if (s[0] != '\0' && !digit)
		abort();
}

static void check_patch(const char *part, size_t len)
{
	char *body = malloc(len + 1), *bin = malloc(len + 1);
	size_t i;
	long want = 0;

	if (body == NULL || bin == NULL)
		abort();
	memcpy(body, part, len);
	for (i = 0; i < len; i++) {
		bin[i] = (unsigned char)part[i] == 0x80 ? '\0' : part[i];
		want += (unsigned char)part[i] == 0x80;
	}
	if (nul_patch(body, len, bin, len) != want || memcmp(body, bin, len) != 0)
		abort();
	free(body);
	free(bin);
}

/* The scan as a forward UTF-8 state machine: what nul_scan must agree with. */
static bool ref_stray(const unsigned char *p, size_t len)
{
	int need = 0;
	size_t i;

	for (i = 0; i < len; i++) {
		if (need > 0 && (p[i] & 0xC0) == 0x80) {
			need--;
			continue;
		}
		need = 0;
		if (p[i] == 0x80)
			return true;
		if (p[i] >= 0xC2 && p[i] <= 0xF4)
			need = p[i] >= 0xF0 ? 3 : p[i] >= 0xE0 ? 2 : 1;
	}
	return false;
}

struct tree {
	size_t depth, parts, fields;
};

static void measure(struct mailmime *m, size_t depth, struct tree *t)
{
	clistiter *it;

	if (m == NULL)
		return;
	if (depth > t->depth)
		t->depth = depth;
	if (m->mm_mime_fields != NULL)
		t->fields += clist_count(m->mm_mime_fields->fld_list);
	if (m->mm_type == MAILMIME_MULTIPLE) {
		for (it = clist_begin(m->mm_data.mm_multipart.mm_mp_list); it != NULL;
		     it = clist_next(it)) {
			t->parts++;
			measure(clist_content(it), depth + 1, t);
		}
	} else if (m->mm_type == MAILMIME_MESSAGE) {
		if (m->mm_data.mm_message.mm_fields != NULL)
			t->fields += clist_count(m->mm_data.mm_message.mm_fields->fld_list);
		measure(m->mm_data.mm_message.mm_msg_mime, depth + 1, t);
	}
}

static void check_shape(const char *msg, size_t size)
{
	struct nul_shape sh;
	struct mailmime *mime = NULL;
	struct tree t = { 0, 0, 0 };
	size_t idx = 0;

	nul_mime_shape(msg, size, &sh);
	if (sh.depth > NUL_MAX_MIME_DEPTH)
		return;   /* no need to find out the hard way */
	if (mailmime_parse(msg, size, &idx, &mime) != MAILIMF_NO_ERROR || mime == NULL)
		return;
	measure(mime, 1, &t);
	mailmime_free(mime);
	if (t.depth > sh.depth || t.parts > sh.parts || t.fields > sh.fields)
		abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *msg = (const char *)data;
	struct nul_plan plan;
	struct nul_scan sc = { 0 };
	struct tr_error err;
	size_t i, at = 0, half = size / 2;
	bool chunked;

	chunked = nul_scan(&sc, msg, half) || nul_scan(&sc, msg + half, size - half);
	if (chunked != nul_stray(msg, size) || chunked != ref_stray(data, size))
		abort();
	/* byte by byte: the carried bytes at every boundary */
	memset(&sc, 0, sizeof(sc));
	chunked = false;
	for (i = 0; i < size && !chunked; i++)
		chunked = nul_scan(&sc, msg + i, 1);
	if (chunked != ref_stray(data, size))
		abort();
	check_shape(msg, size);
	tr_error_clear(&err);
	if (nul_plan(msg, size, &plan, &err) < 0)
		return 0;   /* out of memory only */
	for (i = 0; i < plan.n; i++) {
		const struct nul_part *p = &plan.v[i];

		if (p->off < at || p->off > size || p->len > size - p->off)
			abort();
		if (!nul_stray(msg + p->off, p->len))
			abort();
		check_section(p->section);
		if (p->section[0] == '\0' && (plan.n != 1 || p->off != 0 || p->len != size))
			abort();
		check_patch(msg + p->off, p->len);
		at = p->off + p->len;
	}
	nul_plan_free(&plan);
	return 0;
}
