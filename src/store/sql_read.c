/*
 * sql_read.c — the query API's SQL and aggregation, shared by the SQL
 * back-ends (see sql_read.h): record lists, one record, costs by group,
 * stats, series and sessions. Separate from each back-end's connection
 * code so that SQLite and PostgreSQL answer the API the same way.
 *
 * Threads: whichever thread runs a query, on the reader it holds.
 */
#include "store/sql_read.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define REC_COLS                                                                                   \
    "r.id, r.created_at, r.provider, r.model, r.model_requested, r.route, r.status,"               \
    " r.latency_ms, r.ttft_ms, r.prompt_tokens, r.completion_tokens, r.cached_tokens,"             \
    " r.cache_write_tokens, r.reasoning_tokens, r.cost_nusd, r.cache, r.user_id, r.session_id,"    \
    " r.session_name, r.session_path, r.properties, r.key_name, r.client_ip, r.retries,"           \
    " r.fallback_index, r.error, r.cache_saved_nusd"
#define REC_NCOLS 27

/* A column's value where positive, else 0 (NULL included): for sums, in
 * SQL both back-ends speak */
#define POSITIVE(col) "CASE WHEN " col " > 0 THEN " col " ELSE 0 END"

/* A statement builder for reader st's dialect. */
#define SQLB(st)                                                                                   \
    {                                                                                              \
        .dollar = (st)->ops->dollar, .lower_names = (st)->ops->lower_names                         \
    }

static void sb(tg_sqlb_t *b, const char *s)
{
    tg_buf_puts(&b->sql, s);
}

static tg_sqlval_t *sb_val(tg_sqlb_t *b)
{
    if (b->n == b->cap) {
        b->cap = b->cap ? b->cap * 2 : 16;
        b->v = tg_xrealloc(b->v, b->cap * sizeof *b->v);
    }
    tg_sqlval_t *v = &b->v[b->n++];
    if (b->dollar)
        tg_buf_printf(&b->sql, "$%zu", b->n);
    else
        tg_buf_puts(&b->sql, "?");
    memset(v, 0, sizeof *v);
    return v;
}

static void sb_int(tg_sqlb_t *b, int64_t x)
{
    sb_val(b)->i = x;
}

static void sb_text(tg_sqlb_t *b, const char *s)
{
    tg_sqlval_t *v = sb_val(b);
    v->is_text = true;
    v->s = s;
}

/* A property name to compare with a name column: as is (SQLite's column
 * is COLLATE NOCASE), or folded to ASCII lower case like the stored names
 * (PostgreSQL; the "C" collation folds ASCII only, as NOCASE does). */
static void sb_name(tg_sqlb_t *b, const char *name)
{
    if (!b->lower_names) {
        sb_text(b, name);
        return;
    }
    /* folded here, not by lower() in SQL: a comparison in another
     * collation than the column's could not use its index */
    b->owned = tg_xrealloc(b->owned, (b->n_owned + 1) * sizeof *b->owned);
    char *low = b->owned[b->n_owned++] = tg_xstrdup(name);
    tg_ascii_lower(low);
    sb_text(b, low);
}

static void sb_in(tg_sqlb_t *b, const char *col, const tg_strlist_t *l)
{
    if (!l->n)
        return;
    sb(b, " AND ");
    sb(b, col);
    sb(b, " IN (");
    for (size_t i = 0; i < l->n; i++) {
        if (i)
            sb(b, ",");
        sb_text(b, l->v[i]);
    }
    sb(b, ")");
}

static void sb_free(tg_sqlb_t *b)
{
    tg_buf_free(&b->sql);
    free(b->v);
    for (size_t i = 0; i < b->n_owned; i++)
        free(b->owned[i]);
    free(b->owned);
}

static bool has_record_filters(const tg_query_t *q)
{
    return q->models.n || q->providers.n || q->user_ids.n || q->session_ids.n || q->n_status ||
           q->status_error || q->status_success;
}

/*
 * Whether the status filter asks only for errors (every range at 400 or
 * more). requests_status holds only those rows (WHERE status >= 400, schema
 * version 6), and SQLite uses a partial index only for a query that states
 * its condition: from_where then adds "r.status >= 400", and an error filter
 * is a search of that small index instead of a scan. A filter that takes
 * lower statuses (most records) is read in time order from requests_time.
 */
static bool errors_only(const tg_query_t *q)
{
    if (!q->n_status || q->status_error || q->status_success)
        return false;
    for (size_t i = 0; i < q->n_status; i++)
        if (q->status[i].lo < 400)
            return false;
    return true;
}

/*
 * " FROM ... WHERE ..." for the filters of q. With a property filter the
 * first property drives the query through its (name, value, created_at)
 * index; then `need_r` false (a count with only property and time filters)
 * leaves the requests table out altogether. `group_prop` adds "pg", the
 * grouping property (LEFT JOIN: records without it form the null group).
 */
