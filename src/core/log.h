/*
 * log.h — process log (not the request records of the store).
 *
 * One line per call, written with a single write(2) so lines from different
 * threads never interleave. Format "text" (ts level msg) or "json"
 * ({"ts","level","msg"}). Safe from any thread after tg_log_init.
 */
#ifndef TG_LOG_H
#define TG_LOG_H

typedef enum { TG_LOG_DEBUG = 0, TG_LOG_INFO, TG_LOG_WARN, TG_LOG_ERROR } tg_log_level_t;

/** Configure level ("debug".."error"), format ("text"/"json") and output
 *  ("stdout", "stderr" or a file path, opened for append). Returns 0 or -1. */
int tg_log_init(const char *level, const char *format, const char *output);

/** True when messages at `level` are written. */
int tg_log_enabled(tg_log_level_t level);

void tg_log(tg_log_level_t level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#define tg_debug(...) tg_log(TG_LOG_DEBUG, __VA_ARGS__)
#define tg_info(...)  tg_log(TG_LOG_INFO, __VA_ARGS__)
#define tg_warn(...)  tg_log(TG_LOG_WARN, __VA_ARGS__)
#define tg_error(...) tg_log(TG_LOG_ERROR, __VA_ARGS__)

#endif
