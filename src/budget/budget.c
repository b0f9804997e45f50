/*
 * budget.c — the budget table: calendar, reservations, settling, runtime
 * budgets (budget.h says what and why).
 *
 * Threads: tg_budgets_new/free and the calendar's construction on main;
 * the rest on any worker, under the shard locks (entries) or rules_lock
 * (runtime budgets, read-mostly). No call holds two kinds of lock at once.
 */
#include "budget/budget.h"

#include "core/util.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#define NSHARDS   16
#define CAL_YEARS 6

const char *tg_budget_period_name(int period)
{
    return period == TG_BUDGET_MONTH ? "monthly" : "daily";
}

const char *tg_budget_action_name(int action)
{
    return action == TG_BUDGET_WARN ? "warn" : action == TG_BUDGET_NONE ? "none" : "block";
}

int tg_budget_action_parse(const char *s)
{
    static const char *const names[] = {"block", "warn", "none"};
    for (int i = 0; i < 3; i++)
        if (s && !strcasecmp(s, names[i]))
            return i;
    return -1;
}

int64_t tg_budget_nusd(double usd)
{
    if (usd < 0)
        return -1;
    if (usd > 9e9) /* 9 billion USD: beyond any budget, within int64 nano-USD */
        usd = 9e9;
    return (int64_t)(usd * 1e9 + 0.5);
}

bool tg_budget_scope_valid(const char *scope)
{
    if (!strcmp(scope, "global") || !strcmp(scope, "key") || !strcmp(scope, "user"))
        return true;
    if (strncmp(scope, "property:", 9) != 0 || !scope[9])
        return false;
    if (strlen(scope) >= TG_BUDGET_SCOPE_MAX)
        return false;
    for (const char *p = scope + 9; *p; p++)
        if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') ||
              *p == '-' || *p == '_' || *p == '.'))
            return false;
    return true;
}

/* ---- calendar ---- */

struct tg_budget_calendar {
    int64_t *starts[TG_BUDGET_NPERIODS]; /* ascending period starts, UNIX seconds */
    size_t n[TG_BUDGET_NPERIODS];
};

bool tg_budget_tz_valid(const char *tz)
{
    return tg_tz_name_valid(tz);
}

/* Days since 1970-01-01 of a civil date (proleptic Gregorian). */
static int64_t days_from_civil(int64_t y, int m, int d)
{
    y -= m <= 2;
    int64_t era = (y >= 0 ? y : y - 399) / 400;
    int64_t yoe = y - era * 400;
    int64_t doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
    int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + doe - 719468;
}

/* UTC periods, for times outside the table (and the zone UTC's own). */
static void utc_period(int period, int64_t t, int64_t *start, int64_t *end)
{
    int64_t day = t >= 0 ? t / 86400 : (t - 86399) / 86400;
    if (period == TG_BUDGET_DAY) {
        *start = day * 86400;
        *end = *start + 86400;
        return;
    }
    time_t tt = (time_t)t;
    struct tm tm;
    gmtime_r(&tt, &tm);
    int64_t y = tm.tm_year + 1900;
    int m = tm.tm_mon + 1;
    *start = days_from_civil(y, m, 1) * 86400;
    *end = days_from_civil(m == 12 ? y + 1 : y, m == 12 ? 1 : m + 1, 1) * 86400;
}

/* Local midnight of y-m-d in the zone TZ currently names (main thread). */
static int64_t local_midnight(int y, int m, int d)
{
    struct tm tm = {0};
    tm.tm_year = y - 1900;
    tm.tm_mon = m - 1;
    tm.tm_mday = d;
    tm.tm_isdst = -1;
    return (int64_t)mktime(&tm);
}