static void from_where(tg_sqlb_t *b, const tg_query_t *q, const char *group_prop, bool need_r)
{
    const char *tcol, *seq = "r.seq";
    size_t first_prop = 0;
    if (q->n_props && !need_r && !group_prop && !has_record_filters(q)) {
        sb(b, " FROM request_properties p0");
        tcol = "p0.created_at";
        seq = "p0.seq";
        first_prop = 1;
    } else if (q->n_props) {
        sb(b, " FROM request_properties p0 JOIN requests r ON r.seq = p0.seq");
        tcol = "p0.created_at";
        first_prop = 1;
    } else {
        sb(b, " FROM requests r");
        tcol = "r.created_at";
    }
    if (group_prop) {
        sb(b, " LEFT JOIN request_properties pg ON pg.seq = r.seq AND pg.name = ");
        sb_name(b, group_prop);
        /* a property row has its record's time: the range narrows the
         * rows to join (PostgreSQL hashes them from (name, created_at)) */
        if (q->has_from) {
            sb(b, " AND pg.created_at >= ");
            sb_int(b, q->from_ms);
        }
        if (q->has_to) {
            sb(b, " AND pg.created_at < ");
            sb_int(b, q->to_ms);
        }
    }
    sb(b, " WHERE 1 = 1");
    if (q->n_props) {
        sb(b, " AND p0.name = ");
        sb_name(b, q->props[0].name);
        sb_in(b, "p0.value", &q->props[0].values);
    }
    if (q->has_from) {
        sb(b, " AND ");
        sb(b, tcol);
        sb(b, " >= ");
        sb_int(b, q->from_ms);
    }
    if (q->has_to) {
        sb(b, " AND ");
        sb(b, tcol);
        sb(b, " < ");
        sb_int(b, q->to_ms);
    }
    sb_in(b, "r.model", &q->models);
    sb_in(b, "r.provider", &q->providers);
    sb_in(b, "r.user_id", &q->user_ids);
    sb_in(b, "r.session_id", &q->session_ids);
    if (q->n_status || q->status_error || q->status_success) {
        if (errors_only(q)) /* the partial index's own condition: see below */
            sb(b, " AND r.status >= 400");
        sb(b, " AND (1 = 0");
        for (size_t i = 0; i < q->n_status; i++) {
            sb(b, " OR r.status BETWEEN ");
            sb_int(b, q->status[i].lo);
            sb(b, " AND ");
            sb_int(b, q->status[i].hi);
        }
        if (q->status_error)
            sb(b, " OR r.status >= 400 OR r.has_error <> 0");
        if (q->status_success)
            sb(b, " OR (r.status < 400 AND r.has_error = 0)");
        sb(b, ")");
    }
    for (size_t i = first_prop; i < q->n_props; i++) {
        sb(b, " AND EXISTS (SELECT 1 FROM request_properties px WHERE px.seq = ");
        sb(b, seq);
        sb(b, " AND px.name = ");
        sb_name(b, q->props[i].name);
        sb_in(b, "px.value", &q->props[i].values);
        sb(b, ")");
    }
}

static char *col_str(tg_sqlrd_t *st, int i)
{
    size_t len;
    const char *t = st->ops->text(st, i, &len);
    return t ? tg_xstrndup(t, len) : NULL;
}

static int64_t col_num(tg_sqlrd_t *st, int i)
{
    return st->ops->is_null(st, i) ? -1 : st->ops->i64(st, i);
}

static tg_record_t *row_record(tg_sqlrd_t *st)
{
    tg_record_t *r = tg_xcalloc(1, sizeof *r);
    r->id = col_str(st, 0);
    r->created_at_ms = st->ops->i64(st, 1);
    r->provider = col_str(st, 2);
    r->model = col_str(st, 3);
    r->model_requested = col_str(st, 4);
    r->route = col_str(st, 5);
    r->status = (int)st->ops->i64(st, 6);
    r->latency_ms = col_num(st, 7);
    r->ttft_ms = col_num(st, 8);
    r->usage.prompt_tokens = (long)col_num(st, 9);
    r->usage.completion_tokens = (long)col_num(st, 10);
    r->usage.cached_tokens = (long)col_num(st, 11);
    r->usage.cache_write_tokens = (long)col_num(st, 12);
    r->usage.reasoning_tokens = (long)col_num(st, 13);
    r->cost_nusd = col_num(st, 14);
    int c = (int)st->ops->i64(st, 15);
    r->cache = c == TG_RECORD_CACHE_HIT || c == TG_RECORD_CACHE_MISS ? (tg_record_cache_t)c
                                                                     : TG_RECORD_CACHE_NONE;
    r->user_id = col_str(st, 16);
    r->session_id = col_str(st, 17);
    r->session_name = col_str(st, 18);
    r->session_path = col_str(st, 19);
    size_t plen;
    const char *props = st->ops->text(st, 20, &plen);
    if (props && (plen != 2 || memcmp(props, "{}", 2) != 0)) {
        json_t *o = json_loadb(props, plen, 0, NULL);
        const char *k;
        json_t *v;
        json_object_foreach(o, k, v)
        {
            if (json_is_string(v))
                tg_record_set_property(r, k, json_string_value(v));
        }
        json_decref(o);
    }
    r->key_name = col_str(st, 21);
    r->client_ip = col_str(st, 22);
    r->retries = (int)st->ops->i64(st, 23);
    r->fallback_index = (int)col_num(st, 24);
    r->error = col_str(st, 25);
    r->cache_saved_nusd = col_num(st, 26);
    return r;
}

int tg_sqlrd_list(tg_sqlrd_t *st, const tg_query_t *q, tg_record_list_t *out, char *err,
                  size_t errlen)
{
    memset(out, 0, sizeof *out);
    int ret = -1;
    tg_sqlb_t c = SQLB(st), l = SQLB(st);
    /* the total */
    sb(&c, "SELECT count(*)");
    from_where(&c, q, NULL, false);
    if (st->ops->run(st, &c, err, errlen) != 0)
        goto out;
    if (st->ops->step(st, err, errlen) != 1) {
        goto out;
    }
    out->total = st->ops->i64(st, 0);
    st->ops->done(st);
    /* the page, newest first: the page's seqs from an index alone (a deep
     * offset skips index entries, not table rows), then their rows */
    sb(&l, "SELECT " REC_COLS " FROM requests r WHERE r.seq IN (SELECT ");
    sb(&l, q->n_props ? "p0.seq" : "r.seq");
    from_where(&l, q, NULL, false);
    sb(&l, q->n_props ? " ORDER BY p0.created_at DESC, p0.seq DESC"
                      : " ORDER BY r.created_at DESC, r.seq DESC");
    sb(&l, " LIMIT ");
    sb_int(&l, q->limit);
    sb(&l, " OFFSET ");
    sb_int(&l, q->offset);
    sb(&l, ") ORDER BY r.created_at DESC, r.seq DESC");
    if (st->ops->run(st, &l, err, errlen) != 0)
        goto out;
    size_t cap = 0;
    int rc;
    while ((rc = st->ops->step(st, err, errlen)) == 1) {
        if (out->n == cap) {
            cap = cap ? cap * 2 : 64;
            out->items = tg_xrealloc(out->items, cap * sizeof *out->items);
        }
        out->items[out->n++] = row_record(st);
    }
    if (rc != 0) {
        tg_record_list_free(out);
        goto out;
    }
    ret = 0;
out:
    st->ops->done(st);
    sb_free(&c);
    sb_free(&l);
    return ret;
}

