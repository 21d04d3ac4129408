/* oauth_flow: the built-in token flows (oauth.h): Microsoft 365 app-only
 * client credentials (a secret, or a certificate's signed assertion) and
 * Google Workspace domain-wide delegation (a service account's signed
 * JWT), over HTTPS with libcurl, the certificate verified against the
 * job's --ca-file (else the system store).  Secrets are read from their
 * files at each fetch and wiped with the request that carried them. */
#define _GNU_SOURCE
#include "oauth.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <curl/curl.h>
#include <jansson.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/x509.h>

#include "secret.h"

#define MS_SCOPE "https://outlook.office365.com/.default"
#define GOOGLE_SCOPE "https://mail.google.com/"
#define GOOGLE_TOKEN_URL "https://oauth2.googleapis.com/token"
/* what a token endpoint may answer */
#define REPLY_MAX (256 * 1024)
#define KEY_FILE_MAX (64 * 1024)

static pthread_once_t curl_once = PTHREAD_ONCE_INIT;

static void curl_start(void)
{
	curl_global_init(CURL_GLOBAL_DEFAULT);
}

/* ---- small pieces ------------------------------------------------------- */

/* base64url without padding (RFC 7515). */
static char *b64url(const unsigned char *in, size_t len)
{
	char *out = malloc(len / 3 * 4 + 8);
	size_t i, n;

	if (out == NULL)
		return NULL;
	n = (size_t)EVP_EncodeBlock((unsigned char *)out, in, (int)len);
	while (n > 0 && out[n - 1] == '=')
		n--;
	out[n] = '\0';
	for (i = 0; i < n; i++)
		out[i] = out[i] == '+' ? '-' : out[i] == '/' ? '_' : out[i];
	return out;
}

static char *b64url_json(json_t *obj)
{
	char *text = json_dumps(obj, JSON_COMPACT | JSON_SORT_KEYS);
	char *out;

	if (text == NULL)
		return NULL;
	out = b64url((unsigned char *)text, strlen(text));
	free(text);
	return out;
}

static void wipe_free(char *s)
{
	if (s != NULL) {
		explicit_bzero(s, strlen(s));
		free(s);
	}
}

/* A whole small file (a key), NUL-terminated; wipe it after use. */
static char *read_small(const char *path, const char *what, struct tr_error *err)
{
	FILE *f = fopen(path, "re");
	char *buf;
	size_t n;

	if (f == NULL) {
		tr_error_set(err, TR_ERR_USAGE, "cannot read the %s %s: %m", what, path);
		return NULL;
	}
	buf = malloc(KEY_FILE_MAX + 1);
	if (buf == NULL) {
		fclose(f);
		tr_error_set(err, TR_ERR_LOCAL, "out of memory");
		return NULL;
	}
	n = fread(buf, 1, KEY_FILE_MAX + 1, f);
	fclose(f);
	if (n > KEY_FILE_MAX) {
		explicit_bzero(buf, KEY_FILE_MAX + 1);
		free(buf);
		tr_error_set(err, TR_ERR_USAGE, "the %s %s is larger than %d bytes", what, path,
			     KEY_FILE_MAX);
		return NULL;
	}
	buf[n] = '\0';
	return buf;
}

/* header.claims.signature, RS256 with the PEM private key pem. */
static char *jwt_rs256(json_t *header, json_t *claims, const char *pem, const char *what,
		       struct tr_error *err)
{
	char *h = b64url_json(header), *c = b64url_json(claims), *input = NULL, *sig64 = NULL;
	char *jwt = NULL;
	unsigned char *sig = NULL;
	size_t siglen = 0;
	EVP_PKEY *key = NULL;
	EVP_MD_CTX *md = NULL;
	BIO *bio;

