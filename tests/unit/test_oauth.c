/* oauth.c: the token command's output, the server's SASL failure JSON,
 * the SASL initial responses, and a pool's caching and refresh with a
 * real command (/bin/sh). */
#include "config.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>
#include <openssl/evp.h>

#include "oauth.h"

static void test_parse_bare(void **state)
{
	char tok[64];
	long ttl = -1;
	struct tr_error err;

	(void)state;
	assert_int_equal(oauth_parse_token("  ya29.a0-Ab_c~d+/=\n", 20, tok, sizeof(tok), &ttl, &err), 0);
	assert_string_equal(tok, "ya29.a0-Ab_c~d+/=");
	assert_int_equal(ttl, 0);
	assert_int_equal(oauth_parse_token("\n", 1, tok, sizeof(tok), &ttl, &err), -1);
	assert_int_equal(err.kind, TR_ERR_AUTH);
	/* two lines, a space: not a token, and the message quotes none of it */
	assert_int_equal(oauth_parse_token("abc def", 7, tok, sizeof(tok), &ttl, &err), -1);
	assert_null(strstr(err.msg, "abc"));
}

static void test_parse_json(void **state)
{
	const char *j1 = "{\"access_token\":\"eyJ0.eXAi.sig\",\"expires_in\":3599,\"token_type\":\"Bearer\"}";
	const char *j2 = "{\"access_token\":\"t1\",\"expires_in\":\"120\"}";
	const char *j3 = "{\"token\":\"secretvalue\"}";
	const char *j4 = "{\"access_token\":\"t1\",\"expires_in\":-5}";
	const char *j5 = "{\"access_token\":\"secretvalue\"";
	char tok[64];
	long ttl;
	struct tr_error err;

	(void)state;
	assert_int_equal(oauth_parse_token(j1, strlen(j1), tok, sizeof(tok), &ttl, &err), 0);
	assert_string_equal(tok, "eyJ0.eXAi.sig");
	assert_int_equal(ttl, 3599);
	assert_int_equal(oauth_parse_token(j2, strlen(j2), tok, sizeof(tok), &ttl, &err), 0);
	assert_int_equal(ttl, 120);
	assert_int_equal(oauth_parse_token(j3, strlen(j3), tok, sizeof(tok), &ttl, &err), -1);
	assert_non_null(strstr(err.msg, "access_token"));
	assert_int_equal(oauth_parse_token(j4, strlen(j4), tok, sizeof(tok), &ttl, &err), -1);
	assert_int_equal(oauth_parse_token(j5, strlen(j5), tok, sizeof(tok), &ttl, &err), -1);
	assert_null(strstr(err.msg, "secretvalue"));
	/* too long for the buffer */
	assert_int_equal(oauth_parse_token("0123456789", 10, tok, 8, &ttl, &err), -1);
}

static void b64(const char *json, char *out)
{
	EVP_EncodeBlock((unsigned char *)out, (const unsigned char *)json, (int)strlen(json));
}

static void test_explain(void **state)
{
	char c[512], why[300];

	(void)state;
	/* Gmail */
	b64("{\"status\":\"400\",\"schemes\":\"Bearer\",\"scope\":\"https://mail.google.com/\"}", c);
	oauth_explain_failure(c, strlen(c), why, sizeof(why));
	assert_non_null(strstr(why, "status 400"));
	assert_non_null(strstr(why, "scope wanted: https://mail.google.com/"));
	/* Dovecot, RFC 7628 */
	b64("{\"status\":\"invalid_token\",\"schemes\":\"bearer\",\"scope\":\"mail\"}", c);
	oauth_explain_failure(c, strlen(c), why, sizeof(why));
	assert_non_null(strstr(why, "invalid or has expired"));
	b64("{\"status\":\"insufficient_scope\",\"scope\":\"mail\"}", c);
	oauth_explain_failure(c, strlen(c), why, sizeof(why));
	assert_non_null(strstr(why, "lacks the scope"));
	b64("{\"status\":\"401\"}", c);
	oauth_explain_failure(c, strlen(c), why, sizeof(why));
	assert_non_null(strstr(why, "invalid or has expired"));
	/* not base64, not JSON, control bytes: still a sentence, cleaned */
	oauth_explain_failure("%%%%", 4, why, sizeof(why));
	assert_non_null(strstr(why, "could not be decoded"));
	b64("[1,2]", c);
	oauth_explain_failure(c, strlen(c), why, sizeof(why));
	assert_non_null(strstr(why, "could not be decoded"));
	b64("{\"status\":\"x\\u0007y\"}", c);
	oauth_explain_failure(c, strlen(c), why, sizeof(why));
	assert_null(strchr(why, '\a'));
}