int tg_sqlrd_get(tg_sqlrd_t *st, const char *id, tg_record_t **out, char *err, size_t errlen)
{
    *out = NULL;
    int ret = -1;
    tg_sqlb_t x = SQLB(st);
    sb(&x, "SELECT " REC_COLS ", b.request_body, b.response_body"
           " FROM requests r LEFT JOIN request_bodies b ON b.seq = r.seq WHERE r.id = ");
    sb_text(&x, id);
    sb(&x, " ORDER BY r.created_at DESC LIMIT 1");
    int rc;
    if (st->ops->run(st, &x, err, errlen) != 0 || (rc = st->ops->step(st, err, errlen)) < 0)
        goto out;
    if (rc == 0) {
        ret = 1;
        goto out;
    }
    tg_record_t *r = row_record(st);
    for (int i = 0; i < 2; i++) {
        size_t n;
        const void *p = st->ops->blob(st, REC_NCOLS + i, &n);
        if (p)
            tg_record_set_stored_body(r, i == 1, p, n);
    }
    *out = r;
    ret = 0;
out:
    st->ops->done(st);
    sb_free(&x);
    return ret;
}

/* Cost groups, aggregated in C: SQLite's GROUP BY sorts every row of the
 * range through a temporary b-tree, a hash table over a few hundred groups
 * is several times faster. */
typedef struct {
    tg_cost_row_t *rows;
    size_t n, cap;
    uint32_t *slots; /* index + 1 into rows; 0 = empty */
    size_t n_slots;
    ssize_t null_row; /* the group of records without the key, -1 none yet */
} groups_t;

static uint32_t fnv1a(const char *s, size_t n)
{
    uint32_t h = 2166136261u;
    for (size_t i = 0; i < n; i++)
        h = (h ^ (unsigned char)s[i]) * 16777619u;
    return h;
}

/* Keep the hash table at most half full (the null group is not in it). */
static void group_grow(groups_t *g)
{
    if (g->n * 2 < g->n_slots)
        return;
    size_t ns = g->n_slots ? g->n_slots * 2 : 64;
    uint32_t *sl = tg_xcalloc(ns, sizeof *sl);
    for (size_t i = 0; i < g->n; i++) {
        const char *k = g->rows[i].group;
        if (!k)
            continue;
        size_t j = fnv1a(k, strlen(k)) & (ns - 1);
        while (sl[j])
            j = (j + 1) & (ns - 1);
        sl[j] = (uint32_t)i + 1;
    }
    free(g->slots);
    g->slots = sl;
    g->n_slots = ns;
}

static tg_cost_row_t *group_new(groups_t *g, const char *key, size_t len)
{
    if (g->n == g->cap) {
        g->cap = g->cap ? g->cap * 2 : 16;
        g->rows = tg_xrealloc(g->rows, g->cap * sizeof *g->rows);
    }
    tg_cost_row_t *row = &g->rows[g->n++];
    memset(row, 0, sizeof *row);
    row->group = key ? tg_xstrndup(key, len) : NULL;
    return row;
}

/* The row of group `key` (NULL: records without it), created on first use. */
static tg_cost_row_t *group_find(groups_t *g, const char *key, size_t len)
{
    if (!key) {
        if (g->null_row < 0) {
            g->null_row = (ssize_t)g->n;
            group_new(g, NULL, 0);
        }
        return &g->rows[g->null_row];
    }
    group_grow(g);
    size_t mask = g->n_slots - 1, j = fnv1a(key, len) & mask;
    while (g->slots[j]) {
        tg_cost_row_t *row = &g->rows[g->slots[j] - 1];
        if (row->group && strlen(row->group) == len && !memcmp(row->group, key, len))
            return row;
        j = (j + 1) & mask;
    }
    g->slots[j] = (uint32_t)g->n + 1;
    return group_new(g, key, len);
}

static int cmp_by_cost(const void *a, const void *b)
{
    const tg_cost_row_t *x = a, *y = b;
    if (x->cost_nusd != y->cost_nusd)
        return x->cost_nusd > y->cost_nusd ? -1 : 1;
    if (x->requests != y->requests)
        return x->requests > y->requests ? -1 : 1;
    if (!x->group || !y->group)
        return !x->group - !y->group; /* the null group last */
    return strcmp(x->group, y->group);
}

static int cmp_by_key(const void *a, const void *b)
{
    const tg_cost_row_t *x = a, *y = b;
    if (!x->group || !y->group)
        return !x->group - !y->group;
    return strcmp(x->group, y->group);
}

