/*
 * budget.h — spend budgets that never overshoot (SPEC §11): reserve the
 * worst case before a request is forwarded, settle to the actual cost when
 * it ends.
 *
 * A budget is a (scope, value, period) with a limit in nano-USD: scope
 * "global" (value "*"), "key" (a gateway key's name), "user"
 * (Helicone-User-Id) or "property:<Name>" (a Helicone-Property-<Name>
 * value); period a calendar day or month in the configured time zone. The
 * table keeps, per budget, what was spent this period and what open
 * reservations hold. A request names the budgets that apply to it (each with
 * its limit and action) and reserves its worst-case cost against all of
 * them at once: refused when, for any `block` budget,
 *     spend + open reservations + this reservation > limit,
 * and then nothing is reserved anywhere. So however many workers reserve at
 * the same moment, the sum of what they may spend stays within every block
 * limit. When the request ends, tg_budget_settle turns its reservations
 * into its actual cost (0 for a failure or a cache hit).
 *
 * Concurrency: the table is cut into shards by the hash of (scope, value,
 * period), one mutex each. A reservation locks the shards of its budgets in
 * ascending order (so two reservations never wait on each other in a
 * cycle), checks them all, then adds to them all: all or nothing, with no
 * process-wide lock. Settling does the same.
 *
 * Periods: tg_budget_calendar_new (main thread: it sets TZ for the C
 * library's time zone database while no worker runs) computes the start of
 * every day and month in the zone for years ahead; the request path only
 * searches those tables (tg_budget_period), so it never touches TZ. An
 * entry whose period has passed starts the new one at zero spend when it is
 * next used (its open reservations carry over; a request's cost counts in
 * the period it began in, as the store dates its record), and the first
 * entry to do so calls the table's on_period hook, whose owner then reads
 * the new period's spend back from the store off the request path
 * (tg_budget_reload_*).
 *
 * Spend read from the store: tg_budget_set_spend sets an entry's spend to
 * the sum of recorded cost since its period began, at start (and when a
 * runtime budget adds a scope); see docs/budgets.md for what is and is not
 * counted then.
 *
 * Threads: tg_budgets_new/free and tg_budget_calendar_new on main; every
 * other call on any thread.
 */
#ifndef TG_BUDGET_H
#define TG_BUDGET_H

#include "config/config.h"
#include "core/util.h"
#include "redis/redis.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

enum { TG_BUDGET_DAY, TG_BUDGET_MONTH, TG_BUDGET_NPERIODS };

/* Largest scope ("property:<Name>") and value kept, with their NUL. */
#define TG_BUDGET_SCOPE_MAX 80
#define TG_BUDGET_VALUE_MAX 128
/* Most budgets (scope, value) one request reserves against. */
#define TG_BUDGET_MAX_APPLY 12
/* Entries the table keeps before it sweeps ended periods (per shard / 16). */
#define TG_BUDGET_MAX_ENTRIES 200000

/** "daily"/"monthly", and "block"/"warn"/"none". */
const char *tg_budget_period_name(int period);
const char *tg_budget_action_name(int action);
/** The action of a name; -1 when unknown. */
int tg_budget_action_parse(const char *s);

/* ---- calendar ---- */

typedef struct tg_budget_calendar tg_budget_calendar_t;

/** True when tz is "UTC" or names a zone of the system's tz database (a
 *  file under $TZDIR or /usr/share/zoneinfo; no "..", no leading '/'). */
bool tg_budget_tz_valid(const char *tz);
/** The periods of zone `tz` around `now_s` (UNIX seconds) for years ahead.
 *  NULL with err when the zone is unknown. Main thread only (sets TZ and
 *  puts it back). */
tg_budget_calendar_t *tg_budget_calendar_new(const char *tz, int64_t now_s, char *err,
                                             size_t errlen);
void tg_budget_calendar_free(tg_budget_calendar_t *c);
/** The period (day or month) containing t: [*start, *end) in UNIX seconds.
 *  Outside the precomputed years, UTC days and months. Any thread. */
void tg_budget_period(const tg_budget_calendar_t *c, int period, int64_t t, int64_t *start,
                      int64_t *end);

/* ---- the table ---- */

typedef struct tg_budgets tg_budgets_t;

/* What happened to a budget, for tg_budgets_t's event hook: the warning
 * threshold crossed, the limit reached (a refusal or spend at the limit). */
typedef enum { TG_BUDGET_EV_WARNING, TG_BUDGET_EV_EXCEEDED } tg_budget_event_kind_t;

typedef struct {
    tg_budget_event_kind_t kind;
    const char *scope, *value;
    int period;
    int64_t spend_nusd, limit_nusd, resets_at; /* resets_at: UNIX seconds */
    double threshold;                          /* the warning threshold (fraction) */
} tg_budget_event_t;

