/* log: see include/log.h */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdlib.h>
#include <unistd.h>
#include <stdarg.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "log.h"
#include "text.h"

static pthread_mutex_t log_lock = PTHREAD_MUTEX_INITIALIZER;
static enum log_level cur_level = LOG_INFO;
static FILE *out_stream;
static bool progress_on;
static bool progress_shown;

/* Per-account log files: few at a time (one per running account). */
struct attached {
	char *ctx;
	FILE *f;
};
static struct attached *files;
static size_t n_files;

int log_attach(const char *ctx, const char *path)
{
	struct attached *nv;
	struct stat st;
	FILE *f;
	int fd;

	/* Never through a link, never a FIFO or device someone left in its
	 * place: only a regular file of ours. */
	fd = open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK, 0600);
	if (fd < 0)
		return -1;
	if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode) || st.st_uid != geteuid()) {
		close(fd);
		errno = EPERM;
		return -1;
	}
	fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) & ~O_NONBLOCK);
	f = fdopen(fd, "a");
	if (f == NULL) {
		close(fd);
		return -1;
	}
	pthread_mutex_lock(&log_lock);
	nv = realloc(files, (n_files + 1) * sizeof(*nv));
	if (nv == NULL || (nv[n_files].ctx = strdup(ctx)) == NULL) {
		if (nv != NULL)
			files = nv;
		pthread_mutex_unlock(&log_lock);
		fclose(f);
		errno = ENOMEM;
		return -1;
	}
	files = nv;
	files[n_files].f = f;
	n_files++;
	pthread_mutex_unlock(&log_lock);
	return 0;
}

void log_detach(const char *ctx)
{
	size_t i;

	pthread_mutex_lock(&log_lock);
	for (i = 0; i < n_files; i++) {
		if (strcmp(files[i].ctx, ctx) != 0)
			continue;
		fclose(files[i].f);
		free(files[i].ctx);
		files[i] = files[--n_files];
		break;
	}
	if (n_files == 0) {
		free(files);
		files = NULL;
	}
	pthread_mutex_unlock(&log_lock);
}

static FILE *attached_file(const char *ctx)
{
	size_t i;

	if (ctx == NULL)
		return NULL;
	for (i = 0; i < n_files; i++)
		if (strcmp(files[i].ctx, ctx) == 0)
			return files[i].f;
	return NULL;
}

static FILE *out(void)
{
	return out_stream != NULL ? out_stream : stderr;
}

void log_set_level(enum log_level level)
{
	cur_level = level;
}

enum log_level log_get_level(void)
{
	return cur_level;
}

void log_set_stream(FILE *stream)
{
	out_stream = stream;
}

void log_set_progress_enabled(bool on)
{
	progress_on = on;
}

bool log_progress_enabled(void)
{
	return progress_on;
}

static const char *level_name(enum log_level level)
{
	switch (level) {
	case LOG_ERROR: return "error";
	case LOG_WARN: return "warning";
	case LOG_INFO: return "info";
	case LOG_DEBUG: return "debug";
	}
	return "?";
}

/* Caller holds log_lock. */
static void clear_progress(FILE *f)
{
	if (progress_shown) {
		fputs("\r\033[K", f);
		progress_shown = false;
	}
}

void log_msg(enum log_level level, const char *ctx, const char *fmt, ...)
{
	char stamp[32], raw[2048], text[4096], who[1024];
	struct tm tm;
	time_t now;
	va_list ap;
	FILE *f, *af;

	if (level > cur_level)
		return;
	now = time(NULL);
	gmtime_r(&now, &tm);
	strftime(stamp, sizeof(stamp), "%Y-%m-%dT%H:%M:%SZ", &tm);

	va_start(ap, fmt);
	vsnprintf(raw, sizeof(raw), fmt, ap);
	va_end(ap);
	/* Lines carry server replies, folder names and CSV fields: no control
	 * byte or invalid UTF-8 of theirs reaches a terminal or a log file. */
	text_clean_str(text, sizeof(text), raw, NULL);
	pthread_mutex_lock(&log_lock);
	f = out();
	clear_progress(f);
	if (ctx != NULL && ctx[0] != '\0')
		fprintf(f, "%s %s [%s] %s\n", stamp, level_name(level),
			text_clean_str(who, sizeof(who), ctx, NULL), text);
	else
		fprintf(f, "%s %s %s\n", stamp, level_name(level), text);
	fflush(f);
	if ((af = attached_file(ctx)) != NULL) {
		fprintf(af, "%s %s %s\n", stamp, level_name(level), text);
		fflush(af);
	}
	pthread_mutex_unlock(&log_lock);
}

void log_progress(const char *fmt, ...)
{
	char raw[1024], text[1024];
	va_list ap;
	FILE *f;

	if (!progress_on)
		return;
	va_start(ap, fmt);
	vsnprintf(raw, sizeof(raw), fmt, ap);
	va_end(ap);
	text_clean_str(text, sizeof(text), raw, NULL);
	pthread_mutex_lock(&log_lock);
	f = out();
	/* Our own control sequence, then only clean text. */
	fputs("\r\033[K", f);
	fputs(text, f);
	fflush(f);
	progress_shown = true;
	pthread_mutex_unlock(&log_lock);
}

void log_progress_done(void)
{
	pthread_mutex_lock(&log_lock);
	clear_progress(out());
	fflush(out());
	pthread_mutex_unlock(&log_lock);
}
