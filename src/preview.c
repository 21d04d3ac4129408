/* preview: see include/preview.h */
#include "config.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "folder.h"
#include "preview.h"
#include "report.h"
#include "text.h"

static int add_size(const struct store_msg *m, void *ctx)
{
	uint64_t *bytes = ctx;

	*bytes += m->size;
	return 0;
}

/* The sizes of a source folder's messages: EXAMINE (read only, no \Seen
 * touched) and a FETCH of RFC822.SIZE. */
static int source_bytes(struct store *src, const char *raw, uint64_t *bytes,
			struct tr_error *err)
{
	struct store_set all = store_set_from(1);
	struct store_status st;

	*bytes = 0;
	if (store_open_folder(src, raw, true, &st, err) < 0)
		return -1;
	if (st.messages == 0)
		return 0;
	return store_fetch_meta(src, &all, STORE_FETCH_META, 0, add_size, bytes, err);
}

static const char *name_of(const struct folder *f)
{
	return f->name != NULL ? f->name : f->raw;
}

/* The row of a planned folder. */
static int planned_row(const struct folder_plan_entry *pe, const struct folder *sf,
		       struct preview_folder *row)
{
	row->src_name = strdup(name_of(sf));
	row->dst_name = strdup(pe->dst_name);
	if (row->src_name == NULL || row->dst_name == NULL)
		return -1;
	row->dst_exists = pe->dst_exists;
	if (pe->why == NULL)
		row->why = pe->renamed ? "renamed" : "same";
	else
		row->why = pe->why;
	if (strcmp(row->why, "special-use") == 0)
		row->role = folder_role_name(pe->role);
	return 0;
}

/* INBOX first, then by name: the order users read a folder list in. */
static int cmp_rows(const void *a, const void *b)
{
	const struct preview_folder *x = a, *y = b;
	bool xi = strcmp(x->src_name, "INBOX") == 0, yi = strcmp(y->src_name, "INBOX") == 0;

	if (xi != yi)
		return xi ? -1 : 1;
	return strcmp(x->src_name, y->src_name);
}

int preview_account(const struct run_env *env, struct store *src, struct store *dst,
		    struct preview *p, struct tr_error *err)
{
	struct folder_list sl, dl;
	struct folder_plan plan;
	const char **names = NULL;
	struct store_status *st = NULL;
	size_t *entry_of = NULL, *row_of = NULL, i, n = 0;
	int r = -1;

	memset(p, 0, sizeof(*p));
	memset(&sl, 0, sizeof(sl));
	memset(&dl, 0, sizeof(dl));
	memset(&plan, 0, sizeof(plan));
	if (store_list(src, &sl, err) < 0 || store_list(dst, &dl, err) < 0 ||
	    folder_plan_make(&sl, &dl, &env->map, &plan, err) < 0)
		goto out;
	/* Where a run put a folder whose name the destination refused. */
	for (i = 0; i < plan.n; i++)
		if (!plan.v[i].dst_exists &&
		    (plan.v[i].why == NULL || strcmp(plan.v[i].why, "map") != 0) &&
		    folder_plan_find_renamed(&plan, &dl, i, err) < 0)
			goto out;
	p->v = calloc(sl.n + 1, sizeof(*p->v));
	entry_of = calloc(sl.n + 1, sizeof(*entry_of));
	row_of = calloc(sl.n + 1, sizeof(*row_of));
	names = calloc(sl.n + 1, sizeof(*names));
	st = calloc(sl.n + 1, sizeof(*st));
	if (p->v == NULL || entry_of == NULL || row_of == NULL || names == NULL || st == NULL)
		goto nomem;
	for (i = 0; i < sl.n; i++)
		entry_of[i] = SIZE_MAX;
	for (i = 0; i < plan.n; i++)
		entry_of[plan.v[i].src_index] = i;
	/* One row per selectable source folder, in the source's order. */
	for (i = 0; i < sl.n; i++) {
		const struct folder *sf = &sl.v[i];
		struct preview_folder *row = &p->v[p->n];

		if (sf->noselect)
			continue;
		row_of[i] = p->n++;
		names[n++] = sf->raw;
		if (entry_of[i] != SIZE_MAX) {
			if (planned_row(&plan.v[entry_of[i]], sf, row) < 0)
				goto nomem;
			p->folders++;
		} else {
			row->src_name = strdup(name_of(sf));
			if (row->src_name == NULL)
				goto nomem;
			row->why = "excluded";
			p->excluded++;
		}
	}
	/* The source's counts in one round trip, then the sizes of the folders
	 * to copy, one EXAMINE each. */
	if (store_status_many(src, names, n, st, err) < 0)
		goto out;
	for (i = 0, n = 0; i < sl.n; i++) {
		const struct folder *sf = &sl.v[i];
		struct preview_folder *row;

		if (sf->noselect)
			continue;
		row = &p->v[n++];
		row->have_messages = st[n - 1].uidvalidity != 0;
		row->messages = st[n - 1].messages;
		if (row->dst_name == NULL)
			continue;
		if (source_bytes(src, sf->raw, &row->bytes, err) < 0)
			goto out;
		row->have_bytes = true;
		p->messages += row->messages;
		p->bytes += row->bytes;
	}
	/* What the destination's folders hold already, in one round trip. */
	for (i = 0, n = 0; i < plan.n; i++)
		if (plan.v[i].dst_exists)
			names[n++] = plan.v[i].dst_raw;
	if (n > 0 && store_status_many(dst, names, n, st, err) < 0)
		goto out;
	for (i = 0, n = 0; i < plan.n; i++) {
		size_t row = row_of[plan.v[i].src_index];

		if (!plan.v[i].dst_exists)
			continue;
		p->v[row].dst_messages = st[n].uidvalidity != 0 ? st[n].messages : 0;
		p->dst_messages += p->v[row].dst_messages;
		n++;
	}
	if (p->n > 1)
		qsort(p->v, p->n, sizeof(*p->v), cmp_rows);
	r = 0;
	goto out;
nomem:
	tr_error_set(err, TR_ERR_LOCAL, "out of memory");
out:
	free(names);
	free(st);
	free(entry_of);
	free(row_of);
	folder_plan_free(&plan);
	folder_list_free(&sl);
	folder_list_free(&dl);
	return r;
}