	if (h == NULL || c == NULL || asprintf(&input, "%s.%s", h, c) < 0) {
		input = NULL;
		tr_error_set(err, TR_ERR_LOCAL, "out of memory");
		goto out;
	}
	bio = BIO_new_mem_buf(pem, -1);
	key = bio != NULL ? PEM_read_bio_PrivateKey(bio, NULL, NULL, NULL) : NULL;
	BIO_free(bio);
	if (key == NULL || EVP_PKEY_base_id(key) != EVP_PKEY_RSA) {
		tr_error_set(err, TR_ERR_USAGE, "the %s holds no RSA private key in PEM form", what);
		goto out;
	}
	md = EVP_MD_CTX_new();
	if (md == NULL || EVP_DigestSignInit(md, NULL, EVP_sha256(), NULL, key) != 1 ||
	    EVP_DigestSign(md, NULL, &siglen, (unsigned char *)input, strlen(input)) != 1 ||
	    (sig = malloc(siglen)) == NULL ||
	    EVP_DigestSign(md, sig, &siglen, (unsigned char *)input, strlen(input)) != 1 ||
	    (sig64 = b64url(sig, siglen)) == NULL ||
	    asprintf(&jwt, "%s.%s", input, sig64) < 0) {
		jwt = NULL;
		tr_error_set(err, TR_ERR_LOCAL, "signing the %s's assertion failed", what);
	}
out:
	EVP_MD_CTX_free(md);
	EVP_PKEY_free(key);
	free(h);
	free(c);
	free(input);
	free(sig);
	free(sig64);
	return jwt;
}

static void jti(char *buf, size_t size)
{
	unsigned char r[16];
	size_t i;

	RAND_bytes(r, sizeof(r));
	for (i = 0; i < sizeof(r) && 2 * i + 2 < size; i++)
		snprintf(buf + 2 * i, 3, "%02x", r[i]);
}

/* ---- HTTP --------------------------------------------------------------- */

struct reply {
	char *buf;
	size_t len;
	bool over;
};

static size_t on_data(char *ptr, size_t size, size_t nmemb, void *ctx)
{
	struct reply *r = ctx;
	size_t n = size * nmemb;

	if (r->len + n > REPLY_MAX) {
		r->over = true;
		return 0;
	}
	memcpy(r->buf + r->len, ptr, n);
	r->len += n;
	return n;
}

/* A clean copy of a short field of an error answer. */
static void field(json_t *root, const char *name, char *buf, size_t size)
{
	json_t *v = json_object_get(root, name);
	const char *s = json_is_string(v) ? json_string_value(v) : "";
	size_t o = 0;

	for (; *s != '\0' && o + 1 < size; s++)
		buf[o++] = ((unsigned char)*s >= 0x20 && (unsigned char)*s < 0x7f) ? *s : '?';
	buf[o] = '\0';
}

/* POST form (wiped here) to url; the token of a 200 answer into tok. */
static int post_token(const struct oauth_conf *c, const char *url, char *form, const char *who,
		      char *tok, size_t size, long *ttl, struct tr_error *err)
{
	struct reply r = { NULL, 0, false };
	char cerr[CURL_ERROR_SIZE] = "";
	long status = 0;
	CURL *h;
	CURLcode cc;
	int ret = -1;

	pthread_once(&curl_once, curl_start);
	r.buf = malloc(REPLY_MAX + 1);
	h = curl_easy_init();
	if (r.buf == NULL || h == NULL) {
		tr_error_set(err, TR_ERR_LOCAL, "out of memory");
		goto out;
	}
	curl_easy_setopt(h, CURLOPT_URL, url);
	/* tokens and secrets travel over verified TLS only */
	curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, "https");
	curl_easy_setopt(h, CURLOPT_SSL_VERIFYPEER, 1L);
	curl_easy_setopt(h, CURLOPT_SSL_VERIFYHOST, 2L);
	curl_easy_setopt(h, CURLOPT_SSLVERSION, (long)CURL_SSLVERSION_TLSv1_2);
	if (c->ca_file != NULL)
		curl_easy_setopt(h, CURLOPT_CAINFO, c->ca_file);
	curl_easy_setopt(h, CURLOPT_POSTFIELDS, form);
	curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_data);
	curl_easy_setopt(h, CURLOPT_WRITEDATA, &r);
	curl_easy_setopt(h, CURLOPT_ERRORBUFFER, cerr);
	curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(h, CURLOPT_TIMEOUT, (long)(c->timeout_s > 0 ? c->timeout_s : 60));
	curl_easy_setopt(h, CURLOPT_FOLLOWLOCATION, 0L);
	cc = curl_easy_perform(h);
	if (cc != CURLE_OK) {
		/* a certificate that does not verify is a setting to fix, not a retry */
		bool tls = cc == CURLE_PEER_FAILED_VERIFICATION || cc == CURLE_SSL_CACERT_BADFILE ||
			   cc == CURLE_SSL_CERTPROBLEM;

		tr_error_set(err, tls ? TR_ERR_TLS : TR_ERR_TEMP, "%s token for %s: %s: %s", c->side,
			     who, url, cerr[0] != '\0' ? cerr : curl_easy_strerror(cc));
		goto out;
	}
	curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &status);
	if (status != 200) {
		json_t *root = json_loadb(r.buf, r.len, 0, NULL);
		char e[64] = "", d[300] = "";

		if (json_is_object(root)) {
			field(root, "error", e, sizeof(e));
			field(root, "error_description", d, sizeof(d));
		}
		json_decref(root);
		tr_error_set(err, status >= 500 || status == 429 ? TR_ERR_TEMP : TR_ERR_AUTH,
			     "%s token for %s: %s answered %ld%s%s%s%s", c->side, who, url, status,
			     e[0] ? ": " : "", e, d[0] ? ": " : "", d);
		goto out;
	}
	if (oauth_parse_token(r.buf, r.len, tok, size, ttl, err) < 0) {
		tr_error_prefix(err, "%s token for %s: %s's answer", c->side, who, url);
		goto out;
	}
	ret = 0;