tg_budget_calendar_t *tg_budget_calendar_new(const char *tz, int64_t now_s, char *err,
                                             size_t errlen)
{
    if (!tg_budget_tz_valid(tz)) {
        snprintf(err, errlen,
                 "cost_tracking.budgets.timezone: unknown time zone '%.100s' (an IANA name such "
                 "as UTC, Europe/Paris, America/New_York)",
                 tz ? tz : "");
        return NULL;
    }
    tg_budget_calendar_t *c = tg_xcalloc(1, sizeof *c);
    if (!strcmp(tz, "UTC"))
        return c; /* no table: utc_period is exact */
    /* The C library reads zones only through TZ: set it here, once, while
     * no worker runs, and put it back. */
    const char *old = getenv("TZ");
    char *saved = old ? tg_xstrdup(old) : NULL;
    setenv("TZ", tz, 1);
    tzset();
    time_t t0 = (time_t)now_s - 40 * 86400;
    struct tm tm;
    localtime_r(&t0, &tm);
    int y = tm.tm_year + 1900, m = tm.tm_mon + 1;
    size_t cap_d = (size_t)(CAL_YEARS * 366 + 64), cap_m = (size_t)(CAL_YEARS * 12 + 4);
    c->starts[TG_BUDGET_DAY] = tg_xcalloc(cap_d, sizeof(int64_t));
    c->starts[TG_BUDGET_MONTH] = tg_xcalloc(cap_m, sizeof(int64_t));
    for (size_t i = 0; i < cap_m; i++) {
        c->starts[TG_BUDGET_MONTH][c->n[TG_BUDGET_MONTH]++] = local_midnight(y, m, 1);
        for (int d = 1; d <= 31 && c->n[TG_BUDGET_DAY] < cap_d; d++) {
            int64_t s = local_midnight(y, m, d);
            struct tm back;
            time_t ts = (time_t)s;
            localtime_r(&ts, &back);
            if (back.tm_mon + 1 != m) /* past the month's last day */
                break;
            c->starts[TG_BUDGET_DAY][c->n[TG_BUDGET_DAY]++] = s;
        }
        if (++m == 13) {
            m = 1;
            y++;
        }
    }
    if (saved) {
        setenv("TZ", saved, 1);
        free(saved);
    } else {
        unsetenv("TZ");
    }
    tzset();
    return c;
}

void tg_budget_calendar_free(tg_budget_calendar_t *c)
{
    if (!c)
        return;
    free(c->starts[0]);
    free(c->starts[1]);
    free(c);
}

void tg_budget_period(const tg_budget_calendar_t *c, int period, int64_t t, int64_t *start,
                      int64_t *end)
{
    const int64_t *s = c->starts[period];
    size_t n = c->n[period];
    if (n < 2 || t < s[0] || t >= s[n - 1]) {
        utc_period(period, t, start, end);
        return;
    }
    size_t lo = 0, hi = n - 1; /* s[lo] <= t < s[hi] */
    while (hi - lo > 1) {
        size_t mid = lo + (hi - lo) / 2;
        if (s[mid] <= t)
            lo = mid;
        else
            hi = mid;
    }
    *start = s[lo];
    *end = s[hi];
}

/* ---- the table ---- */

typedef struct entry {
    struct entry *next;
    uint64_t hash;
    int period;
    int64_t start, end;      /* the period the spend belongs to */
    int64_t spend, reserved; /* nano-USD */
    int holds;               /* open reservations (the entry stays while > 0) */
    int64_t limit;           /* the limit last reserved against; -1 unknown */
    bool warned, exceeded;   /* this period's events went out */
    /* A reload from the store under way (tg_budget_reload_begin, at
     * b->reload_ms): the open holds of requests begun before it, and what
     * requests begun since settled. */
    bool reloading;
    int old_holds;
    int64_t new_spend;
    char scope[TG_BUDGET_SCOPE_MAX], value[TG_BUDGET_VALUE_MAX];
} entry_t;

#define NBUCKETS 1024

typedef struct {
    pthread_mutex_t mu;
    entry_t *buckets[NBUCKETS];
    size_t count;
} shard_t;

