/* Unit tests of the status page built into the binary (page/embed.sh makes
 * src/page_assets.c): what page_find answers, and that each file is there
 * whole, byte for byte. */
#include "config.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "page.h"

#ifndef PAGE_SRCDIR
#error "PAGE_SRCDIR (the source tree's page/) must be defined by the Makefile"
#endif

/* The whole file page/name from the source tree; its length in *len. */
static unsigned char *slurp(const char *name, size_t *len)
{
	char path[4096];
	unsigned char *buf = NULL;
	size_t cap = 0, n = 0, got;
	FILE *f;

	snprintf(path, sizeof(path), "%s/%s", PAGE_SRCDIR, name);
	f = fopen(path, "rb");
	assert_non_null(f);
	do {
		if (n == cap) {
			cap = cap ? 2 * cap : 65536;
			buf = realloc(buf, cap);
			assert_non_null(buf);
		}
		got = fread(buf + n, 1, cap - n, f);
		n += got;
	} while (got > 0);
	assert_int_equal(ferror(f), 0);
	fclose(f);
	*len = n;
	return buf;
}

static void check_file(const char *url, const char *name, const char *type)
{
	const struct page_asset *a = page_find(url);
	unsigned char *want;
	size_t len;

	assert_non_null(a);
	assert_string_equal(a->path, strcmp(url, "/") == 0 ? "/index.html" : url);
	assert_string_equal(a->type, type);
	want = slurp(name, &len);
	assert_true(len > 0);
	assert_int_equal(a->len, len);
	assert_memory_equal(a->data, want, len);
	assert_int_equal(a->data[a->len], 0);
	free(want);
}

static void test_root_is_index(void **unused)
{
	(void)unused;
	check_file("/", "index.html", "text/html; charset=utf-8");
	check_file("/index.html", "index.html", "text/html; charset=utf-8");
	assert_ptr_equal(page_find("/"), page_find("/index.html"));
}

static void test_css_and_js(void **unused)
{
	(void)unused;
	check_file("/page.css", "page.css", "text/css; charset=utf-8");
	check_file("/page.js", "page.js", "text/javascript; charset=utf-8");
}

static void test_unknown_paths(void **unused)
{
	static const char *const none[] = {
		"", "page.js", "/page.js/", "//page.js", "/PAGE.JS", "/page.js?x=1",
		"/../page.js", "/./page.js", "/embed.sh", "/v1/jobs", "/favicon.ico",
		"/index.htm", "/index.html\n",
	};
	size_t i;

	(void)unused;
	assert_null(page_find(NULL));
	for (i = 0; i < sizeof(none) / sizeof(none[0]); i++)
		assert_null(page_find(none[i]));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_root_is_index),
		cmocka_unit_test(test_css_and_js),
		cmocka_unit_test(test_unknown_paths),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
