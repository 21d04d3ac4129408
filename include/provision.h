/* provision: make an account exist on the destination before it is copied.
 *
 * Two ways, chosen by the job (jobconf.h: provision-cmd, provision,
 * provision-passwd-fields):
 *   - a command of the provider's (provision-cmd), run through /bin/sh -c
 *     with the account's email in TRASLOCO_EMAIL (and the destination login
 *     in TRASLOCO_USER), its destination password on standard input
 *     followed by a newline (nothing when the job knows no password), and
 *     an environment otherwise made only of PATH, HOME, LANG, LC_ALL, TZ and
 *     TMPDIR: no password is ever in its argv or environment.  Exit 0 means
 *     the account exists or was created; anything else (or running longer
 *     than the job's timeout, when it is killed with its process group)
 *     fails the account with the command's standard error (at most
 *     PROVISION_STDERR_MAX bytes kept, control bytes escaped).  Standard
 *     output is discarded.
 *   - the built-in for Dovecot's passwd-file ("dovecot-passwd-file:PATH"):
 *     a user missing from the file is added as one line
 *     "USER:{SHA512-CRYPT}$6$...FIELDS", FIELDS being the template with
 *     %u (the user), %n (its local part), %d (its domain) and %% expanded.
 *     Under an exclusive flock on PATH.lock; the file is rewritten whole
 *     into a temporary file next to it (same owner, group and mode), which
 *     is fsync'ed and renamed over it, so that Dovecot reads either the old
 *     or the new file.  Existing lines are copied byte for byte; a user
 *     already there (compared without regard to case) is left alone and the
 *     file is not written at all;  after an addition it returns once the
 *     next second has begun (plus 50 ms), as Dovecot looks at the file at
 *     most once a second and a login in the same second could miss it.
 *
 * Ownership: nothing is kept between calls; passwords are borrowed, and
 * the copies made here (the hash's input, the pipe's buffer) are wiped.
 * Threading: any thread; the passwd-file's lock serialises writers, this
 * process's threads among them (flock locks belong to the open file).
 * Commands are started with posix_spawn, safe in a threaded process; a
 * command that exits without reading its password raises no SIGPIPE in the
 * host (blocked in the writing thread, and taken off).
 */
#ifndef TRASLOCO_PROVISION_H
#define TRASLOCO_PROVISION_H

#include <stddef.h>

#include "error.h"
#include "jobconf.h"

/* How much of a command's standard error is kept for the report. */
#define PROVISION_STDERR_MAX 1024

/* The built-in's prefix in the provision setting. */
#define PROVISION_PASSWD_FILE "dovecot-passwd-file:"

/* Whether cfg asks for provisioning at all. */
int provision_wanted(const struct job_config *cfg);

/* Make the account exist as cfg says: email names it (TRASLOCO_EMAIL),
 * user is its destination login (the passwd-file's user), password its
 * destination password (NULL: none known).  Returns 1 when it was created
 * (the built-in) or the command succeeded, 0 when the built-in found it
 * already there, -1 with err (TR_ERR_AUTH for a command that refused or
 * failed, TR_ERR_USAGE for a setting that cannot work, TR_ERR_LOCAL for a
 * file or system failure). */
int provision_account(const struct job_config *cfg, const char *email, const char *user,
		      const char *password, struct tr_error *err);

/* The command alone (timeout_s > 0). */
int provision_cmd_run(const char *cmd, const char *email, const char *user,
		      const char *password, int timeout_s, struct tr_error *err);

/* The passwd-file built-in alone: 1 added, 0 already there, -1 err.
 * fields NULL or "" adds no field after the password; else it must begin
 * with ':'. */
int provision_passwd_add(const char *path, const char *user, const char *password,
			 const char *fields, struct tr_error *err);

/* The template expanded for user into out (size bytes): %u the user, %n
 * the part before the last '@' (the whole user without one), %d the part
 * after it ("" without one), %% a '%'.  Any other '%' sequence, a result
 * that does not fit, or a control character is an error (TR_ERR_USAGE). */
int provision_expand(const char *tmpl, const char *user, char *out, size_t size,
		     struct tr_error *err);

#endif
