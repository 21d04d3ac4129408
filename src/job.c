/* job: see include/job.h
 *
 * Line numbers.  libcsv counts no lines, so the text is fed to it one line
 * (up to and including its '\n') at a time: whatever callback fires during
 * a call fired on that line.  With CSV_REPALL_NL every '\n' outside quotes
 * ends a row, even an empty one, so the row after it starts on the next
 * line; a lone CR ends a row but not a line.  A row holding a quoted
 * newline keeps the line it started on.
 *
 * Recovery.  A strict-mode error (a quote inside an unquoted field, text
 * after a closing quote) costs the row it is in: the parser is reset and
 * starts again at the next line.  A quote still open at the end of the text
 * has swallowed everything after it, so that row is reported and the lines
 * after its first one are parsed again.  This cannot cascade: a line read
 * inside an open quote that stays open holds an even number of quotes, and
 * such a line, read from its start, always ends outside quotes.
 *
 * Secrets.  Passwords pass through libcsv's field buffer, our field copies
 * and the accounts; every one of them is wiped before it is freed, and no
 * message is built from a field that may be a password.
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <csv.h>

#include "job.h"

#define JOB_MAX_FILE ((size_t)64 << 20)
#define JOB_MAX_JOB_FILE ((size_t)1 << 20)
/* libcsv's field buffer never grows past this: a longer field is dropped
 * as it streams by (JOB_MAX_FIELD is what a field may hold; between the
 * two, the field callback sees the length). */
#define CSV_BUF_MAX 4096
#define MAXF 8                  /* fields kept per row; a header has at most 5 */
#define MAX_LISTED 1000         /* bad rows listed one by one */

/* ---- small helpers ------------------------------------------------------ */

static bool is_sp(unsigned char c)
{
	return c == ' ' || c == '\t';
}

static char ascii_lower(char c)
{
	return c >= 'A' && c <= 'Z' ? (char)(c - 'A' + 'a') : c;
}

/* strcasecmp depends on the locale; addresses are compared byte-wise with
 * ASCII case folding only. */
static bool ascii_caseeq(const char *a, const char *b)
{
	for (; *a != '\0' && *b != '\0'; a++, b++)
		if (ascii_lower(*a) != ascii_lower(*b))
			return false;
	return *a == *b;
}

static void wipe_free(char *s)
{
	if (s == NULL)
		return;
	explicit_bzero(s, strlen(s));
	free(s);
}

/* Copy of s for a message: control bytes escaped so that a message cannot
 * drive a terminal, long strings cut. */
static void show(char *buf, size_t cap, const char *s)
{
	size_t o = 0;

	for (; *s != '\0' && o + 8 < cap; s++) {
		unsigned char c = (unsigned char)*s;

		if (o >= 100) {
			memcpy(buf + o, "...", 3);
			o += 3;
			break;
		}
		if (c < 0x20 || c == 0x7f)
			o += (size_t)snprintf(buf + o, cap - o, "\\x%02x", c);
		else
			buf[o++] = (char)c;
	}
	buf[o] = '\0';
}

bool job_email_valid(const char *email)
{
	const char *at = NULL, *p;
	size_t len;

	if (email == NULL)
		return false;
	len = strlen(email);
	if (len == 0 || len > 254)
		return false;
	for (p = email; *p != '\0'; p++) {
		unsigned char c = (unsigned char)*p;

		if (c <= 0x20 || c == 0x7f)
			return false;
		if (c == '@') {
			if (at != NULL)
				return false;
			at = p;
		}
	}
	if (at == NULL || at == email)
		return false;
	/* domain: labels separated by dots, at least two, none empty */
	p = at + 1;
	if (*p == '\0' || *p == '.' || strchr(p, '.') == NULL || email[len - 1] == '.')
		return false;
	return strstr(p, "..") == NULL;
}

/* ---- reading files ------------------------------------------------------ */

/* Read what fd holds, a regular file of at most max bytes, into a
 * NUL-terminated buffer.  path is for messages.  The caller wipes the
 * buffer: it may hold passwords. */
static int read_fd(int fd, const char *path, size_t max, char **out, size_t *out_len,
		   mode_t *mode, struct tr_error *err)
{
	struct stat st;
	char *buf = NULL;
	size_t len = 0, cap;

	if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode)) {
		tr_error_set(err, TR_ERR_USAGE, "%s: not a regular file", path);
		return -1;
	}
	if ((uintmax_t)st.st_size > max) {
		tr_error_set(err, TR_ERR_USAGE, "%s: larger than %zu %s", path,
			     max >= (1u << 20) ? max >> 20 : max >> 10,
			     max >= (1u << 20) ? "MiB" : "KiB");
		return -1;
	}
	/* the size may change under us: read to EOF, but never past the limit */
	cap = (size_t)st.st_size + 1;
	buf = malloc(cap);
	if (buf == NULL)
		goto oom;
	for (;;) {
		ssize_t n;

		if (len + 1 == cap) {
			size_t ncap = cap * 2 > max + 2 ? max + 2 : cap * 2;
			char *nb;

			if (len > max) {
				tr_error_set(err, TR_ERR_USAGE, "%s: larger than %zu %s", path,
					     max >= (1u << 20) ? max >> 20 : max >> 10,
					     max >= (1u << 20) ? "MiB" : "KiB");
				goto fail;
			}
			nb = malloc(ncap);
			if (nb == NULL)
				goto oom;
			memcpy(nb, buf, len);
			explicit_bzero(buf, len);
			free(buf);
			buf = nb;
			cap = ncap;
		}
		n = read(fd, buf + len, cap - 1 - len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			tr_error_set(err, TR_ERR_LOCAL, "cannot read %s: %s", path, strerror(errno));
			goto fail;
		}
		if (n == 0)
			break;
		len += (size_t)n;
	}
	buf[len] = '\0';
	*out = buf;
	*out_len = len;
	if (mode != NULL)
		*mode = st.st_mode;
	return 0;