struct tg_budgets {
    shard_t shards[NSHARDS];
    tg_budget_calendar_t *cal;
    tg_budget_event_fn on_event;
    void *event_arg;
    /* Runtime budgets: read on every request, changed through the API, so
     * a read-write lock, and a count read without it to skip the lock
     * while there are none (the common case). */
    pthread_rwlock_t rules_lock;
    _Atomic size_t n_rules_pub;
    tg_budget_rule_t *rules;
    size_t n_rules, cap_rules;
    /* The newest period start any entry rolled to, per period: the first
     * roll past it calls on_period (tg_budgets_on_period). */
    _Atomic int64_t seen_start[TG_BUDGET_NPERIODS];
    tg_budget_period_fn on_period;
    void *period_arg;
    /* The reload's dividing time (ms) per period; 0 when none runs. Read
     * and written under every shard's lock (begin and end take them all). */
    int64_t reload_ms[TG_BUDGET_NPERIODS];
};

void tg_budgets_on_period(tg_budgets_t *b, tg_budget_period_fn fn, void *arg, int64_t now)
{
    for (int p = 0; p < TG_BUDGET_NPERIODS; p++) {
        int64_t start, end;
        tg_budget_period(b->cal, p, now, &start, &end);
        atomic_store(&b->seen_start[p], start);
    }
    b->on_period = fn;
    b->period_arg = arg;
}

tg_budgets_t *tg_budgets_new(tg_budget_calendar_t *c, tg_budget_event_fn on_event, void *arg)
{
    tg_budgets_t *b = tg_xcalloc(1, sizeof *b);
    for (int i = 0; i < NSHARDS; i++)
        pthread_mutex_init(&b->shards[i].mu, NULL);
    pthread_rwlock_init(&b->rules_lock, NULL);
    b->cal = c;
    b->on_event = on_event;
    b->event_arg = arg;
    return b;
}

void tg_budgets_free(tg_budgets_t *b)
{
    if (!b)
        return;
    for (int i = 0; i < NSHARDS; i++) {
        for (int k = 0; k < NBUCKETS; k++) {
            entry_t *e = b->shards[i].buckets[k];
            while (e) {
                entry_t *nx = e->next;
                free(e);
                e = nx;
            }
        }
        pthread_mutex_destroy(&b->shards[i].mu);
    }
    pthread_rwlock_destroy(&b->rules_lock);
    free(b->rules);
    tg_budget_calendar_free(b->cal);
    free(b);
}

const tg_budget_calendar_t *tg_budgets_calendar(const tg_budgets_t *b)
{
    return b->cal;
}

/* A string into a fixed field, cut to fit (no formatting on the request
 * path). */
static void copy_str(char *dst, size_t size, const char *src)
{
    size_t n = strnlen(src, size - 1);
    memcpy(dst, src, n);
    dst[n] = 0;
}

static uint64_t key_hash(const char *scope, const char *value, int period)
{
    uint64_t h = 1469598103934665603ull;
    for (const char *p = scope; *p; p++)
        h = (h ^ (unsigned char)*p) * 1099511628211ull;
    h = (h ^ 0xff) * 1099511628211ull;
    for (const char *p = value; *p; p++)
        h = (h ^ (unsigned char)*p) * 1099511628211ull;
    h = (h ^ (unsigned)(period + 1)) * 1099511628211ull;
    return h ^ (h >> 29);
}

static shard_t *shard_of(tg_budgets_t *b, uint64_t h)
{
    return &b->shards[h % NSHARDS];
}

/* Start the period `now` falls in, if the entry's has passed. */
static void roll(tg_budgets_t *b, entry_t *e, int64_t now)
{
    if (now >= e->start && now < e->end)
        return;
    tg_budget_period(b->cal, e->period, now, &e->start, &e->end);
    e->spend = 0;
    e->warned = e->exceeded = false;
    /* the first entry into a new period: the owner reads the period's
     * spend back from the store, off this thread (gateway.c) */
    int64_t seen = atomic_load(&b->seen_start[e->period]);
    if (e->start > seen &&
        atomic_compare_exchange_strong(&b->seen_start[e->period], &seen, e->start) && b->on_period)
        b->on_period(b->period_arg, e->period);
}

/* Drop this shard's entries of ended periods that nobody holds. */
static void sweep(shard_t *s, int64_t now)
{
    for (int k = 0; k < NBUCKETS; k++) {
        entry_t **pp = &s->buckets[k];
        while (*pp) {
            entry_t *e = *pp;
            if (e->holds == 0 && e->reserved == 0 && now >= e->end) {
                *pp = e->next;
                free(e);
                s->count--;
            } else {
                pp = &e->next;
            }
        }
    }
}

