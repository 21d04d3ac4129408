/* log: plain log lines with the account/folder they concern, and the one
 * progress line a TTY shows.
 *
 * Thread-safe: whole lines are written under one lock, so lines from
 * different workers never interleave.  A line never contains a password:
 * callers pass logins, folder names and server replies only (the imap module
 * never hands credentials to anything that logs, and takes its password out
 * of what a server sends back).  Lines carry text of servers and CSV files:
 * each line and ctx is cleaned (text.h), so the only control bytes written
 * are the newline ending a line and the progress line's "\r ESC[K".
 */
#ifndef TRASLOCO_LOG_H
#define TRASLOCO_LOG_H

#include <stdbool.h>
#include <stdio.h>

enum log_level { LOG_ERROR = 0, LOG_WARN, LOG_INFO, LOG_DEBUG };

/* Defaults: LOG_INFO to stderr, no progress line. */
void log_set_level(enum log_level level);
enum log_level log_get_level(void);
/* Where lines go; the stream stays the caller's. */
void log_set_stream(FILE *stream);
/* Allow the in-place progress line (only when the stream is a TTY). */
void log_set_progress_enabled(bool on);
bool log_progress_enabled(void);

/* Also write the lines of ctx (an account) to path (appended, mode 0600).
 * Returns -1 with errno when the file cannot be opened, or is not a regular
 * file of the running user (EPERM); a symbolic link is not followed (ELOOP). */
int log_attach(const char *ctx, const char *path);
void log_detach(const char *ctx);

/* One line: "LEVEL [ctx] text".  ctx (account, or account/folder) may be NULL. */
void log_msg(enum log_level level, const char *ctx, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

/* Replace the progress line (no-op unless enabled).  Log lines clear it
 * first and it is redrawn by the next call. */
void log_progress(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* Remove the progress line for good (before the final summary). */
void log_progress_done(void);

#define log_error(ctx, ...) log_msg(LOG_ERROR, ctx, __VA_ARGS__)
#define log_warn(ctx, ...) log_msg(LOG_WARN, ctx, __VA_ARGS__)
#define log_info(ctx, ...) log_msg(LOG_INFO, ctx, __VA_ARGS__)
#define log_debug(ctx, ...) \
	do { if (log_get_level() >= LOG_DEBUG) log_msg(LOG_DEBUG, ctx, __VA_ARGS__); } while (0)

#endif
