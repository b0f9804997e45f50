/*
 * sql_read.h — the query API's SQL, shared by the SQL back-ends (SQLite,
 * PostgreSQL): the WHERE clause of the filters, the record lists, costs,
 * stats, series and sessions, aggregated in C from the rows a back-end
 * returns. One implementation, so that every back-end answers the API
 * with the same JSON for the same records. Internal to src/store/.
 *
 * A back-end supplies a reader (tg_sqlrd_t): one connection that runs one
 * statement at a time, through the hooks below. The SQL is built from fixed
 * fragments; every value is a bound parameter ('?' for SQLite, '$n' for
 * PostgreSQL). Both schemas have the same tables and columns (requests,
 * request_properties, request_bodies; integers for times, numbers and
 * flags).
 *
 * Threads: whichever thread runs a query, on a reader it holds alone.
 */
#ifndef TG_SQL_READ_H
#define TG_SQL_READ_H

#include "store/query.h"
#include "store/store.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* One bound value of a statement. */
typedef struct {
    bool is_text;
    int64_t i;
    const char *s;
} tg_sqlval_t;

/* SQL text plus the values of its parameters, in order. */
typedef struct {
    tg_buf_t sql;
    tg_sqlval_t *v;
    size_t n, cap;
    bool dollar;      /* parameters are $1, $2... (PostgreSQL), not ? */
    bool lower_names; /* property names compare in ASCII lower case */
    char **owned;     /* values made for the statement (folded names) */
    size_t n_owned;
} tg_sqlb_t;

typedef struct tg_sqlrd tg_sqlrd_t;

typedef struct {
    bool dollar; /* the back-end's parameters: $n */
    /* true: request_properties.name holds names in ASCII lower case, and a
     * name compares as lower(?) (SQLite: the column is COLLATE NOCASE) */
    bool lower_names;
    /* true: stats and costs are aggregated by the database (GROUP BY,
     * percentile_disc; PostgreSQL), where SQLite's rows are summed in C
     * faster than its GROUP BY sorts them */
    bool sql_aggregates;
    /* start the statement (one at a time): 0, or -1 with err */
    int (*run)(tg_sqlrd_t *r, const tg_sqlb_t *b, char *err, size_t errlen);
    /* the next row: 1, 0 at the end, -1 on an error (err filled) */
    int (*step)(tg_sqlrd_t *r, char *err, size_t errlen);
    /* start the statement over: 0, or -1 with err */
    int (*rewind)(tg_sqlrd_t *r, char *err, size_t errlen);
    /* let go of the statement (also after an error; no-op without one) */
    void (*done)(tg_sqlrd_t *r);
    /* the current row's column i (0-based) */
    bool (*is_null)(tg_sqlrd_t *r, int i);
    int64_t (*i64)(tg_sqlrd_t *r, int i);                   /* NULL: 0 */
    const char *(*text)(tg_sqlrd_t *r, int i, size_t *len); /* NULL: NULL */
    const void *(*blob)(tg_sqlrd_t *r, int i, size_t *len); /* NULL: NULL */
} tg_sqlrd_ops_t;

struct tg_sqlrd {
    const tg_sqlrd_ops_t *ops;
};

int tg_sqlrd_list(tg_sqlrd_t *r, const tg_query_t *q, tg_record_list_t *out, char *err,
                  size_t errlen);
int tg_sqlrd_get(tg_sqlrd_t *r, const char *id, tg_record_t **out, char *err, size_t errlen);
int tg_sqlrd_costs(tg_sqlrd_t *r, const tg_query_t *q, tg_cost_rows_t *out, char *err,
                   size_t errlen);
int tg_sqlrd_stats(tg_sqlrd_t *r, const tg_query_t *q, tg_stats_t *out, char *err, size_t errlen);
int tg_sqlrd_series(tg_sqlrd_t *r, const tg_query_t *q, tg_series_t *out, char *err, size_t errlen);
int tg_sqlrd_sessions(tg_sqlrd_t *r, const tg_query_t *q, tg_sessions_t *out, char *err,
                      size_t errlen);

#endif
