/* libFuzzer target for folder names: the strict modified UTF-7 codec and the
 * folder mapping (src/mutf7.c, src/folder.c).  Built and run by
 * tests/fuzz/run.sh, not by make.
 *
 * Input: lines.  The first byte of the input picks the source and
 * destination layouts (delimiters, prefixes, roles); every following line
 * is a folder name on the wire, a line starting with '>' a destination
 * folder, one starting with '=' a --map rule "from=to".  Besides crashes
 * and leaks it checks the codec's promises (decode(encode(x)) == x, a
 * decoded name re-encodes to itself) and the plan's (every selectable
 * source folder that passes the filter is planned once, no two planned
 * folders share a destination name unless --map says so), and then, as
 * if the destination refused every name, the legal-name rule's: each level
 * is a fixed point of itself and a variant of the name, and a renamed
 * folder never takes another folder's name. */
#include "config.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "folder.h"
#include "mutf7.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check_codec(const char *s)
{
	char *dec = mutf7_decode(s), *enc;

	if (dec != NULL) {
		/* a valid wire name is canonical: it comes back unchanged */
		enc = mutf7_encode(dec);
		if (enc == NULL || strcmp(enc, s) != 0)
			abort();
		free(enc);
		free(dec);
	}
	enc = mutf7_encode(s);
	if (enc != NULL) {
		dec = mutf7_decode(enc);
		if (dec == NULL || strcmp(dec, s) != 0)
			abort();
		free(dec);
		free(enc);
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const char delims[] = { '/', '.', ':', 0 };
	struct folder_list src, dst;
	struct folder_map_rule rules[8];
	char *rule_buf[8];
	size_t n_rules = 0, i, j;
	struct folder_map_opts opts;
	struct folder_plan plan;
	struct tr_error err;
	char *text, *line, *save = NULL;
	uint8_t sel;

	if (size == 0 || size > 65536)
		return 0;
	sel = data[0];
	text = malloc(size);
	if (text == NULL)
		return 0;
	memcpy(text, data + 1, size - 1);
	text[size - 1] = '\0';

	folder_list_init(&src);
	folder_list_init(&dst);
	folder_list_set_namespace(&src, (sel & 1) ? "INBOX." : "", delims[(sel >> 1) & 3]);
	folder_list_set_namespace(&dst, (sel & 8) ? "INBOX." : "", delims[(sel >> 4) & 3]);
	for (line = strtok_r(text, "\n", &save); line != NULL; line = strtok_r(NULL, "\n", &save)) {
		check_codec(line);
		if (line[0] == '>') {
			folder_list_add(&dst, line + 1, dst.delim,
					folder_role_from_attr(strlen(line) > 2 ? line + 2 : ""),
					(sel & 0x40) != 0);
		} else if (line[0] == '=' && n_rules < 8) {
			char *eq = strchr(line + 1, '=');

			if (eq == NULL)
				continue;
			rule_buf[n_rules] = strdup(line + 1);
			if (rule_buf[n_rules] == NULL)
				continue;
			rule_buf[n_rules][eq - line - 1] = '\0';
			rules[n_rules].from = rule_buf[n_rules];
			rules[n_rules].to = rule_buf[n_rules] + (eq - line);
			n_rules++;
		} else {
			folder_list_add(&src, line, src.delim, folder_role_from_name(line),
					(sel & 0x80) != 0 && line[0] == 'N');
			if (line[0] == 'S')
				folder_list_subscribe(&src, line);
		}
	}
	memset(&opts, 0, sizeof(opts));
	opts.keep_names = (sel & 0x20) != 0;
	opts.rules = rules;
	opts.n_rules = n_rules;
	if (folder_plan_make(&src, &dst, &opts, &plan, &err) == 0) {
		for (i = 0; i < plan.n; i++) {
			if (plan.v[i].src_index >= src.n || plan.v[i].dst_raw == NULL ||
			    plan.v[i].dst_name == NULL)
				abort();
			for (j = 0; j < i; j++) {
				if (plan.v[j].src_index == plan.v[i].src_index)
					abort();
				/* a clash is allowed only when --map merges on purpose */
				if (n_rules == 0 && strcmp(plan.v[j].dst_raw, plan.v[i].dst_raw) == 0 &&
				    strcasecmp(plan.v[i].dst_raw, "INBOX") != 0)
					abort();
			}
		}
		for (i = 0; i < plan.n; i++) {
			for (int level = 1; level <= FOLDER_LEGAL_LEVELS; level++) {
				char bad = (char)(0x21 + (sel % 94));
				char *before = strdup(plan.v[i].dst_name), *once, *twice;
				int r = folder_plan_legalize(&plan, &dst, i, level, bad, &err);

				if (before == NULL)
					break;
				once = folder_legal_name(before, level, bad);
				twice = once != NULL ? folder_legal_name(once, level, bad) : NULL;
				if (once != NULL && (twice == NULL || strcmp(once, twice) != 0 ||
						     !folder_legal_variant(before, once)))
					abort();
				free(once);
				free(twice);
				free(before);
				if (r != 1)
					continue;
				for (j = 0; j < plan.n; j++)
					if (j != i && strcmp(plan.v[j].dst_raw, plan.v[i].dst_raw) == 0)
						abort();
			}
		}
		folder_plan_free(&plan);
	}
	for (i = 0; i < src.n; i++)
		free(folder_name_from_v1(src.v[i].raw));
	for (i = 0; i < n_rules; i++)
		free(rule_buf[i]);
	folder_list_free(&src);
	folder_list_free(&dst);
	free(text);
	return 0;
}