static void test_sasl(void **state)
{
	char out[512], raw[512];
	int n;

	(void)state;
	n = (int)oauth_sasl_response(OAUTH_XOAUTH2, "u@x.test", "T0k", "mail.test", 993, out,
				     sizeof(out));
	assert_true(n > 0);
	n = EVP_DecodeBlock((unsigned char *)raw, (unsigned char *)out, n);
	assert_memory_equal(raw, "user=u@x.test\001auth=Bearer T0k\001\001", 31);
	n = (int)oauth_sasl_response(OAUTH_OAUTHBEARER, "a,b=c@x.test", "T0k", "mail.test", 993,
				     out, sizeof(out));
	assert_true(n > 0);
	n = EVP_DecodeBlock((unsigned char *)raw, (unsigned char *)out, n);
	raw[n] = '\0';
	assert_string_equal(raw, "n,a=a=2Cb=3Dc@x.test,\001host=mail.test\001port=993\001auth=Bearer "
			    "T0k\001\001");
	assert_int_equal(oauth_sasl_response(OAUTH_XOAUTH2, "u", "T0k", "h", 1, out, 8), -1);
}

/* A pool with a real command: cached, fetched again when refused, a
 * failing command told with its last stderr line, the environment. */
static void test_pool(void **state)
{
	char dir[] = "/tmp/test_oauth.XXXXXX", cmd[512], path[300], tok[128], line[256];
	struct oauth_conf conf = { .side = "source", .cmd = cmd, .timeout_s = 10 };
	struct oauth_pool *p;
	struct oauth_account *a;
	struct tr_error err;
	uint64_t gen, gen2;
	bool fresh;
	FILE *f;

	(void)state;
	assert_non_null(mkdtemp(dir));
	snprintf(path, sizeof(path), "%s/n", dir);
	/* prints tok-N (N: how many times it ran), and what it was given */
	snprintf(cmd, sizeof(cmd),
		 "n=$(cat %s 2>/dev/null || echo 0); n=$((n+1)); echo $n > %s; "
		 "echo \"$TRASLOCO_EMAIL $TRASLOCO_USER ${TRASLOCO_SRC_PASSWORD:-none} "
		 "${X_TOKEN:-none}\" > %s.env; echo tok-$n", path, path, path);
	setenv("TRASLOCO_SRC_PASSWORD", "pw", 1);
	setenv("X_TOKEN", "tk", 1);
	p = oauth_pool_new(&conf);
	a = oauth_pool_get(p, "anna@x.test", "anna");
	assert_non_null(a);
	assert_ptr_equal(oauth_pool_get(p, "anna@x.test", "anna"), a);
	assert_int_equal(oauth_token(a, tok, sizeof(tok), &gen, &fresh, &err), 0);
	assert_string_equal(tok, "tok-1");
	assert_true(fresh);
	assert_int_equal(oauth_token(a, tok, sizeof(tok), &gen2, &fresh, &err), 0);
	assert_string_equal(tok, "tok-1");
	assert_false(fresh);
	assert_true(gen == gen2);
	oauth_refused(a, gen);
	oauth_refused(a, gen);   /* twice: one new token, not two */
	assert_int_equal(oauth_token(a, tok, sizeof(tok), &gen2, &fresh, &err), 0);
	assert_string_equal(tok, "tok-2");
	assert_int_equal(oauth_fetches(a), 2);
	snprintf(path, sizeof(path), "%s/n.env", dir);
	f = fopen(path, "r");
	assert_non_null(f);
	assert_non_null(fgets(line, sizeof(line), f));
	fclose(f);
	assert_string_equal(line, "anna@x.test anna none none\n");
	oauth_pool_drop(p, "anna@x.test");
	oauth_pool_free(p);

	snprintf(cmd, sizeof(cmd), "echo 'no such client' >&2; exit 4");
	p = oauth_pool_new(&conf);
	a = oauth_pool_get(p, "bruno@x.test", "bruno");
	assert_int_equal(oauth_token(a, tok, sizeof(tok), &gen, &fresh, &err), -1);
	assert_int_equal(err.kind, TR_ERR_AUTH);
	assert_non_null(strstr(err.msg, "exited with 4: no such client"));
	assert_non_null(strstr(err.msg, "bruno@x.test"));
	oauth_pool_free(p);
	unsetenv("TRASLOCO_SRC_PASSWORD");
	unsetenv("X_TOKEN");
	snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
	assert_int_equal(system(cmd), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_parse_bare),
		cmocka_unit_test(test_parse_json),
		cmocka_unit_test(test_explain),
		cmocka_unit_test(test_sasl),
		cmocka_unit_test(test_pool),
	};

	return cmocka_run_group_tests_name("oauth", tests, NULL, NULL);
}
