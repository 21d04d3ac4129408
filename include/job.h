/* job: what a batch run is asked to do.  Parses the accounts CSV (libcsv) and
 * the job file; knows nothing of sockets.
 *
 * Accounts CSV: one account per row, "email","password" (quoted or not),
 * optionally with a header row naming the columns.  Recognised header names
 * (case-insensitive; '-' and '_' and ' ' equivalent): email (also: user,
 * login, username, account, mailbox), password (also: pass, passwd,
 * src_password), src_user, dst_user, dst_password.  Without a header row the
 * columns are email,password.  UTF-8 with or without BOM, CRLF or LF, blank
 * lines ignored, spaces around unquoted fields kept (a password may begin or
 * end with a space).  A bad row (wrong number of fields, empty or invalid
 * email, duplicate account, empty password, a field longer than
 * JOB_MAX_FIELD bytes) is reported with its line number and skipped; the
 * other rows still run.  Passwords never appear in any message: a field is
 * quoted in a message only when it is a valid address, or when a header
 * row names its column email; without a header, a row whose second field
 * is an email address is taken for swapped columns and refused.  An
 * overlong field is never held whole: libcsv's buffer stops at 4 KiB.
 *
 * Job file: "key = value" lines, '#' comments, blank lines ignored; keys are
 * the long option names of `trasloco run` (src, dst, src-tls-name, accounts,
 * parallel-accounts, ...), with or without a leading "--".  Values run to
 * the end of the line, trimmed; a value may be wrapped in double quotes to
 * keep leading/trailing spaces.  Lines of at most JOB_MAX_LINE bytes, files
 * of at most 1 MiB.  This module reads the syntax only: what a key means,
 * and where a relative path starts, is jobconf's (jobconf.h).
 */
#ifndef TRASLOCO_JOB_H
#define TRASLOCO_JOB_H

#include <stdbool.h>
#include <stddef.h>

#include "error.h"

/* The longest CSV field (any column: a password, an address, a login). */
#define JOB_MAX_FIELD 1024
/* The longest line of a job file. */
#define JOB_MAX_LINE 4096

struct job_account {
	char *email;          /* owned; the account's name in reports */
	char *password;       /* owned, wiped by job_accounts_free */
	char *src_user;       /* owned or NULL: login on the source (default email) */
	char *dst_user;       /* owned or NULL: login on the destination (default email) */
	char *dst_password;   /* owned or NULL (default: password); wiped */
	unsigned line;        /* line of the row in the CSV, for messages */
};

struct job_problem {
	unsigned line;        /* 0 for a problem with the whole file */
	char *what;           /* owned; never contains a password */
};

struct job_accounts {
	struct job_account *v;      /* owned */
	size_t n;
	struct job_problem *bad;    /* rows skipped, owned */
	size_t n_bad;
	bool had_header;
};

/* Parse CSV text (len bytes; may contain NULs only inside fields).
 * name is used in messages ("accounts.csv").  Returns -1 only when the
 * whole file is unusable (e.g. an unterminated quote swallowing the rest,
 * unknown header column); bad rows are collected in out->bad. */
int job_accounts_parse(const char *name, const char *text, size_t len,
		       struct job_accounts *out, struct tr_error *err);
/* Read a file and parse it. */
int job_accounts_load(const char *path, struct job_accounts *out, struct tr_error *err);
/* The same with options: JOB_ACCOUNTS_NO_PASSWORD when no side logs in
 * with the CSV's passwords (OAuth2 tokens, an admin): the password column
 * may then be absent or empty, and a file without a header may hold one
 * address a line.  Passwords given are still read (and wiped). */
#define JOB_ACCOUNTS_NO_PASSWORD 1u
int job_accounts_parse_opt(const char *name, const char *text, size_t len, unsigned opts,
			   struct job_accounts *out, struct tr_error *err);
int job_accounts_load_opt(const char *path, unsigned opts, struct job_accounts *out,
			  struct tr_error *err);
/* Wipes passwords. */
void job_accounts_free(struct job_accounts *a);

struct job_setting {
	char *key;            /* owned, as written (without leading "--") */
	char *value;          /* owned */
	unsigned line;
};

struct job_file {
	struct job_setting *v;      /* owned, file order */
	size_t n;
	char *path;                 /* owned */
};

/* Parse job file text; a syntax error (line without '=', empty key,
 * unterminated quote) fails with TR_ERR_USAGE naming file and line. */
int job_file_parse(const char *name, const char *text, size_t len, struct job_file *out,
		   struct tr_error *err);
/* Files are opened without blocking (a FIFO is refused, not waited on)
 * and must be regular files. */
int job_file_load(const char *path, struct job_file *out, struct tr_error *err);
/* The same from a descriptor the caller opened and checked; name is for
 * messages. */
int job_file_read_fd(int fd, const char *name, struct job_file *out, struct tr_error *err);
void job_file_free(struct job_file *f);
/* Directory of path ("." when none), newly allocated. */
char *job_file_dir(const char *path);

/* A syntactically acceptable email address: local@domain, no spaces or
 * control characters, one '@', non-empty parts, domain with a dot or
 * "localhost"-style single label allowed?  No: a dot is required. */
bool job_email_valid(const char *email);

#endif
