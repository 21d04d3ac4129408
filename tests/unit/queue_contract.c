/* The queue's contract (queue.h, queue_backend.h): the unit tests of its
 * semantics, one suite run against every backend, so that workers, the
 * command line and the HTTP API see the same queue whichever holds it.
 * test_queue_pg runs it against a real PostgreSQL
 * (tests/integration/test_pg_units.sh), test_queue_sqlite against SQLite
 * (no server).  Submit and read back with no password in clear anywhere,
 * claims racing from several connections, leases taken over, cancel,
 * retry, delete, status, rekey.  Each test starts from an empty queue (the
 * runner's setup) and looks at its tables with the runner's SQL, written
 * in what both dialects read alike. */
#include "config.h"

#include <inttypes.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>
#include <jansson.h>

#include "job.h"
#include "jobconf.h"
#include "queue.h"
#include "queue_contract.h"
#include "seal.h"
#include "secret.h"

/* The case of the test running now (cmocka runs one at a time): set by
 * the runner's setup (queue_contract_case), before a test's first line. */
static struct queue_case *C;

static const char *const passwords[] = {
	"Pw-alpha-7!", "Pw-beta-8?", "Dst-gamma-9", "Admin-delta-0", "Pw-eps-1", "Pw-zeta-2",
};

static void must(int r, const struct tr_error *err)
{
	if (r < 0)
		fail_msg("%s", err->msg);
}

void queue_contract_case(void **state)
{
	C = *state;
}

/* sql with %s for the dialect's now (C->now) or a second ago (C->ago),
 * in a buffer of the caller's. */
