/* The queue's contract (queue.h, queue_backend.h): the unit tests of its
 * semantics, one suite run against every backend, so that workers, the
 * command line and the HTTP API see the same queue whichever holds it.
 * test_queue_pg runs it against a real PostgreSQL
 * (tests/integration/test_pg_units.sh), test_queue_sqlite against SQLite
 * (no server).  Submit and read back with no password in clear anywhere,
 * claims racing from several connections, leases taken over, cancel,
 * retry, delete, status, rekey; an account's detail (its folders, its
 * failed messages, bounded; its last verify), passes (delta, verify,
 * final) and the scheduled passes started once whatever the callers.
 * Each test starts from an empty queue (the
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

#include "account.h"
#include "account.h"
#include "job.h"
#include "jobconf.h"
#include "queue.h"
#include "queue_contract.h"
#include "seal.h"
#include "secret.h"
#include "verify.h"
#include "verify.h"

/* The case of the test running now (cmocka runs one at a time): set by
 * the runner's setup (queue_contract_case), before a test's first line. */
static struct queue_case *C;

static const char *const passwords[] = {
	"Pw-alpha-7!", "Pw-beta-8?", "Dst-gamma-9", "Admin-delta-0", "Pw-eps-1", "Pw-zeta-2",
	"Src-admin-eta-3",
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

/* sql formatted, in a buffer of the caller's (with C->now, or ago()). */
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

/* The dialect's SQL for the time s seconds ago. */
static const char *ago(int s, char *buf, size_t len)
{
	snprintf(buf, len, C->ago_fmt, s);
	return buf;
}

/* expr of every account of the queue, in their order, joined by ',' (the
 * caller frees it). */
static char *rows_text(const char *expr)
{
	long long n = one("SELECT count(*) FROM q_accounts"), i;
	char *all = NULL, sql[512];
	size_t len = 0;
	FILE *f = open_memstream(&all, &len);

	for (i = 0; i < n; i++) {
		char *v;

		snprintf(sql, sizeof(sql), "SELECT %s FROM q_accounts ORDER BY id LIMIT 1 OFFSET %lld",
			 expr, i);
		v = one_str(sql);
		fprintf(f, "%s%s", i > 0 ? "," : "", v);
		free(v);
	}
	fclose(f);
	return all;
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
	must(jobconf_set(cfg, "src-admin", "master@old.example", NULL, &err), &err);
	must(jobconf_finish(cfg, &err), &err);
}

static int64_t submit(struct queue *q, int n, const char *name)
{
	struct job_config cfg;
	struct job_accounts ja;
	struct tr_error err;
	int64_t id;

	make_job(&cfg, &ja, n);
	must(queue_submit(q, &cfg, &ja, passwords[3], passwords[6], name, &id, &err), &err);
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
	char *config, *admin, *src_admin, cwd[4096], want[4200], *s, sql[256];
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
	must(queue_job_config(q, id, &config, &admin, &src_admin, &err), &err);
	assert_non_null(getcwd(cwd, sizeof(cwd)));
	snprintf(want, sizeof(want), "ca-file = %s/certs/ca.pem\n", cwd);
	assert_non_null(strstr(config, want));
	assert_null(strstr(config, "accounts"));
	assert_null(strstr(config, "state"));
	assert_null(strstr(config, "report"));
	assert_non_null(strstr(config, "dst-admin = admin@new.example"));
	assert_non_null(strstr(config, "src-max-per-account = 2"));
	assert_non_null(strstr(config, "caps-per-egress = yes"));
	assert_non_null(strstr(config, "src-admin = master@old.example"));
	assert_string_equal(admin, passwords[3]);
	assert_string_equal(src_admin, passwords[6]);
	free(config);
	secret_free(admin);
	secret_free(src_admin);

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
	assert_int_equal(queue_finish(b, "B", cb.row, "ok", NULL, NULL, &n, 1.5, NULL, &err), 1);
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
	assert_int_equal(queue_finish(a, "A", ca.row, "failed", "late", NULL, &n, 1, NULL, &err), 0);
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
	assert_int_equal(queue_finish(b, "B", cb.row, "partial", "one folder failed", NULL, &n, 2, NULL,
				      &err), 1);
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
	assert_int_equal(queue_finish(a, "A", ca.row, "ok", NULL, NULL, &n, 2, NULL, &err), 1);
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
	char sql[256], t1[128];

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
	run_sql(sqlf(sql, sizeof(sql), "UPDATE q_accounts SET not_before = %s",
		     ago(1, t1, sizeof(t1))));
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
	assert_int_equal(queue_finish(q, "A", c.row, "ok", NULL, NULL, &(struct queue_counts){ 0 }, 1,
				      NULL, &err), 1);
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
	assert_int_equal(queue_finish(q, "A", held[0], "ok", NULL, NULL, &(struct queue_counts){ 0 }, 1,
				      NULL, &err), 0);
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
				      strcmp(status, "ok") != 0 ? "it went wrong" : NULL, NULL, &n, 3,
				      NULL, &err), 1);
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
	char path[160], line[256], *config, *admin, *src_admin;
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
	assert_int_equal(n, 3 + 1 + 2);         /* three passwords, b's dst, the admins' */
	queue_close(q);
	no_password_anywhere();
	must(queue_open(C->where, only_new, &q2, &err), &err);
	assert_int_equal(queue_claim(q2, "A", 30, &c, &err), 1);
	assert_string_equal(c.password, passwords[0]);
	queue_claim_free(&c);
	assert_int_equal(queue_claim(q2, "A", 30, &c, &err), 1);
	assert_string_equal(c.dst_password, passwords[2]);
	queue_claim_free(&c);
	must(queue_job_config(q2, id, &config, &admin, &src_admin, &err), &err);
	assert_string_equal(admin, passwords[3]);
	assert_string_equal(src_admin, passwords[6]);
	free(config);
	secret_free(admin);
	secret_free(src_admin);
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
	assert_int_equal(queue_submit(q, &cfg, &ja, passwords[3], NULL, NULL, &id, &err), -1);
	assert_int_equal(queue_claim(q, "A", 30, &c, &err), -1);
	must(queue_status(q, NULL, false, stderr, &err), &err);
	queue_close(q);
	q = open_q();
	/* dst-admin without its password, src-admin without its */
	assert_int_equal(queue_submit(q, &cfg, &ja, NULL, passwords[6], NULL, &id, &err), -1);
	assert_int_equal(err.kind, TR_ERR_USAGE);
	assert_int_equal(queue_submit(q, &cfg, &ja, passwords[3], NULL, NULL, &id, &err), -1);
	assert_int_equal(err.kind, TR_ERR_USAGE);
	assert_non_null(strstr(err.msg, "src-admin"));
	/* not a run */
	cfg.kind = JOB_CHECK;
	assert_int_equal(queue_submit(q, &cfg, &ja, passwords[3], NULL, NULL, &id, &err), -1);
	assert_int_equal(one("SELECT count(*) FROM q_jobs"), 0);
	jobconf_free(&cfg);
	job_accounts_free(&ja);
	queue_close(q);
}