int tg_sqlrd_costs(tg_sqlrd_t *st, const tg_query_t *q, tg_cost_rows_t *out, char *err,
                   size_t errlen)
{
    memset(out, 0, sizeof *out);
    const char *g;
    switch (q->group_by) {
    case TG_GROUP_MODEL: g = "r.model"; break;
    case TG_GROUP_PROVIDER: g = "r.provider"; break;
    case TG_GROUP_USER: g = "r.user_id"; break;
    case TG_GROUP_DAY: g = "r.created_at / 86400000"; break;
    case TG_GROUP_PROPERTY: g = "pg.value"; break;
    default: g = NULL; break;
    }
    tg_sqlb_t x = SQLB(st);
    /* one row of sums per group from the database (ungrouped, or a
     * back-end that groups faster than rows travel), else every row */
    bool agg = !g || st->ops->sql_aggregates;
    sb(&x, "SELECT ");
    sb(&x, g ? g : "NULL");
    if (!agg)
        sb(&x, ", r.prompt_tokens, r.completion_tokens, r.cached_tokens, r.cache_write_tokens,"
               " r.reasoning_tokens, r.cost_nusd, r.cache_saved_nusd");
    else
        sb(&x,
           ", count(*), sum(" POSITIVE(
               "r.prompt_tokens") "),"
                                  " sum(" POSITIVE("r.completion_tokens") "), sum(" POSITIVE(
                                      "r.cached_tokens") "),"
                                                         " sum(" POSITIVE("r.cache_write_tokens") "), sum(" POSITIVE(
                                                             "r.reasoning_tokens") "),"
                                                                                   " sum(r.cost_"
                                                                                   "nusd),"
                                                                                   " sum(CASE "
                                                                                   "WHEN "
                                                                                   "r.cost_nusd "
                                                                                   "IS NULL AND "
                                                                                   "r.prompt_"
                                                                                   "tokens IS NOT "
                                                                                   "NULL THEN 1 "
                                                                                   "ELSE 0 END),"
                                                                                   " sum"
                                                                                   "(" POSITIVE(
                                                                                       "r.cache_"
                                                                                       "saved_"
                                                                                       "nusd") ")");
    from_where(&x, q, q->group_by == TG_GROUP_PROPERTY ? q->group_prop : NULL, true);
    if (agg && g)
        sb(&x, " GROUP BY 1");
    int ret = -1, rc;
    groups_t gs = {.null_row = -1};
    if (st->ops->run(st, &x, err, errlen) != 0)
        goto out;
    while ((rc = st->ops->step(st, err, errlen)) == 1) {
        tg_cost_row_t *row;
        if (!g)
            row = group_new(&gs, NULL, 0);
        else if (st->ops->is_null(st, 0))
            row = group_find(&gs, NULL, 0);
        else if (q->group_by == TG_GROUP_DAY) {
            char day[24];
            int n = snprintf(day, sizeof day, "%lld", (long long)st->ops->i64(st, 0));
            row = group_find(&gs, day, (size_t)n);
        } else {
            size_t klen;
            const char *k = st->ops->text(st, 0, &klen);
            row = group_find(&gs, k, klen);
        }
        if (agg) { /* a group's sums */
            row->requests = st->ops->i64(st, 1);
            row->prompt_tokens = st->ops->i64(st, 2);
            row->completion_tokens = st->ops->i64(st, 3);
            row->cached_tokens = st->ops->i64(st, 4);
            row->cache_write_tokens = st->ops->i64(st, 5);
            row->reasoning_tokens = st->ops->i64(st, 6);
            row->cost_nusd = st->ops->i64(st, 7);
            row->unpriced = st->ops->i64(st, 8);
            row->cache_saved_nusd = st->ops->i64(st, 9);
            continue;
        }
        int64_t v, prompt = col_num(st, 1);
        row->requests++;
        row->prompt_tokens += prompt > 0 ? prompt : 0;
        row->completion_tokens += (v = col_num(st, 2)) > 0 ? v : 0;
        row->cached_tokens += (v = col_num(st, 3)) > 0 ? v : 0;
        row->cache_write_tokens += (v = col_num(st, 4)) > 0 ? v : 0;
        row->reasoning_tokens += (v = col_num(st, 5)) > 0 ? v : 0;
        if ((v = col_num(st, 6)) >= 0)
            row->cost_nusd += v;
        else if (prompt >= 0)
            row->unpriced++;
        if ((v = col_num(st, 7)) > 0)
            row->cache_saved_nusd += v;
    }
    if (rc != 0) {
        for (size_t i = 0; i < gs.n; i++)
            free(gs.rows[i].group);
        free(gs.rows);
        goto out;
    }
    if (q->group_by == TG_GROUP_DAY) {
        for (size_t i = 0; i < gs.n; i++) {
            if (!gs.rows[i].group)
                continue;
            int64_t y;
            unsigned m, d;
            tg_record_civil_from_days(strtoll(gs.rows[i].group, NULL, 10), &y, &m, &d);
            char day[32];
            snprintf(day, sizeof day, "%04lld-%02u-%02u", (long long)y, m, d);
            free(gs.rows[i].group);
            gs.rows[i].group = tg_xstrdup(day);
        }
        qsort(gs.rows, gs.n, sizeof *gs.rows, cmp_by_key);
    } else if (g) {
        qsort(gs.rows, gs.n, sizeof *gs.rows, cmp_by_cost);
    }
    out->rows = gs.rows;
    out->n = gs.n;
    ret = 0;
out:
    free(gs.slots);
    st->ops->done(st);
    sb_free(&x);
    return ret;
}

/* The k-th smallest of v[lo..hi] (0-based k), moving it to v[k]:
 * quickselect (Hoare's partition, middle pivot), O(n) on average where a
 * sort of a month's million latencies took ~100 ms. */
static int64_t select_kth(int64_t *v, size_t lo, size_t hi, size_t k)
{
    while (lo < hi) {
        int64_t pivot = v[lo + (hi - lo) / 2];
        size_t i = lo, j = hi;
        while (i <= j) {
            while (v[i] < pivot)
                i++;
            while (v[j] > pivot)
                j--;
            if (i <= j) {
                int64_t t = v[i];
                v[i] = v[j];
                v[j] = t;
                i++;
                if (j == 0)
                    break;
                j--;
            }
        }
        if (k <= j)
            hi = j;
        else if (k >= i)
            lo = i;
        else
            return v[k];
    }
    return v[k];
}

/* Nearest-rank percentiles p50, p95, p99 of v[0..n) (v is reordered). */
static void percentiles(int64_t *v, size_t n, int64_t out[3])
{
    static const int ps[3] = {50, 95, 99};
    if (!n) {
        out[0] = out[1] = out[2] = -1;
        return;
    }
    size_t lo = 0;
    for (int i = 0; i < 3; i++) {
        size_t rank = (ps[i] * n + 99) / 100; /* ceil(p/100 * n), 1-based */
        size_t k = rank ? rank - 1 : 0;
        /* the ranks ascend: what is left of the last one is all smaller */
        out[i] = select_kth(v, lo, n - 1, k);
        lo = k;
    }
}