static const char *sqlf(char *buf, size_t len, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
static const char *sqlf(char *buf, size_t len, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(buf, len, fmt, ap);
	va_end(ap);
	return buf;
}

/* The first row's first column of sql, as a number. */
static long long one(const char *sql)
{
	return C->one(C, sql);
}

/* The same as text ("" for NULL), the caller's to free. */
static char *one_str(const char *sql)
{
	return C->one_str(C, sql);
}

static void run_sql(const char *sql)
{
	C->run(C, sql);
}

/* A finished job of n accounts (a@x.it, b@x.it, ...), passwords from
 * passwords[]; b's destination password differs; one bad row skipped. */
static void make_job(struct job_config *cfg, struct job_accounts *ja, int n)
{
	struct tr_error err;
	char *csv;
	size_t len = 0;
	FILE *f = open_memstream(&csv, &len);
	int i;

	fputs("email,password,dst_password\n", f);
	for (i = 0; i < n; i++) {
		if (i == 1)
			fprintf(f, "b@x.it,%s,%s\n", passwords[1], passwords[2]);
		else if (i < 26)
			fprintf(f, "%c@x.it,%s,\n", 'a' + i, passwords[i % 2 == 0 ? 0 : 4]);
		else
			fprintf(f, "u%d@x.it,%s,\n", i, passwords[5]);
	}
	fputs("not-an-address,whatever,\n", f);
	fclose(f);
	memset(ja, 0, sizeof(*ja));
	must(job_accounts_parse("accounts.csv", csv, len, ja, &err), &err);
	free(csv);
	assert_int_equal(ja->n, (size_t)n);
	assert_int_equal(ja->n_bad, 1);
	jobconf_init(cfg, JOB_RUN);
	cfg->name = strdup("jobs/acme.job");
	must(jobconf_set(cfg, "src", "imap.old.example:993", NULL, &err), &err);
	must(jobconf_set(cfg, "dst", "mail.new.example", NULL, &err), &err);
	must(jobconf_set(cfg, "accounts", "jobs/acme.csv", NULL, &err), &err);
	must(jobconf_set(cfg, "ca-file", "certs/ca.pem", NULL, &err), &err);
	must(jobconf_set(cfg, "state", "/var/lib/trasloco/acme", NULL, &err), &err);
	must(jobconf_set(cfg, "report", "acme.json", NULL, &err), &err);
	must(jobconf_set(cfg, "src-max-per-account", "2", NULL, &err), &err);
	must(jobconf_set(cfg, "src-max-connections", "6", NULL, &err), &err);
	must(jobconf_set(cfg, "dst-max-per-account", "3", NULL, &err), &err);
	must(jobconf_set(cfg, "caps-per-egress", NULL, NULL, &err), &err);
	must(jobconf_set(cfg, "dst-admin", "admin@new.example", NULL, &err), &err);
	must(jobconf_finish(cfg, &err), &err);
}

static int64_t submit(struct queue *q, int n, const char *name)
{
	struct job_config cfg;
	struct job_accounts ja;
	struct tr_error err;
	int64_t id;

	make_job(&cfg, &ja, n);
	must(queue_submit(q, &cfg, &ja, passwords[3], name, &id, &err), &err);
	assert_true(id > 0);
	jobconf_free(&cfg);
	job_accounts_free(&ja);
	return id;
}

static struct queue *open_q(void)
{
	struct tr_error err;
	struct queue *q;

	must(queue_open(C->where, C->keys, &q, &err), &err);
	return q;
}

static char *hex(const char *s)
{
	char *h = malloc(2 * strlen(s) + 1);
	size_t i;

	for (i = 0; s[i] != '\0'; i++)
		sprintf(h + 2 * i, "%02x", (unsigned char)s[i]);
	h[2 * strlen(s)] = '\0';
	return h;
}

/* No password, nor its hex (how PostgreSQL shows bytes), anywhere in the
 * store (the runner's dump: every table's rows, or the files). */
static void no_password_anywhere(void)
{
	size_t len, k;
	char *all = C->dump(C, &len);

	assert_non_null(all);
	assert_true(len > 0);
	for (k = 0; k < sizeof(passwords) / sizeof(passwords[0]); k++) {
		char *h = hex(passwords[k]);

		if (memmem(all, len, passwords[k], strlen(passwords[k])) != NULL ||
		    memmem(all, len, h, strlen(h)) != NULL)
			fail_msg("password %zu in clear in the %s queue", k, C->backend);
		free(h);
	}
	free(all);
}

void test_submit(void **state)
{
	struct queue *q = open_q();
	struct tr_error err;
	struct queue_claim c;
	char *config, *admin, cwd[4096], want[4200], *s, sql[256];
	int64_t id = submit(q, 3, NULL);

	(void)state;
	assert_int_equal(one("SELECT count(*) FROM q_accounts"), 3);
	s = one_str("SELECT name FROM q_jobs");
	assert_string_equal(s, "acme");
	free(s);
	s = one_str("SELECT src || ' ' || dst FROM q_jobs");
	assert_string_equal(s, "imap.old.example:993 mail.new.example:993");
	free(s);
	s = one_str("SELECT skipped FROM q_jobs");
	assert_non_null(strstr(s, "\"line\":5"));
	free(s);
	assert_int_equal(one("SELECT count(*) FROM q_caps WHERE side = 'src' AND "
			     "max_per_account = 2 AND max_total = 6 AND per_egress"), 1);
	assert_int_equal(one("SELECT count(*) FROM q_caps WHERE side = 'dst' AND "
			     "max_per_account = 3 AND max_total = 40 AND per_egress"), 1);
	assert_int_equal(one("SELECT count(*) FROM q_accounts WHERE dst_password IS NULL"), 2);
	no_password_anywhere();

	/* the stored settings: paths absolute, what a queued job does not keep left out */
	must(queue_job_config(q, id, &config, &admin, &err), &err);
	assert_non_null(getcwd(cwd, sizeof(cwd)));
	snprintf(want, sizeof(want), "ca-file = %s/certs/ca.pem\n", cwd);
	assert_non_null(strstr(config, want));
	assert_null(strstr(config, "accounts"));
	assert_null(strstr(config, "state"));
	assert_null(strstr(config, "report"));
	assert_non_null(strstr(config, "dst-admin = admin@new.example"));
	assert_non_null(strstr(config, "src-max-per-account = 2"));
	assert_non_null(strstr(config, "caps-per-egress = yes"));
	assert_string_equal(admin, passwords[3]);
	free(config);
	secret_free(admin);

	/* claims in CSV order, passwords back as they were */
	assert_int_equal(queue_claim(q, "w1", 30, &c, &err), 1);
	assert_string_equal(c.email, "a@x.it");
	assert_string_equal(c.password, passwords[0]);
	assert_null(c.dst_password);
	assert_null(c.src_user);
	assert_int_equal(c.line, 2);
	assert_int_equal(c.attempts, 1);
	assert_false(c.takeover);
	assert_int_equal(c.job_id, id);
	queue_claim_free(&c);
	assert_int_equal(queue_claim(q, "w1", 30, &c, &err), 1);
	assert_string_equal(c.email, "b@x.it");
	assert_string_equal(c.password, passwords[1]);
	assert_string_equal(c.dst_password, passwords[2]);
	queue_claim_free(&c);

	/* a name given wins; a job of that name is found by it */
	{
		int64_t id2 = submit(q, 1, "acme-2"), got;

		must(queue_job_id(q, "acme-2", &got, &err), &err);
		assert_int_equal(got, id2);
		must(queue_job_id(q, "acme", &got, &err), &err);
		assert_int_equal(got, id);
		assert_int_equal(queue_job_id(q, "nope", &got, &err), -1);
		assert_int_equal(err.kind, TR_ERR_USAGE);
	}
	/* a sealed value moved to another row does not open there */
	run_sql(sqlf(sql, sizeof(sql), "UPDATE q_accounts SET password = (SELECT password FROM "
		     "q_accounts WHERE line = 2 AND job_id = %" PRId64 ") WHERE line = 4 AND "
		     "job_id = %" PRId64, id, id));      /* a's on c */
	assert_int_equal(queue_claim(q, "w1", 30, &c, &err), -1);
	assert_non_null(strstr(err.msg, "altered or sealed for another place"));
	assert_non_null(strstr(err.msg, "c@x.it"));
	/* and the claim was undone */
	assert_int_equal(one(sqlf(sql, sizeof(sql), "SELECT count(*) FROM q_accounts WHERE line = 4 "
				  "AND job_id = %" PRId64 " AND state = 'pending' AND attempts = 0",
				  id)), 1);
	queue_close(q);
}

/* ---- racing claims ---- */

#define RACERS 4
#define RACE_ACCOUNTS 60

struct racer {
	char name[16];
	int64_t rows[RACE_ACCOUNTS];
	int n;
	int failed;
};

static void *race(void *arg)
{
	struct racer *r = arg;
	struct tr_error err;
	struct queue *q;
	struct queue_claim c;
	int got;

	if (queue_open(C->where, C->keys, &q, &err) < 0) {
		r->failed = 1;
		return NULL;
	}
	while ((got = queue_claim(q, r->name, 60, &c, &err)) == 1) {
		if (r->n < RACE_ACCOUNTS)
			r->rows[r->n] = c.row;
		r->n++;
		queue_claim_free(&c);
	}
	if (got < 0)
		r->failed = 1;
	queue_close(q);
	return NULL;
}

void test_race(void **state)
{
	struct queue *q = open_q();
	struct racer rs[RACERS];
	pthread_t t[RACERS];
	int i, j, total = 0;
	int64_t seen[RACE_ACCOUNTS * RACERS];

	(void)state;
	submit(q, RACE_ACCOUNTS, NULL);
	memset(rs, 0, sizeof(rs));
	for (i = 0; i < RACERS; i++) {
		snprintf(rs[i].name, sizeof(rs[i].name), "racer%d", i);
		assert_int_equal(pthread_create(&t[i], NULL, race, &rs[i]), 0);
	}
	for (i = 0; i < RACERS; i++)
		pthread_join(t[i], NULL);
	for (i = 0; i < RACERS; i++) {
		assert_int_equal(rs[i].failed, 0);
		for (j = 0; j < rs[i].n; j++) {
			int k;

			for (k = 0; k < total; k++)
				if (seen[k] == rs[i].rows[j])
					fail_msg("row %" PRId64 " claimed twice", seen[k]);
			seen[total++] = rs[i].rows[j];
		}
	}
	assert_int_equal(total, RACE_ACCOUNTS);
	/* every claim is one row of its claimer, attempts 1 */
	assert_int_equal(one("SELECT count(*) FROM q_accounts WHERE state = 'running' AND "
			     "attempts = 1 AND takeovers = 0 AND worker LIKE 'racer%'"),
			 RACE_ACCOUNTS);
	for (i = 0; i < RACERS; i++) {
		char sql[128];

		snprintf(sql, sizeof(sql), "SELECT count(*) FROM q_accounts WHERE worker = '%s'",
			 rs[i].name);
		assert_int_equal(one(sql), rs[i].n);
	}
	queue_close(q);
}

/* ---- leases ---- */

void test_takeover(void **state)
{
	struct queue *a = open_q(), *b = open_q();
	struct tr_error err;
	struct queue_claim ca, cb;
	struct queue_counts n = { .copied = 5, .bytes = 500, .folders_done = 1, .folders_total = 2 };
	int64_t *lost;
	size_t n_lost;

	(void)state;
	submit(a, 2, NULL);
	must(queue_worker_register(a, "A", "host-a", 1, "", 2, &err), &err);
	must(queue_worker_register(b, "B", "host-b", 2, "eu", 2, &err), &err);
	assert_int_equal(queue_claim(a, "A", 30, &ca, &err), 1);
	must(queue_progress(a, "A", ca.row, &n, &err), &err);
	assert_int_equal(one("SELECT copied FROM q_accounts WHERE worker = 'A'"), 5);
	/* within the lease: B gets the other account, not A's */
	assert_int_equal(queue_claim(b, "B", 30, &cb, &err), 1);
	assert_true(cb.row != ca.row);
	assert_int_equal(queue_finish(b, "B", cb.row, "ok", NULL, &n, 1.5, &err), 1);
	queue_claim_free(&cb);
	assert_int_equal(queue_claim(b, "B", 30, &cb, &err), 0);
	/* A's heartbeat leaves it a lease of 1 s (the database's clock), and
	 * A goes silent */
	must(queue_renew(a, "A", 1, &ca.row, 1, &lost, &n_lost, &err), &err);
	assert_int_equal(n_lost, 0);
	sleep(2);
	assert_int_equal(queue_claim(b, "B", 30, &cb, &err), 1);
	assert_int_equal(cb.row, ca.row);
	assert_true(cb.takeover);
	assert_int_equal(cb.attempts, 2);
	assert_string_equal(cb.password, ca.password);
	assert_int_equal(one("SELECT takeovers FROM q_accounts WHERE worker = 'B' AND "
			     "state = 'running'"), 1);
	/* counts start again with the new run */
	assert_int_equal(one("SELECT copied FROM q_accounts WHERE state = 'running'"), 0);
	/* A no longer owns it: no outcome, no progress, no release; renew says lost */
	assert_int_equal(queue_finish(a, "A", ca.row, "failed", "late", &n, 1, &err), 0);
	must(queue_progress(a, "A", ca.row, &n, &err), &err);
	assert_int_equal(one("SELECT copied FROM q_accounts WHERE state = 'running'"), 0);
	must(queue_release(a, "A", ca.row, 0, &err), &err);
	assert_int_equal(one("SELECT count(*) FROM q_accounts WHERE state = 'running' AND "
			     "worker = 'B'"), 1);
	must(queue_renew(a, "A", 30, &ca.row, 1, &lost, &n_lost, &err), &err);
	assert_int_equal(n_lost, 1);
	assert_int_equal(lost[0], ca.row);
	free(lost);
	/* B's renew keeps it, and sees B */
	must(queue_renew(b, "B", 30, &cb.row, 1, &lost, &n_lost, &err), &err);
	assert_int_equal(n_lost, 0);
	assert_null(lost);
	assert_int_equal(queue_finish(b, "B", cb.row, "partial", "one folder failed", &n, 2, &err),
			 1);
	assert_int_equal(one("SELECT count(*) FROM q_accounts WHERE state = 'partial' AND "
			     "error = 'one folder failed' AND lease_until IS NULL"), 1);
	/* a finish after the lease ran out, nobody having taken it: counts */
	queue_claim_free(&ca);
	queue_claim_free(&cb);
	{
		int got;

		must(queue_retry(a, "acme", true, &got, &err), &err);
		assert_int_equal(got, 1);
	}
	assert_int_equal(queue_claim(a, "A", 1, &ca, &err), 1);
	sleep(2);
	assert_int_equal(queue_finish(a, "A", ca.row, "ok", NULL, &n, 2, &err), 1);
	queue_claim_free(&ca);
	must(queue_worker_stopped(a, "A", &err), &err);
	assert_int_equal(one("SELECT count(*) FROM q_workers WHERE stopped IS NOT NULL"), 1);
	queue_close(a);
	queue_close(b);
}

void test_release(void **state)
{
	struct queue *q = open_q();
	struct tr_error err;
	struct queue_claim c;
	char sql[256];

	(void)state;
	submit(q, 1, NULL);
	assert_int_equal(queue_claim(q, "A", 30, &c, &err), 1);
	/* someone else's release changes nothing */
	must(queue_release(q, "B", c.row, 0, &err), &err);
	assert_int_equal(one("SELECT count(*) FROM q_accounts WHERE state = 'running'"), 1);
	must(queue_release(q, "A", c.row, 3600, &err), &err);
	queue_claim_free(&c);
	assert_int_equal(one(sqlf(sql, sizeof(sql), "SELECT count(*) FROM q_accounts WHERE "
				  "state = 'pending' AND worker IS NULL AND not_before > %s",
				  C->now)), 1);
	/* not before its time */
	assert_int_equal(queue_claim(q, "A", 30, &c, &err), 0);
	run_sql(sqlf(sql, sizeof(sql), "UPDATE q_accounts SET not_before = %s", C->ago));
	assert_int_equal(queue_claim(q, "A", 30, &c, &err), 1);
	assert_int_equal(c.attempts, 2);
	assert_false(c.takeover);
	queue_claim_free(&c);
	queue_close(q);
}

/* ---- operators ---- */

void test_cancel(void **state)
{
	struct queue *q = open_q();
	struct tr_error err;
	struct queue_claim c;
	int64_t *lost, held[2];
	size_t n_lost;

	(void)state;
	submit(q, 4, NULL);
	assert_int_equal(queue_claim(q, "A", 30, &c, &err), 1);
	held[0] = c.row;
	queue_claim_free(&c);
	assert_int_equal(queue_claim(q, "A", 30, &c, &err), 1);
	held[1] = c.row;
	assert_int_equal(queue_finish(q, "A", c.row, "ok", NULL, &(struct queue_counts){ 0 }, 1,
				      &err), 1);
	queue_claim_free(&c);
	must(queue_cancel(q, "acme", &err), &err);
	assert_int_equal(one("SELECT count(*) FROM q_accounts WHERE state = 'cancelled'"), 2);
	assert_int_equal(one("SELECT count(*) FROM q_accounts WHERE state = 'running'"), 1);
	/* nothing to claim in a cancelled job */
	assert_int_equal(queue_claim(q, "B", 30, &c, &err), 0);
	/* the running one is lost at the next heartbeat, and cancelled */
	must(queue_renew(q, "A", 30, held, 1, &lost, &n_lost, &err), &err);
	assert_int_equal(n_lost, 1);
	assert_int_equal(lost[0], held[0]);
	free(lost);
	assert_int_equal(one("SELECT count(*) FROM q_accounts WHERE state = 'cancelled'"), 3);
	assert_int_equal(queue_finish(q, "A", held[0], "ok", NULL, &(struct queue_counts){ 0 }, 1,
				      &err), 0);
	assert_int_equal(one("SELECT count(*) FROM q_accounts WHERE state = 'ok'"), 1);
	/* retry brings it back */
	{
		int n;

		must(queue_retry(q, "acme", false, &n, &err), &err);
		assert_int_equal(n, 4);
	}
	assert_int_equal(one("SELECT count(*) FROM q_jobs WHERE cancelled IS NULL"), 1);
	assert_int_equal(queue_claim(q, "B", 30, &c, &err), 1);
	queue_claim_free(&c);
	queue_close(q);
}

static void finish_one(struct queue *q, const char *status)
{
	struct tr_error err;
	struct queue_claim c;
	struct queue_counts n = { .copied = 10, .present = 2, .failed = 1, .bytes = 1000 };

	assert_int_equal(queue_claim(q, "A", 30, &c, &err), 1);
	assert_int_equal(queue_finish(q, "A", c.row, status,
				      strcmp(status, "ok") != 0 ? "it went wrong" : NULL, &n, 3,
				      &err), 1);
	queue_claim_free(&c);
}

void test_retry(void **state)
{
	struct queue *q = open_q();
	struct tr_error err;
	struct queue_claim c;
	int n;

	(void)state;
	submit(q, 5, NULL);
	finish_one(q, "ok");
	finish_one(q, "partial");
	finish_one(q, "failed");
	assert_int_equal(queue_claim(q, "A", 30, &c, &err), 1);     /* d: running */
	queue_claim_free(&c);
	/* e stays pending */
	must(queue_retry(q, "acme", true, &n, &err), &err);
	assert_int_equal(n, 2);
	assert_int_equal(one("SELECT count(*) FROM q_accounts WHERE state = 'pending'"), 3);
	assert_int_equal(one("SELECT count(*) FROM q_accounts WHERE state = 'ok'"), 1);
	/* all but the running one */
	must(queue_retry(q, "acme", false, &n, &err), &err);
	assert_int_equal(n, 4);
	assert_int_equal(one("SELECT count(*) FROM q_accounts WHERE state = 'pending'"), 4);
	assert_int_equal(one("SELECT count(*) FROM q_accounts WHERE state = 'running'"), 1);
	assert_int_equal(queue_retry(q, "no-such-job", false, &n, &err), -1);
	assert_int_equal(err.kind, TR_ERR_USAGE);
	queue_close(q);
}

void test_delete(void **state)
{
	struct queue *q = open_q();
	struct tr_error err;
	int64_t id = submit(q, 3, NULL), other = submit(q, 2, "other"), again;
	char sql[256];

	(void)state;
	if (C->before_delete != NULL)
		C->before_delete(C, id);
	snprintf(sql, sizeof(sql), "%" PRId64, id);
	must(queue_delete(q, sql, &err), &err);
	snprintf(sql, sizeof(sql), "SELECT count(*) FROM q_accounts WHERE job_id = %" PRId64, id);
	assert_int_equal(one(sql), 0);
	if (C->after_delete != NULL)
		C->after_delete(C, id);
	snprintf(sql, sizeof(sql), "SELECT count(*) FROM q_caps WHERE job_id = %" PRId64, id);
	assert_int_equal(one(sql), 0);
	snprintf(sql, sizeof(sql), "SELECT count(*) FROM q_jobs WHERE id = %" PRId64, id);
	assert_int_equal(one(sql), 0);
	/* the other job is untouched */
	snprintf(sql, sizeof(sql), "SELECT count(*) FROM q_accounts WHERE job_id = %" PRId64,
		 other);
	assert_int_equal(one(sql), 2);
	assert_int_equal(queue_delete(q, "acme", &err), -1);
	/* a deleted job's id is never another's (the API answers 404 for it) */
	again = submit(q, 1, NULL);
	assert_true(again > other && other > id);
	snprintf(sql, sizeof(sql), "%" PRId64, id);
	assert_int_equal(queue_job_id(q, sql, &again, &err), -1);
	assert_int_equal(err.kind, TR_ERR_USAGE);
	queue_close(q);
}

static json_t *status_json(struct queue *q, const char *job)
{
	struct tr_error err;
	char *buf = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&buf, &len);
	json_t *j;
	json_error_t je;
	size_t k;

	must(queue_status(q, job, true, f, &err), &err);
	fclose(f);
	for (k = 0; k < sizeof(passwords) / sizeof(passwords[0]); k++)
		assert_null(strstr(buf, passwords[k]));
	j = json_loads(buf, 0, &je);
	if (j == NULL)
		fail_msg("status is not JSON: %s\n%s", je.text, buf);
	free(buf);
	return j;
}