/* ---- an account's detail ---------------------------------------------------- */

/* A result of three folders: INBOX copied with n_inbox messages refused
 * (listed), "Caf\xe9" (not UTF-8) with n_second refused, and Archivio failed
 * as a whole with 50 messages left behind. */
static void fake_result(struct account_result *res, uint32_t n_inbox, uint32_t n_second)
{
	static const char *const names[3] = { "INBOX", "Caf\xe9", "Archivio" };
	uint32_t n[3] = { n_inbox, n_second, 0 };
	size_t i, k;

	memset(res, 0, sizeof(*res));
	res->status = ACCOUNT_PARTIAL;
	res->n_folders = 3;
	res->folders = calloc(3, sizeof(*res->folders));
	assert_non_null(res->folders);
	for (i = 0; i < 3; i++) {
		struct folder_report *fr = &res->folders[i];

		fr->src_name = strdup(names[i]);
		fr->dst_name = strdup(i == 2 ? "Archive" : names[i]);
		fr->counts.copied = 10 * (uint32_t)(i + 1);
		fr->counts.present = 2;
		fr->counts.bytes = 1000 * (i + 1);
		fr->counts.failed = n[i];
		for (k = 0; k < n[i] && k < SYNC_FAILURES_KEPT; k++) {
			char reply[96];

			if (fr->failures.n == fr->failures.cap) {
				fr->failures.cap = fr->failures.cap ? 2 * fr->failures.cap : 8;
				fr->failures.v = realloc(fr->failures.v, fr->failures.cap *
							 sizeof(*fr->failures.v));
				assert_non_null(fr->failures.v);
			}
			snprintf(reply, sizeof(reply), "NO [LIMIT] message %zu too big", k);
			fr->failures.v[k].uid = (uint32_t)(100 + k);
			fr->failures.v[k].reply = strdup(reply);
			fr->failures.n++;
		}
		res->total.copied += fr->counts.copied;
		res->total.present += fr->counts.present;
		res->total.bytes += fr->counts.bytes;
	}
	res->folders[2].failed = true;
	res->folders[2].error = strdup("the destination refused to create \"Archive\": NO \x1b[2J");
	res->folders[2].counts.failed = 50;
	res->folders_failed = 1;
	for (i = 0; i < 3; i++)
		res->total.failed += res->folders[i].counts.failed;
}

static void counts_from(const struct account_result *res, struct queue_counts *n)
{
	memset(n, 0, sizeof(*n));
	n->copied = res->total.copied;
	n->present = res->total.present;
	n->failed = res->total.failed;
	n->bytes = res->total.bytes;
	n->folders_total = (uint32_t)res->n_folders;
	n->folders_done = (uint32_t)res->n_folders;
}

static json_t *detail(struct queue *q, const char *job, const char *email)
{
	struct tr_error err;
	json_t *d = NULL;
	int r = queue_account_detail(q, job, email, &d, &err);

	if (r != 0)
		fail_msg("detail of %s: %d %s", email, r, err.msg);
	return d;
}

static const char *jstr(json_t *o, const char *key)
{
	json_t *v = json_object_get(o, key);

	if (!json_is_string(v))
		fail_msg("%s is not a string", key);
	return json_string_value(v);
}