oom:
	tr_error_set(err, TR_ERR_LOCAL, "%s: out of memory", path);
fail:
	if (buf != NULL) {
		explicit_bzero(buf, len);
		free(buf);
	}
	return -1;
}

/* O_NONBLOCK: a FIFO put where a file is expected must be refused, not
 * wait forever for a writer (the spool would hang under its lock). */
static int read_file(const char *path, size_t max, char **out, size_t *out_len, mode_t *mode,
		     struct tr_error *err)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK | O_NOCTTY), r;

	if (fd < 0) {
		tr_error_set(err, TR_ERR_USAGE, "cannot open %s: %s", path, strerror(errno));
		return -1;
	}
	r = read_fd(fd, path, max, out, out_len, mode, err);
	close(fd);
	return r;
}

/* ---- accounts: columns -------------------------------------------------- */

enum col { COL_EMAIL, COL_PASSWORD, COL_SRC_USER, COL_DST_USER, COL_DST_PASSWORD, COL_N };

static const char *const col_name[COL_N] = {
	"email", "password", "src_user", "dst_user", "dst_password",
};

static const struct {
	const char *name;       /* normalised: lower case, '_' for '-' and ' ' */
	enum col col;
} col_alias[] = {
	{ "email", COL_EMAIL }, { "user", COL_EMAIL }, { "login", COL_EMAIL },
	{ "username", COL_EMAIL }, { "account", COL_EMAIL }, { "mailbox", COL_EMAIL },
	{ "password", COL_PASSWORD }, { "pass", COL_PASSWORD }, { "passwd", COL_PASSWORD },
	{ "src_password", COL_PASSWORD },
	{ "src_user", COL_SRC_USER }, { "dst_user", COL_DST_USER },
	{ "dst_password", COL_DST_PASSWORD },
};

/* Column named by a header field, or -1.  Spaces around the name are
 * ignored ("email, password" is a common way to write a header). */
static int col_lookup(const char *s, size_t len)
{
	char norm[32];
	size_t i, n;

	while (len > 0 && is_sp((unsigned char)*s)) {
		s++;
		len--;
	}
	while (len > 0 && is_sp((unsigned char)s[len - 1]))
		len--;
	if (len == 0 || len >= sizeof(norm) || memchr(s, '\0', len) != NULL)
		return -1;
	for (n = 0; n < len; n++)
		norm[n] = s[n] == '-' || s[n] == ' ' ? '_' : ascii_lower(s[n]);
	norm[n] = '\0';
	for (i = 0; i < sizeof(col_alias) / sizeof(col_alias[0]); i++)
		if (strcmp(norm, col_alias[i].name) == 0)
			return (int)col_alias[i].col;
	return -1;
}

/* An unknown header field is shown in a message only when it looks like a
 * column name: a file without a header whose first address happens to be
 * "user" is taken for one, and then its fields may be passwords. */
static bool looks_like_name(const char *s, size_t len)
{
	size_t i;

	if (len == 0 || len > 32)
		return false;
	for (i = 0; i < len; i++) {
		char c = ascii_lower(s[i]);

		if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' ||
		      c == '_' || c == ' '))
			return false;
	}
	return true;
}

/* ---- accounts: duplicate detection -------------------------------------- */

struct dupset {
	size_t *slot;           /* index into accounts + 1; 0 = empty */
	size_t cap;             /* power of two */
	size_t n;
};

static size_t email_hash(const char *s)
{
	uint64_t h = 1469598103934665603u;

	for (; *s != '\0'; s++) {
		h ^= (unsigned char)ascii_lower(*s);
		h *= 1099511628211u;
	}
	return (size_t)h;
}

/* Index of the account with this address, or SIZE_MAX. */
static size_t dup_find(const struct dupset *d, const struct job_accounts *a, const char *email)
{
	size_t i;

	if (d->cap == 0)
		return SIZE_MAX;
	for (i = email_hash(email) & (d->cap - 1); d->slot[i] != 0; i = (i + 1) & (d->cap - 1))
		if (ascii_caseeq(a->v[d->slot[i] - 1].email, email))
			return d->slot[i] - 1;
	return SIZE_MAX;
}