/* The entry, made if missing (NULL when the shard is full). Shard locked. */
static entry_t *lookup(tg_budgets_t *b, shard_t *s, uint64_t h, const char *scope,
                       const char *value, int period, int64_t now, bool create)
{
    entry_t **head = &s->buckets[(h / NSHARDS) % NBUCKETS];
    for (entry_t *e = *head; e; e = e->next)
        if (e->hash == h && e->period == period && !strcmp(e->scope, scope) &&
            !strcmp(e->value, value)) {
            roll(b, e, now);
            return e;
        }
    if (!create)
        return NULL;
    if (s->count >= TG_BUDGET_MAX_ENTRIES / NSHARDS) {
        sweep(s, now);
        if (s->count >= TG_BUDGET_MAX_ENTRIES / NSHARDS)
            return NULL;
    }
    entry_t *e = tg_xcalloc(1, sizeof *e);
    e->hash = h;
    e->period = period;
    copy_str(e->scope, sizeof e->scope, scope);
    copy_str(e->value, sizeof e->value, value);
    tg_budget_period(b->cal, period, now, &e->start, &e->end);
    e->limit = -1;
    e->reloading = b->reload_ms[period] != 0; /* nothing held, nothing settled yet */
    e->next = *head;
    *head = e;
    s->count++;
    return e;
}

/* One budget period a request touches. */
typedef struct {
    const tg_budget_apply_t *a;
    int period;
    uint64_t hash;
    int shard;
    int64_t limit; /* -1: none */
    entry_t *e;
} slot_t;

/* By shard, ascending: an insertion sort (a request has a few slots; qsort
 * would cost more than the rest of the reservation). */
static void sort_slots(slot_t *sl, int n)
{
    for (int i = 1; i < n; i++) {
        slot_t t = sl[i];
        int j = i;
        for (; j > 0 && sl[j - 1].shard > t.shard; j--)
            sl[j] = sl[j - 1];
        sl[j] = t;
    }
}

/* Lock the shards the slots name, ascending, each once. */
static void lock_slots(tg_budgets_t *b, slot_t *sl, int n, bool lock)
{
    int last = -1;
    for (int i = 0; i < n; i++) {
        if (sl[i].shard == last)
            continue;
        last = sl[i].shard;
        if (lock)
            pthread_mutex_lock(&b->shards[last].mu);
        else
            pthread_mutex_unlock(&b->shards[last].mu);
    }
}

static void emit(tg_budgets_t *b, tg_budget_event_kind_t kind, const entry_t *e, int64_t limit,
                 double threshold)
{
    if (!b->on_event)
        return;
    tg_budget_event_t ev = {kind,     e->scope, e->value, e->period,
                            e->spend, limit,    e->end,   threshold};
    b->on_event(b->event_arg, &ev);
}

/* Events noted under the locks, sent after. */
typedef struct {
    entry_t copy;
    tg_budget_event_kind_t kind;
    int64_t limit;
    double threshold;
} pending_t;

/* Past the threshold or at the limit, once per period: noted into pend. */
static int check_events(entry_t *e, int64_t limit, double threshold, pending_t *pend, int np)
{
    if (limit < 0)
        return np;
    if (!e->warned && threshold > 0 && (double)e->spend >= threshold * (double)limit) {
        e->warned = true;
        pend[np++] = (pending_t){*e, TG_BUDGET_EV_WARNING, limit, threshold};
    }
    if (!e->exceeded && e->spend >= limit && limit >= 0) {
        e->exceeded = true;
        pend[np++] = (pending_t){*e, TG_BUDGET_EV_EXCEEDED, limit, threshold};
    }
    return np;
}

/* During a reload: a request begun before its dividing time (its record is
 * in the store's sum; unknown start: not). Shard locked. */
static bool is_old(const tg_budgets_t *b, const entry_t *e, int64_t started_ms)
{
    return started_ms && started_ms < b->reload_ms[e->period];
}

