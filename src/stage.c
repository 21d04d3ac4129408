/* stage: see include/stage.h */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "fingerprint.h"
#include "stage.h"

int stage_init(struct stage *sp, const char *dir, size_t mem_limit, struct tr_error *err)
{
	const char *tmp = getenv("TMPDIR");

	memset(sp, 0, sizeof(*sp));
	sp->fd = -1;
	sp->mem_limit = mem_limit;
	sp->dir = strdup(dir != NULL ? dir : (tmp != NULL && tmp[0] != '\0' ? tmp : "/tmp"));
	if (sp->dir == NULL) {
		tr_error_set(err, TR_ERR_LOCAL, "out of memory");
		return -1;
	}
	return 0;
}

static void free_msgs(struct stage *sp)
{
	size_t i;

	for (i = 0; i < sp->n; i++)
		free(sp->v[i].mem);
	sp->n = 0;
	sp->mem_used = 0;
}

void stage_free(struct stage *sp)
{
	free_msgs(sp);
	free(sp->v);
	free(sp->buf);
	free(sp->dir);
	if (sp->fd >= 0)
		close(sp->fd);
	memset(sp, 0, sizeof(*sp));
	sp->fd = -1;
}

void stage_reset(struct stage *sp)
{
	free_msgs(sp);
	sp->open = false;
	sp->buf_len = 0;
	/* Give the pages back; keep the descriptor for the next batch. */
	if (sp->fd >= 0 && sp->file_len > 0 && ftruncate(sp->fd, 0) == 0)
		sp->file_len = 0;
	/* A buffer that once held a big message is not kept around. */
	if (sp->buf_cap > sp->mem_limit) {
		free(sp->buf);
		sp->buf = NULL;
		sp->buf_cap = 0;
	}
}

static int open_file(struct stage *sp, struct tr_error *err)
{
	char path[4096];
	int fd;

	/* O_TMPFILE: never visible in the directory, gone when we close or die. */
	fd = open(sp->dir, O_TMPFILE | O_RDWR | O_CLOEXEC, 0600);
	if (fd < 0 && (errno == EOPNOTSUPP || errno == EISDIR || errno == EINVAL)) {
		snprintf(path, sizeof(path), "%s/trasloco-stage-XXXXXX", sp->dir);
		fd = mkostemp(path, O_CLOEXEC);
		if (fd >= 0)
			unlink(path);
	}
	if (fd < 0) {
		tr_error_set(err, TR_ERR_LOCAL, "cannot create a stage file in %s: %s",
			     sp->dir, strerror(errno));
		return -1;
	}
	sp->fd = fd;
	sp->file_len = 0;
	return 0;
}

static int pwrite_all(int fd, const void *data, size_t len, uint64_t off)
{
	const char *p = data;

	while (len > 0) {
		ssize_t w = pwrite(fd, p, len, (off_t)off);

		if (w < 0) {
			if (errno == EINTR)
				continue;
			return -1;
		}
		p += w;
		len -= (size_t)w;
		off += (uint64_t)w;
	}
	return 0;
}

void stage_begin(struct stage *sp)
{
	sp->open = true;
	sp->buf_len = 0;
	sp->cur_in_file = false;
	sp->cur_off = sp->file_len;
	sp->cur_len = 0;
}

void stage_abort(struct stage *sp)
{
	sp->open = false;
	sp->buf_len = 0;
}

static int to_file(struct stage *sp, const void *data, size_t len, struct tr_error *err)
{
	if (sp->fd < 0 && open_file(sp, err) < 0)
		return -1;
	if (pwrite_all(sp->fd, data, len, sp->file_len) < 0) {
		tr_error_set(err, TR_ERR_LOCAL, "cannot write the stage file in %s: %s",
			     sp->dir, strerror(errno));
		return -1;
	}
	sp->file_len += len;
	return 0;
}

int stage_write(struct stage *sp, const void *data, size_t len, struct tr_error *err)
{
	if (!sp->open)
		stage_begin(sp);
	sp->cur_len += len;
	if (sp->cur_in_file)
		return to_file(sp, data, len, err);
	if (sp->buf_len + len > sp->mem_limit ||
	    sp->mem_used + sp->buf_len + len > STAGE_MEM_TOTAL) {
		/* Too big for memory: move what we have to the file and go on there. */
		sp->cur_off = sp->file_len;
		if (to_file(sp, sp->buf, sp->buf_len, err) < 0)
			return -1;
		sp->buf_len = 0;
		sp->cur_in_file = true;
		return to_file(sp, data, len, err);
	}
	if (sp->buf_len + len > sp->buf_cap) {
		size_t cap = sp->buf_cap ? sp->buf_cap : 16384;
		char *nb;

		while (cap < sp->buf_len + len)
			cap *= 2;
		nb = realloc(sp->buf, cap);
		if (nb == NULL) {
			tr_error_set(err, TR_ERR_LOCAL, "out of memory");
			return -1;
		}
		sp->buf = nb;
		sp->buf_cap = cap;
	}
	memcpy(sp->buf + sp->buf_len, data, len);
	sp->buf_len += len;
	return 0;
}

