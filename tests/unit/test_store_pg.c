/*
 * The PostgreSQL back-end's own promises, on the server named by
 * TOLLGATE_TEST_PG_URL (scripts/with-postgres.sh; skipped with a note
 * without it): migrations under the advisory lock when several gateways
 * start at once, replays skipped with everything attached to them, no
 * password in an error. The query API's tests run on it too (store_env.h).
 */
#include "store_env.h"
#include "test.h"

#include "store/store.h"

#include <libpq-fe.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static bool need_pg(void)
{
    static bool said;
    if (tg_test_pg())
        return true;
    if (!said)
        printf("    (TOLLGATE_TEST_PG_URL is not set: the PostgreSQL tests are skipped;"
               " scripts/with-postgres.sh ./build/unit_tests runs them)\n");
    said = true;
    return false;
}

/* The single value of a query on url's database, or -1. */
static long long pg_value(const char *url, const char *sql)
{
    PGconn *c = PQconnectdb(url);
    long long v = -1;
    PGresult *r = PQstatus(c) == CONNECTION_OK ? PQexec(c, sql) : NULL;
    if (PQresultStatus(r) == PGRES_TUPLES_OK && PQntuples(r) == 1 && !PQgetisnull(r, 0, 0))
        v = atoll(PQgetvalue(r, 0, 0));
    else
        printf("    %s: %s", sql, r ? PQresultErrorMessage(r) : PQerrorMessage(c));
    PQclear(r);
    PQfinish(c);
    return v;
}

typedef struct {
    const char *url;
    tg_store_backend_t *b;
    char err[256];
} opener_t;

static void *open_one(void *arg)
{
    opener_t *o = arg;
    o->b = tg_store_pg_open(o->url, o->err, sizeof o->err);
    return NULL;
}

TEST(store_pg_gateways_starting_at_once_migrate_once)
{
    char url[512];
    if (!need_pg() || !tg_test_pg_database(url, sizeof url))
        return;
    enum { N = 6 };
    opener_t o[N];
    pthread_t t[N];
    for (int i = 0; i < N; i++) {
        o[i] = (opener_t){.url = url};
        CHECK_INT(pthread_create(&t[i], NULL, open_one, &o[i]), 0);
    }
    for (int i = 0; i < N; i++)
        pthread_join(t[i], NULL);
    for (int i = 0; i < N; i++) {
        if (!o[i].b)
            tg_test_fail(__FILE__, __LINE__, "open %d: %s", i, o[i].err);
        else
            o[i].b->ops->close(o[i].b);
    }
    CHECK_INT(pg_value(url, "SELECT count(*) FROM tollgate_schema"), 1);
    CHECK_INT(pg_value(url, "SELECT max(version) FROM tollgate_schema"), 1);
    CHECK_INT(pg_value(url, "SELECT count(*) FROM requests"), 0);
}

static tg_record_t *rec(const char *id, int64_t at, const char *body)
{
    tg_record_t *r = tg_record_new();
    tg_record_set_str(&r->id, id);
    r->created_at_ms = at;
    r->status = 200;
    tg_record_set_str(&r->model, "m\twith\\odd\nbytes \xff");
    tg_record_set_property(r, "Agent-Name", id);
    tg_record_set_property(r, "Env", "prod");
    if (body) {
        tg_record_set_body(r, false, body, strlen(body), -1);
        tg_record_set_body(r, true, "\x00\x01 raw", 6, -1);
    }
    return r;
}

TEST(store_pg_replays_are_skipped_with_their_properties_and_bodies)
{
    char url[512], err[256];
    if (!need_pg() || !tg_test_pg_database(url, sizeof url))
        return;
    tg_store_backend_t *b = tg_store_pg_open(url, err, sizeof err);
    CHECK(b != NULL);
    if (!b) {
        printf("    %s\n", err);
        return;
    }
    tg_record_t *first[3] = {rec("a", 1000, "{\"q\":1}"), rec("b", 2000, NULL),
                             rec("c", 3000, "c")};
    CHECK_INT(b->ops->write(b, first, 3, err, sizeof err), TG_STORE_OK);
    /* a replay of a and c (other bodies and properties), a twice more in
     * the batch itself, and two new records */
    tg_record_t *again[6] = {rec("a", 1000, "replayed"), rec("d", 4000, "d"),
                             rec("a", 1000, "replayed"), rec("c", 3000, NULL),
                             rec("a", 5000, "a later"),  rec("e", 6000, NULL)};
    tg_record_set_property(again[0], "Extra", "replay");
    CHECK_INT(b->ops->write(b, again, 6, err, sizeof err), TG_STORE_OK);
    CHECK_INT(pg_value(url, "SELECT count(*) FROM requests"), 6);
    CHECK_INT(pg_value(url, "SELECT count(*) FROM request_properties"), 12);
    CHECK_INT(pg_value(url, "SELECT count(*) FROM request_properties WHERE name = 'extra'"), 0);
    CHECK_INT(pg_value(url, "SELECT count(*) FROM request_bodies"), 4);
    CHECK_INT(pg_value(url, "SELECT count(*) FROM request_bodies b JOIN requests r USING (seq)"
                            " WHERE r.id = 'a' AND r.created_at = 1000"
                            " AND b.request_body = '{\"q\":1}'::bytea"),
              1);
    /* one record back, bodies byte for byte, names as given */
    tg_record_t *got = NULL;
    CHECK_INT(b->ops->get(b, "c", &got, err, sizeof err), 0);
    if (got) {
        CHECK_STR(got->request_body, "c");
        CHECK_INT((long long)got->response_body_len, 6);
        CHECK(got->response_body && !memcmp(got->response_body, "\x00\x01 raw", 6));
        CHECK_STR(got->model, "m\twith\\odd\nbytes \xEF\xBF\xBD");
        CHECK_INT(got->n_props, 2);
        CHECK_STR(got->props[0].name, "Agent-Name");
    }
    tg_record_free(got);
    for (int i = 0; i < 3; i++)
        tg_record_free(first[i]);
    for (int i = 0; i < 6; i++)
        tg_record_free(again[i]);
    b->ops->close(b);
}

TEST(store_pg_errors_never_show_the_password)
{
    char url[512], err[512];
    if (!need_pg() || !tg_test_pg_database(url, sizeof url))
        return;
    /* the same server and user, a wrong password */
    char bad[600];
    const char *at = strchr(strstr(url, "://") + 3, '@');
    const char *colon = strchr(strstr(url, "://") + 3, ':');
    if (!at || !colon || colon > at)
        return;
    snprintf(bad, sizeof bad, "%.*s:Not-The-Password-42%s", (int)(colon - url), url, at);
    tg_store_backend_t *b = tg_store_pg_open(bad, err, sizeof err);
    CHECK(b == NULL);
    CHECK(strstr(err, "Not-The-Password-42") == NULL);
    CHECK(strstr(err, ":***@") != NULL);
    tg_store_options_t o;
    tg_store_options_default(&o);
    o.url = bad;
    tg_store_t *s = NULL;
    CHECK_INT(tg_store_open(&o, &s, err, sizeof err), -1);
    CHECK(strstr(err, "Not-The-Password-42") == NULL);
}