/** Called once per budget, period and kind, outside the table's locks, on
 *  the thread that saw it happen. */
typedef void (*tg_budget_event_fn)(void *arg, const tg_budget_event_t *ev);

/** A new table over calendar c (taken). on_event may be NULL. */
tg_budgets_t *tg_budgets_new(tg_budget_calendar_t *c, tg_budget_event_fn on_event, void *arg);
void tg_budgets_free(tg_budgets_t *b);
const tg_budget_calendar_t *tg_budgets_calendar(const tg_budgets_t *b);

/** One budget a request falls under: scope, value, and its settings. */
typedef struct {
    char scope[TG_BUDGET_SCOPE_MAX];
    char value[TG_BUDGET_VALUE_MAX];
    tg_budget_cfg_t cfg;
} tg_budget_apply_t;

/** What one request holds: its reservations, to settle. */
typedef struct {
    int n;
    int64_t amount;     /* nano-USD reserved in each */
    int64_t started_ms; /* when the request began (its record's date; set by the caller
                           before reserving); 0 unknown */
    void *entry[TG_BUDGET_MAX_APPLY * TG_BUDGET_NPERIODS];
    int64_t limit[TG_BUDGET_MAX_APPLY * TG_BUDGET_NPERIODS]; /* each entry's, for the events */
    double threshold[TG_BUDGET_MAX_APPLY * TG_BUDGET_NPERIODS];
    bool reserved;
} tg_budget_hold_t;

/** The outcome of a reservation: on refusal the budget that refused; on
 *  success the tightest remaining and the highest use. */
typedef struct {
    bool refused;
    bool unpriced; /* refused: the cost is unknown and a block budget applies */
    char scope[TG_BUDGET_SCOPE_MAX], value[TG_BUDGET_VALUE_MAX];
    int period;
    int64_t spend, limit, resets_at; /* the refusing (or tightest) budget */
    bool has_limit;                  /* some budget with a limit applies */
    int64_t remaining;               /* nano-USD: min over limits of limit - spend - open */
    double percent;                  /* highest (spend + open) / limit, in % */
    bool warning;                    /* some budget is past its warning threshold */
} tg_budget_outcome_t;

/**
 * Reserve `amount` nano-USD (< 0: the cost is unknown) against every period
 * of every budget in `apply` (n of them) with a limit or an action other
 * than none. Refused (nothing reserved) when a block budget would pass its
 * limit, or when the amount is unknown and a block budget applies (unless
 * allow_unpriced: then nothing is reserved and only the actual cost
 * counts). `now` in UNIX seconds. On success *hold is to be settled.
 */
void tg_budget_reserve(tg_budgets_t *b, const tg_budget_apply_t *apply, int n, int64_t amount,
                       bool allow_unpriced, int64_t now, tg_budget_hold_t *hold,
                       tg_budget_outcome_t *out);
/** The reservations of *hold become `actual` nano-USD (< 0: 0) each, and
 *  the warning and limit events the new spend crossed go out (as
 *  tg_budget_check); the hold is then empty. An empty hold is fine. */
void tg_budget_settle(tg_budgets_t *b, tg_budget_hold_t *hold, int64_t actual, int64_t now);

/** The warning and limit events the spend of the budgets `apply` names
 *  has crossed (each once per period; settling checks its own). */
void tg_budget_check(tg_budgets_t *b, const tg_budget_apply_t *apply, int n, int64_t now);

/** Called (under a shard lock: only signal) when the first entry enters a
 *  new period. */
typedef void (*tg_budget_period_fn)(void *arg, int period);
/** Set the hook; the current periods (at now) are the ones already read.
 *  Main thread, before any other thread uses the table. */
void tg_budgets_on_period(tg_budgets_t *b, tg_budget_period_fn fn, void *arg, int64_t now);

/**
 * A new period's spend read back from the store (records dated from its
 * start), so memory agrees with what a restart would read, without losing
 * or doubling what settles meanwhile. Requests are divided by when they
 * began (their record's date) at a dividing time T:
 *  - tg_budget_reload_begin(period, T) marks every entry of the period;
 *    from then on each notes its open holds of requests begun before T,
 *    and what requests begun at or after T settle;
 *  - the owner waits until tg_budget_reload_waiting is 0 (the requests
 *    begun before T have settled: their records were submitted before),
 *    flushes the store and sums each scope's records dated [start, T);
 *  - tg_budget_reload_value: a value's spend = that sum + what began since;
 *  - tg_budget_reload_end: the marked entries of `scopes` the store had
 *    nothing for get what began since; others keep memory's count.
 * Reservations are never touched. Any thread but a worker's.
 */
int64_t tg_budget_reload_begin(tg_budgets_t *b, int period, int64_t now_ms);
int tg_budget_reload_waiting(tg_budgets_t *b, int period);
void tg_budget_reload_value(tg_budgets_t *b, const char *scope, const char *value, int period,
                            int64_t nusd, int64_t now);
