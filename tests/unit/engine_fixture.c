/* engine_fixture: see engine_fixture.h */
#include "config.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <ftw.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "engine_fixture.h"
#include "jobconf.h"
#include "log.h"
#include "scheduler.h"

static FILE *devnull;

static void make_dir(struct fx *fx)
{
	const char *t = getenv("TMPDIR");
	struct stat sb;

	if (stat("/dev/shm", &sb) == 0 && S_ISDIR(sb.st_mode) && access("/dev/shm", W_OK) == 0)
		t = "/dev/shm";
	snprintf(fx->dir, sizeof(fx->dir), "%s/test_engine.XXXXXX", t != NULL && *t ? t : "/tmp");
	assert_non_null(mkdtemp(fx->dir));
}

static int remove_one(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
	(void)sb;
	(void)flag;
	(void)ftw;
	return remove(path);
}

/* rm -rf without a shell: the crash test makes hundreds of states. */
static void remove_dir(struct fx *fx)
{
	assert_int_equal(nftw(fx->dir, remove_one, 16, FTW_DEPTH | FTW_PHYS), 0);
}

static void open_state(struct fx *fx)
{
	struct tr_error err;

	if (state_open(fx->dir, &fx->state, &err) < 0)
		fail_msg("state_open: %s", err.msg);
	if (state_account(fx->state, "fx", &fx->account_id, &err) < 0)
		fail_msg("state_account: %s", err.msg);
}

void fx_reopen_state(struct fx *fx)
{
	state_close(fx->state);
	fx->state = NULL;
	open_state(fx);
}

void fx_new_state(struct fx *fx)
{
	state_close(fx->state);
	fx->state = NULL;
	remove_dir(fx);
	make_dir(fx);
	open_state(fx);
}

void fx_worlds(struct fx *fx, const char *src_prefix, char src_delim, const char *dst_prefix,
	       char dst_delim)
{
	mem_world_free(fx->src);
	mem_world_free(fx->dst);
	fx->src = mem_world_new(src_prefix, src_delim);
	fx->dst = mem_world_new(dst_prefix, dst_delim);
	assert_non_null(fx->src);
	assert_non_null(fx->dst);
}

int fx_setup(void **state)
{
	struct fx *fx = calloc(1, sizeof(*fx));
	struct tr_error err;

	if (fx == NULL)
		return -1;
	if (getenv("TEST_VERBOSE") == NULL) {
		if (devnull == NULL)
			devnull = fopen("/dev/null", "w");
		log_set_stream(devnull);
	} else {
		log_set_level(LOG_DEBUG);
	}
	make_dir(fx);
	open_state(fx);
	fx_worlds(fx, "", '/', "", '/');
	if (stage_init(&fx->sp, fx->dir, 128 * 1024, &err) < 0 ||
	    stage_init(&fx->sp2, fx->dir, 128 * 1024, &err) < 0)
		return -1;
	fx->lim.batch_bytes = 1u << 20;
	fx->lim.batch_count = 100;
	fx->src_lim = limiter_new("source", 4, 16);
	fx->dst_lim = limiter_new("destination", 4, 16);
	fx->src_ep = (struct store_endpoint){ .label = "source", .host = "src.mem", .port = 1,
					      .tls = TLS_MODE_NONE };
	fx->dst_ep = (struct store_endpoint){ .label = "destination", .host = "dst.mem", .port = 2,
					      .tls = TLS_MODE_NONE };
	*state = fx;
	return 0;
}

int fx_teardown(void **state)
{
	struct fx *fx = *state;

	state_close(fx->state);
	stage_free(&fx->sp);
	stage_free(&fx->sp2);
	mem_world_free(fx->src);
	mem_world_free(fx->dst);
	limiter_free(fx->src_lim);
	limiter_free(fx->dst_lim);
	remove_dir(fx);
	free(fx);
	return 0;
}

