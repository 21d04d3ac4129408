/* log: see include/log.h */
#include "config.h"

#include <pthread.h>
#include <stdarg.h>
#include <string.h>
#include <time.h>

#include "log.h"

static pthread_mutex_t log_lock = PTHREAD_MUTEX_INITIALIZER;
static enum log_level cur_level = LOG_INFO;
static FILE *out_stream;
static bool progress_on;
static bool progress_shown;

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
	char stamp[32];
	struct tm tm;
	time_t now;
	va_list ap;
	FILE *f;

	if (level > cur_level)
		return;
	now = time(NULL);
	gmtime_r(&now, &tm);
	strftime(stamp, sizeof(stamp), "%Y-%m-%dT%H:%M:%SZ", &tm);

	pthread_mutex_lock(&log_lock);
	f = out();
	clear_progress(f);
	fprintf(f, "%s %s ", stamp, level_name(level));
	if (ctx != NULL && ctx[0] != '\0')
		fprintf(f, "[%s] ", ctx);
	va_start(ap, fmt);
	vfprintf(f, fmt, ap);
	va_end(ap);
	fputc('\n', f);
	fflush(f);
	pthread_mutex_unlock(&log_lock);
}

void log_progress(const char *fmt, ...)
{
	va_list ap;
	FILE *f;

	if (!progress_on)
		return;
	pthread_mutex_lock(&log_lock);
	f = out();
	fputs("\r\033[K", f);
	va_start(ap, fmt);
	vfprintf(f, fmt, ap);
	va_end(ap);
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
