/* oauth_text: see include/oauth_text.h */
#include "config.h"

#include <ctype.h>
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <jansson.h>
#include <openssl/evp.h>

#include "oauth_text.h"

/* RFC 6750's b64token, and what providers really send (JWTs with '.'). */
static bool token_char(unsigned char c)
{
	return isalnum(c) || c == '-' || c == '.' || c == '_' || c == '~' || c == '+' ||
	       c == '/' || c == '=';
}

static int take_token(const char *s, size_t len, char *tok, size_t size, struct tr_error *err)
{
	size_t i;

	if (len == 0) {
		tr_error_set(err, TR_ERR_AUTH, "is empty");
		return -1;
	}
	if (len + 1 > size) {
		tr_error_set(err, TR_ERR_AUTH, "is longer than %zu bytes", size - 1);
		return -1;
	}
	for (i = 0; i < len; i++)
		if (!token_char((unsigned char)s[i])) {
			tr_error_set(err, TR_ERR_AUTH, "is not a token (byte %zu is not one of "
				     "A-Z a-z 0-9 - . _ ~ + / =)", i + 1);
			return -1;
		}
	memcpy(tok, s, len);
	tok[len] = '\0';
	return 0;
}

int oauth_parse_token(const char *out, size_t len, char *tok, size_t size, long *ttl_s,
		      struct tr_error *err)
{
	size_t a = 0, b = len;
	json_t *root, *at, *ex;
	json_error_t je;
	int r;

	*ttl_s = 0;
	while (a < b && isspace((unsigned char)out[a]))
		a++;
	while (b > a && isspace((unsigned char)out[b - 1]))
		b--;
	if (a == b || out[a] != '{')
		return take_token(out + a, b - a, tok, size, err);
	root = json_loadb(out + a, b - a, JSON_REJECT_DUPLICATES, &je);
	if (root == NULL || !json_is_object(root)) {
		json_decref(root);
		/* je.text may quote the input: only the position */
		tr_error_set(err, TR_ERR_AUTH, "is not valid JSON (near byte %d)", je.position);
		return -1;
	}
	at = json_object_get(root, "access_token");
	if (!json_is_string(at)) {
		json_decref(root);
		tr_error_set(err, TR_ERR_AUTH, "has no \"access_token\" string");
		return -1;
	}
	r = take_token(json_string_value(at), json_string_length(at), tok, size, err);
	ex = json_object_get(root, "expires_in");
	if (r == 0 && ex != NULL) {
		long v = -1;

		if (json_is_integer(ex) && json_integer_value(ex) > 0 &&
		    json_integer_value(ex) < 100L * 86400)
			v = (long)json_integer_value(ex);
		else if (json_is_real(ex) && json_real_value(ex) >= 1 &&
			 json_real_value(ex) < 100.0 * 86400)
			v = (long)json_real_value(ex);
		else if (json_is_string(ex)) {
			const char *s = json_string_value(ex);
			char *end;

			errno = 0;
			v = strtol(s, &end, 10);
			if (end == s || *end != '\0' || errno != 0 || v <= 0 || v >= 100L * 86400)
				v = -1;
		}
		if (v < 0) {
			explicit_bzero(tok, size);
			tr_error_set(err, TR_ERR_AUTH, "has an \"expires_in\" that is not a number "
				     "of seconds between 1 and 8640000");
			r = -1;
		} else {
			*ttl_s = v;
		}
	}
	/* jansson's copy of the token goes with root; wipe it first */
	if (json_is_string(at))
		explicit_bzero((char *)json_string_value(at), json_string_length(at));
	json_decref(root);
	return r;
}