void tg_budget_reserve(tg_budgets_t *b, const tg_budget_apply_t *apply, int n, int64_t amount,
                       bool allow_unpriced, int64_t now, tg_budget_hold_t *hold,
                       tg_budget_outcome_t *out)
{
    /* field by field: the hold's arrays and the names are written only as
     * far as they are used (no memset of a kilobyte per request) */
    out->refused = out->unpriced = out->has_limit = out->warning = false;
    out->scope[0] = out->value[0] = 0;
    out->period = 0;
    out->spend = out->limit = out->resets_at = 0;
    out->remaining = INT64_MAX;
    out->percent = 0;
    hold->n = 0;
    hold->amount = 0;
    hold->reserved = false; /* hold->started_ms is the caller's */
    slot_t sl[TG_BUDGET_MAX_APPLY * TG_BUDGET_NPERIODS];
    int ns = 0;
    if (n > TG_BUDGET_MAX_APPLY)
        n = TG_BUDGET_MAX_APPLY;
    for (int i = 0; i < n; i++) {
        for (int p = 0; p < TG_BUDGET_NPERIODS; p++) {
            double usd = p == TG_BUDGET_DAY ? apply[i].cfg.daily : apply[i].cfg.monthly;
            if (usd < 0)
                continue;
            slot_t *s = &sl[ns++];
            s->a = &apply[i];
            s->period = p;
            s->hash = key_hash(apply[i].scope, apply[i].value, p);
            s->shard = (int)(s->hash % NSHARDS);
            s->limit = tg_budget_nusd(usd);
            s->e = NULL;
        }
    }
    if (!ns)
        return;
    sort_slots(sl, ns);
    bool unknown = amount < 0;
    int64_t amt = unknown ? 0 : amount;
    pending_t pend[2];
    int np = 0;
    lock_slots(b, sl, ns, true);
    for (int i = 0; i < ns; i++) {
        slot_t *s = &sl[i];
        s->e = lookup(b, &b->shards[s->shard], s->hash, s->a->scope, s->a->value, s->period, now,
                      true);
        if (s->e)
            s->e->limit = s->limit;
        bool block = s->a->cfg.action == TG_BUDGET_BLOCK;
        const entry_t *e = s->e;
        bool over = !e || (unknown && !allow_unpriced) ||
                    (e->spend > s->limit - e->reserved - amt); /* no overflow: all >= 0 */
        if (block && over && !out->refused) {
            out->refused = true;
            out->unpriced = e && unknown && !allow_unpriced;
            copy_str(out->scope, sizeof out->scope, s->a->scope);
            copy_str(out->value, sizeof out->value, s->a->value);
            out->period = s->period;
            out->spend = e ? e->spend : 0;
            out->limit = s->limit;
            out->resets_at = e ? e->end : now;
            if (e && !out->unpriced && !e->exceeded) { /* the limit is reached: say so once */
                s->e->exceeded = true;
                pend[np++] =
                    (pending_t){*e, TG_BUDGET_EV_EXCEEDED, s->limit, s->a->cfg.warning_threshold};
            }
        }
    }
    if (!out->refused) {
        hold->amount = amt;
        hold->reserved = true;
        int tightest = -1;
        for (int i = 0; i < ns; i++) {
            entry_t *e = sl[i].e;
            if (!e) /* the table is full: a warn or none budget goes untracked */
                continue;
            e->reserved += amt;
            e->holds++;
            if (e->reloading && is_old(b, e, hold->started_ms))
                e->old_holds++;
            hold->limit[hold->n] = sl[i].limit;
            hold->threshold[hold->n] = sl[i].a->cfg.warning_threshold;
            hold->entry[hold->n++] = e;
            int64_t used = e->spend + e->reserved;
            int64_t left = sl[i].limit - used;
            out->has_limit = true;
            if (left < out->remaining) {
                out->remaining = left < 0 ? 0 : left;
                tightest = i;
                out->period = sl[i].period;
                out->spend = e->spend;
                out->limit = sl[i].limit;
                out->resets_at = e->end;
            }
            double pct = sl[i].limit > 0 ? 100.0 * (double)used / (double)sl[i].limit : 100.0;
            if (pct > out->percent)
                out->percent = pct;
            if (pct >= 100.0 * sl[i].a->cfg.warning_threshold)
                out->warning = true;
        }
        if (tightest >= 0) {
            copy_str(out->scope, sizeof out->scope, sl[tightest].a->scope);
            copy_str(out->value, sizeof out->value, sl[tightest].a->value);
        }
    }
    lock_slots(b, sl, ns, false);
    for (int i = 0; i < np; i++)
        emit(b, pend[i].kind, &pend[i].copy, pend[i].limit, pend[i].threshold);
}

