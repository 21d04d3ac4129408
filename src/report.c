/* report: see include/report.h */
#include "config.h"

#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "report.h"

const char *report_bytes(uint64_t bytes, char *buf, size_t len)
{
	static const char *const units[] = { "B", "kB", "MB", "GB", "TB" };
	double v = (double)bytes;
	size_t u = 0;

	while (v >= 1000 && u + 1 < sizeof(units) / sizeof(units[0])) {
		v /= 1000;
		u++;
	}
	if (u == 0)
		snprintf(buf, len, "%" PRIu64 " B", bytes);
	else
		snprintf(buf, len, "%.1f %s", v, units[u]);
	return buf;
}

void report_summary(FILE *f, const char *label, const struct account_result *r)
{
	char b1[32], b2[32];
	double secs = r->seconds > 0.001 ? r->seconds : 0.001;
	size_t i, renamed = 0;

	fprintf(f, "%s: %s\n", label, account_status_name(r->status));
	if (r->status == ACCOUNT_FAILED)
		fprintf(f, "  error: %s\n", r->err.msg);
	fprintf(f, "  folders:  %zu (%u failed)\n", r->n_folders, r->folders_failed);
	fprintf(f, "  messages: %u copied, %u already present, %u failed", r->total.copied,
		r->total.present, r->total.failed);
	if (r->total.flags_updated > 0)
		fprintf(f, ", %u flag updates", r->total.flags_updated);
	if (r->total.vanished > 0)
		fprintf(f, ", %u expunged on the source meanwhile", r->total.vanished);
	fputc('\n', f);
	fprintf(f, "  copied:   %s in %.1f s (%.0f messages/s, %s/s)\n",
		report_bytes(r->total.bytes, b1, sizeof(b1)), r->seconds,
		r->total.copied / secs, report_bytes((uint64_t)(r->total.bytes / secs), b2, sizeof(b2)));
	for (i = 0; i < r->n_folders; i++)
		if (r->folders[i].renamed)
			renamed++;
	if (renamed > 0) {
		fprintf(f, "  renamed folders:\n");
		for (i = 0; i < r->n_folders; i++) {
			const struct folder_report *fr = &r->folders[i];

			if (fr->renamed)
				fprintf(f, "    \"%s\" -> \"%s\" (%s)\n", fr->src_name, fr->dst_name,
					fr->why != NULL ? fr->why : "renamed");
		}
	}
	for (i = 0; i < r->n_folders; i++) {
		const struct folder_report *fr = &r->folders[i];

		if (fr->failed)
			fprintf(f, "  folder \"%s\" failed: %s\n", fr->src_name, fr->error);
		else if (fr->counts.failed > 0)
			fprintf(f, "  folder \"%s\": %u message(s) refused by the destination "
				"(see the log)\n", fr->src_name, fr->counts.failed);
	}
	if (r->status != ACCOUNT_FAILED && r->total.copied == 0 && r->total.failed == 0 &&
	    r->total.flags_updated == 0)
		fprintf(f, "  nothing new: the destination was already up to date\n");
}