/* "{p50,p95,p99}" of percentile_disc into out; NULL: -1 each. */
static void sql_percentiles(tg_sqlrd_t *st, int col, int64_t out[3])
{
    long long a, b, c;
    size_t len;
    const char *v = st->ops->text(st, col, &len);
    if (v && sscanf(v, "{%lld,%lld,%lld}", &a, &b, &c) == 3) {
        out[0] = a;
        out[1] = b;
        out[2] = c;
    } else {
        out[0] = out[1] = out[2] = -1;
    }
}

/* The stats in one aggregate row: percentile_disc is the nearest rank
 * (ceil(p * n)), as percentiles() below. */
static int stats_in_sql(tg_sqlrd_t *st, const tg_query_t *q, tg_stats_t *out, char *err,
                        size_t errlen)
{
    tg_sqlb_t x = SQLB(st);
    sb(&x, "SELECT count(*), sum(CASE WHEN r.status >= 400 OR r.has_error <> 0 THEN 1 ELSE 0 END),"
           " sum(CASE WHEN r.cache = ");
    sb_int(&x, TG_RECORD_CACHE_HIT);
    sb(&x, " THEN 1 ELSE 0 END), sum(CASE WHEN r.cache = ");
    sb_int(&x, TG_RECORD_CACHE_MISS);
    sb(&x,
       " THEN 1 ELSE 0 END),"
       " sum(" POSITIVE("r.prompt_tokens") "), sum(" POSITIVE(
           "r.completion_tokens") "),"
                                  " sum(" POSITIVE("r.cached_tokens") "), sum(" POSITIVE(
                                      "r.cache_write_tokens") "),"
                                                              " sum(" POSITIVE(
                                                                  "r.reasoning_"
                                                                  "tokens") "), "
                                                                            "sum(r."
                                                                            "cost_"
                                                                            "nusd), "
                                                                            "count(r."
                                                                            "cost_"
                                                                            "nusd),"
                                                                            " sum("
                                                                            "CASE "
                                                                            "WHEN "
                                                                            "r.cost_"
                                                                            "nusd IS "
                                                                            "NULL "
                                                                            "AND "
                                                                            "r."
                                                                            "prompt_"
                                                                            "tokens "
                                                                            "IS NOT "
                                                                            "NULL "
                                                                            "THEN 1 "
                                                                            "ELSE 0 "
                                                                            "END),"
                                                                            " sum"
                                                                            "(" POSITIVE(
                                                                                "r."
                                                                                "cach"
                                                                                "e_"
                                                                                "save"
                                                                                "d_"
                                                                                "nus"
                                                                                "d") "),"
                                                                                     " percentile_"
                                                                                     "disc(ARRAY[0."
                                                                                     "5, 0.95, "
                                                                                     "0.99]) "
                                                                                     "WITHIN GROUP "
                                                                                     "(ORDER BY "
                                                                                     "r.latency_ms)"
                                                                                     ","
                                                                                     " percentile_"
                                                                                     "disc(ARRAY[0."
                                                                                     "5, 0.95, "
                                                                                     "0.99]) "
                                                                                     "WITHIN GROUP "
                                                                                     "(ORDER BY "
                                                                                     "r.ttft_ms)");
    from_where(&x, q, NULL, true);
    int ret = -1;
    if (st->ops->run(st, &x, err, errlen) != 0 || st->ops->step(st, err, errlen) != 1)
        goto out;
    int64_t *f[] = {&out->requests,         &out->errors,
                    &out->cache_hits,       &out->cache_misses,
                    &out->prompt_tokens,    &out->completion_tokens,
                    &out->cached_tokens,    &out->cache_write_tokens,
                    &out->reasoning_tokens, &out->cost_nusd,
                    &out->priced,           &out->unpriced,
                    &out->cache_saved_nusd};
    for (int i = 0; i < 13; i++)
        *f[i] = st->ops->i64(st, i);
    sql_percentiles(st, 13, out->latency_ms);
    sql_percentiles(st, 14, out->ttft_ms);
    ret = 0;
out:
    st->ops->done(st);
    sb_free(&x);
    return ret;
}

int tg_sqlrd_stats(tg_sqlrd_t *st, const tg_query_t *q, tg_stats_t *out, char *err, size_t errlen)
{
    memset(out, 0, sizeof *out);
    if (st->ops->sql_aggregates)
        return stats_in_sql(st, q, out, err, errlen);
    tg_sqlb_t x = SQLB(st);
    sb(&x, "SELECT r.status, r.has_error, r.cache, r.latency_ms, r.ttft_ms,"
           " r.prompt_tokens, r.completion_tokens, r.cached_tokens, r.cache_write_tokens,"
           " r.reasoning_tokens, r.cost_nusd, r.cache_saved_nusd");
    from_where(&x, q, NULL, true);
    int64_t *lat = NULL, *ttft = NULL;
    size_t n_lat = 0, n_ttft = 0, cap = 0;
    int ret = -1, rc;
    if (st->ops->run(st, &x, err, errlen) != 0)
        goto out;
    while ((rc = st->ops->step(st, err, errlen)) == 1) {
        out->requests++;
        if ((int)st->ops->i64(st, 0) >= 400 || (int)st->ops->i64(st, 1))
            out->errors++;
        int cache = (int)st->ops->i64(st, 2);
        out->cache_hits += cache == TG_RECORD_CACHE_HIT;
        out->cache_misses += cache == TG_RECORD_CACHE_MISS;
        if (out->requests > (int64_t)cap) {
            cap = cap ? cap * 2 : 1024;
            lat = tg_xrealloc(lat, cap * sizeof *lat);
            ttft = tg_xrealloc(ttft, cap * sizeof *ttft);
        }
        int64_t v;
        if ((v = col_num(st, 3)) >= 0)
            lat[n_lat++] = v;
        if ((v = col_num(st, 4)) >= 0)
            ttft[n_ttft++] = v;
        int64_t prompt = col_num(st, 5);
        out->prompt_tokens += prompt > 0 ? prompt : 0;
        out->completion_tokens += (v = col_num(st, 6)) > 0 ? v : 0;
        out->cached_tokens += (v = col_num(st, 7)) > 0 ? v : 0;
        out->cache_write_tokens += (v = col_num(st, 8)) > 0 ? v : 0;
        out->reasoning_tokens += (v = col_num(st, 9)) > 0 ? v : 0;
        if ((v = col_num(st, 10)) >= 0) {
            out->cost_nusd += v;
            out->priced++;
        } else if (prompt >= 0) {
            out->unpriced++;
        }
        if ((v = col_num(st, 11)) > 0)
            out->cache_saved_nusd += v;
    }
    if (rc != 0) {
        goto out;
    }
    percentiles(lat, n_lat, out->latency_ms);
    percentiles(ttft, n_ttft, out->ttft_ms);
    ret = 0;
out:
    free(lat);
    free(ttft);
    st->ops->done(st);
    sb_free(&x);
    return ret;
}