void tg_budget_settle(tg_budgets_t *b, tg_budget_hold_t *hold, int64_t actual, int64_t now)
{
    if (!hold->reserved)
        return;
    if (actual < 0)
        actual = 0;
    /* The entries move from reserved to spent, and say what the new spend
     * crossed (each event once per period), with the limits the hold kept. */
    slot_t sl[TG_BUDGET_MAX_APPLY * TG_BUDGET_NPERIODS];
    for (int i = 0; i < hold->n; i++) {
        entry_t *e = hold->entry[i];
        sl[i].e = e;
        sl[i].shard = (int)(e->hash % NSHARDS);
        sl[i].limit = hold->limit[i];
        sl[i].period = i; /* the hold's index, for the threshold */
    }
    sort_slots(sl, hold->n);
    pending_t pend[TG_BUDGET_MAX_APPLY * TG_BUDGET_NPERIODS * 2];
    int np = 0;
    lock_slots(b, sl, hold->n, true);
    for (int i = 0; i < hold->n; i++) {
        entry_t *e = sl[i].e;
        e->reserved -= hold->amount;
        e->holds--;
        roll(b, e, now);
        /* The store dates a record by its start: a request begun in a
         * period that has ended counts there, not in this one, so memory
         * and the store agree (and a reload from the store changes
         * nothing). Unknown start (0): it counts here. */
        bool counts = !hold->started_ms || hold->started_ms >= e->start * 1000;
        if (counts)
            e->spend += actual;
        if (e->reloading && is_old(b, e, hold->started_ms))
            e->old_holds--; /* its record is in the store (it was submitted first) */
        else if (e->reloading && counts)
            e->new_spend += actual;
        np = check_events(e, sl[i].limit, hold->threshold[sl[i].period], pend, np);
    }
    lock_slots(b, sl, hold->n, false);
    hold->reserved = false;
    hold->n = 0;
    for (int i = 0; i < np; i++)
        emit(b, pend[i].kind, &pend[i].copy, pend[i].limit, pend[i].threshold);
}

/* An entry's spend set to a sum from the store (reload: plus what began
 * since the reload's dividing time, and only once). */
static void put_spend(tg_budgets_t *b, const char *scope, const char *value, int period,
                      int64_t nusd, int64_t now, bool reload)
{
    uint64_t h = key_hash(scope, value, period);
    shard_t *s = shard_of(b, h);
    pthread_mutex_lock(&s->mu);
    entry_t *e = lookup(b, s, h, scope, value, period, now, true);
    if (e && (!reload || e->reloading)) {
        e->spend = (nusd < 0 ? 0 : nusd) + (reload ? e->new_spend : 0);
        e->reloading = false;
    }
    pthread_mutex_unlock(&s->mu);
}

void tg_budget_set_spend(tg_budgets_t *b, const char *scope, const char *value, int period,
                         int64_t nusd, int64_t now)
{
    put_spend(b, scope, value, period, nusd, now, false);
}

/* ---- reading a period's spend back from the store ---- */

static void lock_all(tg_budgets_t *b, bool lock)
{
    for (int i = 0; i < NSHARDS; i++)
        if (lock)
            pthread_mutex_lock(&b->shards[i].mu);
        else
            pthread_mutex_unlock(&b->shards[i].mu);
}