void test_detail(void **state)
{
	struct queue *q = open_q();
	struct tr_error err;
	struct queue_claim c;
	struct account_result res;
	struct queue_counts n;
	json_t *d, *f, *fl;
	size_t i;
	char idtext[32];
	int64_t id;

	(void)state;
	id = submit(q, 2, NULL);
	snprintf(idtext, sizeof(idtext), "%" PRId64, id);
	assert_int_equal(queue_claim(q, "A", 30, &c, &err), 1);
	assert_string_equal(c.email, "a@x.it");
	assert_int_equal(c.pass, QUEUE_PASS_RUN);
	/* before it ends: no folders, no failures, no verify */
	d = detail(q, "acme", "a@x.it");
	assert_string_equal(jstr(d, "status"), "running");
	assert_string_equal(jstr(d, "worker"), "A");
	assert_int_equal(json_array_size(json_object_get(d, "folders")), 0);
	assert_int_equal(json_array_size(json_object_get(d, "failures")), 0);
	assert_true(json_is_null(json_object_get(d, "verify")));
	json_decref(d);

	/* 600 + 700 refused, 50 left in a folder that failed: 1000 listed */
	fake_result(&res, 600, 700);
	counts_from(&res, &n);
	assert_int_equal(queue_finish(q, "A", c.row, "partial", "a folder failed", NULL, &n, 4.5, &res,
				      &err), 1);
	account_result_free(&res);
	queue_claim_free(&c);
	d = detail(q, idtext, "a@x.it");
	assert_int_equal(jint(d, "job"), id);
	assert_string_equal(jstr(d, "email"), "a@x.it");
	assert_string_equal(jstr(d, "status"), "partial");
	assert_string_equal(jstr(d, "pass"), "run");
	assert_string_equal(jstr(d, "error"), "a folder failed");
	assert_int_equal(jint(d, "messages_copied"), 60);
	assert_int_equal(jint(d, "messages_present"), 6);
	assert_int_equal(jint(d, "messages_failed"), 1350);
	assert_int_equal(jint(d, "bytes"), 6000);
	assert_int_equal(jint(d, "folders_total"), 3);
	assert_int_equal(jint(d, "attempts"), 1);
	assert_true(json_real_value(json_object_get(d, "seconds")) == 4.5);
	assert_non_null(strstr(jstr(d, "finished"), "T"));
	fl = json_object_get(d, "folders");
	assert_int_equal(json_array_size(fl), 3);
	f = json_array_get(fl, 0);
	assert_string_equal(jstr(f, "src"), "INBOX");
	assert_string_equal(jstr(f, "status"), "ok");
	assert_int_equal(jint(f, "messages_copied"), 10);
	assert_int_equal(jint(f, "messages_failed"), 600);
	assert_true(json_is_null(json_object_get(f, "error")));
	f = json_array_get(fl, 1);
	assert_string_equal(jstr(f, "src"), "Caf\\xE9");       /* as shown: cleaned */
	f = json_array_get(fl, 2);
	assert_string_equal(jstr(f, "src"), "Archivio");
	assert_string_equal(jstr(f, "dst"), "Archive");
	assert_string_equal(jstr(f, "status"), "failed");
	assert_int_equal(jint(f, "messages_failed"), 50);
	assert_non_null(strstr(jstr(f, "error"), "NO \\x1B[2J"));
	/* the first 1000, in folder order, the rest counted */
	fl = json_object_get(d, "failures");
	assert_int_equal(json_array_size(fl), QUEUE_FAILURES_KEPT);
	f = json_array_get(fl, 0);
	assert_string_equal(jstr(f, "folder"), "INBOX");
	assert_int_equal(jint(f, "uid"), 100);
	assert_string_equal(jstr(f, "reply"), "NO [LIMIT] message 0 too big");
	f = json_array_get(fl, 599);
	assert_int_equal(jint(f, "uid"), 699);
	f = json_array_get(fl, 600);
	assert_string_equal(jstr(f, "folder"), "Caf\\xE9");
	assert_int_equal(jint(f, "uid"), 100);
	f = json_array_get(fl, 999);
	assert_int_equal(jint(f, "uid"), 499);
	assert_int_equal(jint(d, "failures_more"), 350);
	json_decref(d);
	assert_int_equal(one("SELECT count(*) FROM q_failures"), QUEUE_FAILURES_KEPT);

	/* the next copy's replace them: fewer folders, fewer failures */
	{
		int k;

		must(queue_retry(q, "acme", true, &k, &err), &err);
		assert_int_equal(k, 1);
	}
	assert_int_equal(queue_claim(q, "A", 30, &c, &err), 1);
	assert_string_equal(c.email, "a@x.it");
	fake_result(&res, 2, 0);
	free(res.folders[2].src_name);
	free(res.folders[2].dst_name);
	free(res.folders[2].error);
	res.n_folders = 2;
	res.total.failed = 2;
	res.folders_failed = 0;
	counts_from(&res, &n);
	assert_int_equal(queue_finish(q, "A", c.row, "partial", NULL, NULL, &n, 1, &res, &err), 1);
	account_result_free(&res);
	queue_claim_free(&c);
	d = detail(q, "acme", "a@x.it");
	assert_int_equal(json_array_size(json_object_get(d, "folders")), 2);
	assert_int_equal(json_array_size(json_object_get(d, "failures")), 2);
	assert_int_equal(jint(d, "failures_more"), 0);
	assert_int_equal(jint(d, "attempts"), 2);
	json_decref(d);

	/* an outcome without a result (the job's settings did not load): none */
	assert_int_equal(queue_claim(q, "A", 30, &c, &err), 1);
	assert_string_equal(c.email, "b@x.it");
	assert_int_equal(queue_finish(q, "A", c.row, "failed", "no settings", NULL,
				      &(struct queue_counts){ 0 }, 0, NULL, &err), 1);
	queue_claim_free(&c);
	d = detail(q, "acme", "b@x.it");
	assert_string_equal(jstr(d, "status"), "failed");
	assert_int_equal(json_array_size(json_object_get(d, "folders")), 0);
	json_decref(d);

	/* what does not exist: 1, saying which */
	d = NULL;
	assert_int_equal(queue_account_detail(q, "acme", "nobody@x.it", &d, &err), 1);
	assert_null(d);
	assert_int_equal(err.kind, TR_ERR_USAGE);
	assert_non_null(strstr(err.msg, "nobody@x.it"));
	assert_int_equal(queue_account_detail(q, "no-such-job", "a@x.it", &d, &err), 1);
	assert_non_null(strstr(err.msg, "no job"));
	assert_int_equal(queue_account_detail(q, "acme", "", &d, &err), 1);
	/* nothing of a password in what it says */
	for (i = 0; i < 2; i++) {
		char *doc;
		size_t k;

		d = detail(q, "acme", i == 0 ? "a@x.it" : "b@x.it");
		doc = json_dumps(d, 0);
		for (k = 0; k < sizeof(passwords) / sizeof(passwords[0]); k++)
			assert_null(strstr(doc, passwords[k]));
		free(doc);
		json_decref(d);
	}
	no_password_anywhere();
	queue_close(q);
}