/* ---- the dashboard's series and sessions ---- */

/* One cell's latencies while a series is read: percentiles at the end. */
typedef struct {
    int64_t *v;
    size_t n, cap;
} i64vec_t;

static void vec_push(i64vec_t *a, int64_t x)
{
    if (a->n == a->cap) {
        a->cap = a->cap ? a->cap * 2 : 16;
        a->v = tg_xrealloc(a->v, a->cap * sizeof *a->v);
    }
    a->v[a->n++] = x;
}

#define SERIES_MAX_GROUPS 20

/* The row of group `key` if it exists (NULL key: the null group), else NULL. */
static tg_cost_row_t *group_get(groups_t *g, const char *key, size_t len)
{
    if (!key)
        return g->null_row >= 0 ? &g->rows[g->null_row] : NULL;
    if (!g->n_slots)
        return NULL;
    size_t mask = g->n_slots - 1, j = fnv1a(key, len) & mask;
    while (g->slots[j]) {
        tg_cost_row_t *row = &g->rows[g->slots[j] - 1];
        if (row->group && strlen(row->group) == len && !memcmp(row->group, key, len))
            return row;
        j = (j + 1) & mask;
    }
    return NULL;
}

static void groups_free(groups_t *g)
{
    for (size_t i = 0; i < g->n; i++)
        free(g->rows[i].group);
    free(g->rows);
    free(g->slots);
}

/* The group key of a series row (column 1): NULL for none. */
static const char *row_key(tg_sqlrd_t *st, size_t *len)
{
    *len = 0;
    return st->ops->text(st, 1, len);
}

/* A series, aggregated in C like the costs, from the covering time index
 * (plus the grouping property when asked). Grouped, it reads the range
 * twice: once to rank the groups by cost, once to fill the buckets of the
 * SERIES_MAX_GROUPS first only, so that memory is bounded by those
 * whatever the number of groups (a property unique to each request). */
/* The SERIES_MAX_GROUPS costliest groups of rank (sorted) into keep, with
 * their totals; returns how many. */
static size_t keep_costliest(groups_t *rank, groups_t *keep)
{
    qsort(rank->rows, rank->n, sizeof *rank->rows, cmp_by_cost);
    size_t kept = rank->n < SERIES_MAX_GROUPS ? rank->n : SERIES_MAX_GROUPS;
    for (size_t k = 0; k < kept; k++) {
        const char *rk = rank->rows[k].group;
        tg_cost_row_t *row = group_find(keep, rk, rk ? strlen(rk) : 0);
        row->requests = rank->rows[k].requests;
        row->cost_nusd = rank->rows[k].cost_nusd;
    }
    return kept;
}

/* out's groups: the kept ones, named, with their totals and nb empty
 * cells each. */
static void series_groups(tg_series_t *out, const tg_query_t *q, size_t nb, const groups_t *keep,
                          size_t kept)
{
    out->from_ms = q->from_ms;
    out->bucket_ms = q->bucket_ms;
    out->n_buckets = nb;
    out->groups = tg_xcalloc(kept ? kept : 1, sizeof *out->groups);
    for (size_t k = 0; k < kept; k++) {
        tg_series_group_t *sg = &out->groups[out->n_groups++];
        sg->group = keep->rows[k].group ? tg_xstrdup(keep->rows[k].group) : NULL;
        sg->cost_nusd = keep->rows[k].cost_nusd;
        sg->requests = keep->rows[k].requests;
        sg->cells = tg_xcalloc(nb ? nb : 1, sizeof *sg->cells);
    }
}

/* The kept groups of a series from the database's own sums: one row per
 * group (ranked here as in C), then one per group and bucket with its
 * percentiles (percentile_disc: the nearest rank). For a back-end with
 * sql_aggregates: a month of a million records travels as a few thousand
 * rows. */
