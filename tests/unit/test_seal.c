/* Unit tests of the sealed passwords (src/seal.c): key files, round trips,
 * values that must not open, rotation. */
#include "config.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "seal.h"
#include "secret.h"

#define KEY_A "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff"
#define KEY_B "ffeeddccbbaa99887766554433221100ffeeddccbbaa99887766554433221100"

static char dir[64];

static int setup(void **unused)
{
	(void)unused;
	snprintf(dir, sizeof(dir), "/tmp/test_seal.XXXXXX");
	return mkdtemp(dir) == NULL ? -1 : 0;
}

static int teardown(void **unused)
{
	char cmd[128];

	(void)unused;
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
	return system(cmd) == 0 ? 0 : -1;
}

/* A key file named name in dir with text, mode 0600; its path. */
static const char *keyfile(const char *name, const char *text)
{
	static char path[128];
	FILE *f;

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	unlink(path);
	f = fopen(path, "w");
	assert_non_null(f);
	fputs(text, f);
	fclose(f);
	assert_int_equal(chmod(path, 0600), 0);
	return path;
}

static struct seal_keys *load(const char *name, const char *text)
{
	struct tr_error err;
	struct seal_keys *k = NULL;

	tr_error_clear(&err);
	if (seal_keys_load(keyfile(name, text), &k, &err) < 0)
		fail_msg("%s", err.msg);
	return k;
}

static void seal_ok(const struct seal_keys *k, const char *aad, const char *plain,
		    unsigned char **out, size_t *len)
{
	struct tr_error err;

	tr_error_clear(&err);
	if (seal(k, aad, plain, out, len, &err) < 0)
		fail_msg("%s", err.msg);
}

static void test_round_trip(void **unused)
{
	struct seal_keys *k = load("a.key", "# comment\n\n a1 " KEY_A "  \n");
	struct tr_error err;
	unsigned char *s1, *s2;
	size_t l1, l2, i;
	char *plain = NULL;

	(void)unused;
	tr_error_clear(&err);
	seal_ok(k, "job 1 account a@b.it password", "s3cret pw", &s1, &l1);
	assert_memory_equal(s1, "TS1\x02" "a1", 6);
	assert_int_equal(l1, 6 + 12 + strlen("s3cret pw") + 16);
	/* the plain text is nowhere in the sealed value */
	for (i = 0; i + 6 <= l1; i++)
		assert_false(memcmp(s1 + i, "s3cret", 6) == 0);
	assert_int_equal(unseal(k, "job 1 account a@b.it password", s1, l1, &plain, &err), 0);
	assert_string_equal(plain, "s3cret pw");
	secret_free(plain);
	/* the same text twice: two different values (random nonces) */
	seal_ok(k, "job 1 account a@b.it password", "s3cret pw", &s2, &l2);
	assert_int_equal(l1, l2);
	assert_true(memcmp(s1, s2, l1) != 0);
	free(s2);
	/* an empty secret and a long one */
	seal_ok(k, "x", "", &s2, &l2);
	assert_int_equal(unseal(k, "x", s2, l2, &plain, &err), 0);
	assert_string_equal(plain, "");
	secret_free(plain);
	free(s2);
	{
		char big[1025];

		memset(big, 'p', sizeof(big) - 1);
		big[sizeof(big) - 1] = '\0';
		seal_ok(k, "x", big, &s2, &l2);
		assert_int_equal(unseal(k, "x", s2, l2, &plain, &err), 0);
		assert_string_equal(plain, big);
		secret_free(plain);
		free(s2);
	}
	free(s1);
	seal_keys_free(k);
}

