/* store_env.c — see store_env.h. */
#include "store_env.h"

#include <libpq-fe.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

bool tg_test_pg(void)
{
    const char *u = getenv("TOLLGATE_TEST_PG_URL");
    return u && *u;
}

bool tg_test_pg_database(char *url, size_t cap)
{
    static int n;
    const char *base = getenv("TOLLGATE_TEST_PG_URL");
    if (!base || !*base)
        return false;
    PGconn *c = PQconnectdb(base);
    if (PQstatus(c) != CONNECTION_OK) {
        printf("    PostgreSQL: %s", PQerrorMessage(c));
        PQfinish(c);
        return false;
    }
    char name[64], sql[128];
    snprintf(name, sizeof name, "unit_%d_%d", (int)getpid(), ++n);
    snprintf(sql, sizeof sql, "CREATE DATABASE %s", name); /* a name made here */
    PGresult *r = PQexec(c, sql);
    bool ok = PQresultStatus(r) == PGRES_COMMAND_OK;
    if (!ok)
        printf("    PostgreSQL: %s", PQresultErrorMessage(r));
    PQclear(r);
    PQfinish(c);
    /* the same URL with the new database: the path after host[:port] */
    const char *slash = strchr(strstr(base, "://") + 3, '/');
    const char *query = strchr(base, '?');
    size_t head = slash ? (size_t)(slash - base) : strlen(base);
    snprintf(url, cap, "%.*s/%s%s", (int)head, base, name, query ? query : "");
    return ok;
}

/* The database of each DIR/NAME, so that a test that reopens its store (a
 * restart) finds what it stored. Tests run one at a time. */
static struct {
    char key[320];
    char url[512];
} made[256];
static size_t n_made;

static bool pg_database_for(const char *key, char *url, size_t cap)
{
    for (size_t i = 0; i < n_made; i++)
        if (!strcmp(made[i].key, key)) {
            snprintf(url, cap, "%s", made[i].url);
            return true;
        }
    if (!tg_test_pg_database(url, cap))
        return false;
    if (n_made < sizeof made / sizeof made[0]) {
        snprintf(made[n_made].key, sizeof made[n_made].key, "%s", key);
        snprintf(made[n_made].url, sizeof made[n_made].url, "%s", url);
        n_made++;
    }
    return true;
}

void tg_test_store_options(const char *dir, const char *name, tg_test_store_t *t,
                           tg_store_options_t *o)
{
    tg_store_options_default(o);
    char key[320];
    snprintf(key, sizeof key, "%s/%s", dir, name);
    if (tg_test_pg() && pg_database_for(key, t->url, sizeof t->url)) {
        snprintf(t->spool, sizeof t->spool, "%s/%s-spool.tgj", dir, name);
        snprintf(t->legacy_spool, sizeof t->legacy_spool, "%s/%s-spool.jsonl", dir, name);
        snprintf(t->journal, sizeof t->journal, "%s/%s-journal.d", dir, name);
        o->spool_path = t->spool;
        o->legacy_spool_path = t->legacy_spool;
        o->journal_dir = t->journal;
    } else if (tg_test_pg()) { /* no database: the test fails, it does not fall back */
        snprintf(t->url, sizeof t->url, "postgresql-test-database-not-created:");
    } else {
        snprintf(t->url, sizeof t->url, "sqlite:%s/%s", dir, name);
    }
    o->url = t->url;
}