/* ---- passes ------------------------------------------------------------------ */

/* Claim the next account as worker w: it must be email, with pass kind. */
static int64_t claim_is(struct queue *q, const char *w, const char *email,
			enum queue_pass_kind kind)
{
	struct tr_error err;
	struct queue_claim c;
	int64_t row;

	assert_int_equal(queue_claim(q, w, 30, &c, &err), 1);
	if (strcmp(c.email, email) != 0 || c.pass != kind)
		fail_msg("claimed %s (%s), not %s (%s)", c.email, queue_pass_name(c.pass), email,
			 queue_pass_name(kind));
	row = c.row;
	queue_claim_free(&c);
	return row;
}

static void finish_as(struct queue *q, const char *w, int64_t row, const char *status,
		      uint64_t copied)
{
	struct tr_error err;
	struct queue_counts n = { .copied = copied, .present = 3, .folders_done = 1,
				  .folders_total = 1 };

	assert_int_equal(queue_finish(q, w, row, status, strcmp(status, "ok") != 0 ?
				      "copy trouble" : NULL, NULL, &n, 1, NULL, &err), 1);
}

static void verified_as(struct queue *q, const char *w, int64_t row, uint32_t missing,
			enum tr_err_kind failure)
{
	struct tr_error err;
	struct run_account acc = { .label = "x" };
	struct verify_item it;

	memset(&it, 0, sizeof(it));
	it.acc = &acc;
	it.folders = 2;
	it.src_messages = 40;
	it.found = 40 - missing;
	it.missing = missing;
	it.dst_only = 1;
	if (missing > 0) {
		it.v = calloc(1, sizeof(*it.v));
		it.v[0].folder = strdup("INBOX");
		it.v[0].uid = 9;
		it.v[0].size = 1234;
		snprintf(it.v[0].date, sizeof(it.v[0].date), "01-Jan-2024 10:00:00 +0000");
		it.n = 1;
	}
	if (failure != TR_ERR_NONE)
		tr_error_set(&it.err, failure, "login refused by the source: NO [AUTHENTICATIONFAILED]");
	assert_int_equal(queue_verify_finish(q, w, row, &it, &err), 1);
	if (it.v != NULL) {
		free(it.v[0].folder);
		free(it.v);
	}
}

static json_t *job_status(struct queue *q, const char *job)
{
	struct tr_error err;
	char *buf = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&buf, &len);
	json_t *root, *j;

	must(queue_status(q, job, true, f, &err), &err);
	fclose(f);
	root = json_loads(buf, 0, NULL);
	free(buf);
	assert_non_null(root);
	j = json_array_get(json_object_get(root, "jobs"), 0);
	json_incref(j);
	json_decref(root);
	return j;
}

static void expect_passes(struct queue *q, const char *current, int count, bool final,
			  bool finished)
{
	json_t *j = job_status(q, "acme"), *p = json_object_get(j, "passes");

	assert_non_null(p);
	assert_string_equal(jstr(p, "current"), current);
	assert_int_equal(jint(p, "count"), count);
	assert_int_equal(json_is_true(json_object_get(p, "final")), final);
	assert_int_equal(json_is_true(json_object_get(p, "finished")), finished);
	json_decref(j);
}