out:
	if (h != NULL)
		curl_easy_cleanup(h);
	if (r.buf != NULL) {
		explicit_bzero(r.buf, r.len);
		free(r.buf);
	}
	explicit_bzero(form, strlen(form));
	return ret;
}

static char *esc(const char *s)
{
	char *e = curl_easy_escape(NULL, s, 0), *out;

	if (e == NULL)
		return NULL;
	out = strdup(e);
	explicit_bzero(e, strlen(e));
	curl_free(e);
	return out;
}

/* ---- Microsoft 365 ------------------------------------------------------ */

/* The certificate's SHA-1 thumbprint, base64url: the assertion's x5t. */
static char *thumbprint(const char *path, struct tr_error *err)
{
	FILE *f = fopen(path, "re");
	X509 *x = f != NULL ? PEM_read_X509(f, NULL, NULL, NULL) : NULL;
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned int n = 0;
	char *out = NULL;

	if (f != NULL)
		fclose(f);
	if (x == NULL) {
		tr_error_set(err, TR_ERR_USAGE, "cannot read a PEM certificate from %s", path);
		return NULL;
	}
	if (X509_digest(x, EVP_sha1(), md, &n) == 1)
		out = b64url(md, n);
	X509_free(x);
	if (out == NULL)
		tr_error_set(err, TR_ERR_LOCAL, "out of memory");
	return out;
}

static int ms365(const struct oauth_conf *c, const char *email, char *tok, size_t size,
		 long *ttl, struct tr_error *err)
{
	char *url = NULL, *form = NULL, *cid = esc(c->client_id), *cred = NULL, *ecred = NULL;
	int r = -1;

	if (cid == NULL) {
		tr_error_set(err, TR_ERR_LOCAL, "out of memory");
		return -1;
	}
	if (c->token_url != NULL)
		url = strdup(c->token_url);
	else if (asprintf(&url, "https://login.microsoftonline.com/%s/oauth2/v2.0/token",
			  c->tenant) < 0)
		url = NULL;
	if (url == NULL) {
		tr_error_set(err, TR_ERR_LOCAL, "out of memory");
		goto out;
	}
	if (c->cert_file != NULL) {
		/* RFC 7523 client assertion, as Microsoft's identity platform wants it */
		char id[40], *x5t = thumbprint(c->cert_file, err), *pem;
		time_t now = time(NULL);
		json_t *hdr, *cl;

		if (x5t == NULL)
			goto out;
		pem = read_small(c->key_file, "certificate's key", err);
		if (pem == NULL) {
			free(x5t);
			goto out;
		}
		jti(id, sizeof(id));
		hdr = json_pack("{s:s, s:s, s:s}", "alg", "RS256", "typ", "JWT", "x5t", x5t);
		cl = json_pack("{s:s, s:s, s:s, s:s, s:I, s:I, s:I}", "aud", url, "iss",
			       c->client_id, "sub", c->client_id, "jti", id, "nbf",
			       (json_int_t)now, "iat", (json_int_t)now, "exp",
			       (json_int_t)now + 600);
		cred = hdr != NULL && cl != NULL ? jwt_rs256(hdr, cl, pem, "certificate's key", err)
						 : NULL;
		json_decref(hdr);
		json_decref(cl);
		explicit_bzero(pem, strlen(pem));
		free(pem);
		free(x5t);
		if (cred == NULL)
			goto out;
		if (asprintf(&form, "grant_type=client_credentials&client_id=%s&scope=%s&"
			     "client_assertion_type=urn%%3Aietf%%3Aparams%%3Aoauth%%3Aclient-"
			     "assertion-type%%3Ajwt-bearer&client_assertion=%s", cid,
			     "https%3A%2F%2Foutlook.office365.com%2F.default", cred) < 0)
			form = NULL;
	} else {
		if (secret_from_file(c->secret_file, &cred, err) < 0) {
			tr_error_prefix(err, "%s token for %s", c->side, email);
			goto out;
		}
		ecred = esc(cred);
		if (ecred != NULL &&
		    asprintf(&form, "grant_type=client_credentials&client_id=%s&scope=%s&"
			     "client_secret=%s", cid,
			     "https%3A%2F%2Foutlook.office365.com%2F.default", ecred) < 0)
			form = NULL;
	}
	if (form == NULL) {
		tr_error_set(err, TR_ERR_LOCAL, "out of memory");
		goto out;
	}
	r = post_token(c, url, form, email, tok, size, ttl, err);
out:
	wipe_free(form);
	wipe_free(cred);
	wipe_free(ecred);
	free(cid);
	free(url);
	return r;
}