char *fx_msg(const char *id, const char *subject, const char *body)
{
	char *m = NULL;
	char idline[300] = "";

	if (id != NULL)
		snprintf(idline, sizeof(idline), "Message-ID: <%s>\r\n", id);
	if (asprintf(&m, "%sDate: Mon, 1 Jan 2024 10:00:00 +0000\r\nFrom: Alice <alice@src.test>"
		     "\r\nTo: bob@dst.test\r\nSubject: %s\r\n\r\n%s\r\n", idline, subject, body) < 0)
		return NULL;
	return m;
}

uint32_t fx_add(struct mem_world *w, const char *raw, const char *id, const char *subject,
		const char *body, const char *flags)
{
	char *m = fx_msg(id, subject, body);
	uint32_t uid = 0;

	assert_non_null(m);
	assert_int_equal(mem_msg_add(w, raw, m, strlen(m), flags, "02-Jan-2024 10:00:00 +0100",
				     &uid), 0);
	free(m);
	return uid;
}

/* The two stores of a run: plain mem stores, or fault stores around them. */
static void open_stores(struct fx *fx, struct store **src, struct store **dst)
{
	struct store_conf sc = { &fx->src_ep, NULL, fx->src }, dc = { &fx->dst_ep, NULL, fx->dst };
	const struct store_driver *drv = &store_mem_driver;
	struct tr_error err;

	if (fx->fault != NULL) {
		fx->src_plan = (struct fault_plan){ &store_mem_driver, { NULL, NULL, fx->src },
						    fx->fault, "source" };
		fx->dst_plan = (struct fault_plan){ &store_mem_driver, { NULL, NULL, fx->dst },
						    fx->fault, "destination" };
		sc.arg = &fx->src_plan;
		dc.arg = &fx->dst_plan;
		drv = &store_fault_driver;
	}
	*src = *dst = NULL;
	if (store_open(drv, &sc, src, &err) < 0 && fx->fault == NULL)
		fail_msg("open source: %s", err.msg);
	if (store_open(drv, &dc, dst, &err) < 0 && fx->fault == NULL)
		fail_msg("open destination: %s", err.msg);
}

int fx_sync(struct fx *fx, const char *src_raw, const char *dst_raw, struct sync_counts *c,
	    struct tr_error *err)
{
	struct sync_folder_job job;
	struct store *src, *dst;
	struct store_status st;
	int r = -1;

	memset(c, 0, sizeof(*c));
	tr_error_clear(err);
	open_stores(fx, &src, &dst);
	if (src == NULL || dst == NULL) {
		tr_error_set(err, TR_ERR_STOPPED, "a store did not open");
		goto out;
	}
	memset(&job, 0, sizeof(job));
	job.ctx = "fx";
	job.src = src;
	job.dst = dst;
	job.state = fx->state;
	job.account_id = fx->account_id;
	job.stage = &fx->sp;
	job.stage2 = fx->pipeline ? &fx->sp2 : NULL;
	job.limits = &fx->lim;
	job.pass = fx->pass;
	job.src_raw = job.src_name = src_raw;
	job.dst_raw = job.dst_name = dst_raw;
	job.dst_exists = job.dst_listed = mem_folder_exists(fx->dst, dst_raw);
	if (store_status_many(src, &src_raw, 1, &st, err) < 0)
		goto out;
	job.src_status = st.uidvalidity != 0 ? &st : NULL;
	r = sync_folder(&job, c, err);
out:
	store_close(src);
	store_close(dst);
	return r;
}

struct sync_counts fx_sync_ok(struct fx *fx, const char *src_raw, const char *dst_raw)
{
	struct sync_counts c;
	struct tr_error err;

	if (fx_sync(fx, src_raw, dst_raw, &c, &err) < 0)
		fail_msg("sync %s -> %s: %s", src_raw, dst_raw, err.msg);
	return c;
}

