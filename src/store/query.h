/*
 * query.h — the read side of the request store: the query-string parser and
 * the JSON answers of the API routes of SPEC §8 (requests, one request,
 * the costs forms, stats). The HTTP layer passes the raw query string (the
 * part after '?', not decoded) and sends back the status and JSON body.
 *
 * Each answer runs its SQL on the calling thread through the back-end's
 * reader connections (independent of the writer). Any thread.
 */
#ifndef TG_QUERY_H
#define TG_QUERY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/util.h"

struct tg_store;

typedef enum {
    TG_QUERY_LIST = 0,     /* GET /api/v1/requests */
    TG_QUERY_COSTS_PERIOD, /* GET /api/v1/requests/costs?filter=...&period=... */
    TG_QUERY_COSTS,        /* GET /api/v1/costs?group_by=... */
    TG_QUERY_STATS,        /* GET /api/v1/stats */
    TG_QUERY_SERIES,       /* GET /api/v1/stats/series?bucket=...&group_by=... */
    TG_QUERY_SESSIONS,     /* GET /api/v1/sessions */
} tg_query_kind_t;

typedef enum {
    TG_GROUP_NONE = 0,
    TG_GROUP_MODEL,
    TG_GROUP_PROVIDER,
    TG_GROUP_USER,
    TG_GROUP_DAY,
    TG_GROUP_PROPERTY,
} tg_query_group_t;

typedef struct {
    char **v;
    size_t n;
} tg_strlist_t;

typedef struct {
    char *name; /* compared case-insensitively */
    tg_strlist_t values;
} tg_query_prop_t;

/**
 * A parsed query. Repeating a filter ORs its values (model=a&model=b);
 * different filters AND. Time range: [from_ms, to_ms).
 */
typedef struct tg_query {
    tg_query_kind_t kind;
    tg_strlist_t models, providers, user_ids, session_ids;
    struct {
        int lo, hi;
    } * status; /* status=404 -> [404,404]; status=4xx -> [400,499] */
    size_t n_status;
    bool status_error;   /* status=error: status >= 400 or an error message */
    bool status_success; /* status=success: the opposite */
    tg_query_prop_t *props;
    size_t n_props;
    bool has_from, has_to;
    int64_t from_ms, to_ms;
    int64_t limit, offset; /* list only: default 50 (max 1000), 0 */
    tg_query_group_t group_by;
    char *group_prop;  /* TG_GROUP_PROPERTY: the property name */
    char *period;      /* COSTS_PERIOD: "day", "week" or "month" */
    int64_t bucket_ms; /* SERIES: 1m, 5m, 1h or 1d; from and to are always set */
} tg_query_t;

/** One decoded key=value pair of a query string. */
typedef struct {
    char *key;
    char *value;
} tg_query_param_t;

/**
 * Split and percent-decode a query string ('+' is a space; a key without '='
 * has value ""). Returns the number of pairs (array in *out, free with
 * tg_query_params_free), or -1 with a message (bad %-escape, NUL byte).
 */
int tg_query_params_parse(const char *qs, tg_query_param_t **out, char *err, size_t errlen);
void tg_query_params_free(tg_query_param_t *p, int n);

/**
 * Parse the query string of route `kind` into q. `now_ms` anchors periods
 * (period=day is the current UTC day). Returns 0, or -1 with a message for a
 * 400 answer (unknown parameter, bad time, unknown group_by, bad limit...).
 * q must be freed with tg_query_free either way.
 */
int tg_query_parse(tg_query_kind_t kind, const char *qs, int64_t now_ms, tg_query_t *q, char *err,
                   size_t errlen);
void tg_query_free(tg_query_t *q);

/*
 * The API answers. Each appends a JSON body to `out` and returns the HTTP
 * status: 200; 400 for a bad query and 404 for an unknown id, with
 * {"error":{"message","type","code"}}; 503 when the store cannot answer.
 */

/** GET /api/v1/requests?limit&offset&model&provider&status&user_id&session_id
 *  &property.<Name>=v&from&to -> {"data":[...],"total":N,"limit":L,"offset":O} */
int tg_query_requests(struct tg_store *s, const char *qs, tg_buf_t *out);

/** GET /api/v1/requests/{id} -> the record with request_body and response_body */
int tg_query_request(struct tg_store *s, const char *id, tg_buf_t *out);

/** GET /api/v1/requests/costs?filter=properties.<Name>=v&period=day|week|month
 *  -> {total_cost, requests, prompt_tokens, completion_tokens, from, to, ...} */
int tg_query_request_costs(struct tg_store *s, const char *qs, tg_buf_t *out);

/** GET /api/v1/costs?group_by=model|provider|user|day|property:<Name>&from&to
 *  -> {"group_by":..,"from":..,"to":..,"data":[{"group":..,"total_cost":..,...}]} */
int tg_query_costs(struct tg_store *s, const char *qs, tg_buf_t *out);

/** GET /api/v1/stats?from&to -> requests, errors, cache hit rate, latency and
 *  ttft p50/p95/p99, tokens, cost, unpriced */
int tg_query_stats(struct tg_store *s, const char *qs, tg_buf_t *out);

/** GET /api/v1/stats/series?from&to&bucket=1m|5m|1h|1d&group_by=model|provider|user
 *  |property:<Name> and the record filters -> {"bucket","from","to","group_by",
 *  "t":[unix seconds],"series":[{"group","requests":[..],...}]} */
int tg_query_series(struct tg_store *s, const char *qs, tg_buf_t *out);

/** GET /api/v1/sessions?from&to&limit&offset and the record filters ->
 *  {"data":[{session_id, name, requests, errors, cost, ...}],"total","limit","offset"} */
int tg_query_sessions(struct tg_store *s, const char *qs, tg_buf_t *out);

/** GET /api/v1/sessions/{id} -> {session_id, name, requests, cost, latency_ms,
 *  ..., "data":[records oldest first]} (404 when no record has that session) */
int tg_query_session(struct tg_store *s, const char *id, tg_buf_t *out);

#endif