void tg_budget_reload_end(tg_budgets_t *b, int period, const char *const *scopes, size_t n,
                          int64_t now);

/** Set a budget's spend this period (the store's sum); creates it. */
void tg_budget_set_spend(tg_budgets_t *b, const char *scope, const char *value, int period,
                         int64_t nusd, int64_t now);

/** One budget as the API shows it. */
typedef struct {
    char scope[TG_BUDGET_SCOPE_MAX], value[TG_BUDGET_VALUE_MAX];
    int period;
    int64_t spend, reserved, start, resets_at;
    int64_t limit; /* the limit last reserved against; -1 when none yet */
} tg_budget_state_t;

/** Every entry of the current period (*out malloc'd, also when *n is 0). */
void tg_budget_list(tg_budgets_t *b, int64_t now, tg_budget_state_t **out, size_t *n);
/** One entry's state; false when the table has none for this period. */
bool tg_budget_get(tg_budgets_t *b, const char *scope, const char *value, int period, int64_t now,
                   tg_budget_state_t *st);

/** USD -> nano-USD (a limit; < 0 stays -1). */
int64_t tg_budget_nusd(double usd);

/* ---- runtime budgets (PUT /api/v1/budgets/{scope}/{value}) ---- */

typedef struct {
    char scope[TG_BUDGET_SCOPE_MAX], value[TG_BUDGET_VALUE_MAX];
    tg_budget_cfg_t cfg;
} tg_budget_rule_t;

/** Add or replace (by scope and value) a runtime budget; remove one
 *  (false when there was none); copy one out. Any thread (own lock). */
void tg_budget_rule_put(tg_budgets_t *b, const tg_budget_rule_t *r);
bool tg_budget_rule_delete(tg_budgets_t *b, const char *scope, const char *value);
bool tg_budget_rule_get(tg_budgets_t *b, const char *scope, const char *value,
                        tg_budget_cfg_t *out);
/** Every runtime budget (*out malloc'd). */
void tg_budget_rules(tg_budgets_t *b, tg_budget_rule_t **out, size_t *n);
/** The names of the properties runtime budgets name (for a request's
 *  headers), up to max, into names[i] (each TG_BUDGET_SCOPE_MAX). */
size_t tg_budget_rule_properties(tg_budgets_t *b, char (*names)[TG_BUDGET_SCOPE_MAX], size_t max);

/** A scope as the API writes it: global, key, user, property:<Name>
 *  (a token); false otherwise. */
bool tg_budget_scope_valid(const char *scope);

/* ---- shared in Redis (budget_redis.c) ---- */

/** Reserve against, settle, and seed the budgets' periods in Redis:
 *  atomic across the instances sharing it. */
extern const tg_redis_script_t tg_budget_redis_reserve;
extern const tg_redis_script_t tg_budget_redis_settle;
extern const tg_redis_script_t tg_budget_redis_seed;

/** One period of one budget a request reserves against. */
typedef struct {
    int apply; /* index in the apply list */
    int period;
    int64_t limit; /* nano-USD */
    bool block;
    int64_t start, end; /* UNIX seconds */
} tg_budget_redis_slot_t;

#define TG_BUDGET_REDIS_SLOTS (TG_BUDGET_MAX_APPLY * TG_BUDGET_NPERIODS)
/** The Redis key of a budget's period. */
void tg_budget_redis_key(const char *scope, const char *value, int period, int64_t start,
                         tg_buf_t *out);
/** The periods with a limit of apply[0..n) at `now` (at most
 *  TG_BUDGET_REDIS_SLOTS); returns how many. */
int tg_budget_redis_slots(const tg_budgets_t *b, const tg_budget_apply_t *apply, int n, int64_t now,
                          tg_budget_redis_slot_t *out);
/** The scripts' arguments (redis.h's tg_redis_args_t). */
void tg_budget_redis_reserve_args(tg_redis_args_t *a, const tg_budget_apply_t *apply,
                                  const tg_budget_redis_slot_t *sl, int ns, int64_t amount);
void tg_budget_redis_settle_args(tg_redis_args_t *a, const tg_budget_apply_t *apply,
                                 const tg_budget_redis_slot_t *sl, int ns, int64_t reserved,
                                 int64_t actual);
void tg_budget_redis_seed_args(tg_redis_args_t *a, const tg_budget_apply_t *apply,
                               const tg_budget_redis_slot_t *sl, int ns, const int64_t *spend);
/** Read the reserve script's answer for ns slots: -1 when reserved, the
 *  index of the refusing slot, -2 when malformed; spend[] and open[] as
 *  Redis holds them, for every slot looked at. */
int tg_budget_redis_result(const int64_t *v, int nv, int ns, int64_t *spend, int64_t *open);

#endif