void preview_free(struct preview *p)
{
	size_t i;

	for (i = 0; i < p->n; i++) {
		free(p->v[i].src_name);
		free(p->v[i].dst_name);
	}
	free(p->v);
	memset(p, 0, sizeof(*p));
}

/* What a row's why says to a reader. */
static void why_text(const struct preview_folder *row, char *buf, size_t len)
{
	static const struct {
		const char *why, *text;
	} words[] = {
		{ "same", "same name" },
		{ "map", "--map" },
		{ "refused", "name refused (renamed)" },
		{ "delimiter", "separator in the name" },
		{ "clash", "name taken" },
		{ "undecodable", "undecodable name" },
		{ "renamed", "namespace" },
		{ "excluded", "excluded" },
	};
	size_t i;

	if (strcmp(row->why, "special-use") == 0) {
		snprintf(buf, len, "special-use \\%s", row->role != NULL ? row->role : "?");
		return;
	}
	for (i = 0; i < sizeof(words) / sizeof(words[0]); i++)
		if (strcmp(row->why, words[i].why) == 0) {
			snprintf(buf, len, "%s", words[i].text);
			return;
		}
	snprintf(buf, len, "%s", row->why);
}

/* East Asian wide characters take two columns of a terminal (the main
 * blocks of Unicode's EastAsianWidth W and F). */
static bool wide(unsigned long c)
{
	return (c >= 0x1100 && c <= 0x115F) || (c >= 0x2E80 && c <= 0xA4CF && c != 0x303F) ||
	       (c >= 0xAC00 && c <= 0xD7A3) || (c >= 0xF900 && c <= 0xFAFF) ||
	       (c >= 0xFE30 && c <= 0xFE4F) || (c >= 0xFF00 && c <= 0xFF60) ||
	       (c >= 0xFFE0 && c <= 0xFFE6) || (c >= 0x1F300 && c <= 0x1F64F) ||
	       (c >= 0x20000 && c <= 0x3FFFD);
}

/* Terminal columns of UTF-8 text (well-formed: text_clean_str's). */
static size_t width(const char *s)
{
	const unsigned char *p = (const unsigned char *)s;
	size_t w = 0;

	while (*p != '\0') {
		unsigned long c = *p;
		int more = c >= 0xF0 ? 3 : c >= 0xE0 ? 2 : c >= 0xC0 ? 1 : 0;

		if (more > 0)
			c &= 0x3F >> more;
		for (p++; more > 0 && (*p & 0xC0) == 0x80; more--, p++)
			c = (c << 6) | (*p & 0x3F);
		w += wide(c) ? 2 : 1;
	}
	return w;
}