void test_passes(void **state)
{
	struct queue *q = open_q();
	struct tr_error err;
	int64_t ra, rb, rc, rd;
	json_t *d, *v;
	int n;
	char *s;

	(void)state;
	submit(q, 4, NULL);
	expect_passes(q, "run", 1, false, false);
	/* nothing finished yet: a delta has nothing to do, and is no pass */
	must(queue_pass(q, "acme", "delta", 0, &n, &err), &err);
	assert_int_equal(n, 0);
	expect_passes(q, "run", 1, false, false);
	ra = claim_is(q, "A", "a@x.it", QUEUE_PASS_RUN);
	rb = claim_is(q, "A", "b@x.it", QUEUE_PASS_RUN);
	rc = claim_is(q, "A", "c@x.it", QUEUE_PASS_RUN);
	rd = claim_is(q, "B", "d@x.it", QUEUE_PASS_RUN);
	finish_as(q, "A", ra, "ok", 10);
	finish_as(q, "A", rb, "partial", 10);
	finish_as(q, "A", rc, "failed", 0);

	/* delta: the finished ones back to pending, never the running one */
	must(queue_pass(q, "acme", "delta", 0, &n, &err), &err);
	assert_int_equal(n, 3);
	assert_int_equal(one("SELECT count(*) FROM q_accounts WHERE state = 'pending' AND "
			     "pass = 'delta' AND attempts = 0"), 3);
	assert_int_equal(one("SELECT count(*) FROM q_accounts WHERE state = 'running' AND "
			     "worker = 'B' AND pass = 'run'"), 1);
	expect_passes(q, "delta", 2, false, false);
	ra = claim_is(q, "A", "a@x.it", QUEUE_PASS_DELTA);
	rb = claim_is(q, "A", "b@x.it", QUEUE_PASS_DELTA);
	rc = claim_is(q, "A", "c@x.it", QUEUE_PASS_DELTA);
	finish_as(q, "A", ra, "ok", 2);        /* the new messages only */
	finish_as(q, "A", rb, "partial", 0);
	finish_as(q, "A", rc, "ok", 7);
	finish_as(q, "B", rd, "ok", 10);

	/* verify: the counters and errors of the last copy stay while it runs,
	 * progress does not touch them, and the state comes back after it */
	must(queue_pass(q, "acme", "verify", 0, &n, &err), &err);
	assert_int_equal(n, 4);
	expect_passes(q, "verify", 3, false, false);
	ra = claim_is(q, "A", "a@x.it", QUEUE_PASS_VERIFY);
	d = detail(q, "acme", "a@x.it");
	assert_string_equal(jstr(d, "status"), "running");
	assert_int_equal(jint(d, "messages_copied"), 2);
	json_decref(d);
	must(queue_progress(q, "A", ra, &(struct queue_counts){ 0 }, &err), &err);
	assert_int_equal(one("SELECT copied FROM q_accounts WHERE line = 2"), 2);
	rb = claim_is(q, "A", "b@x.it", QUEUE_PASS_VERIFY);
	assert_int_equal(one("SELECT count(*) FROM q_accounts WHERE line = 3 AND "
			     "error = 'copy trouble'"), 1);
	rc = claim_is(q, "A", "c@x.it", QUEUE_PASS_VERIFY);
	rd = claim_is(q, "B", "d@x.it", QUEUE_PASS_VERIFY);
	verified_as(q, "A", ra, 0, TR_ERR_NONE);
	verified_as(q, "A", rb, 1, TR_ERR_NONE);
	verified_as(q, "A", rc, 0, TR_ERR_AUTH);
	s = rows_text("state || ':' || coalesce(error, '-') || ':' || CASE WHEN verify_exact "
		      "IS NULL THEN '-' WHEN verify_exact THEN 'true' ELSE 'false' END");
	assert_string_equal(s, "ok:-:true,partial:copy trouble:false,failed:verify: login refused "
			    "by the source: NO [AUTHENTICATIONFAILED]:false,running:-:-");
	free(s);
	d = detail(q, "acme", "a@x.it");
	v = json_object_get(d, "verify");
	assert_true(json_is_true(json_object_get(v, "exact")));
	assert_non_null(strstr(jstr(v, "at"), "Z"));
	assert_int_equal(jint(v, "source_messages"), 40);
	assert_int_equal(jint(v, "missing"), 0);
	assert_int_equal(jint(v, "destination_only"), 1);
	assert_true(json_is_null(json_object_get(v, "error")));
	assert_string_equal(jstr(d, "status"), "ok");
	assert_int_equal(jint(d, "messages_copied"), 2);
	json_decref(d);
	d = detail(q, "acme", "b@x.it");
	v = json_object_get(d, "verify");
	assert_false(json_is_true(json_object_get(v, "exact")));
	assert_int_equal(jint(v, "missing"), 1);
	assert_int_equal(json_array_size(json_object_get(v, "missing_messages")), 1);
	assert_int_equal(jint(json_array_get(json_object_get(v, "missing_messages"), 0), "uid"),
			 9);
	json_decref(d);
	/* retry --failed: the verify that could not be done is done again */
	must(queue_retry(q, "acme", true, &n, &err), &err);
	assert_int_equal(n, 2);                 /* c (verify) and b (partial: a copy) */
	assert_int_equal(one("SELECT count(*) FROM q_accounts WHERE line = 4 AND "
			     "pass = 'verify' AND state = 'pending'"), 1);
	assert_int_equal(one("SELECT count(*) FROM q_accounts WHERE line = 3 AND "
			     "pass = 'delta' AND state = 'pending'"), 1);
	rb = claim_is(q, "A", "b@x.it", QUEUE_PASS_DELTA);
	rc = claim_is(q, "A", "c@x.it", QUEUE_PASS_VERIFY);
	finish_as(q, "A", rb, "ok", 1);
	verified_as(q, "A", rc, 0, TR_ERR_NONE);
	assert_int_equal(one("SELECT count(*) FROM q_accounts WHERE line = 4 AND "
			     "state = 'ok' AND error IS NULL AND verify_exact"), 1);

	/* final, while d still verifies: a, b, c now; d when its verify ends */
	assert_int_equal(queue_pass(q, "acme", "bogus", 0, &n, &err), -1);
	assert_int_equal(err.kind, TR_ERR_USAGE);
	assert_int_equal(queue_pass(q, "acme", "final", 3600, &n, &err), -1);
	assert_int_equal(queue_pass(q, "acme", NULL, 0, &n, &err), -1);
	must(queue_pass(q, "acme", "final", 0, &n, &err), &err);
	assert_int_equal(n, 4);
	expect_passes(q, "final", 4, true, false);
	assert_int_equal(one("SELECT count(*) FROM q_accounts WHERE state = 'pending' AND "
			     "pass = 'final'"), 3);
	/* after a final pass: no delta, no schedule, no second final; a verify is fine */
	assert_int_equal(queue_pass(q, "acme", "delta", 0, &n, &err), -1);
	assert_non_null(strstr(err.msg, "final pass"));
	assert_int_equal(queue_pass(q, "acme", NULL, 3600, &n, &err), -1);
	assert_int_equal(queue_pass(q, "acme", "final", 0, &n, &err), -1);
	verified_as(q, "B", rd, 0, TR_ERR_NONE);
	assert_int_equal(one("SELECT count(*) FROM q_accounts WHERE line = 5 AND "
			     "state = 'pending' AND pass = 'final'"), 1);
	/* each: its final copy, then its verify; a final copy that fails ends there */
	ra = claim_is(q, "A", "a@x.it", QUEUE_PASS_FINAL);
	rb = claim_is(q, "A", "b@x.it", QUEUE_PASS_FINAL);
	rc = claim_is(q, "A", "c@x.it", QUEUE_PASS_FINAL);
	rd = claim_is(q, "A", "d@x.it", QUEUE_PASS_FINAL);
	finish_as(q, "A", ra, "ok", 1);
	finish_as(q, "A", rb, "partial", 0);
	finish_as(q, "A", rc, "failed", 0);
	finish_as(q, "A", rd, "ok", 0);
	assert_int_equal(one("SELECT count(*) FROM q_accounts WHERE state = 'pending' AND "
			     "pass = 'final-verify'"), 3);
	assert_int_equal(one("SELECT count(*) FROM q_accounts WHERE line = 4 AND "
			     "state = 'failed' AND pass = 'final'"), 1);
	expect_passes(q, "final", 4, true, false);
	ra = claim_is(q, "A", "a@x.it", QUEUE_PASS_FINAL_VERIFY);
	rb = claim_is(q, "A", "b@x.it", QUEUE_PASS_FINAL_VERIFY);
	rd = claim_is(q, "A", "d@x.it", QUEUE_PASS_FINAL_VERIFY);
	verified_as(q, "A", ra, 0, TR_ERR_NONE);
	verified_as(q, "A", rb, 0, TR_ERR_NONE);
	verified_as(q, "A", rd, 0, TR_ERR_NONE);
	expect_passes(q, "final", 4, true, true);
	{
		json_t *j = job_status(q, "acme");

		assert_string_equal(jstr(j, "state"), "partial");
		assert_true(json_is_null(json_object_get(json_object_get(j, "passes"), "next_at")));
		json_decref(j);
	}
	s = rows_text("state");
	assert_string_equal(s, "ok,partial,failed,ok");
	free(s);
	/* nothing more to claim; a verify after it is fine and the job is
	 * finished again once it ends */
	{
		struct queue_claim c;

		assert_int_equal(queue_claim(q, "A", 30, &c, &err), 0);
	}
	must(queue_pass(q, "acme", "verify", 0, &n, &err), &err);
	assert_int_equal(n, 4);
	expect_passes(q, "verify", 5, true, false);
	/* a cancelled job takes no pass */
	must(queue_cancel(q, "acme", &err), &err);
	assert_int_equal(queue_pass(q, "acme", "verify", 0, &n, &err), -1);
	assert_non_null(strstr(err.msg, "cancelled"));
	expect_passes(q, "verify", 5, true, false);     /* cancelled is not finished */
	queue_close(q);
}

