/* page: the status page's files, built into the binary (page/ in the source
 * tree: index.html, page.css, page.js; page/embed.sh turns them into
 * page_assets.c, generated in the build directory).
 *
 * `trasloco serve` answers GET / and the page's own files from here, so it
 * needs nothing installed beside the binary.  The page reads the HTTP API
 * (GET /v1/jobs, GET /v1/jobs/ID) with the token the user gives it; the files
 * themselves are public and hold no secret.
 *
 * Ownership: everything page_find returns is static and read-only, never
 * freed.  Threading: any thread, any time.
 */
#ifndef TRASLOCO_PAGE_H
#define TRASLOCO_PAGE_H

#include <stddef.h>

struct page_asset {
	const char *path;          /* "/index.html", "/page.css", "/page.js" */
	const char *type;          /* Content-Type, e.g. "text/html; charset=utf-8" */
	const unsigned char *data; /* len bytes (and a NUL after them, not counted) */
	size_t len;
};

/* The file served at path (the URL's path, no query): "/" is index.html, any
 * other file is "/" + its name.  NULL: no such file (the caller answers 404). */
const struct page_asset *page_find(const char *path);

#endif