static void test_wrong_place(void **unused)
{
	struct seal_keys *k = load("a.key", "a1 " KEY_A "\n");
	struct tr_error err;
	unsigned char *s;
	size_t l, i;
	char *plain = NULL;

	(void)unused;
	tr_error_clear(&err);
	seal_ok(k, "job 1 account a@b.it password", "pw", &s, &l);
	/* copied to another row: does not open */
	assert_int_equal(unseal(k, "job 1 account c@b.it password", s, l, &plain, &err), -1);
	assert_null(plain);
	assert_int_equal(err.kind, TR_ERR_LOCAL);
	assert_non_null(strstr(err.msg, "altered or sealed for another place"));
	assert_int_equal(unseal(k, "job 1 account a@b.it dst_password", s, l, &plain, &err), -1);
	/* any byte altered: refused, and never a crash */
	for (i = 0; i < l; i++) {
		s[i] ^= 0x01;
		assert_int_equal(unseal(k, "job 1 account a@b.it password", s, l, &plain, &err), -1);
		assert_null(plain);
		s[i] ^= 0x01;
	}
	/* cut short anywhere */
	for (i = 0; i < l; i++)
		assert_int_equal(unseal(k, "job 1 account a@b.it password", s, i, &plain, &err), -1);
	assert_int_equal(unseal(k, "job 1 account a@b.it password", s, l, &plain, &err), 0);
	secret_free(plain);
	free(s);
	seal_keys_free(k);
}

static void test_unknown_key(void **unused)
{
	struct seal_keys *a = load("a.key", "a1 " KEY_A "\n");
	struct seal_keys *b = load("b.key", "b2 " KEY_A "\n");
	struct tr_error err;
	unsigned char *s;
	size_t l;
	char *plain = NULL;

	(void)unused;
	tr_error_clear(&err);
	seal_ok(a, "aad", "pw", &s, &l);
	/* the same key bytes under another name: the name decides */
	assert_int_equal(unseal(b, "aad", s, l, &plain, &err), -1);
	assert_non_null(strstr(err.msg, "key a1"));
	assert_non_null(strstr(err.msg, "not in the key file"));
	free(s);
	seal_keys_free(a);
	seal_keys_free(b);
}

/* Two keys: the first seals, both open; rotation as seal.h says. */
static void test_rotation(void **unused)
{
	struct seal_keys *old = load("k", "old " KEY_A "\n");
	struct seal_keys *both, *new;
	struct tr_error err;
	unsigned char *s_old, *s_new;
	size_t l_old, l_new;
	char *plain = NULL;

	(void)unused;
	tr_error_clear(&err);
	seal_ok(old, "aad", "pw-old", &s_old, &l_old);
	seal_keys_free(old);
	both = load("k", "new " KEY_B "\nold " KEY_A "\n");
	assert_int_equal(unseal(both, "aad", s_old, l_old, &plain, &err), 0);
	assert_string_equal(plain, "pw-old");
	/* rekey: seal again with the first key */
	seal_ok(both, "aad", plain, &s_new, &l_new);
	secret_free(plain);
	assert_memory_equal(s_new, "TS1\x03" "new", 7);
	seal_keys_free(both);
	new = load("k", "new " KEY_B "\n");
	assert_int_equal(unseal(new, "aad", s_new, l_new, &plain, &err), 0);
	assert_string_equal(plain, "pw-old");
	secret_free(plain);
	assert_int_equal(unseal(new, "aad", s_old, l_old, &plain, &err), -1);
	assert_non_null(strstr(err.msg, "key old"));
	free(s_old);
	free(s_new);
	seal_keys_free(new);
}