static long long jint(json_t *o, const char *path)
{
	char key[64];
	const char *dot;
	json_t *v = o;

	while ((dot = strchr(path, '.')) != NULL) {
		snprintf(key, sizeof(key), "%.*s", (int)(dot - path), path);
		v = json_object_get(v, key);
		path = dot + 1;
	}
	v = json_object_get(v, path);
	if (!json_is_integer(v))
		fail_msg("%s is not an integer", path);
	return json_integer_value(v);
}

void test_status(void **state)
{
	struct queue *q = open_q();
	struct tr_error err;
	struct queue_claim c;
	json_t *root, *job, *list;
	char *text = NULL;
	size_t len;
	FILE *f;
	int64_t id;

	(void)state;
	id = submit(q, 6, NULL);
	submit(q, 1, "small");
	finish_one(q, "ok");
	finish_one(q, "ok");
	finish_one(q, "partial");
	finish_one(q, "failed");
	must(queue_worker_register(q, "host:1:abc", "host", 1, "eu", 4, &err), &err);
	must(queue_worker_register(q, "gone:2:def", "gone", 2, "", 4, &err), &err);
	must(queue_worker_stopped(q, "gone:2:def", &err), &err);
	assert_int_equal(queue_claim(q, "host:1:abc", 30, &c, &err), 1);
	queue_claim_free(&c);

	root = status_json(q, NULL);
	list = json_object_get(root, "jobs");
	assert_int_equal(json_array_size(list), 2);
	job = json_array_get(list, 0);
	assert_int_equal(jint(job, "id"), id);
	assert_string_equal(json_string_value(json_object_get(job, "name")), "acme");
	assert_string_equal(json_string_value(json_object_get(job, "state")), "running");
	assert_int_equal(jint(job, "accounts.pending"), 1);
	assert_int_equal(jint(job, "accounts.running"), 1);
	assert_int_equal(jint(job, "accounts.ok"), 2);
	assert_int_equal(jint(job, "accounts.partial"), 1);
	assert_int_equal(jint(job, "accounts.failed"), 1);
	assert_int_equal(jint(job, "accounts.cancelled"), 0);
	assert_int_equal(jint(job, "messages"), 40);
	assert_int_equal(jint(job, "bytes"), 4000);
	/* no session is open: the fleet's count (PostgreSQL) says 0, and
	 * SQLite knows no sessions (each worker counts its own) */
	assert_int_equal(jint(job, "sessions.src.in_use"), 0);
	assert_int_equal(jint(job, "sessions.src.cap"), 6);
	assert_int_equal(jint(job, "sessions.src.per_account"), 2);
	assert_int_equal(jint(job, "sessions.dst.in_use"), 0);
	assert_int_equal(jint(job, "sessions.dst.cap"), 40);
	assert_true(json_is_number(json_object_get(job, "rate")));
	assert_true(json_is_integer(json_object_get(job, "eta_seconds")) ||
		    json_is_null(json_object_get(job, "eta_seconds")));
	assert_int_equal(json_array_size(json_object_get(job, "skipped")), 1);
	assert_null(json_object_get(job, "account_list"));
	assert_string_equal(json_string_value(json_object_get(json_array_get(list, 1), "state")),
			    "queued");
	/* the live workers, with what they run */
	list = json_object_get(root, "workers");
	assert_int_equal(json_array_size(list), 1);
	job = json_array_get(list, 0);
	assert_string_equal(json_string_value(json_object_get(job, "id")), "host:1:abc");
	assert_string_equal(json_string_value(json_object_get(job, "egress")), "eu");
	assert_int_equal(jint(job, "running"), 1);
	assert_int_equal(jint(job, "parallel"), 4);
	json_decref(root);

	/* one job: its accounts */
	root = status_json(q, "acme");
	list = json_object_get(root, "jobs");
	assert_int_equal(json_array_size(list), 1);
	list = json_object_get(json_array_get(list, 0), "account_list");
	assert_int_equal(json_array_size(list), 6);
	job = json_array_get(list, 2);
	assert_string_equal(json_string_value(json_object_get(job, "email")), "c@x.it");
	assert_string_equal(json_string_value(json_object_get(job, "state")), "partial");
	assert_string_equal(json_string_value(json_object_get(job, "error")), "it went wrong");
	assert_int_equal(jint(job, "copied"), 10);
	job = json_array_get(list, 4);
	assert_string_equal(json_string_value(json_object_get(job, "state")), "running");
	assert_string_equal(json_string_value(json_object_get(job, "worker")), "host:1:abc");
	json_decref(root);

	/* for people */
	f = open_memstream(&text, &len);
	must(queue_status(q, "acme", false, f, &err), &err);
	fclose(f);
	assert_non_null(strstr(text, "job "));
	assert_non_null(strstr(text, "\"acme\": running"));
	assert_non_null(strstr(text, "1 pending, 1 running, 2 ok, 1 partial, 1 failed"));
	assert_non_null(strstr(text, "source 0 of 6"));
	assert_non_null(strstr(text, "e@x.it  running on host:1:abc"));
	assert_non_null(strstr(text, "c@x.it  partial by A"));
	assert_non_null(strstr(text, "it went wrong"));
	assert_non_null(strstr(text, "skipped line 8"));
	assert_null(strstr(text, "workers:"));
	free(text);
	f = open_memstream(&text, &len);
	must(queue_status(q, NULL, false, f, &err), &err);
	fclose(f);
	assert_non_null(strstr(text, "workers: 1 live\n  host:1:abc (egress eu): 1 running of 4"));
	free(text);

	/* finished and cancelled jobs */
	must(queue_cancel(q, "small", &err), &err);
	root = status_json(q, "small");
	assert_string_equal(json_string_value(json_object_get(
		json_array_get(json_object_get(root, "jobs"), 0), "state")), "cancelled");
	json_decref(root);
	run_sql("UPDATE q_accounts SET state = 'ok' WHERE state <> 'cancelled'");
	root = status_json(q, "acme");
	job = json_array_get(json_object_get(root, "jobs"), 0);
	assert_string_equal(json_string_value(json_object_get(job, "state")), "done");
	assert_int_equal(jint(job, "eta_seconds"), 0);
	json_decref(root);
	queue_close(q);
}

