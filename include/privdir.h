/* privdir: the private directories trasloco writes into (the state, the
 * per-account logs) and the files it keeps there.
 *
 * They hold logins, folder names and the ledger of every message copied.
 * Whoever else can write into such a directory can replace a file with a
 * symbolic link and make trasloco write (append a log line, truncate a
 * database) wherever the running user may, so an existing directory is used
 * only when it is a real directory (the last component is not a symbolic
 * link), owned by the user running trasloco and not writable by its group or
 * by others; it is refused otherwise, never "fixed": a directory we did not
 * make is the operator's, and the message says what to change.  A missing
 * directory is created (with its missing parents) as 0700.  Parents of an
 * existing directory are not checked: they are the operator's to keep safe.
 *
 * Files in a checked directory are opened without following a symbolic
 * link and must be regular files owned by the running user; a mode that
 * lets group or others in is tightened to 0600 (the directory is ours, so
 * the file is one we made: earlier versions made it 0600 too).
 *
 * No shared state: safe from any thread.
 */
#ifndef TRASLOCO_PRIVDIR_H
#define TRASLOCO_PRIVDIR_H

#include "error.h"

/* Open (creating if missing) the directory path, checked as above.  what
 * names it in messages ("state directory").  Returns an O_DIRECTORY fd the
 * caller closes, or -1 (TR_ERR_LOCAL, the reason and the fix in err). */
int privdir_open(const char *path, const char *what, struct tr_error *err);

/* Open name in the checked directory dirfd (shown as dirpath) with flags
 * (O_RDWR, O_CREAT, ...; new files get 0600), checked as above.  Returns
 * the fd or -1 (TR_ERR_LOCAL). */
int privdir_file(int dirfd, const char *dirpath, const char *name, int flags,
		 struct tr_error *err);

/* The same check (creating the file 0600 when missing) for a file another
 * library opens by its path (SQLite), without keeping a descriptor: it
 * opens none when the file exists.  A process's fcntl locks on a file are
 * all dropped by the close() of any descriptor of that file, so opening
 * and closing one beside SQLite's connections of this process would undo
 * their locks (and let a commit go unseen by others, or worse).  A new
 * file is made and closed before any connection can know it (O_EXCL).
 * Returns 0, or -1 (TR_ERR_LOCAL). */
int privdir_file_check(int dirfd, const char *dirpath, const char *name,
		       struct tr_error *err);

#endif