static void test_key_files(void **unused)
{
	struct tr_error err;
	struct seal_keys *k = NULL;
	char path[128], buf[512];
	struct stat st;
	unsigned char *s;
	size_t l;
	char *plain = NULL;
	FILE *f;

	(void)unused;
	tr_error_clear(&err);
	snprintf(path, sizeof(path), "%s/new.key", dir);
	unlink(path);
	assert_int_equal(seal_key_create(path, &err), 0);
	assert_int_equal(stat(path, &st), 0);
	assert_int_equal(st.st_mode & 0777, 0600);
	assert_int_equal(seal_keys_load(path, &k, &err), 0);
	seal_ok(k, "aad", "pw", &s, &l);
	assert_int_equal(unseal(k, "aad", s, l, &plain, &err), 0);
	secret_free(plain);
	free(s);
	seal_keys_free(k);
	/* never replaced */
	f = fopen(path, "r");
	assert_non_null(f);
	assert_non_null(fgets(buf, sizeof(buf), f));
	assert_non_null(fgets(buf, sizeof(buf), f));
	fclose(f);
	assert_int_equal(seal_key_create(path, &err), -1);
	assert_non_null(strstr(err.msg, "File exists"));
	f = fopen(path, "r");
	{
		char again[512];

		assert_non_null(fgets(again, sizeof(again), f));
		assert_non_null(fgets(again, sizeof(again), f));
		assert_string_equal(again, buf);
	}
	fclose(f);
	/* nor through a link */
	snprintf(buf, sizeof(buf), "%s/link.key", dir);
	assert_int_equal(symlink("/nonexistent-trasloco-key", buf), 0);
	assert_int_equal(seal_key_create(buf, &err), -1);
	/* readable by its group (a Kubernetes Secret volume with an fsGroup):
	 * taken, with a warning; writable by the group or open to others:
	 * refused */
	assert_int_equal(chmod(path, 0640), 0);
	assert_int_equal(seal_keys_load(path, &k, &err), 0);
	seal_keys_free(k);
	k = NULL;
	assert_int_equal(chmod(path, 0660), 0);
	assert_int_equal(seal_keys_load(path, &k, &err), -1);
	assert_null(k);
	assert_non_null(strstr(err.msg, "chmod 600"));
	assert_int_equal(chmod(path, 0604), 0);
	assert_int_equal(seal_keys_load(path, &k, &err), -1);
	/* bad lines: named by line, the key never quoted */
	assert_int_equal(seal_keys_load(keyfile("bad", "a1 " KEY_A "\nb2 12zz\n"), &k, &err), -1);
	assert_non_null(strstr(err.msg, ":2:"));
	assert_null(strstr(err.msg, "12zz"));
	assert_int_equal(seal_keys_load(keyfile("bad", "a1 " KEY_A "x\n"), &k, &err), -1);
	assert_null(strstr(err.msg, KEY_A));
	assert_int_equal(seal_keys_load(keyfile("bad", "bad/id " KEY_A "\n"), &k, &err), -1);
	assert_int_equal(seal_keys_load(keyfile("bad", "a1 " KEY_A "\na1 " KEY_B "\n"), &k, &err),
			 -1);
	assert_non_null(strstr(err.msg, "twice"));
	assert_int_equal(seal_keys_load(keyfile("bad", "# nothing\n"), &k, &err), -1);
	assert_non_null(strstr(err.msg, "no key"));
	assert_int_equal(seal_keys_load(keyfile("bad", "abcdefghijklmnopq " KEY_A "\n"), &k, &err),
			 -1);
	/* CRLF and a last line without newline are fine */
	assert_int_equal(seal_keys_load(keyfile("ok", "a1 " KEY_A "\r\nb2 " KEY_B), &k, &err), 0);
	seal_keys_free(k);
	snprintf(buf, sizeof(buf), "%s/missing.key", dir);
	assert_int_equal(seal_keys_load(buf, &k, &err), -1);
	assert_non_null(strstr(err.msg, "queue init"));
	assert_int_equal(seal_keys_load(dir, &k, &err), -1);
	assert_non_null(strstr(err.msg, "not a regular file"));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_round_trip),
		cmocka_unit_test(test_wrong_place),
		cmocka_unit_test(test_unknown_key),
		cmocka_unit_test(test_rotation),
		cmocka_unit_test(test_key_files),
	};

	return cmocka_run_group_tests_name("seal", tests, setup, teardown);
}
