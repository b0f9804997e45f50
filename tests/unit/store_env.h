/*
 * store_env.h — the store a unit test runs on: SQLite files in the test's
 * folder, or, when TOLLGATE_TEST_PG_URL names a PostgreSQL server
 * (scripts/with-postgres.sh), a new empty database there for each store, so
 * that the tests of the query API, budgets and events run on both
 * back-ends.
 */
#ifndef TG_TEST_STORE_ENV_H
#define TG_TEST_STORE_ENV_H

#include "store/store.h"

#include <stdbool.h>
#include <stddef.h>

typedef struct {
    char url[512];
    char spool[256];        /* the spool (frames) */
    char legacy_spool[256]; /* where an older version's JSON-lines spool would be */
    char journal[256];
} tg_test_store_t;

/** Fill o (defaults) for a store in DIR: sqlite:DIR/NAME, or a new
 *  PostgreSQL database with its spool and journal in DIR. t holds the
 *  strings o points to. */
void tg_test_store_options(const char *dir, const char *name, tg_test_store_t *t,
                           tg_store_options_t *o);

/** A new empty database on the server of TOLLGATE_TEST_PG_URL, its URL in
 *  url; false when the variable is not set or the server refuses. */
bool tg_test_pg_database(char *url, size_t cap);

/** Whether the tests run with a PostgreSQL server. */
bool tg_test_pg(void);

#endif