void test_rekey(void **state)
{
	struct queue *q = open_q(), *q2;
	struct tr_error err;
	struct seal_keys *both, *only_new;
	struct queue_claim c;
	char path[160], line[256], *config, *admin;
	FILE *in, *out;
	int n;
	int64_t id;

	(void)state;
	id = submit(q, 3, NULL);
	queue_close(q);
	/* a new key first, the old line after it */
	snprintf(path, sizeof(path), "%s/rotated.key", C->dir);
	must(seal_key_create(path, &err), &err);
	{
		char newline[256] = "";

		in = fopen(path, "r");
		while (fgets(line, sizeof(line), in) != NULL)
			if (line[0] != '#')
				snprintf(newline, sizeof(newline), "rot2 %s", strchr(line, ' ') + 1);
		fclose(in);
		out = fopen(path, "w");
		fputs(newline, out);
		in = fopen(C->keyfile, "r");
		while (fgets(line, sizeof(line), in) != NULL)
			if (line[0] != '#')
				fputs(line, out);
		fclose(in);
		fclose(out);
		must(seal_keys_load(path, &both, &err), &err);
		/* then the file with the new key alone */
		snprintf(path, sizeof(path), "%s/new.key", C->dir);
		out = fopen(path, "w");
		fputs(newline, out);
		fclose(out);
		chmod(path, 0600);
		must(seal_keys_load(path, &only_new, &err), &err);
	}
	/* before rekey, the new key alone cannot open the old values */
	must(queue_open(C->where, only_new, &q2, &err), &err);
	assert_int_equal(queue_claim(q2, "A", 30, &c, &err), -1);
	assert_non_null(strstr(err.msg, "not in the key file"));
	/* rekey fails as a whole with the new key alone, and changes nothing */
	assert_int_equal(queue_rekey(q2, &n, &err), -1);
	assert_int_equal(n, 0);
	queue_close(q2);
	must(queue_open(C->where, both, &q, &err), &err);
	must(queue_rekey(q, &n, &err), &err);
	assert_int_equal(n, 3 + 1 + 1);         /* three passwords, b's dst, the admin's */
	queue_close(q);
	no_password_anywhere();
	must(queue_open(C->where, only_new, &q2, &err), &err);
	assert_int_equal(queue_claim(q2, "A", 30, &c, &err), 1);
	assert_string_equal(c.password, passwords[0]);
	queue_claim_free(&c);
	assert_int_equal(queue_claim(q2, "A", 30, &c, &err), 1);
	assert_string_equal(c.dst_password, passwords[2]);
	queue_claim_free(&c);
	must(queue_job_config(q2, id, &config, &admin, &err), &err);
	assert_string_equal(admin, passwords[3]);
	free(config);
	secret_free(admin);
	queue_close(q2);
	seal_keys_free(both);
	seal_keys_free(only_new);
}