int64_t tg_budget_reload_begin(tg_budgets_t *b, int period, int64_t now_ms)
{
    lock_all(b, true);
    b->reload_ms[period] = now_ms > 0 ? now_ms : 1;
    for (int i = 0; i < NSHARDS; i++)
        for (int k = 0; k < NBUCKETS; k++)
            for (entry_t *e = b->shards[i].buckets[k]; e; e = e->next)
                if (e->period == period) {
                    roll(b, e, now_ms / 1000);
                    e->reloading = true;
                    e->old_holds = e->holds; /* every open hold began before now */
                    e->new_spend = 0;
                }
    lock_all(b, false);
    return b->reload_ms[period];
}

int tg_budget_reload_waiting(tg_budgets_t *b, int period)
{
    int n = 0;
    for (int i = 0; i < NSHARDS; i++) {
        shard_t *s = &b->shards[i];
        pthread_mutex_lock(&s->mu);
        for (int k = 0; k < NBUCKETS; k++)
            for (entry_t *e = s->buckets[k]; e; e = e->next)
                if (e->period == period && e->reloading)
                    n += e->old_holds;
        pthread_mutex_unlock(&s->mu);
    }
    return n;
}

void tg_budget_reload_value(tg_budgets_t *b, const char *scope, const char *value, int period,
                            int64_t nusd, int64_t now)
{
    /* the store holds what began before the dividing time; memory what
     * began since */
    put_spend(b, scope, value, period, nusd, now, true);
}

void tg_budget_reload_end(tg_budgets_t *b, int period, const char *const *scopes, size_t n,
                          int64_t now)
{
    lock_all(b, true);
    for (int i = 0; i < NSHARDS; i++)
        for (int k = 0; k < NBUCKETS; k++)
            for (entry_t *e = b->shards[i].buckets[k]; e; e = e->next) {
                if (e->period != period || !e->reloading)
                    continue;
                e->reloading = false;
                for (size_t j = 0; j < n; j++)
                    if (!strcmp(scopes[j], e->scope)) /* read, and the store had nothing */
                        e->spend = e->new_spend;
            }
    b->reload_ms[period] = 0;
    lock_all(b, false);
}

void tg_budget_check(tg_budgets_t *b, const tg_budget_apply_t *apply, int n, int64_t now)
{
    pending_t pend[TG_BUDGET_MAX_APPLY * TG_BUDGET_NPERIODS * 2];
    int np = 0;
    for (int i = 0; i < n && i < TG_BUDGET_MAX_APPLY; i++) {
        for (int p = 0; p < TG_BUDGET_NPERIODS; p++) {
            double usd = p == TG_BUDGET_DAY ? apply[i].cfg.daily : apply[i].cfg.monthly;
            if (usd < 0)
                continue;
            uint64_t h = key_hash(apply[i].scope, apply[i].value, p);
            shard_t *s = shard_of(b, h);
            pthread_mutex_lock(&s->mu);
            entry_t *e = lookup(b, s, h, apply[i].scope, apply[i].value, p, now, false);
            if (e)
                np = check_events(e, tg_budget_nusd(usd), apply[i].cfg.warning_threshold, pend, np);
            pthread_mutex_unlock(&s->mu);
        }
    }
    for (int i = 0; i < np; i++)
        emit(b, pend[i].kind, &pend[i].copy, pend[i].limit, pend[i].threshold);
}

static void state_of(const entry_t *e, tg_budget_state_t *st)
{
    memcpy(st->scope, e->scope, sizeof st->scope);
    memcpy(st->value, e->value, sizeof st->value);
    st->period = e->period;
    st->spend = e->spend;
    st->reserved = e->reserved;
    st->start = e->start;
    st->resets_at = e->end;
    st->limit = e->limit;
}

void tg_budget_list(tg_budgets_t *b, int64_t now, tg_budget_state_t **out, size_t *n)
{
    size_t cap = 16;
    *n = 0;
    *out = tg_xcalloc(cap, sizeof **out);
    for (int i = 0; i < NSHARDS; i++) {
        shard_t *s = &b->shards[i];
        pthread_mutex_lock(&s->mu);
        for (int k = 0; k < NBUCKETS; k++)
            for (entry_t *e = s->buckets[k]; e; e = e->next) {
                roll(b, e, now);
                if (*n == cap) {
                    cap *= 2;
                    *out = tg_xrealloc(*out, cap * sizeof **out);
                }
                state_of(e, &(*out)[(*n)++]);
            }
        pthread_mutex_unlock(&s->mu);
    }
}

