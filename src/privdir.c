/* privdir: see include/privdir.h */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "privdir.h"

/* mkdir -p, 0700 for what we create. */
static int make_dirs(const char *dir, const char *what, struct tr_error *err)
{
	char path[4096];
	size_t i, len = strlen(dir);

	memcpy(path, dir, len + 1);
	for (i = 1; i <= len; i++) {
		if (path[i] != '/' && path[i] != '\0')
			continue;
		path[i] = '\0';
		if (mkdir(path, 0700) < 0 && errno != EEXIST) {
			tr_error_set(err, TR_ERR_LOCAL, "cannot create the %s %s: %s", what, path,
				     strerror(errno));
			return -1;
		}
		path[i] = i == len ? '\0' : '/';
	}
	return 0;
}

static const char *writers(mode_t mode)
{
	if ((mode & S_IWGRP) && (mode & S_IWOTH))
		return "its group and by others";
	return mode & S_IWGRP ? "its group" : "others";
}

int privdir_open(const char *dir, const char *what, struct tr_error *err)
{
	char path[4096];
	size_t len = strlen(dir);
	struct stat st;
	int fd, e;

	/* "state/" would follow a link named state: the slash goes. */
	while (len > 1 && dir[len - 1] == '/')
		len--;
	if (len == 0 || len >= sizeof(path)) {
		tr_error_set(err, TR_ERR_USAGE, "bad %s \"%s\"", what, dir);
		return -1;
	}
	memcpy(path, dir, len);
	path[len] = '\0';

	fd = open(path, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0 && errno == ENOENT) {
		if (make_dirs(path, what, err) < 0)
			return -1;
		fd = open(path, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	}
	if (fd < 0) {
		e = errno;
		if ((e == ENOTDIR || e == ELOOP) && lstat(path, &st) == 0 && S_ISLNK(st.st_mode))
			tr_error_set(err, TR_ERR_LOCAL, "the %s %s is a symbolic link: trasloco "
				     "does not follow links there; give the real directory", what,
				     path);
		else
			tr_error_set(err, TR_ERR_LOCAL, "cannot open the %s %s: %s", what, path,
				     strerror(e));
		return -1;
	}
	if (fstat(fd, &st) < 0) {
		tr_error_set(err, TR_ERR_LOCAL, "cannot stat the %s %s: %s", what, path,
			     strerror(errno));
		close(fd);
		return -1;
	}
	if (st.st_uid != geteuid()) {
		tr_error_set(err, TR_ERR_LOCAL, "the %s %s belongs to uid %u, not to the user "
			     "running trasloco (uid %u): run trasloco as its owner or give a "
			     "directory of your own", what, path, (unsigned)st.st_uid,
			     (unsigned)geteuid());
		close(fd);
		return -1;
	}
	if (st.st_mode & (S_IWGRP | S_IWOTH)) {
		tr_error_set(err, TR_ERR_LOCAL, "the %s %s is writable by %s (mode %04o): "
			     "anyone who can write there can redirect what trasloco writes; "
			     "make it private (chmod 700 %s)", what, path, writers(st.st_mode),
			     (unsigned)(st.st_mode & 07777), path);
		close(fd);
		return -1;
	}
	return fd;
}

int privdir_file(int dirfd, const char *dirpath, const char *name, int flags,
		 struct tr_error *err)
{
	struct stat st;
	int fd;

	/* O_NONBLOCK: a FIFO in its place must not hang us before the check. */
	fd = openat(dirfd, name, flags | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC, 0600);
	if (fd < 0) {
		int e = errno;

		if (e == ELOOP)
			tr_error_set(err, TR_ERR_LOCAL, "%s/%s is a symbolic link: trasloco does "
				     "not follow links there", dirpath, name);
		else
			tr_error_set(err, TR_ERR_LOCAL, "cannot open %s/%s: %s", dirpath, name,
				     strerror(e));
		return -1;
	}
	if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode)) {
		tr_error_set(err, TR_ERR_LOCAL, "%s/%s is not a regular file", dirpath, name);
		close(fd);
		return -1;
	}
	if (st.st_uid != geteuid()) {
		tr_error_set(err, TR_ERR_LOCAL, "%s/%s belongs to uid %u, not to the user running "
			     "trasloco (uid %u)", dirpath, name, (unsigned)st.st_uid,
			     (unsigned)geteuid());
		close(fd);
		return -1;
	}
	if ((st.st_mode & 077) != 0 && fchmod(fd, 0600) < 0) {
		tr_error_set(err, TR_ERR_LOCAL, "cannot make %s/%s private: %s", dirpath, name,
			     strerror(errno));
		close(fd);
		return -1;
	}
	/* Back to blocking for the caller's reads and writes. */
	fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) & ~O_NONBLOCK);
	return fd;
}

int privdir_file_check(int dirfd, const char *dirpath, const char *name,
		       struct tr_error *err)
{
	struct stat st;
	int fd;

	if (fstatat(dirfd, name, &st, AT_SYMLINK_NOFOLLOW) < 0) {
		if (errno != ENOENT) {
			tr_error_set(err, TR_ERR_LOCAL, "cannot look at %s/%s: %s", dirpath, name,
				     strerror(errno));
			return -1;
		}
		/* O_EXCL: made here, or by another at the same moment (then
		 * checked as an existing one) */
		fd = openat(dirfd, name, O_RDWR | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
		if (fd >= 0) {
			close(fd);
			return 0;
		}
		if (errno != EEXIST || fstatat(dirfd, name, &st, AT_SYMLINK_NOFOLLOW) < 0) {
			tr_error_set(err, TR_ERR_LOCAL, "cannot create %s/%s: %s", dirpath, name,
				     strerror(errno));
			return -1;
		}
	}
	if (S_ISLNK(st.st_mode)) {
		tr_error_set(err, TR_ERR_LOCAL, "%s/%s is a symbolic link: trasloco does not follow "
			     "links there", dirpath, name);
		return -1;
	}
	if (!S_ISREG(st.st_mode)) {
		tr_error_set(err, TR_ERR_LOCAL, "%s/%s is not a regular file", dirpath, name);
		return -1;
	}
	if (st.st_uid != geteuid()) {
		tr_error_set(err, TR_ERR_LOCAL, "%s/%s belongs to uid %u, not to the user running "
			     "trasloco (uid %u)", dirpath, name, (unsigned)st.st_uid,
			     (unsigned)geteuid());
		return -1;
	}
	/* the directory is ours alone: the name checked is the file changed */
	if ((st.st_mode & 077) != 0 && fchmodat(dirfd, name, 0600, 0) < 0) {
		tr_error_set(err, TR_ERR_LOCAL, "cannot make %s/%s private: %s", dirpath, name,
			     strerror(errno));
		return -1;
	}
	return 0;
}