/* ---- Google Workspace --------------------------------------------------- */

static int google(const struct oauth_conf *c, const char *email, const char *user, char *tok,
		  size_t size, long *ttl, struct tr_error *err)
{
	char *text = read_small(c->secret_file, "service account key", err), *jwt = NULL;
	char *form = NULL;
	const char *iss, *pem, *uri, *kid;
	json_t *root = NULL, *hdr = NULL, *cl = NULL;
	time_t now = time(NULL);
	int r = -1;

	if (text == NULL)
		return -1;
	root = json_loads(text, 0, NULL);
	iss = json_string_value(json_object_get(root, "client_email"));
	pem = json_string_value(json_object_get(root, "private_key"));
	uri = json_string_value(json_object_get(root, "token_uri"));
	kid = json_string_value(json_object_get(root, "private_key_id"));
	if (c->token_url != NULL)
		uri = c->token_url;
	if (uri == NULL)
		uri = GOOGLE_TOKEN_URL;
	if (iss == NULL || pem == NULL) {
		tr_error_set(err, TR_ERR_USAGE, "%s: not a service account key (JSON with "
			     "client_email and private_key)", c->secret_file);
		goto out;
	}
	hdr = kid != NULL ? json_pack("{s:s, s:s, s:s}", "alg", "RS256", "typ", "JWT", "kid", kid)
			  : json_pack("{s:s, s:s}", "alg", "RS256", "typ", "JWT");
	/* domain-wide delegation: the service account acts as the mailbox */
	cl = json_pack("{s:s, s:s, s:s, s:s, s:I, s:I}", "iss", iss, "sub", user, "scope",
		       GOOGLE_SCOPE, "aud", uri, "iat", (json_int_t)now, "exp",
		       (json_int_t)now + 3600);
	if (hdr == NULL || cl == NULL) {
		tr_error_set(err, TR_ERR_LOCAL, "out of memory");
		goto out;
	}
	jwt = jwt_rs256(hdr, cl, pem, "service account key", err);
	if (jwt == NULL)
		goto out;
	if (asprintf(&form, "grant_type=urn%%3Aietf%%3Aparams%%3Aoauth%%3Agrant-type%%3Ajwt-bearer"
		     "&assertion=%s", jwt) < 0) {
		form = NULL;
		tr_error_set(err, TR_ERR_LOCAL, "out of memory");
		goto out;
	}
	r = post_token(c, uri, form, email, tok, size, ttl, err);
out:
	json_decref(hdr);
	json_decref(cl);
	if (root != NULL) {
		json_t *pk = json_object_get(root, "private_key");

		if (json_is_string(pk))
			explicit_bzero((char *)json_string_value(pk), json_string_length(pk));
		json_decref(root);
	}
	explicit_bzero(text, strlen(text));
	free(text);
	wipe_free(jwt);
	wipe_free(form);
	return r;
}

int oauth_flow_fetch(const struct oauth_conf *c, const char *email, const char *user, char *tok,
		     size_t size, long *ttl, struct tr_error *err)
{
	*ttl = 0;
	if (c->provider == OAUTH_PROVIDER_MS365)
		return ms365(c, email, tok, size, ttl, err);
	return google(c, email, user, tok, size, ttl, err);
}
