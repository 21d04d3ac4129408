/* nul: see include/nul.h.  This half talks to the source: it reads a
 * staged message, asks BINARY[] and writes the NUL bytes back. */
#include "config.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "nul.h"

static const char WHY_REFUSED[] = "the source server refused BINARY[] for it";
static const char WHY_MISMATCH[] = "the source server's BINARY[] does not line up with its BODY[]";
static const char WHY_LARGE[] = "it is too large to check for NUL bytes (over 32 MB)";

int nul_suspect(const struct stage *sp, const struct stage_msg *m, struct tr_error *err)
{
	char buf[65536];
	struct nul_scan sc = { 0 };
	uint64_t off = 0;

	if (m->mem != NULL)
		return nul_scan(&sc, m->mem, (size_t)m->len);
	while (off < m->len) {
		size_t n = m->len - off > sizeof(buf) ? sizeof(buf) : (size_t)(m->len - off);

		if (stage_read(sp, m, off, buf, n, err) < 0)
			return -1;
		if (nul_scan(&sc, buf, n))
			return 1;
		off += n;
	}
	return 0;
}

int nul_recover(struct imap_session *s, struct stage *sp, struct stage_msg *m,
		struct nul_result *res, struct tr_error *err)
{
	struct nul_plan plan;
	char *buf;
	size_t i;
	int ret = -1, r;

	memset(res, 0, sizeof(*res));
	r = nul_suspect(sp, m, err);
	if (r <= 0)
		return r;
	res->stray = true;
	if (m->len > NUL_MAX_CHECK) {
		res->unchecked = WHY_LARGE;
		return 0;
	}
	buf = m->mem;
	if (buf == NULL) {
		buf = malloc((size_t)m->len + 1);
		if (buf == NULL) {
			tr_error_set(err, TR_ERR_LOCAL, "out of memory");
			return -1;
		}
		if (stage_read(sp, m, 0, buf, (size_t)m->len, err) < 0)
			goto out;
	}
	if (nul_plan(buf, (size_t)m->len, &plan, err) < 0)
		goto out;
	res->unchecked = plan.unchecked;
	for (i = 0; i < plan.n; i++) {
		const struct nul_part *p = &plan.v[i];
		char *bin;
		size_t bin_len;
		long n;

		res->asked++;
		if (imap_fetch_binary(s, m->uid, p->section, p->len + 2, &bin, &bin_len, err) < 0) {
			if (imap_broken(s) || err->kind == TR_ERR_LOCAL) {
				nul_plan_free(&plan);
				goto out;
			}
			tr_error_clear(err);
			res->unchecked = WHY_REFUSED;
			continue;
		}
		n = nul_patch(buf + p->off, p->len, bin, bin_len);
		free(bin);
		if (n < 0)
			res->unchecked = WHY_MISMATCH;
		else
			res->restored += n;
	}
	nul_plan_free(&plan);
	if (res->restored > 0) {
		if (buf != m->mem && stage_overwrite(sp, m, 0, buf, (size_t)m->len, err) < 0)
			goto out;
		m->literal8 = true;
	}
	ret = 0;
out:
	if (buf != m->mem)
		free(buf);
	return ret;
}