void test_refusals(void **state)
{
	struct queue *q;
	struct tr_error err;
	struct job_config cfg;
	struct job_accounts ja;
	struct queue_claim c;
	int64_t id;

	(void)state;
	/* without keys: no submit, no claim; status works */
	must(queue_open(C->where, NULL, &q, &err), &err);
	make_job(&cfg, &ja, 1);
	assert_int_equal(queue_submit(q, &cfg, &ja, passwords[3], NULL, &id, &err), -1);
	assert_int_equal(queue_claim(q, "A", 30, &c, &err), -1);
	must(queue_status(q, NULL, false, stderr, &err), &err);
	queue_close(q);
	q = open_q();
	/* dst-admin without its password */
	assert_int_equal(queue_submit(q, &cfg, &ja, NULL, NULL, &id, &err), -1);
	assert_int_equal(err.kind, TR_ERR_USAGE);
	/* not a run */
	cfg.kind = JOB_CHECK;
	assert_int_equal(queue_submit(q, &cfg, &ja, passwords[3], NULL, &id, &err), -1);
	assert_int_equal(one("SELECT count(*) FROM q_jobs"), 0);
	jobconf_free(&cfg);
	job_accounts_free(&ja);
	queue_close(q);
}

/* The JSON of queue_status has the same keys whichever backend wrote it
 * (the HTTP API reshapes it, and panels read it): every key, at every
 * level, and the times as ISO 8601 UTC. */