/* s padded to w characters, and at least two spaces after it. */
static void column(FILE *f, const char *s, size_t w)
{
	size_t have = width(s);

	fputs(s, f);
	if (have + 2 > w)
		w = have + 2;
	for (; have < w; have++)
		fputc(' ', f);
}

/* A column is as wide as its longest name up to this; a longer name
 * pushes its own line's next columns along. */
#define COLUMN_MAX 40

void preview_print(FILE *f, const char *label, const struct preview *p)
{
	char t[2048], b1[32], b2[32];
	size_t i, ws = strlen("source"), wd = strlen("destination"), ww = strlen("why");
	uint32_t fresh = 0;

	for (i = 0; i < p->n; i++) {
		const struct preview_folder *row = &p->v[i];
		size_t w;

		text_clean_str(t, sizeof(t), row->src_name, NULL);
		if ((w = width(t)) > ws)
			ws = w;
		if (row->dst_name != NULL) {
			text_clean_str(t, sizeof(t), row->dst_name, NULL);
			if ((w = width(t)) > wd)
				wd = w;
			if (!row->dst_exists)
				fresh++;
		}
		why_text(row, t, sizeof(t));
		if ((w = width(t)) > ww)
			ww = w;
	}
	if (ws > COLUMN_MAX)
		ws = COLUMN_MAX;
	if (wd > COLUMN_MAX)
		wd = COLUMN_MAX;
	fprintf(f, "%s: %u folder(s) to copy (%u new on the destination), %u excluded; %" PRIu64
		" message(s), %s on the source, %" PRIu64 " in those folders of the destination\n",
		text_clean_str(t, sizeof(t), label, NULL), p->folders, fresh, p->excluded,
		p->messages, report_bytes(p->bytes, b1, sizeof(b1)), p->dst_messages);
	fputs("  ", f);
	column(f, "source", ws + 2);
	column(f, "destination", wd + 2);
	column(f, "why", ww + 2);
	fprintf(f, "%9s %10s %15s\n", "messages", "bytes", "on destination");
	for (i = 0; i < p->n; i++) {
		const struct preview_folder *row = &p->v[i];
		char msgs[16] = "?", dm[16] = "-";

		fputs("  ", f);
		column(f, text_clean_str(t, sizeof(t), row->src_name, NULL), ws + 2);
		column(f, row->dst_name != NULL ? text_clean_str(t, sizeof(t), row->dst_name, NULL)
			  : "-", wd + 2);
		why_text(row, t, sizeof(t));
		column(f, t, ww + 2);
		if (row->have_messages)
			snprintf(msgs, sizeof(msgs), "%u", row->messages);
		if (row->dst_name != NULL && row->dst_exists)
			snprintf(dm, sizeof(dm), "%u", row->dst_messages);
		else if (row->dst_name != NULL)
			snprintf(dm, sizeof(dm), "new");
		fprintf(f, "%9s %10s %15s\n", msgs,
			row->have_bytes ? report_bytes(row->bytes, b2, sizeof(b2)) : "-", dm);
	}
}

json_t *preview_json(const struct preview *p)
{
	json_t *arr = json_array();
	bool ok = arr != NULL;
	size_t i;

	for (i = 0; i < p->n && ok; i++) {
		const struct preview_folder *row = &p->v[i];
		json_t *o = json_object();

		report_json_set(o, "source", report_json_text(row->src_name), &ok);
		report_json_set(o, "destination", row->dst_name != NULL ?
				report_json_text(row->dst_name) : json_null(), &ok);
		report_json_set(o, "why", json_string(row->why), &ok);
		report_json_set(o, "role", row->role != NULL ? json_string(row->role) : json_null(),
				&ok);
		report_json_set(o, "destination_exists", json_boolean(row->dst_exists), &ok);
		report_json_set(o, "messages", row->have_messages ?
				json_integer(row->messages) : json_null(), &ok);
		report_json_set(o, "bytes", row->have_bytes ?
				json_integer((json_int_t)row->bytes) : json_null(), &ok);
		report_json_set(o, "destination_messages", json_integer(row->dst_messages), &ok);
		report_json_append(arr, o, &ok);
	}
	if (!ok) {
		json_decref(arr);
		return NULL;
	}
	return arr;
}