/* ---- scheduled passes ----------------------------------------------------------- */

#define SCHEDULERS 4

struct scheduler {
	pthread_barrier_t *go;
	int started;
	int failed;
};

static void *schedule_once(void *arg)
{
	struct scheduler *sc = arg;
	struct tr_error err;
	struct queue *q;

	if (queue_open(C->where, NULL, &q, &err) < 0) {
		sc->failed = 1;
		return NULL;
	}
	pthread_barrier_wait(sc->go);
	if (queue_schedule(q, &sc->started, &err) < 0)
		sc->failed = 1;
	queue_close(q);
	return NULL;
}

/* SCHEDULERS callers at once: how many passes they started in all. */
static int schedule_race(void)
{
	pthread_barrier_t go;
	struct scheduler sc[SCHEDULERS];
	pthread_t t[SCHEDULERS];
	int i, total = 0;

	memset(sc, 0, sizeof(sc));
	pthread_barrier_init(&go, NULL, SCHEDULERS);
	for (i = 0; i < SCHEDULERS; i++) {
		sc[i].go = &go;
		assert_int_equal(pthread_create(&t[i], NULL, schedule_once, &sc[i]), 0);
	}
	for (i = 0; i < SCHEDULERS; i++) {
		pthread_join(t[i], NULL);
		assert_int_equal(sc[i].failed, 0);
		total += sc[i].started;
	}
	pthread_barrier_destroy(&go);
	return total;
}

static void finish_all(struct queue *q, enum queue_pass_kind kind)
{
	struct tr_error err;
	struct queue_claim c;

	/* a final pass: its copies, then their verifies */
	while (queue_claim(q, "A", 30, &c, &err) == 1) {
		if (kind == QUEUE_PASS_FINAL && c.pass == QUEUE_PASS_FINAL_VERIFY) {
			verified_as(q, "A", c.row, 0, TR_ERR_NONE);
		} else {
			assert_int_equal(c.pass, kind);
			finish_as(q, "A", c.row, "ok", 1);
		}
		queue_claim_free(&c);
	}
}

void test_schedule(void **state)
{
	struct queue *q = open_q();
	struct tr_error err;
	char sql[256], t1[128];
	int n, round;
	json_t *j;

	(void)state;
	submit(q, 3, NULL);
	/* every 6 h from the start of the latest pass */
	assert_int_equal(queue_pass(q, "acme", "verify", 60, &n, &err), -1);
	assert_int_equal(queue_pass(q, "acme", NULL, 0, &n, &err), -1);
	must(queue_pass(q, "acme", NULL, 6 * 3600, &n, &err), &err);
	assert_int_equal(n, 0);
	j = job_status(q, "acme");
	assert_int_equal(jint(json_object_get(j, "passes"), "every_seconds"), 6 * 3600);
	assert_non_null(strstr(jstr(json_object_get(j, "passes"), "next_at"), "Z"));
	json_decref(j);
	must(queue_schedule(q, &n, &err), &err);
	assert_int_equal(n, 0);                 /* not due */
	finish_all(q, QUEUE_PASS_RUN);
	must(queue_schedule(q, &n, &err), &err);
	assert_int_equal(n, 0);                 /* still not due */

	for (round = 0; round < 5; round++) {
		/* due (its interval passed), but an account still runs: not yet */
		struct queue_claim c;

		run_sql(sqlf(sql, sizeof(sql), "UPDATE q_jobs SET pass_started = %s",
			     ago(7 * 3600, t1, sizeof(t1))));
		run_sql("UPDATE q_accounts SET state = 'pending' WHERE line = 2");
		assert_int_equal(queue_claim(q, "A", 30, &c, &err), 1);
		assert_int_equal(schedule_race(), 0);
		finish_as(q, "A", c.row, "ok", 1);
		queue_claim_free(&c);
		/* a job another caller holds is left to it (where callers can
		 * hold a job: PostgreSQL's rows; SQLite's callers take turns) */
		if (C->hold_jobs != NULL) {
			C->hold_jobs(C, true);
			must(queue_schedule(q, &n, &err), &err);
			assert_int_equal(n, 0);
			C->hold_jobs(C, false);
		}
		/* every caller at once: started exactly once */
		assert_int_equal(schedule_race(), 1);
		assert_int_equal(one("SELECT count(*) FROM q_accounts WHERE state = 'pending' AND "
				     "pass = 'delta'"), 3);
		assert_int_equal(one("SELECT pass_count FROM q_jobs"), 2 + round);
		/* and not again while its accounts run, nor after (not due) */
		assert_int_equal(schedule_race(), 0);
		finish_all(q, QUEUE_PASS_DELTA);
		assert_int_equal(schedule_race(), 0);
	}
	/* unscheduled: nothing more, however late */
	must(queue_pass(q, "acme", NULL, -1, &n, &err), &err);
	run_sql(sqlf(sql, sizeof(sql), "UPDATE q_jobs SET pass_started = %s",
		     ago(70 * 3600, t1, sizeof(t1))));
	assert_int_equal(schedule_race(), 0);
	/* scheduled again with a delta now; a final pass ends the schedule */
	must(queue_pass(q, "acme", "delta", 3600, &n, &err), &err);
	assert_int_equal(n, 3);
	finish_all(q, QUEUE_PASS_DELTA);
	must(queue_pass(q, "acme", "final", 0, &n, &err), &err);
	finish_all(q, QUEUE_PASS_FINAL);
	run_sql(sqlf(sql, sizeof(sql), "UPDATE q_jobs SET pass_started = %s",
		     ago(70 * 3600, t1, sizeof(t1))));
	assert_int_equal(schedule_race(), 0);
	j = job_status(q, "acme");
	assert_true(json_is_null(json_object_get(json_object_get(j, "passes"), "next_at")));
	json_decref(j);
	queue_close(q);
}

