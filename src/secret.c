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

/* Passwords longer than this are not passwords. */
#define SECRET_MAX 4096

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

static char *first_line(char *buf, size_t len)
{
	size_t i;

	for (i = 0; i < len; i++)
		if (buf[i] == '\n' || buf[i] == '\r')
			break;
	buf[i] = '\0';
	return strdup(buf);
}

int secret_from_file(const char *path, char **out, struct tr_error *err)
{
	char buf[SECRET_MAX + 1];
	ssize_t n;
	size_t len = 0;
	int fd;

	*out = NULL;
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		tr_error_set(err, TR_ERR_USAGE, "cannot read password file %s: %s", path,
			     strerror(errno));
		return -1;
	}
	while (len < SECRET_MAX && (n = read(fd, buf + len, SECRET_MAX - len)) != 0) {
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
	*out = first_line(buf, len);
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
	while (len < SECRET_MAX) {
		char c;
		ssize_t n = read(fd, &c, 1);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0 || c == '\n' || c == '\r')
			break;
		buf[len++] = c;
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
