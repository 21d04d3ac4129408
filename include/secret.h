/* secret: passwords, from a file, the environment or the terminal.
 *
 * Never from the command line (other users see it in ps).  A secret is a
 * plain NUL-terminated string the caller owns and must release with
 * secret_free, which wipes it first.  Nothing here logs a secret.
 */
#ifndef TRASLOCO_SECRET_H
#define TRASLOCO_SECRET_H

#include <stdbool.h>

#include "error.h"

/* The longest password taken from anywhere (files, environment, terminal):
 * a longer one is an error, never cut short in silence. */
#define SECRET_MAX 1024

/* The first line of path (without its line ending), at most SECRET_MAX
 * bytes.  Warns on stderr when the file is readable by group or others. */
int secret_from_file(const char *path, char **out, struct tr_error *err);
/* The value of environment variable var, which is then removed from the
 * environment so that no child process inherits it.  Returns 1 when set,
 * 0 when not, -1 on ENOMEM. */
int secret_from_env(const char *var, char **out, struct tr_error *err);
/* Ask on the controlling terminal without echo.  Fails (TR_ERR_USAGE)
 * when there is no terminal, e.g. under cron. */
int secret_from_tty(const char *prompt, char **out, struct tr_error *err);
/* Wipe and free; NULL is fine. */
void secret_free(char *s);
/* True when a file that holds secrets is readable by group or others. */
bool secret_file_exposed(const char *path);

#endif
