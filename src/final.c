/* final: see include/final.h */
#include "config.h"

#include <stdlib.h>

#include "final.h"
#include "log.h"
#include "net.h"
#include "verify.h"

int final_run(const struct run_env *env, const struct run_account *acc, size_t n,
	      struct run_result *res)
{
	struct run_account *ok_acc = NULL;
	size_t *where = NULL, n_ok = 0, i;
	struct verify_item *items = NULL;
	int ret = 0;

	run_accounts(env, acc, n, res);
	if (res->v == NULL)
		return -1;
	for (i = 0; i < n; i++)
		res->v[i].final = RUN_FINAL_UNVERIFIED;
	ok_acc = calloc(n + 1, sizeof(*ok_acc));
	where = calloc(n + 1, sizeof(*where));
	if (ok_acc == NULL || where == NULL) {
		log_error(NULL, "final pass: out of memory: no account verified");
		ret = -1;
		goto out;
	}
	/* A partial copy (messages the destination refused) cannot verify
	 * complete: it stays unverified, named by its copy's result. */
	for (i = 0; i < n; i++) {
		if (!res->v[i].started || res->v[i].res.status != ACCOUNT_OK)
			continue;
		ok_acc[n_ok] = acc[i];
		where[n_ok++] = i;
	}
	if (n_ok > 0 && !net_cancelled()) {
		log_info(NULL, "final pass: verifying %zu account(s)", n_ok);
		verify_run(env, ok_acc, n_ok, false, &items);
		if (items == NULL) {
			log_error(NULL, "final pass: out of memory: no account verified");
			ret = -1;
			goto out;
		}
	}
	for (i = 0; items != NULL && i < n_ok; i++) {
		struct run_item *it = &res->v[where[i]];
		const struct verify_item *vi = &items[i];
		struct tr_error err;

		tr_error_clear(&err);
		if (vi->err.kind != TR_ERR_NONE)
			continue;
		if (vi->missing > 0 || vi->folders_missing > 0) {
			it->final = RUN_FINAL_INCOMPLETE;
			it->final_missing = vi->missing;
			log_warn(it->acc->label, "final pass: %u message(s) of the source not on the "
				 "destination: not finished", vi->missing);
			continue;
		}
		if (run_set_status(env, it->acc, "finished", &err) < 0) {
			log_error(it->acc->label, "final pass: %s", err.msg);
			continue;
		}
		it->final = RUN_FINAL_FINISHED;
		log_info(it->acc->label, "final pass: verified complete, marked finished");
	}
out:
	for (i = 0; i < n; i++)
		if (res->v[i].final != RUN_FINAL_FINISHED)
			ret = -1;
	if (items != NULL)
		verify_items_free(items, n_ok);
	free(ok_acc);
	free(where);
	return ret;
}
