/* cli: `trasloco --version` (see include/cli.h): what was built, from which
 * commit, and the libraries it runs with now (the shared objects loaded, not
 * the headers it was compiled against: what a bug report needs). */
#include "config.h"

#include <stdio.h>

#include <jansson.h>
#include <libetpan/libetpan_version.h>
#include <libpq-fe.h>
#include <microhttpd.h>
#include <openssl/crypto.h>
#include <sqlite3.h>

#include "cli.h"

int cli_version(FILE *f)
{
	int pq = PQlibVersion();

	fprintf(f, "trasloco %s\n", PACKAGE_VERSION);
	fprintf(f, "commit %s\n", cli_build_commit);
	fprintf(f, "libetpan %d.%d\n", libetpan_get_version_major(),
		libetpan_get_version_minor());
	/* "OpenSSL 3.0.15 3 Sep 2024" */
	fprintf(f, "%s\n", OpenSSL_version(OPENSSL_VERSION));
	fprintf(f, "SQLite %s\n", sqlite3_libversion());
	fprintf(f, "jansson %s\n", jansson_version_str());
	fprintf(f, "libmicrohttpd %s\n", MHD_get_version());
	/* 150010 is 15.10 (from 10 on, two parts) */
	fprintf(f, "libpq %d.%d\n", pq / 10000, pq % 10000);
	return ferror(f) ? -1 : 0;
}