void test_every_parse(void **state)
{
	static const struct {
		const char *text;
		int seconds;           /* -1: refused */
	} cases[] = {
		{ "90", 90 }, { "30s", 30 }, { "15m", 900 }, { "6h", 21600 }, { "1d", 86400 },
		{ "2h30m", 9000 }, { "1d12h", 129600 }, { "366d", 366 * 86400 },
		{ "", -1 }, { "0", -1 }, { "0s", -1 }, { "h", -1 }, { "6x", -1 }, { "-5m", -1 },
		{ " 6h", -1 }, { "6h ", -1 }, { "367d", -1 }, { "99999999999999", -1 },
		{ "6h30", -1 }, { "1.5h", -1 },
	};
	struct tr_error err;
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		int s = 0, r = queue_every_parse(cases[i].text, &s, &err);

		if (cases[i].seconds < 0) {
			if (r != -1 || err.kind != TR_ERR_USAGE)
				fail_msg("\"%s\" was taken as %d s", cases[i].text, s);
		} else if (r != 0 || s != cases[i].seconds) {
			fail_msg("\"%s\": %d, %d s", cases[i].text, r, s);
		}
	}
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
		 "caps_per_egress passes errors limit_refusals skipped");
	keys_are(json_object_get(job, "passes"), "passes",
		 "current count every_seconds next_at final finished current_seconds "
		 "last_pass_kind last_pass_seconds");
	keys_are(json_object_get(job, "accounts"), "accounts",
		 "pending running ok partial failed cancelled total");
	keys_are(json_object_get(job, "sessions"), "sessions", "src dst");
	keys_are(json_object_get(json_object_get(job, "sessions"), "dst"), "a side",
		 "in_use cap per_account limit_refusals");
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
		 "folders_total attempts takeovers seconds line pass verify_exact error_kind "
		 "limit_refusals");
	json_decref(root);
	queue_close(q);
}

/* A number at path in the status (integer or real), fails when absent. */
static double jnum(json_t *o, const char *path)
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
	if (!json_is_number(v))
		fail_msg("%s is not a number", path);
	return json_number_value(v);
}

static const char *acc_kind(json_t *job, size_t i)
{
	return json_string_value(json_object_get(json_array_get(json_object_get(job,
										 "account_list"),
								  i), "error_kind"));
}

/* What GET /metrics is made of: the kind of each account's error, the
 * sessions refused for a limit (counted by progress and finish, only
 * growing), the duration of the last finished pass. */
