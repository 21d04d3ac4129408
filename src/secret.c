/* secret: see include/secret.h */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <termios.h>
#include <unistd.h>

#include "log.h"
#include "secret.h"

void secret_free(char *s)
{
	if (s == NULL)
		return;
	explicit_bzero(s, strlen(s));
	free(s);
}

bool secret_file_exposed(const char *path)
{
	struct stat st;

	return stat(path, &st) == 0 && (st.st_mode & (S_IRGRP | S_IROTH)) != 0;
}

int secret_from_file(const char *path, char **out, struct tr_error *err)
{
	/* one byte more than a password may have, to see that it goes on */
	char buf[SECRET_MAX + 1];
	ssize_t n;
	size_t len = 0, i;
	int fd;

	*out = NULL;
	fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
	if (fd < 0) {
		tr_error_set(err, TR_ERR_USAGE, "cannot read password file %s: %s", path,
			     strerror(errno));
		return -1;
	}
	while (len < sizeof(buf) && (n = read(fd, buf + len, sizeof(buf) - len)) != 0) {
		if (n < 0) {
			if (errno == EINTR)
				continue;
			tr_error_set(err, TR_ERR_USAGE, "cannot read password file %s: %s", path,
				     strerror(errno));
			close(fd);
			explicit_bzero(buf, sizeof(buf));
			return -1;
		}
		len += (size_t)n;
	}
	close(fd);
	if (secret_file_exposed(path))
		log_warn(NULL, "password file %s is readable by other users: chmod 600 it", path);
	for (i = 0; i < len; i++)
		if (buf[i] == '\n' || buf[i] == '\r')
			break;
	if (i > SECRET_MAX) {
		explicit_bzero(buf, sizeof(buf));
		tr_error_set(err, TR_ERR_USAGE, "password file %s: the first line is longer than %d "
			     "bytes, the most a password may have", path, SECRET_MAX);
		return -1;
	}
	*out = strndup(buf, i);
	explicit_bzero(buf, sizeof(buf));
	if (*out == NULL) {
		tr_error_set(err, TR_ERR_LOCAL, "out of memory");
		return -1;
	}
	if ((*out)[0] == '\0') {
		tr_error_set(err, TR_ERR_USAGE, "password file %s is empty", path);
		secret_free(*out);
		*out = NULL;
		return -1;
	}
	return 0;
}

int secret_from_env(const char *var, char **out, struct tr_error *err)
{
	char *v = getenv(var);

	*out = NULL;
	if (v == NULL || v[0] == '\0')
		return 0;
	if (strlen(v) > SECRET_MAX) {
		explicit_bzero(v, strlen(v));
		unsetenv(var);
		tr_error_set(err, TR_ERR_USAGE, "$%s is longer than %d bytes, the most a password "
			     "may have", var, SECRET_MAX);
		return -1;
	}
	*out = strdup(v);
	/* Wipe the copy in our environment block before dropping it. */
	explicit_bzero(v, strlen(v));
	unsetenv(var);
	if (*out == NULL) {
		tr_error_set(err, TR_ERR_LOCAL, "out of memory");
		return -1;
	}
	return 1;
}

int secret_from_tty(const char *prompt, char **out, struct tr_error *err)
{
	struct termios old, quiet;
	char buf[SECRET_MAX + 1];
	size_t len = 0;
	int fd;

	*out = NULL;
	fd = open("/dev/tty", O_RDWR | O_CLOEXEC | O_NOCTTY);
	if (fd < 0 || tcgetattr(fd, &old) < 0) {
		if (fd >= 0)
			close(fd);
		tr_error_set(err, TR_ERR_USAGE, "%s: no terminal to ask for it (use a password "
			     "file or the environment)", prompt);
		return -1;
	}
	quiet = old;
	quiet.c_lflag &= (tcflag_t)~(ECHO | ECHONL);
	quiet.c_lflag |= ICANON;
	if (write(fd, prompt, strlen(prompt)) < 0 || write(fd, ": ", 2) < 0 ||
	    tcsetattr(fd, TCSAFLUSH, &quiet) < 0) {
		close(fd);
		tr_error_set(err, TR_ERR_USAGE, "%s: cannot use the terminal", prompt);
		return -1;
	}
	for (;;) {
		char c;
		ssize_t n = read(fd, &c, 1);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0 || c == '\n' || c == '\r')
			break;
		/* the rest of an overlong line is read and dropped */
		if (len < sizeof(buf) - 1)
			buf[len] = c;
		len++;
	}
	if (len > SECRET_MAX) {
		tcsetattr(fd, TCSAFLUSH, &old);
		close(fd);
		explicit_bzero(buf, sizeof(buf));
		tr_error_set(err, TR_ERR_USAGE, "%s: longer than %d bytes, the most a password may "
			     "have", prompt, SECRET_MAX);
		return -1;
	}
	buf[len] = '\0';
	tcsetattr(fd, TCSAFLUSH, &old);
	if (write(fd, "\n", 1) < 0) {
		/* nothing to do: the newline is cosmetic */
	}
	close(fd);
	*out = strdup(buf);
	explicit_bzero(buf, sizeof(buf));
	if (*out == NULL) {
		tr_error_set(err, TR_ERR_LOCAL, "out of memory");
		return -1;
	}
	return 0;
}
