/*
 * log.c — the process log. Any thread. The settings are plain ints written
 * by tg_log_init on the main thread (at start and on reload). A reload that
 * changes the output swaps the fd atomically; the previous fd stays open
 * until the following init, so a line racing the swap still lands in the old
 * file and never in an fd number that was closed and reused.
 */
#include "core/log.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

static atomic_int g_level = TG_LOG_INFO;
static atomic_int g_json = 0;
static atomic_int g_fd = STDOUT_FILENO;
static int g_prev_fd = -1; /* kept open one generation; see header comment */

static const char *level_name(tg_log_level_t l)
{
    switch (l) {
    case TG_LOG_DEBUG: return "debug";
    case TG_LOG_INFO: return "info";
    case TG_LOG_WARN: return "warn";
    default: return "error";
    }
}

int tg_log_init(const char *level, const char *format, const char *output)
{
    int lvl = TG_LOG_INFO;
    if (level) {
        if (!strcasecmp(level, "debug"))
            lvl = TG_LOG_DEBUG;
        else if (!strcasecmp(level, "warn") || !strcasecmp(level, "warning"))
            lvl = TG_LOG_WARN;
        else if (!strcasecmp(level, "error"))
            lvl = TG_LOG_ERROR;
    }
    int fd = STDOUT_FILENO;
    if (output && !strcmp(output, "stderr"))
        fd = STDERR_FILENO;
    else if (output && strcmp(output, "stdout") != 0 && output[0]) {
        fd = open(output, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
        if (fd < 0)
            return -1;
    }
    atomic_store(&g_level, lvl);
    atomic_store(&g_json, format && !strcasecmp(format, "json"));
    int old = atomic_exchange(&g_fd, fd);
    if (g_prev_fd > STDERR_FILENO && g_prev_fd != fd)
        close(g_prev_fd);
    g_prev_fd = old != fd ? old : -1;
    return 0;
}

int tg_log_enabled(tg_log_level_t level)
{
    return (int)level >= atomic_load(&g_level);
}

/* Appends s to out as JSON string content; control characters escaped. */
static size_t json_escape(char *out, size_t cap, const char *s)
{
    size_t n = 0;
    for (; *s && n + 7 < cap; s++) {
        unsigned char c = (unsigned char)*s;
        if (c == '"' || c == '\\') {
            out[n++] = '\\';
            out[n++] = (char)c;
        } else if (c == '\n') {
            out[n++] = '\\';
            out[n++] = 'n';
        } else if (c < 0x20) {
            n += (size_t)snprintf(out + n, cap - n, "\\u%04x", c);
        } else {
            out[n++] = (char)c;
        }
    }
    return n;
}

void tg_log(tg_log_level_t level, const char *fmt, ...)
{
    if (!tg_log_enabled(level))
        return;
    char msg[2048];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);

    struct timeval tv;
    gettimeofday(&tv, NULL);
    struct tm tm;
    gmtime_r(&tv.tv_sec, &tm);
    char ts[96];
    snprintf(ts, sizeof ts, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", tm.tm_year + 1900, tm.tm_mon + 1,
             tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, (int)(tv.tv_usec / 1000));

    char line[4600];
    size_t n;
    if (atomic_load(&g_json)) {
        n = (size_t)snprintf(line, sizeof line, "{\"ts\":\"%s\",\"level\":\"%s\",\"msg\":\"", ts,
                             level_name(level));
        n += json_escape(line + n, sizeof line - n - 4, msg);
        memcpy(line + n, "\"}\n", 3);
        n += 3;
    } else {
        /* Text: control characters (from client-supplied strings) become '?'. */
        for (char *p = msg; *p; p++)
            if ((unsigned char)*p < 0x20)
                *p = '?';
        n = (size_t)snprintf(line, sizeof line, "%s %-5s %s\n", ts, level_name(level), msg);
        if (n >= sizeof line)
            n = sizeof line - 1;
    }
    int fd = atomic_load(&g_fd);
    ssize_t w;
    do {
        w = write(fd, line, n);
    } while (w < 0 && errno == EINTR);
}