void test_outcome_metrics(void **state)
{
	struct queue *q = open_q(), *other = open_q();
	struct tr_error err;
	struct queue_counts n = { .copied = 1, .refused = { 2, 1 } };
	char sql[256], t1[96], t2[96];
	int64_t ra, rb, rc;
	json_t *root, *job;
	int got;

	(void)state;
	submit(q, 3, NULL);
	ra = claim_is(q, "A", "a@x.it", QUEUE_PASS_RUN);
	rb = claim_is(q, "A", "b@x.it", QUEUE_PASS_RUN);
	rc = claim_is(q, "A", "c@x.it", QUEUE_PASS_RUN);
	/* refusals: added by each progress (the heartbeat sends what is new)
	 * and by the finish; another worker's writes add nothing */
	must(queue_progress(q, "A", ra, &n, &err), &err);
	must(queue_progress(q, "A", ra, &n, &err), &err);
	must(queue_progress(other, "B", ra, &n, &err), &err);
	assert_int_equal(one("SELECT refused_src FROM q_accounts WHERE worker = 'A' ORDER BY id "
			     "LIMIT 1"), 4);
	n.refused[0] = 1;
	n.refused[1] = 0;
	assert_int_equal(queue_finish(q, "A", ra, "failed", "login refused", "auth", &n, 1, NULL,
				      &err), 1);
	n.refused[0] = n.refused[1] = 0;
	assert_int_equal(queue_finish(q, "A", rb, "partial", "3 messages refused", "message", &n,
				      1, NULL, &err), 1);
	/* an ok outcome has no error kind, whatever the caller says */
	assert_int_equal(queue_finish(q, "A", rc, "ok", NULL, "auth", &n, 1, NULL, &err), 1);
	/* the first run: from the job's submission to its last finish */
	run_sql(sqlf(sql, sizeof(sql), "UPDATE q_jobs SET created = %s", ago(100, t1, sizeof(t1))));
	run_sql(sqlf(sql, sizeof(sql), "UPDATE q_accounts SET finished = %s",
		     ago(40, t2, sizeof(t2))));

	root = status_json(q, "acme");
	job = json_array_get(json_object_get(root, "jobs"), 0);
	assert_int_equal(jint(job, "errors.auth"), 1);
	assert_int_equal(jint(job, "errors.message"), 1);
	assert_int_equal(json_object_size(json_object_get(job, "errors")), 2);
	assert_string_equal(acc_kind(job, 0), "auth");
	assert_string_equal(acc_kind(job, 1), "message");
	assert_null(acc_kind(job, 2));
	assert_true(json_is_null(json_object_get(json_array_get(json_object_get(
		job, "account_list"), 2), "error_kind")));
	assert_int_equal(jint(job, "limit_refusals"), 7);
	assert_int_equal(jint(job, "sessions.src.limit_refusals"), 5);
	assert_int_equal(jint(job, "sessions.dst.limit_refusals"), 2);
	assert_int_equal(jint(json_array_get(json_object_get(job, "account_list"), 0),
			      "limit_refusals"), 7);
	assert_string_equal(json_string_value(json_object_get(json_object_get(job, "passes"),
							      "last_pass_kind")), "run");
	assert_true(jnum(job, "passes.last_pass_seconds") > 58 &&
		    jnum(job, "passes.last_pass_seconds") < 62);
	assert_true(jnum(job, "passes.current_seconds") > 58 &&
		    jnum(job, "passes.current_seconds") < 62);
	json_decref(root);

	/* a delta pass: the run stays the last finished one while it goes */
	must(queue_pass(q, "acme", "delta", 0, &got, &err), &err);
	assert_int_equal(got, 3);
	ra = claim_is(q, "A", "a@x.it", QUEUE_PASS_DELTA);
	root = status_json(q, NULL);
	job = json_array_get(json_object_get(root, "jobs"), 0);
	assert_string_equal(json_string_value(json_object_get(json_object_get(job, "passes"),
							      "last_pass_kind")), "run");
	assert_true(jnum(job, "passes.last_pass_seconds") > 58 &&
		    jnum(job, "passes.last_pass_seconds") < 62);
	assert_true(jnum(job, "passes.current_seconds") < 30);
	/* pending or running accounts are not in errors (their last outcome
	 * is being replaced); the counter keeps what it counted */
	assert_int_equal(json_object_size(json_object_get(job, "errors")), 0);
	assert_int_equal(jint(job, "limit_refusals"), 7);
	json_decref(root);
	assert_int_equal(queue_finish(q, "A", ra, "ok", NULL, NULL, &n, 1, NULL, &err), 1);
	rb = claim_is(q, "A", "b@x.it", QUEUE_PASS_DELTA);
	assert_int_equal(queue_finish(q, "A", rb, "ok", NULL, NULL, &n, 1, NULL, &err), 1);
	rc = claim_is(q, "A", "c@x.it", QUEUE_PASS_DELTA);
	assert_int_equal(queue_finish(q, "A", rc, "failed", "no route", "connect", &n, 1, NULL,
				      &err), 1);
	run_sql(sqlf(sql, sizeof(sql), "UPDATE q_jobs SET pass_started = %s",
		     ago(30, t1, sizeof(t1))));
	run_sql(sqlf(sql, sizeof(sql), "UPDATE q_accounts SET finished = %s",
		     ago(10, t2, sizeof(t2))));
	root = status_json(q, "acme");
	job = json_array_get(json_object_get(root, "jobs"), 0);
	assert_string_equal(json_string_value(json_object_get(json_object_get(job, "passes"),
							      "last_pass_kind")), "delta");
	assert_true(jnum(job, "passes.last_pass_seconds") > 18 &&
		    jnum(job, "passes.last_pass_seconds") < 22);
	assert_int_equal(jint(job, "errors.connect"), 1);
	assert_int_equal(json_object_size(json_object_get(job, "errors")), 1);
	json_decref(root);

	/* a verify that cannot be done has its own kind; one that can brings
	 * back the last copy's */
	must(queue_pass(q, "acme", "verify", 0, &got, &err), &err);
	ra = claim_is(q, "A", "a@x.it", QUEUE_PASS_VERIFY);
	verified_as(q, "A", ra, 0, TR_ERR_TLS);
	rb = claim_is(q, "A", "b@x.it", QUEUE_PASS_VERIFY);
	verified_as(q, "A", rb, 0, TR_ERR_NONE);
	rc = claim_is(q, "A", "c@x.it", QUEUE_PASS_VERIFY);
	n.refused[1] = 3;       /* a verify's refusals count too */
	must(queue_progress(q, "A", rc, &n, &err), &err);
	verified_as(q, "A", rc, 0, TR_ERR_NONE);
	root = status_json(q, "acme");
	job = json_array_get(json_object_get(root, "jobs"), 0);
	assert_string_equal(acc_kind(job, 0), "tls");
	assert_null(acc_kind(job, 1));
	assert_string_equal(acc_kind(job, 2), "connect");
	assert_int_equal(jint(job, "sessions.dst.limit_refusals"), 5);
	assert_string_equal(json_string_value(json_object_get(json_object_get(job, "passes"),
							      "last_pass_kind")), "verify");
	json_decref(root);
	queue_close(other);
	queue_close(q);
}