int fx_account(struct fx *fx, struct account_result *res)
{
	struct account_opts o;
	struct job_config cfg;
	int r;

	jobconf_init(&cfg, JOB_MIGRATE);
	cfg.retries = 1;
	cfg.subscribe = fx->subscribe;
	cfg.spool_dir = fx->dir;        /* borrowed: given back before jobconf_free */
	memset(&o, 0, sizeof(o));
	o.cfg = &cfg;
	o.label = "u@test";
	o.src_ep = &fx->src_ep;
	o.dst_ep = &fx->dst_ep;
	o.src_cr.user = "u";
	o.dst_cr.user = "u";
	if (fx->fault != NULL) {
		fx->src_plan = (struct fault_plan){ &store_mem_driver, { NULL, NULL, fx->src },
						    fx->fault, "source" };
		fx->dst_plan = (struct fault_plan){ &store_mem_driver, { NULL, NULL, fx->dst },
						    fx->fault, "destination" };
		o.src_drv = o.dst_drv = &store_fault_driver;
		o.src_arg = &fx->src_plan;
		o.dst_arg = &fx->dst_plan;
	} else {
		o.src_drv = o.dst_drv = &store_mem_driver;
		o.src_arg = fx->src;
		o.dst_arg = fx->dst;
	}
	o.map = &fx->map;
	o.state = fx->state;
	o.src_lim = fx->src_lim;
	o.dst_lim = fx->dst_lim;
	o.limits = &fx->lim;
	o.max_sessions = 1;
	r = account_run(&o, res);
	cfg.spool_dir = NULL;
	jobconf_free(&cfg);
	return r;
}

/* One message as the multiset compares it. */
static char *msg_key(const char *flags, const char *date, const char *data, size_t len)
{
	size_t h = strlen(flags) + strlen(date) + 2;
	char *k = malloc(h + len + 1);

	assert_non_null(k);
	snprintf(k, h + 1, "%s|%s|", flags, date);
	memcpy(k + h, data, len);
	k[h + len] = '\0';
	return k;
}

static int cmp_str(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

static char **keys_of(struct mem_world *w, const char *raw, unsigned rewrite, size_t *n)
{
	struct mem_msg_copy *v;
	char **k;

	if (mem_folder_read(w, raw, &v, n) < 0) {
		*n = 0;
		return NULL;
	}
	k = calloc(*n + 1, sizeof(*k));
	assert_non_null(k);
	for (size_t i = 0; i < *n; i++) {
		char *data = v[i].data;
		size_t len = v[i].len;

		if (rewrite != 0)
			assert_int_equal(mem_rewrite(rewrite, v[i].data, v[i].len, &data, &len), 0);
		k[i] = msg_key(v[i].flags, v[i].date, data, len);
		if (data != v[i].data)
			free(data);
	}
	mem_msgs_free(v, *n);
	qsort(k, *n, sizeof(*k), cmp_str);
	return k;
}

static void keys_free(char **k, size_t n)
{
	for (size_t i = 0; i < n; i++)
		free(k[i]);
	free(k);
}

bool fx_same(struct fx *fx, const char *src_raw, const char *dst_raw, unsigned rewrite,
	     char *why, size_t len)
{
	size_t ns, nd;
	char **s = keys_of(fx->src, src_raw, rewrite, &ns);
	char **d = keys_of(fx->dst, dst_raw, 0, &nd);
	bool same = ns == nd && d != NULL;

	for (size_t i = 0; same && i < ns; i++)
		if (strcmp(s[i], d[i]) != 0) {
			snprintf(why, len, "%s: message %zu differs: source \"%.60s\", destination "
				 "\"%.60s\"", dst_raw, i, s[i], d[i]);
			same = false;
		}
	if (ns != nd || d == NULL)
		snprintf(why, len, "%s: %zu message(s) on the source, %zu on the destination%s",
			 dst_raw, ns, nd, d == NULL ? " (no such folder)" : "");
	keys_free(s, ns);
	keys_free(d, nd);
	return same;
}

void fx_assert_same(struct fx *fx, const char *src_raw, const char *dst_raw, unsigned rewrite)
{
	char why[512];

	if (!fx_same(fx, src_raw, dst_raw, rewrite, why, sizeof(why)))
		fail_msg("%s", why);
}

size_t fx_count(struct mem_world *w, const char *raw)
{
	return mem_folder_status(w, raw).messages;
}