int stage_end(struct stage *sp, uint32_t uid, struct tr_error *err)
{
	struct stage_msg *m;

	if (!sp->open)
		stage_begin(sp);   /* an empty body: still a message */
	if (sp->n == sp->cap) {
		size_t cap = sp->cap ? sp->cap * 2 : 64;
		struct stage_msg *nv = realloc(sp->v, cap * sizeof(*nv));

		if (nv == NULL) {
			tr_error_set(err, TR_ERR_LOCAL, "out of memory");
			return -1;
		}
		sp->v = nv;
		sp->cap = cap;
	}
	m = &sp->v[sp->n];
	memset(m, 0, sizeof(*m));
	m->uid = uid;
	m->len = sp->cur_len;
	if (sp->cur_in_file) {
		m->off = sp->cur_off;
	} else {
		m->mem = malloc(sp->buf_len ? sp->buf_len : 1);
		if (m->mem == NULL) {
			tr_error_set(err, TR_ERR_LOCAL, "out of memory");
			return -1;
		}
		if (sp->buf_len > 0)
			memcpy(m->mem, sp->buf, sp->buf_len);
		sp->mem_used += sp->buf_len;
	}
	sp->n++;
	sp->open = false;
	sp->buf_len = 0;
	return 0;
}

struct stage_msg *stage_find(const struct stage *sp, uint32_t uid)
{
	size_t i;

	for (i = 0; i < sp->n; i++)
		if (sp->v[i].uid == uid)
			return &sp->v[i];
	return NULL;
}

int stage_read(const struct stage *sp, const struct stage_msg *m, uint64_t off, void *buf,
	       size_t len, struct tr_error *err)
{
	char *p = buf;

	if (off + len > m->len) {
		tr_error_set(err, TR_ERR_LOCAL, "stage read past the end of message UID %u", m->uid);
		return -1;
	}
	if (m->mem != NULL) {
		memcpy(buf, m->mem + off, len);
		return 0;
	}
	off += m->off;
	while (len > 0) {
		ssize_t r = pread(sp->fd, p, len, (off_t)off);

		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0) {
			tr_error_set(err, TR_ERR_LOCAL, "cannot read the stage file: %s",
				     r < 0 ? strerror(errno) : "short file");
			return -1;
		}
		p += r;
		len -= (size_t)r;
		off += (uint64_t)r;
	}
	return 0;
}

int stage_overwrite(struct stage *sp, const struct stage_msg *m, uint64_t off, const void *data,
		    size_t len, struct tr_error *err)
{
	if (off > m->len || len > m->len - off) {
		tr_error_set(err, TR_ERR_LOCAL, "stage write past the end of message UID %u", m->uid);
		return -1;
	}
	if (m->mem != NULL) {
		memmove(m->mem + off, data, len);
		return 0;
	}
	if (pwrite_all(sp->fd, data, len, m->off + off) < 0) {
		tr_error_set(err, TR_ERR_LOCAL, "cannot write the stage file in %s: %s", sp->dir,
			     strerror(errno));
		return -1;
	}
	return 0;
}

int stage_hash(const struct stage *sp, const struct stage_msg *m, unsigned char *out,
	       struct tr_error *err)
{
	struct fp_content *c = fp_content_new();
	char buf[65536];
	uint64_t off = 0;

	if (c == NULL) {
		tr_error_set(err, TR_ERR_LOCAL, "out of memory");
		return -1;
	}
	if (m->mem != NULL) {
		fp_content_update(c, m->mem, (size_t)m->len);
		off = m->len;
	}
	while (off < m->len) {
		size_t chunk = m->len - off > sizeof(buf) ? sizeof(buf) : (size_t)(m->len - off);

		if (stage_read(sp, m, off, buf, chunk, err) < 0) {
			fp_content_final(c, out);
			return -1;
		}
		fp_content_update(c, buf, chunk);
		off += chunk;
	}
	fp_content_final(c, out);
	return 0;
}