/* What a status says, for the providers' and RFC 6749/6750's values. */
static const char *status_says(const char *st, const char *scope)
{
	if (strcmp(st, "401") == 0 || strcasecmp(st, "invalid_token") == 0)
		return "the token is invalid or has expired";
	if (strcmp(st, "403") == 0 || strcasecmp(st, "insufficient_scope") == 0)
		return scope != NULL && scope[0] != '\0' ? "the token lacks the scope the server "
							   "wants" :
							   "the token lacks a scope the server wants";
	if (strcmp(st, "400") == 0 || strcasecmp(st, "invalid_request") == 0)
		return "the server refused the token for this user (invalid, expired, or issued "
		       "for another user or without the mail scope)";
	if (strcasecmp(st, "unknown_user") == 0 || strcasecmp(st, "invalid_user") == 0)
		return "the server knows no such user";
	return "the server refused the token";
}

/* Printable ASCII of s into buf. */
static void plain_copy(char *buf, size_t size, const char *s)
{
	size_t o = 0;

	for (; *s != '\0' && o + 1 < size; s++)
		buf[o++] = ((unsigned char)*s >= 0x20 && (unsigned char)*s < 0x7f) ? *s : '?';
	buf[o] = '\0';
}

void oauth_explain_failure(const char *b64, size_t len, char *buf, size_t size)
{
	unsigned char *raw;
	json_t *root = NULL, *st, *sc;
	char status[64] = "", scope[200] = "";
	int n;

	if (size == 0)
		return;
	snprintf(buf, size, "the server refused the token (its SASL challenge could not be "
		 "decoded)");
	while (len > 0 && isspace((unsigned char)b64[len - 1]))
		len--;
	if (len == 0 || len > 8192 || len % 4 != 0)
		return;
	raw = malloc(len / 4 * 3 + 1);
	if (raw == NULL)
		return;
	n = EVP_DecodeBlock(raw, (const unsigned char *)b64, (int)len);
	if (n > 0) {
		/* EVP_DecodeBlock counts the padding's zero bytes too */
		if (b64[len - 1] == '=')
			n--;
		if (len > 1 && b64[len - 2] == '=')
			n--;
		root = json_loadb((const char *)raw, (size_t)n, 0, NULL);
	}
	free(raw);
	if (root == NULL || !json_is_object(root)) {
		json_decref(root);
		return;
	}
	st = json_object_get(root, "status");
	sc = json_object_get(root, "scope");
	if (json_is_string(st))
		plain_copy(status, sizeof(status), json_string_value(st));
	else if (json_is_integer(st))
		snprintf(status, sizeof(status), "%lld", (long long)json_integer_value(st));
	if (json_is_string(sc))
		plain_copy(scope, sizeof(scope), json_string_value(sc));
	json_decref(root);
	snprintf(buf, size, "%s (status %s%s%s)", status_says(status, scope),
		 status[0] ? status : "not given", scope[0] ? ", scope wanted: " : "", scope);
}

long oauth_sasl_response(enum oauth_mech mech, const char *user, const char *token,
			 const char *host, int port, char *out, size_t size)
{
	size_t cap = strlen(user) * 3 + strlen(token) + strlen(host) + 64, n = 0, i;
	char *raw = malloc(cap);
	long r = -1;

	if (raw == NULL)
		return -1;
	if (mech == OAUTH_XOAUTH2) {
		n = (size_t)snprintf(raw, cap, "user=%s\001auth=Bearer %s\001\001", user, token);
	} else {
		/* RFC 5801's saslname: ',' and '=' escaped */
		n = (size_t)snprintf(raw, cap, "n,a=");
		for (i = 0; user[i] != '\0'; i++) {
			if (user[i] == ',')
				n += (size_t)snprintf(raw + n, cap - n, "=2C");
			else if (user[i] == '=')
				n += (size_t)snprintf(raw + n, cap - n, "=3D");
			else
				raw[n++] = user[i];
		}
		n += (size_t)snprintf(raw + n, cap - n, ",\001host=%s\001port=%d\001auth=Bearer "
				      "%s\001\001", host, port, token);
	}
	if (n < cap && (n + 2) / 3 * 4 + 1 <= size)
		r = EVP_EncodeBlock((unsigned char *)out, (const unsigned char *)raw, (int)n);
	explicit_bzero(raw, cap);
	free(raw);
	return r;
}