bool tg_budget_get(tg_budgets_t *b, const char *scope, const char *value, int period, int64_t now,
                   tg_budget_state_t *st)
{
    uint64_t h = key_hash(scope, value, period);
    shard_t *s = shard_of(b, h);
    pthread_mutex_lock(&s->mu);
    entry_t *e = lookup(b, s, h, scope, value, period, now, false);
    if (e)
        state_of(e, st);
    pthread_mutex_unlock(&s->mu);
    return e != NULL;
}

/* ---- runtime budgets ---- */

static tg_budget_rule_t *rule_find(tg_budgets_t *b, const char *scope, const char *value)
{
    for (size_t i = 0; i < b->n_rules; i++)
        if (!strcmp(b->rules[i].scope, scope) && !strcmp(b->rules[i].value, value))
            return &b->rules[i];
    return NULL;
}

void tg_budget_rule_put(tg_budgets_t *b, const tg_budget_rule_t *r)
{
    pthread_rwlock_wrlock(&b->rules_lock);
    tg_budget_rule_t *have = rule_find(b, r->scope, r->value);
    if (!have) {
        if (b->n_rules == b->cap_rules) {
            b->cap_rules = b->cap_rules ? b->cap_rules * 2 : 8;
            b->rules = tg_xrealloc(b->rules, b->cap_rules * sizeof *b->rules);
        }
        have = &b->rules[b->n_rules++];
    }
    *have = *r;
    atomic_store(&b->n_rules_pub, b->n_rules);
    pthread_rwlock_unlock(&b->rules_lock);
}

bool tg_budget_rule_delete(tg_budgets_t *b, const char *scope, const char *value)
{
    pthread_rwlock_wrlock(&b->rules_lock);
    tg_budget_rule_t *have = rule_find(b, scope, value);
    if (have)
        *have = b->rules[--b->n_rules];
    atomic_store(&b->n_rules_pub, b->n_rules);
    pthread_rwlock_unlock(&b->rules_lock);
    return have != NULL;
}

bool tg_budget_rule_get(tg_budgets_t *b, const char *scope, const char *value, tg_budget_cfg_t *out)
{
    if (!atomic_load(&b->n_rules_pub))
        return false;
    pthread_rwlock_rdlock(&b->rules_lock);
    tg_budget_rule_t *have = rule_find(b, scope, value);
    if (have)
        *out = have->cfg;
    pthread_rwlock_unlock(&b->rules_lock);
    return have != NULL;
}

void tg_budget_rules(tg_budgets_t *b, tg_budget_rule_t **out, size_t *n)
{
    pthread_rwlock_rdlock(&b->rules_lock);
    *n = b->n_rules;
    *out = tg_xcalloc(b->n_rules ? b->n_rules : 1, sizeof **out);
    if (b->n_rules)
        memcpy(*out, b->rules, b->n_rules * sizeof **out);
    pthread_rwlock_unlock(&b->rules_lock);
}

size_t tg_budget_rule_properties(tg_budgets_t *b, char (*names)[TG_BUDGET_SCOPE_MAX], size_t max)
{
    size_t n = 0;
    if (!atomic_load(&b->n_rules_pub))
        return 0;
    pthread_rwlock_rdlock(&b->rules_lock);
    for (size_t i = 0; i < b->n_rules && n < max; i++) {
        const char *s = b->rules[i].scope;
        if (strncmp(s, "property:", 9) != 0)
            continue;
        bool seen = false;
        for (size_t k = 0; k < n && !seen; k++)
            seen = !strcasecmp(names[k], s + 9);
        if (!seen)
            snprintf(names[n++], TG_BUDGET_SCOPE_MAX, "%s", s + 9);
    }
    pthread_rwlock_unlock(&b->rules_lock);
    return n;
}
