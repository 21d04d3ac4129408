/* final: the last pass of a migration (`--final`, after the MX records
 * moved and the old server went quiet).
 *
 * One more incremental copy of every account (run_accounts), then a verify
 * (verify.h, by fingerprint) of every account the copy left ok; an account
 * found complete is marked "finished" in the state, and the run's items say
 * what each account came to (run_item.final).  A later run copies again as
 * any run does and sets the status back to what that run found.
 *
 * Threads: those of run_accounts and verify_run, one after the other; the
 * caller's thread marks the state.  Everything borrowed.
 */
#ifndef TRASLOCO_FINAL_H
#define TRASLOCO_FINAL_H

#include <stddef.h>

#include "run.h"

/* As run_accounts (res filled the same way, freed with run_result_free),
 * with each item's final set.  Returns 0 when every account was finished. */
int final_run(const struct run_env *env, const struct run_account *acc, size_t n,
	      struct run_result *res);

#endif