static int dup_add(struct dupset *d, const struct job_accounts *a, size_t idx)
{
	size_t i;

	if ((d->n + 1) * 2 > d->cap) {
		size_t ncap = d->cap ? d->cap * 2 : 64, j;
		size_t *ns = calloc(ncap, sizeof(*ns));

		if (ns == NULL)
			return -1;
		for (j = 0; j < d->cap; j++) {
			if (d->slot[j] == 0)
				continue;
			for (i = email_hash(a->v[d->slot[j] - 1].email) & (ncap - 1); ns[i] != 0;
			     i = (i + 1) & (ncap - 1))
				;
			ns[i] = d->slot[j];
		}
		free(d->slot);
		d->slot = ns;
		d->cap = ncap;
	}
	for (i = email_hash(a->v[idx].email) & (d->cap - 1); d->slot[i] != 0;
	     i = (i + 1) & (d->cap - 1))
		;
	d->slot[i] = idx + 1;
	d->n++;
	return 0;
}

/* ---- accounts: libcsv's buffer ------------------------------------------ */

/* libcsv grows its field buffer with realloc, which would leave copies of
 * passwords in freed memory.  These wipe what they let go; the size sits in
 * front of the block because libcsv does not pass it.  libcsv asks for
 * 128 bytes more each time, so the block grows by doubling instead: a
 * moving realloc of every step would make a long field quadratic.  Past
 * CSV_BUF_MAX it refuses: libcsv then stops with CSV_ENOMEM, and
 * job_accounts_parse empties the buffer and goes on (field_overflow). */
union wipe_hdr {
	size_t size;
	max_align_t align;
};

static void *wipe_realloc(void *p, size_t n)
{
	union wipe_hdr *h = p != NULL ? (union wipe_hdr *)p - 1 : NULL, *nh;
	size_t size = n;

	if (h != NULL && n <= h->size)
		return p;
	if (n > CSV_BUF_MAX)
		return NULL;
	if (h != NULL && n < h->size * 2)
		size = h->size * 2 > CSV_BUF_MAX ? CSV_BUF_MAX : h->size * 2;
	if (size > SIZE_MAX - sizeof(*nh))
		return NULL;
	nh = malloc(sizeof(*nh) + size);
	if (nh == NULL)
		return NULL;
	nh->size = size;
	if (h != NULL) {
		memcpy(nh + 1, p, h->size);
		explicit_bzero(h, sizeof(*h) + h->size);
		free(h);
	}
	return nh + 1;
}

static void wipe_block(void *p)
{
	union wipe_hdr *h;

	if (p == NULL)
		return;
	h = (union wipe_hdr *)p - 1;
	explicit_bzero(h, sizeof(*h) + h->size);
	free(h);
}

/* Spaces around unquoted fields are data: a password may begin or end
 * with one. */
static int no_space(unsigned char c)
{
	(void)c;
	return 0;
}

static int csv_start(struct csv_parser *csv)
{
	if (csv_init(csv, CSV_STRICT | CSV_STRICT_FINI | CSV_APPEND_NULL | CSV_REPALL_NL) != 0)
		return -1;
	csv_set_space_func(csv, no_space);
	csv_set_realloc_func(csv, wipe_realloc);
	csv_set_free_func(csv, wipe_block);
	return 0;
}

/* ---- accounts: rows ----------------------------------------------------- */

struct field {
	char *s;                /* owned, NUL-terminated; may be a password */
	size_t len;
};

struct acc_parser {
	struct job_accounts *out;
	unsigned opts;          /* JOB_ACCOUNTS_* */
	const char *name;
	struct tr_error *err;
	unsigned line;          /* line being fed to libcsv */
	size_t line_start, line_end;
	unsigned row_line;      /* line the current row started on */
	size_t row_off;         /* offset of the start of that line */
	struct field f[MAXF];
	size_t nf;              /* fields of the row, kept or not */
	bool nul;               /* a field of the row holds a NUL */
	bool overflow;          /* the field being read outgrew libcsv's buffer */
	size_t too_long;        /* column (from 1) of the row's first overlong field, or 0 */
	bool decided;           /* the first non-blank row has been seen */
	enum col cols[MAXF];    /* with a header: what each column is */
	size_t ncols;
	struct dupset dup;
	size_t cap_v, cap_bad;  /* allocated lengths of out->v and out->bad */
	size_t unlisted;        /* bad rows past MAX_LISTED */
	unsigned first_unlisted;
	bool failed;            /* the whole file is unusable; err is set */
};

static void clear_fields(struct acc_parser *p)
{
	size_t i;

	for (i = 0; i < MAXF; i++) {
		if (p->f[i].s != NULL) {
			explicit_bzero(p->f[i].s, p->f[i].len);
			free(p->f[i].s);
		}
		p->f[i].s = NULL;
		p->f[i].len = 0;
	}
	p->nf = 0;
	p->nul = false;
	p->overflow = false;
	p->too_long = 0;
}

