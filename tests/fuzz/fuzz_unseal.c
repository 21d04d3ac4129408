/* libFuzzer target for sealed values and key files (src/seal.c).  Not
 * built by make; tests/fuzz/run.sh builds and runs it:
 *
 *   clang -g -O1 -fsanitize=fuzzer,address,undefined -I include -I BUILDDIR \
 *       tests/fuzz/fuzz_unseal.c src/seal.c src/error.c -lcrypto -o /tmp/fuzz_unseal
 *
 * An input whose first byte is 'K' is the rest taken as a key file;
 * anything else is a value from the database, opened with a fixed key set
 * (the seed corpus holds values sealed with it, so mutations reach the
 * cipher).  Besides crashes and leaks it checks what seal.h promises: a
 * value opens only whole and unaltered, and then round-trips. */
#include "config.h"

#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/crypto.h>

#include "seal.h"

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define AAD "job 1 account a@example.org password"

static struct seal_keys *keys;
static char keyfile[64];

/* data as a file only we can read; its path in keyfile */
static void drop_file(void)
{
	unlink(keyfile);
}

static void put_file(const uint8_t *data, size_t size)
{
	int fd = open(keyfile, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);

	if (fd < 0 || (size > 0 && write(fd, data, size) != (ssize_t)size))
		abort();
	close(fd);
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	static const char text[] =
		"# seeds in tests/fuzz/corpus/unseal were sealed with these\n"
		"fz1 000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f\n"
		"fz2 202122232425262728292a2b2c2d2e2f303132333435363738393a3b3c3d3e3f\n";
	struct tr_error err;
	const char *t = getenv("TMPDIR");

	(void)argc;
	(void)argv;
	snprintf(keyfile, sizeof(keyfile), "%s/fuzz_unseal.%d", t != NULL && t[0] == '/' &&
		 strlen(t) < 32 ? t : "/tmp", (int)getpid());
	put_file((const uint8_t *)text, sizeof(text) - 1);
	atexit(drop_file);
	if (seal_keys_load(keyfile, &keys, &err) < 0)
		abort();
	/* a seed for the corpus: FUZZ_UNSEAL_SEED=FILE writes one value */
	if (getenv("FUZZ_UNSEAL_SEED") != NULL) {
		unsigned char *s;
		size_t l;
		FILE *f = fopen(getenv("FUZZ_UNSEAL_SEED"), "w");

		if (f == NULL || seal(keys, AAD, "s3cret pw", &s, &l, &err) < 0 ||
		    fwrite(s, 1, l, f) != l)
			abort();
		fclose(f);
		free(s);
	}
	return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct tr_error err;
	char *plain = NULL;

	if (size > 0 && data[0] == 'K') {
		struct seal_keys *k = NULL;
		int r;

		put_file(data + 1, size - 1);
		r = seal_keys_load(keyfile, &k, &err);
		if ((r == 0) != (k != NULL))
			abort();
		/* no message quotes a line that may hold a key */
		if (r < 0 && size > 40 && memmem(err.msg, strlen(err.msg), data + 1, 40) != NULL)
			abort();
		seal_keys_free(k);
		return 0;
	}
	if (unseal(keys, AAD, data, size, &plain, &err) == 0) {
		unsigned char *again;
		size_t len, plen = strlen(plain);
		char *back = NULL;

		/* what opens is whole text, and seals and opens again the same */
		if (seal(keys, AAD, plain, &again, &len, &err) < 0 ||
		    unseal(keys, AAD, again, len, &back, &err) < 0 || strcmp(back, plain) != 0)
			abort();
		/* the same value, one byte altered, does not open */
		again[len - 1] ^= 1;
		OPENSSL_cleanse(back, strlen(back));
		free(back);
		back = NULL;
		if (unseal(keys, AAD, again, len, &back, &err) == 0)
			abort();
		free(again);
		OPENSSL_cleanse(plain, plen);
		free(plain);
	} else if (plain != NULL) {
		abort();
	}
	return 0;
}