static int series_in_sql(tg_sqlrd_t *st, const tg_query_t *q, const char *g, size_t nb,
                         tg_series_t *out, char *err, size_t errlen)
{
    const char *gp = q->group_by == TG_GROUP_PROPERTY ? q->group_prop : NULL;
    tg_sqlb_t x1 = SQLB(st), x2 = SQLB(st);
    groups_t keep = {.null_row = -1};
    int ret = -1, rc;
    size_t kept = 1;
    if (g) {
        groups_t rank = {.null_row = -1};
        sb(&x1, "SELECT ");
        sb(&x1, g);
        sb(&x1, ", count(*), sum(" POSITIVE("r.cost_nusd") ")");
        from_where(&x1, q, gp, true);
        sb(&x1, " GROUP BY 1");
        if (st->ops->run(st, &x1, err, errlen) != 0) {
            groups_free(&rank);
            goto out;
        }
        while ((rc = st->ops->step(st, err, errlen)) == 1) {
            size_t len;
            const char *key = st->ops->text(st, 0, &len);
            tg_cost_row_t *row = group_find(&rank, key, len);
            row->requests = st->ops->i64(st, 1);
            row->cost_nusd = st->ops->i64(st, 2);
        }
        if (rc != 0) {
            groups_free(&rank);
            goto out;
        }
        kept = keep_costliest(&rank, &keep);
        out->groups_total = rank.n;
        groups_free(&rank);
    } else {
        group_find(&keep, NULL, 0); /* the whole series, even when empty */
        out->groups_total = 1;
    }
    series_groups(out, q, nb, &keep, kept);
    for (size_t k = 0; k < kept; k++)
        for (size_t i = 0; i < nb; i++)
            for (int j = 0; j < 3; j++)
                out->groups[k].cells[i].latency_ms[j] = out->groups[k].cells[i].ttft_ms[j] = -1;
    sb(&x2, "SELECT (r.created_at - ");
    sb_int(&x2, q->from_ms);
    sb(&x2, ") / ");
    sb_int(&x2, q->bucket_ms);
    sb(&x2, ", ");
    sb(&x2, g ? g : "NULL");
    sb(&x2, ", count(*), sum(CASE WHEN r.status >= 400 OR r.has_error <> 0 THEN 1 ELSE 0 END),"
            " sum(CASE WHEN r.cache = ");
    sb_int(&x2, TG_RECORD_CACHE_HIT);
    sb(&x2, " THEN 1 ELSE 0 END), sum(CASE WHEN r.cache = ");
    sb_int(&x2, TG_RECORD_CACHE_MISS);
    sb(&x2, " THEN 1 ELSE 0 END), sum(" POSITIVE(
                "r.prompt_tokens") "),"
                                   " sum(" POSITIVE("r.completion_tokens") "), sum(" POSITIVE(
                                       "r.cost_nusd") "),"
                                                      " percentile_disc(ARRAY[0.5, 0.95, 0.99]) "
                                                      "WITHIN GROUP (ORDER BY r.latency_ms),"
                                                      " percentile_disc(ARRAY[0.5, 0.95, 0.99]) "
                                                      "WITHIN GROUP (ORDER BY r.ttft_ms)");
    from_where(&x2, q, gp, true);
    sb(&x2, " GROUP BY 1, 2");
    if (st->ops->run(st, &x2, err, errlen) != 0)
        goto failed;
    while ((rc = st->ops->step(st, err, errlen)) == 1) {
        int64_t bi = st->ops->i64(st, 0);
        size_t len;
        const char *key = g ? st->ops->text(st, 1, &len) : NULL;
        tg_cost_row_t *row = g ? group_get(&keep, key, len) : &keep.rows[0];
        if (!row || bi < 0 || (size_t)bi >= nb)
            continue; /* not among the costliest */
        tg_series_group_t *sg = &out->groups[row - keep.rows];
        tg_series_cell_t *c = &sg->cells[bi];
        int64_t *f[] = {&c->requests,     &c->errors,        &c->cache_hits,
                        &c->cache_misses, &c->prompt_tokens, &c->completion_tokens,
                        &c->cost_nusd};
        for (int i = 0; i < 7; i++)
            *f[i] = st->ops->i64(st, 2 + i);
        sql_percentiles(st, 9, c->latency_ms);
        sql_percentiles(st, 10, c->ttft_ms);
        if (!g) {
            sg->requests += c->requests;
            sg->cost_nusd += c->cost_nusd;
        }
    }
    if (rc != 0)
        goto failed;
    ret = 0;
    goto out;
failed:
    tg_series_free(out);
    memset(out, 0, sizeof *out);
out:
    groups_free(&keep);
    st->ops->done(st);
    sb_free(&x1);
    sb_free(&x2);
    return ret;
}

int tg_sqlrd_series(tg_sqlrd_t *st, const tg_query_t *q, tg_series_t *out, char *err, size_t errlen)
{
    memset(out, 0, sizeof *out);
    size_t nb = (size_t)((q->to_ms - q->from_ms + q->bucket_ms - 1) / q->bucket_ms);
    const char *g;
    switch (q->group_by) {
    case TG_GROUP_MODEL: g = "r.model"; break;
    case TG_GROUP_PROVIDER: g = "r.provider"; break;
    case TG_GROUP_USER: g = "r.user_id"; break;
    case TG_GROUP_PROPERTY: g = "pg.value"; break;
    default: g = NULL; break;
    }
    if (st->ops->sql_aggregates)
        return series_in_sql(st, q, g, nb, out, err, errlen);
    tg_sqlb_t x = SQLB(st);
    sb(&x, "SELECT r.created_at, ");
    sb(&x, g ? g : "NULL");
    sb(&x, ", r.status, r.has_error, r.cache, r.latency_ms, r.ttft_ms, r.prompt_tokens,"
           " r.completion_tokens, r.cost_nusd");
    from_where(&x, q, q->group_by == TG_GROUP_PROPERTY ? q->group_prop : NULL, true);
    int ret = -1, rc = 0;
    groups_t rank = {.null_row = -1}, keep = {.null_row = -1};
    tg_series_cell_t *cells = NULL; /* keep.n x nb */
    i64vec_t *lat = NULL, *ttft = NULL;
    size_t kept = 0;
    const char *key;
    size_t len;
    int64_t v;
    if (st->ops->run(st, &x, err, errlen) != 0)
        goto out;
    if (g) {
        /* pass 1: every group's cost and requests */
        while ((rc = st->ops->step(st, err, errlen)) == 1) {
            key = row_key(st, &len);
            tg_cost_row_t *row = group_find(&rank, key, len);
            row->requests++;
            if ((v = col_num(st, 9)) > 0)
                row->cost_nusd += v;
        }
        if (rc != 0)
            goto failed;
        kept = keep_costliest(&rank, &keep);
        if (st->ops->rewind(st, err, errlen) != 0)
            goto out;
        out->groups_total = rank.n;
    } else {
        group_find(&keep, NULL, 0); /* the whole series, even when empty */
        kept = 1;
        out->groups_total = 1;
    }
    size_t n_cells = kept * nb + 1; /* + 1: never a zero-size allocation */
    cells = tg_xcalloc(n_cells, sizeof *cells);
    lat = tg_xcalloc(n_cells, sizeof *lat);
    ttft = tg_xcalloc(n_cells, sizeof *ttft);
    /* pass 2: the kept groups' buckets */
    while ((rc = st->ops->step(st, err, errlen)) == 1) {
        int64_t t = st->ops->i64(st, 0);
        if (t < q->from_ms || t >= q->to_ms)
            continue;
        tg_cost_row_t *row =
            g ? (key = row_key(st, &len), group_get(&keep, key, len)) : &keep.rows[0];
        if (!row)
            continue; /* not among the costliest */
        if (!g) {
            row->requests++;
            if ((v = col_num(st, 9)) > 0)
                row->cost_nusd += v;
        }
        size_t ci = (size_t)(row - keep.rows) * nb + (size_t)((t - q->from_ms) / q->bucket_ms);
        tg_series_cell_t *c = &cells[ci];
        c->requests++;
        if ((int)st->ops->i64(st, 2) >= 400 || (int)st->ops->i64(st, 3))
            c->errors++;
        int cache = (int)st->ops->i64(st, 4);
        c->cache_hits += cache == TG_RECORD_CACHE_HIT;
        c->cache_misses += cache == TG_RECORD_CACHE_MISS;
        if ((v = col_num(st, 5)) >= 0)
            vec_push(&lat[ci], v);
        if ((v = col_num(st, 6)) >= 0)
            vec_push(&ttft[ci], v);
        c->prompt_tokens += (v = col_num(st, 7)) > 0 ? v : 0;
        c->completion_tokens += (v = col_num(st, 8)) > 0 ? v : 0;
        if ((v = col_num(st, 9)) > 0)
            c->cost_nusd += v;
    }
    if (rc != 0)
        goto failed;
    series_groups(out, q, nb, &keep, kept);
    for (size_t k = 0; k < kept; k++) {
        tg_series_group_t *sg = &out->groups[k];
        for (size_t i = 0; i < nb; i++) {
            sg->cells[i] = cells[k * nb + i];
            percentiles(lat[k * nb + i].v, lat[k * nb + i].n, sg->cells[i].latency_ms);
            percentiles(ttft[k * nb + i].v, ttft[k * nb + i].n, sg->cells[i].ttft_ms);
        }
    }
    ret = 0;
    goto out;
failed:
out:
    for (size_t i = 0; lat && i < kept * nb; i++) {
        free(lat[i].v);
        free(ttft[i].v);
    }
    free(cells);
    free(lat);
    free(ttft);
    groups_free(&rank);
    groups_free(&keep);
    st->ops->done(st);
    sb_free(&x);
    return ret;
}