static void fatal(struct acc_parser *p, enum tr_err_kind kind, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static void fatal(struct acc_parser *p, enum tr_err_kind kind, const char *fmt, ...)
{
	char msg[512];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	tr_error_set(p->err, kind, "%s: %s", p->name, msg);
	p->failed = true;
}

/* Arrays grow by doubling; *cap is their allocated length. */
static void *grow(void *v, size_t *cap, size_t n, size_t size)
{
	size_t ncap;
	void *nv;

	if (n < *cap)
		return v;
	ncap = *cap ? *cap * 2 : 16;
	if (ncap > SIZE_MAX / size)
		return NULL;
	nv = realloc(v, ncap * size);
	if (nv != NULL)
		*cap = ncap;
	return nv;
}

static int add_problem(struct job_accounts *a, size_t *cap, unsigned line, const char *what)
{
	struct job_problem *nb;
	char *s = strdup(what);

	if (s == NULL)
		return -1;
	nb = grow(a->bad, cap, a->n_bad, sizeof(*nb));
	if (nb == NULL) {
		free(s);
		return -1;
	}
	a->bad = nb;
	a->bad[a->n_bad].line = line;
	a->bad[a->n_bad].what = s;
	a->n_bad++;
	return 0;
}

/* The current row is skipped; the message starts with its line. */
static void bad_row(struct acc_parser *p, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

static void bad_row(struct acc_parser *p, const char *fmt, ...)
{
	char msg[512];
	int n;
	va_list ap;

	/* a file of nothing but bad rows must not cost a message each */
	if (p->out->n_bad >= MAX_LISTED) {
		if (p->unlisted++ == 0)
			p->first_unlisted = p->row_line;
		return;
	}
	n = snprintf(msg, sizeof(msg), "line %u: ", p->row_line);
	va_start(ap, fmt);
	vsnprintf(msg + n, sizeof(msg) - (size_t)n, fmt, ap);
	va_end(ap);
	if (add_problem(p->out, &p->cap_bad, p->row_line, msg) < 0)
		fatal(p, TR_ERR_LOCAL, "out of memory");
}

static bool row_is_blank(const struct acc_parser *p)
{
	size_t i;

	if (p->nf == 0)
		return true;
	if (p->nf > 1 || p->nul)
		return false;
	for (i = 0; i < p->f[0].len; i++)
		if (!is_sp((unsigned char)p->f[0].s[i]))
			return false;
	return true;
}

static bool row_is_header(const struct acc_parser *p)
{
	const struct field *f = &p->f[0];

	return p->nf > 0 && f->s != NULL && col_lookup(f->s, f->len) >= 0 &&
		!job_email_valid(f->s);
}

static void take_header(struct acc_parser *p)
{
	bool seen[COL_N] = { false };
	size_t i;

	for (i = 0; i < p->nf; i++) {
		const struct field *f = &p->f[i];
		int c;

		if (i >= MAXF) {
			/* unreachable: five names, and the first MAXF were all distinct */
			fatal(p, TR_ERR_USAGE, "line %u: too many columns in the header row",
			      p->row_line);
			return;
		}
		c = col_lookup(f->s, f->len);
		if (c < 0) {
			/* column 2 is where a file without a header has its password */
			if (i != 1 && looks_like_name(f->s, f->len))
				fatal(p, TR_ERR_USAGE,
				      "line %u: unknown column \"%s\" in the header row (known: "
				      "email, password, src_user, dst_user, dst_password)",
				      p->row_line, f->s);
			else
				fatal(p, TR_ERR_USAGE,
				      "line %u: column %zu of the header row is not a known column name "
				      "(known: email, password, src_user, dst_user, dst_password)",
				      p->row_line, i + 1);
			return;
		}
		if (seen[c]) {
			fatal(p, TR_ERR_USAGE, "line %u: column %s appears twice in the header row",
			      p->row_line, col_name[c]);
			return;
		}
		seen[c] = true;
		p->cols[i] = (enum col)c;
	}
	if (!seen[COL_PASSWORD] && !(p->opts & JOB_ACCOUNTS_NO_PASSWORD)) {
		fatal(p, TR_ERR_USAGE, "line %u: the header row has no password column",
		      p->row_line);
		return;
	}
	if (!seen[COL_EMAIL]) {
		fatal(p, TR_ERR_USAGE, "line %u: the header row has no email column", p->row_line);
		return;
	}
	p->ncols = p->nf;
	p->out->had_header = true;
}

/* Remove spaces around a field in place: they cannot be part of an
 * address or a login, and are easy to leave around a comma. */
static void trim_field(struct field *f)
{
	size_t a = 0, b = f->len;

	while (a < b && is_sp((unsigned char)f->s[a]))
		a++;
	while (b > a && is_sp((unsigned char)f->s[b - 1]))
		b--;
	memmove(f->s, f->s + a, b - a);
	f->s[b - a] = '\0';
	f->len = b - a;
}

/* Move a field's string out of the row, NULL when empty. */
static char *take(struct field *f)
{
	char *s = f->s;

	if (s == NULL || f->len == 0)
		return NULL;
	f->s = NULL;
	f->len = 0;
	return s;
}

static void expected_fields(struct acc_parser *p)
{
	char list[96] = "";
	size_t i, o = 0;

	if (!p->out->had_header) {
		bad_row(p, "expected 2 fields (email,password), found %zu", p->nf);
		return;
	}
	for (i = 0; i < p->ncols; i++)
		o += (size_t)snprintf(list + o, sizeof(list) - o, "%s%s", i ? "," : "",
				      col_name[p->cols[i]]);
	bad_row(p, "expected %zu fields (%s), found %zu", p->ncols, list, p->nf);
}

static int append_account(struct acc_parser *p, const struct job_account *acc)
{
	struct job_accounts *out = p->out;
	struct job_account *nv = grow(out->v, &p->cap_v, out->n, sizeof(*nv));

	if (nv == NULL)
		return -1;
	out->v = nv;
	out->v[out->n] = *acc;
	if (dup_add(&p->dup, out, out->n) < 0)
		return -1;
	out->n++;
	return 0;
}

static void data_row(struct acc_parser *p)
{
	struct job_accounts *out = p->out;
	struct field *by[COL_N] = { NULL };
	struct job_account acc;
	size_t i, ncols = out->had_header ? p->ncols : 2, first;
	bool no_pw = (p->opts & JOB_ACCOUNTS_NO_PASSWORD) != 0;
	char shown[128];

	if (p->nul) {
		bad_row(p, "NUL byte");
		return;
	}
	/* without passwords, a file without a header may be a list of addresses */
	if (no_pw && !out->had_header && p->nf == 1)
		ncols = 1;
	if (p->nf != ncols) {
		expected_fields(p);
		return;
	}
	for (i = 0; i < ncols; i++)
		by[out->had_header ? p->cols[i] : (enum col)i] = &p->f[i];
	if (by[COL_PASSWORD] == NULL) {
		static char none[1];
		static struct field empty = { none, 0 };

		/* read only: an empty field, as an empty password column is */
		by[COL_PASSWORD] = &empty;
	}

	/* Without a header, position is all there is to tell an address from
	 * a password: a row whose password field is itself an address has
	 * its columns swapped, and taking it would make its password the
	 * account's name in every log and report. */
	if (!out->had_header && by[COL_PASSWORD] != NULL && job_email_valid(by[COL_PASSWORD]->s)) {
		bad_row(p, "field 2 is an email address: are the columns swapped? (a header row "
			"\"email,password\" says which is which; nothing of this row is shown)");
		return;
	}
	trim_field(by[COL_EMAIL]);
	if (by[COL_EMAIL]->len == 0) {
		bad_row(p, "empty email address");
		return;
	}
	if (!job_email_valid(by[COL_EMAIL]->s)) {
		/* Shown only when a header row says the column holds addresses:
		 * without one, a file whose columns are swapped has its
		 * passwords here, and a password may well contain an '@'. */
		if (strchr(by[COL_EMAIL]->s, '@') != NULL && out->had_header) {
			show(shown, sizeof(shown), by[COL_EMAIL]->s);
			bad_row(p, "invalid email address \"%s\"", shown);
		} else if (strchr(by[COL_EMAIL]->s, '@') != NULL) {
			bad_row(p, "invalid email address in field 1 (not shown: without a header "
				"row it may be a password)");
		} else if (by[COL_EMAIL] == &p->f[0]) {
			bad_row(p, "first field is not an email address");
		} else {
			bad_row(p, "the email column is not an email address");
		}
		return;
	}
	if (!no_pw && by[COL_PASSWORD]->len == 0) {
		bad_row(p, "empty password for %s", by[COL_EMAIL]->s);
		return;
	}
	first = dup_find(&p->dup, out, by[COL_EMAIL]->s);
	if (first != SIZE_MAX) {
		bad_row(p, "duplicate account %s (first on line %u)", by[COL_EMAIL]->s,
			out->v[first].line);
		return;
	}
	if (by[COL_SRC_USER] != NULL)
		trim_field(by[COL_SRC_USER]);
	if (by[COL_DST_USER] != NULL)
		trim_field(by[COL_DST_USER]);

	memset(&acc, 0, sizeof(acc));
	acc.line = p->row_line;
	acc.email = take(by[COL_EMAIL]);
	if (by[COL_PASSWORD] != NULL)
		acc.password = take(by[COL_PASSWORD]);
	if (by[COL_SRC_USER] != NULL)
		acc.src_user = take(by[COL_SRC_USER]);
	if (by[COL_DST_USER] != NULL)
		acc.dst_user = take(by[COL_DST_USER]);
	if (by[COL_DST_PASSWORD] != NULL)
		acc.dst_password = take(by[COL_DST_PASSWORD]);

	if (append_account(p, &acc) < 0) {
		free(acc.email);
		wipe_free(acc.password);
		free(acc.src_user);
		free(acc.dst_user);
		wipe_free(acc.dst_password);
		fatal(p, TR_ERR_LOCAL, "out of memory");
	}
}

static void cb_field(void *data, size_t len, void *ctx)
{
	struct acc_parser *p = ctx;
	struct field *f;

	if (p->failed)
		return;
	if (data == NULL)
		len = 0;
	if (p->overflow || len > JOB_MAX_FIELD) {
		/* kept empty: nothing of it may reach a message */
		if (p->too_long == 0)
			p->too_long = p->nf + 1;
		p->overflow = false;
		len = 0;
	}
	if (len > 0 && memchr(data, '\0', len) != NULL)
		p->nul = true;
	if (p->nf < MAXF) {
		f = &p->f[p->nf];
		f->s = malloc(len + 1);
		if (f->s == NULL) {
			fatal(p, TR_ERR_LOCAL, "out of memory");
			return;
		}
		if (len > 0)
			memcpy(f->s, data, len);
		f->s[len] = '\0';
		f->len = len;
	}
	p->nf++;
}

static void broken_row(struct acc_parser *p, const char *what, bool at_line);

static void handle_row(struct acc_parser *p)
{
	if (p->too_long > 0) {
		char what[64];

		snprintf(what, sizeof(what), "field %zu is longer than %d bytes", p->too_long,
			 JOB_MAX_FIELD);
		broken_row(p, what, false);
		return;
	}
	if (row_is_blank(p))
		return;
	if (!p->decided) {
		p->decided = true;
		if (row_is_header(p)) {
			take_header(p);
			return;
		}
	}
	data_row(p);
}

static void cb_row(int c, void *ctx)
{
	struct acc_parser *p = ctx;

	if (!p->failed)
		handle_row(p);
	clear_fields(p);
	if (c == '\n') {
		p->row_line = p->line + 1;
		p->row_off = p->line_end;
	} else {
		p->row_line = p->line;
		p->row_off = p->line_start;
	}
}

/* A row libcsv gave up on.  Its complete fields are still there: if it
 * would have been the header, nothing after it can be read right. */
static void broken_row(struct acc_parser *p, const char *what, bool at_line)
{
	if (!p->decided) {
		p->decided = true;
		if (row_is_header(p)) {
			fatal(p, TR_ERR_USAGE, "line %u: %s in the header row", p->row_line, what);
			return;
		}
	}
	if (at_line && p->line != p->row_line)
		bad_row(p, "%s (on line %u)", what, p->line);
	else
		bad_row(p, "%s", what);
}

/* Restart libcsv at offset pos, the start of line `line`. */
static int restart(struct acc_parser *p, struct csv_parser *csv, size_t pos, unsigned line)
{
	clear_fields(p);
	csv_free(csv);
	p->line = line;
	p->row_line = line;
	p->row_off = pos;
	if (csv_start(csv) < 0) {
		fatal(p, TR_ERR_LOCAL, "cannot start the CSV parser");
		return -1;
	}
	return 0;
}

/* libcsv stopped because the field it reads reached CSV_BUF_MAX: keep
 * only its last byte (libcsv may still take it back as a closing quote)
 * and let the parser go on through the rest of the field, so that the
 * quoting stays in step and memory stays bounded.  False for a genuine
 * out-of-memory. */
static bool field_overflow(struct acc_parser *p, struct csv_parser *csv)
{
	if (csv_error(csv) != CSV_ENOMEM || csv_get_buffer_size(csv) < CSV_BUF_MAX ||
	    csv->entry_pos < 1)
		return false;
	csv->entry_buf[0] = csv->entry_buf[csv->entry_pos - 1];
	explicit_bzero(csv->entry_buf + 1, csv->entry_pos - 1);
	csv->entry_pos = 1;
	csv->status = CSV_SUCCESS;
	p->overflow = true;
	return true;
}

static const char bad_quote_msg[] =
	"bad quoting: a '\"' inside an unquoted field, or text after a closing '\"' "
	"(quote the whole field, with no spaces around it, and write a '\"' in it as '\"\"')";

int job_accounts_parse(const char *name, const char *text, size_t len,
		       struct job_accounts *out, struct tr_error *err)
{
	return job_accounts_parse_opt(name, text, len, 0, out, err);
}

int job_accounts_parse_opt(const char *name, const char *text, size_t len, unsigned opts,
			   struct job_accounts *out, struct tr_error *err)
{
	struct acc_parser p;
	struct csv_parser csv;
	size_t pos = 0;

	memset(out, 0, sizeof(*out));
	memset(&p, 0, sizeof(p));
	p.out = out;
	p.opts = opts;
	p.name = name != NULL ? name : "accounts.csv";
	p.err = err;
	if (text == NULL)
		len = 0;
	if (len >= 3 && memcmp(text, "\xef\xbb\xbf", 3) == 0)
		pos = 3;
	if (csv_start(&csv) < 0) {
		tr_error_set(err, TR_ERR_LOCAL, "%s: cannot start the CSV parser", p.name);
		return -1;
	}
	p.line = p.row_line = 1;
	p.row_off = pos;

	while (!p.failed) {
		if (pos < len) {
			const char *eol = memchr(text + pos, '\n', len - pos);
			size_t end = eol != NULL ? (size_t)(eol - text) + 1 : len, n;

			size_t at = pos;

			p.line_start = pos;
			p.line_end = end;
			for (;;) {
				n = csv_parse(&csv, text + at, end - at, cb_field, cb_row, &p);
				if (p.failed || n == end - at || !field_overflow(&p, &csv))
					break;
				at += n;
			}
			if (p.failed)
				break;
			if (n < end - at) {
				if (csv_error(&csv) != CSV_EPARSE) {
					fatal(&p, TR_ERR_LOCAL, "out of memory");
					break;
				}
				broken_row(&p, bad_quote_msg, true);
				if (p.failed || restart(&p, &csv, end, p.line + 1) < 0)
					break;
			} else {
				p.line++;
			}
			pos = end;
			continue;
		}
		if (csv_fini(&csv, cb_field, cb_row, &p) == 0 || p.failed)
			break;
		/* A quote left open: the row runs to the end of the text. */
		broken_row(&p, "unterminated quoted field (a '\"' with no closing '\"')", false);
		if (p.failed)
			break;
		{
			const char *eol = memchr(text + p.row_off, '\n', len - p.row_off);

			if (eol == NULL)
				break;
			pos = (size_t)(eol - text) + 1;
			if (restart(&p, &csv, pos, p.row_line + 1) < 0)
				break;
		}
	}
	csv_free(&csv);
	clear_fields(&p);
	free(p.dup.slot);
	if (!p.failed && p.unlisted > 0) {
		char msg[128];

		snprintf(msg, sizeof(msg), "line %u: %zu more bad rows from here on are not listed",
			 p.first_unlisted, p.unlisted);
		if (add_problem(out, &p.cap_bad, p.first_unlisted, msg) < 0)
			fatal(&p, TR_ERR_LOCAL, "out of memory");
	}
	if (p.failed) {
		job_accounts_free(out);
		return -1;
	}
	return 0;
}

int job_accounts_load(const char *path, struct job_accounts *out, struct tr_error *err)
{
	return job_accounts_load_opt(path, 0, out, err);
}

int job_accounts_load_opt(const char *path, unsigned opts, struct job_accounts *out,
			  struct tr_error *err)
{
	char *buf, msg[512];
	size_t len, cap;
	mode_t mode;
	int r;

	memset(out, 0, sizeof(*out));
	if (read_file(path, JOB_MAX_FILE, &buf, &len, &mode, err) < 0)
		return -1;
	r = job_accounts_parse_opt(path, buf, len, opts, out, err);
	explicit_bzero(buf, len);
	free(buf);
	if (r < 0 || (mode & 044) == 0)
		return r;
	snprintf(msg, sizeof(msg),
		 "%s is readable by other users: it holds passwords; chmod 600 it", path);
	cap = out->n_bad;
	if (add_problem(out, &cap, 0, msg) < 0) {
		job_accounts_free(out);
		tr_error_set(err, TR_ERR_LOCAL, "%s: out of memory", path);
		return -1;
	}
	/* a problem with the whole file goes before the rows' */
	if (out->n_bad > 1) {
		struct job_problem w = out->bad[out->n_bad - 1];

		memmove(out->bad + 1, out->bad, (out->n_bad - 1) * sizeof(*out->bad));
		out->bad[0] = w;
	}
	return 0;
}

void job_accounts_free(struct job_accounts *a)
{
	size_t i;

	if (a == NULL)
		return;
	for (i = 0; i < a->n; i++) {
		free(a->v[i].email);
		wipe_free(a->v[i].password);
		free(a->v[i].src_user);
		free(a->v[i].dst_user);
		wipe_free(a->v[i].dst_password);
	}
	free(a->v);
	for (i = 0; i < a->n_bad; i++)
		free(a->bad[i].what);
	free(a->bad);
	memset(a, 0, sizeof(*a));
}

/* ---- job file ----------------------------------------------------------- */

static int add_setting(struct job_file *jf, size_t *cap, const char *key, size_t klen,
		       char *value, unsigned line)
{
	struct job_setting *nv;
	char *k = strndup(key, klen);

	if (k == NULL)
		return -1;
	nv = grow(jf->v, cap, jf->n, sizeof(*nv));
	if (nv == NULL) {
		free(k);
		return -1;
	}
	jf->v = nv;
	jf->v[jf->n].key = k;
	jf->v[jf->n].value = value;
	jf->v[jf->n].line = line;
	jf->n++;
	return 0;
}

/* The value of a line, from after '=' to its end, spaces around it
 * removed.  A value in double quotes keeps its spaces and writes a quote
 * as "" (as in the accounts CSV).  Returns NULL with *why set on a syntax
 * error, NULL with *why NULL when out of memory. */
static char *parse_value(const char *s, size_t len, const char **why)
{
	char *v;
	size_t i, o = 0;

	*why = NULL;
	while (len > 0 && is_sp((unsigned char)*s)) {
		s++;
		len--;
	}
	while (len > 0 && is_sp((unsigned char)s[len - 1]))
		len--;
	if (len == 0 || s[0] != '"')
		return strndup(s, len);
	v = malloc(len);
	if (v == NULL)
		return NULL;
	for (i = 1; i < len; i++) {
		if (s[i] != '"') {
			v[o++] = s[i];
			continue;
		}
		if (i + 1 < len && s[i + 1] == '"') {
			v[o++] = '"';
			i++;
			continue;
		}
		if (i + 1 != len) {
			*why = "text after the closing quote (write a quote inside quotes as \"\")";
			free(v);
			return NULL;
		}
		v[o] = '\0';
		return v;
	}
	*why = "unterminated quote";
	free(v);
	return NULL;
}

/* One line without its '\n': 0 parsed or nothing there, -1 syntax error
 * (err set) or out of memory. */
static int parse_line(struct job_file *jf, size_t *cap, const char *name, unsigned line,
		      const char *s, size_t len, struct tr_error *err)
{
	const char *eq, *key, *why;
	size_t klen, i;
	char *value;

	if (memchr(s, '\0', len) != NULL) {
		tr_error_set(err, TR_ERR_USAGE, "%s:%u: NUL byte", name, line);
		return -1;
	}
	if (len > JOB_MAX_LINE) {
		tr_error_set(err, TR_ERR_USAGE, "%s:%u: line longer than %d bytes", name, line,
			     JOB_MAX_LINE);
		return -1;
	}
	while (len > 0 && (is_sp((unsigned char)s[len - 1]) || s[len - 1] == '\r'))
		len--;
	while (len > 0 && is_sp((unsigned char)*s)) {
		s++;
		len--;
	}
	if (len == 0 || s[0] == '#')
		return 0;
	/* a stray CR or escape would end up in a path or a folder name */
	for (i = 0; i < len; i++) {
		unsigned char c = (unsigned char)s[i];

		if ((c < 0x20 && c != '\t') || c == 0x7f) {
			tr_error_set(err, TR_ERR_USAGE, "%s:%u: control character (0x%02x)", name,
				     line, c);
			return -1;
		}
	}
	eq = memchr(s, '=', len);
	if (eq == NULL) {
		tr_error_set(err, TR_ERR_USAGE, "%s:%u: expected \"key = value\"", name, line);
		return -1;
	}
	key = s;
	klen = (size_t)(eq - s);
	while (klen > 0 && is_sp((unsigned char)key[klen - 1]))
		klen--;
	if (klen >= 2 && key[0] == '-' && key[1] == '-') {
		key += 2;
		klen -= 2;
	}
	if (klen == 0) {
		tr_error_set(err, TR_ERR_USAGE, "%s:%u: empty key before '='", name, line);
		return -1;
	}
	value = parse_value(eq + 1, len - (size_t)(eq + 1 - s), &why);
	if (value == NULL) {
		if (why != NULL)
			tr_error_set(err, TR_ERR_USAGE, "%s:%u: %s", name, line, why);
		else
			tr_error_set(err, TR_ERR_LOCAL, "%s: out of memory", name);
		return -1;
	}
	if (add_setting(jf, cap, key, klen, value, line) < 0) {
		free(value);
		tr_error_set(err, TR_ERR_LOCAL, "%s: out of memory", name);
		return -1;
	}
	return 0;
}

int job_file_parse(const char *name, const char *text, size_t len, struct job_file *out,
		   struct tr_error *err)
{
	size_t pos = 0, cap = 0;
	unsigned line = 1;

	memset(out, 0, sizeof(*out));
	if (name == NULL)
		name = "job file";
	if (text == NULL)
		len = 0;
	out->path = strdup(name);
	if (out->path == NULL) {
		tr_error_set(err, TR_ERR_LOCAL, "%s: out of memory", name);
		return -1;
	}
	if (len >= 3 && memcmp(text, "\xef\xbb\xbf", 3) == 0)
		pos = 3;
	for (; pos < len; line++) {
		const char *eol = memchr(text + pos, '\n', len - pos);
		size_t end = eol != NULL ? (size_t)(eol - text) : len;

		if (parse_line(out, &cap, name, line, text + pos, end - pos, err) < 0) {
			job_file_free(out);
			return -1;
		}
		pos = end + 1;
	}
	return 0;
}

int job_file_load(const char *path, struct job_file *out, struct tr_error *err)
{
	char *buf;
	size_t len;
	int r;

	memset(out, 0, sizeof(*out));
	if (read_file(path, JOB_MAX_JOB_FILE, &buf, &len, NULL, err) < 0)
		return -1;
	r = job_file_parse(path, buf, len, out, err);
	free(buf);
	return r;
}

int job_file_read_fd(int fd, const char *name, struct job_file *out, struct tr_error *err)
{
	char *buf;
	size_t len;
	int r;

	memset(out, 0, sizeof(*out));
	if (read_fd(fd, name, JOB_MAX_JOB_FILE, &buf, &len, NULL, err) < 0)
		return -1;
	r = job_file_parse(name, buf, len, out, err);
	free(buf);
	return r;
}

void job_file_free(struct job_file *f)
{
	size_t i;

	if (f == NULL)
		return;
	for (i = 0; i < f->n; i++) {
		free(f->v[i].key);
		free(f->v[i].value);
	}
	free(f->v);
	free(f->path);
	memset(f, 0, sizeof(*f));
}

char *job_file_dir(const char *path)
{
	char *copy, *dir;

	if (path == NULL || *path == '\0')
		return strdup(".");
	copy = strdup(path);
	if (copy == NULL)
		return NULL;
	dir = strdup(dirname(copy));
	free(copy);
	return dir;
}