static void keys_are(json_t *o, const char *what, const char *want)
{
	char got[1024] = "";
	const char *k;
	json_t *v;
	size_t n = 0;

	assert_true(json_is_object(o));
	/* jansson keeps the order keys were set in */
	json_object_foreach(o, k, v) {
		(void)v;
		n += (size_t)snprintf(got + n, sizeof(got) - n, "%s%s", n > 0 ? " " : "", k);
	}
	if (strcmp(got, want) != 0)
		fail_msg("%s: keys \"%s\", not \"%s\"", what, got, want);
}

void test_status_shape(void **state)
{
	struct queue *q = open_q();
	struct tr_error err;
	struct queue_claim c;
	json_t *root, *job;
	const char *created;

	(void)state;
	submit(q, 3, NULL);
	must(queue_worker_register(q, "h:1:a", "h", 1, "", 2, &err), &err);
	assert_int_equal(queue_claim(q, "h:1:a", 30, &c, &err), 1);
	queue_claim_free(&c);
	root = status_json(q, NULL);
	keys_are(root, "status", "jobs workers");
	job = json_array_get(json_object_get(root, "jobs"), 0);
	keys_are(job, "job", "id name state created src dst accounts messages messages_present "
		 "messages_failed bytes seconds rate bytes_per_second eta_seconds sessions "
		 "caps_per_egress skipped");
	keys_are(json_object_get(job, "accounts"), "accounts",
		 "pending running ok partial failed cancelled total");
	keys_are(json_object_get(job, "sessions"), "sessions", "src dst");
	keys_are(json_object_get(json_object_get(job, "sessions"), "dst"), "a side",
		 "in_use cap per_account");
	keys_are(json_array_get(json_object_get(job, "skipped"), 0), "skipped", "line what");
	created = json_string_value(json_object_get(job, "created"));
	assert_non_null(created);
	assert_int_equal(strlen(created), 20);
	assert_true(created[4] == '-' && created[10] == 'T' && created[19] == 'Z');
	keys_are(json_array_get(json_object_get(root, "workers"), 0), "worker",
		 "id host pid egress parallel seen_seconds_ago running");
	json_decref(root);
	root = status_json(q, "acme");
	keys_are(root, "one job's status", "jobs");
	job = json_array_get(json_object_get(root, "jobs"), 0);
	keys_are(json_array_get(json_object_get(job, "account_list"), 0), "account",
		 "email state worker error copied present failed bytes folders_done "
		 "folders_total attempts takeovers seconds line");
	json_decref(root);
	queue_close(q);
}