/* Sessions by their last request, in two steps: the page's sessions from
 * the session index alone ((session_id, created_at) covers a max per
 * session, without reading a million rows), then the sums of those few
 * sessions' records. The filters of the record list apply to both. */
int tg_sqlrd_sessions(tg_sqlrd_t *st, const tg_query_t *q, tg_sessions_t *out, char *err,
                      size_t errlen)
{
    memset(out, 0, sizeof *out);
    tg_sqlb_t c = SQLB(st), pg = SQLB(st), l = SQLB(st);
    int ret = -1, rc;
    char **ids = NULL;
    size_t n_ids = 0;
    sb(&c, "SELECT count(DISTINCT r.session_id)");
    from_where(&c, q, NULL, true);
    sb(&c, " AND r.session_id IS NOT NULL");
    if (st->ops->run(st, &c, err, errlen) != 0)
        goto out;
    if (st->ops->step(st, err, errlen) != 1) {
        goto out;
    }
    out->total = st->ops->i64(st, 0);
    st->ops->done(st);
    /* the page: ids by their last request */
    sb(&pg, "SELECT r.session_id, max(r.created_at) AS last");
    from_where(&pg, q, NULL, true);
    sb(&pg, " AND r.session_id IS NOT NULL GROUP BY r.session_id ORDER BY last DESC LIMIT ");
    sb_int(&pg, q->limit);
    sb(&pg, " OFFSET ");
    sb_int(&pg, q->offset);
    if (st->ops->run(st, &pg, err, errlen) != 0)
        goto out;
    ids = tg_xcalloc((size_t)q->limit, sizeof *ids);
    while ((rc = st->ops->step(st, err, errlen)) == 1 && n_ids < (size_t)q->limit)
        ids[n_ids++] = col_str(st, 0);
    if (rc < 0) {
        goto out;
    }
    st->ops->done(st);
    if (!n_ids) {
        ret = 0;
        goto out;
    }
    /* their sums, in the page's order */
    sb(&l, "SELECT r.session_id, max(r.session_name), count(*),"
           " sum(CASE WHEN r.status >= 400 OR r.has_error <> 0 THEN 1 ELSE 0 END),"
           " sum(" POSITIVE("r.cost_nusd") "), sum(" POSITIVE(
               "r.prompt_tokens") "),"
                                  " sum(" POSITIVE("r.completion_tokens") "), sum(" POSITIVE(
                                      "r.latency_ms") "),"
                                                      " min(r.created_at), max(r.created_at)");
    from_where(&l, q, NULL, true);
    tg_strlist_t page = {ids, n_ids};
    sb_in(&l, "r.session_id", &page);
    sb(&l, " GROUP BY r.session_id ORDER BY max(r.created_at) DESC");
    if (st->ops->run(st, &l, err, errlen) != 0)
        goto out;
    out->rows = tg_xcalloc(n_ids, sizeof *out->rows);
    while ((rc = st->ops->step(st, err, errlen)) == 1 && out->n < n_ids) {
        tg_session_row_t *r = &out->rows[out->n++];
        r->session_id = col_str(st, 0);
        r->name = col_str(st, 1);
        r->requests = st->ops->i64(st, 2);
        r->errors = st->ops->i64(st, 3);
        r->cost_nusd = (int64_t)st->ops->i64(st, 4);
        r->prompt_tokens = (int64_t)st->ops->i64(st, 5);
        r->completion_tokens = (int64_t)st->ops->i64(st, 6);
        r->latency_ms = (int64_t)st->ops->i64(st, 7);
        r->first_ms = st->ops->i64(st, 8);
        r->last_ms = st->ops->i64(st, 9);
    }
    if (rc < 0) {
        tg_sessions_free(out);
        goto out;
    }
    ret = 0;
out:
    for (size_t i = 0; i < n_ids; i++)
        free(ids[i]);
    free(ids);
    st->ops->done(st);
    sb_free(&c);
    sb_free(&pg);
    sb_free(&l);
    return ret;
}
