/*
 * test_bus.c — what an instance applies of the changes another publishes
 * (proxy/bus.h): keys made and revoked, runtime rate limits and budgets
 * added and removed; its own messages and malformed ones change nothing.
 */
#include "test.h"

#include "config/config.h"
#include "gateway.h"
#include "proxy/bus.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static tg_gateway_t *gateway(void)
{
    const char *yaml = "server:\n  workers: 1\n";
    tg_config_errors_t errs = {0};
    tg_config_t *c = tg_config_load_string(yaml, strlen(yaml), "test", &errs);
    tg_config_errors_free(&errs);
    char err[256];
    tg_gateway_t *gw = c ? tg_gateway_new(c, NULL, err, sizeof err) : NULL;
    tg_config_release(c);
    return gw;
}

static void deliver(tg_gateway_t *gw, const char *origin, const char *type, const char *data)
{
    char msg[2048];
    snprintf(msg, sizeof msg, "{\"origin\":\"%s\",\"type\":\"%s\",\"data\":%s}", origin, type,
             data);
    tg_bus_on_message(gw, msg, strlen(msg));
}

#define OTHER "0b6c3f6e-8f5a-4c1e-9d1e-2f3a4b5c6d7e"

static const char *prop(void *ctx, const char *name)
{
    return !strcmp(name, "Team") ? ctx : NULL;
}

TEST(bus_applies_keys_from_other_instances_only)
{
    tg_gateway_t *gw = gateway();
    CHECK(gw != NULL);
    if (!gw)
        return;
    unsigned char hash[32];
    tg_key_hash("tg-secret", 9, hash);
    char hex[65], data[512];
    for (int i = 0; i < 32; i++)
        snprintf(hex + 2 * i, 3, "%02x", hash[i]);
    snprintf(data, sizeof data,
             "{\"key\":{\"name\":\"k1\",\"permissions\":[\"read\"]},\"hash\":\"%s\","
             "\"created_at\":1765065600}",
             hex);
    deliver(gw, gw->instance, "key.created", data); /* our own: made already, not again */
    CHECK(tg_keyring_find(gw->keys, "tg-secret", 9) == NULL);
    deliver(gw, OTHER, "key.created", data);
    const tg_vkey_t *k = tg_keyring_find(gw->keys, "tg-secret", 9);
    CHECK(k != NULL && !strcmp(k->name, "k1") && k->perm_read && !k->perm_write);
    deliver(gw, gw->instance, "key.revoked", "{\"name\":\"k1\"}");
    CHECK(tg_keyring_find(gw->keys, "tg-secret", 9) != NULL);
    deliver(gw, OTHER, "key.revoked", "{\"name\":\"k1\"}");
    CHECK(tg_keyring_find(gw->keys, "tg-secret", 9) == NULL);
    /* malformed: a bad hash, no data, not JSON, an unknown type */
    deliver(gw, OTHER, "key.created", "{\"key\":{\"name\":\"k2\"},\"hash\":\"zz\"}");
    tg_bus_on_message(gw, "not json", 8);
    deliver(gw, OTHER, "planet.added", "{}");
    tg_vkey_t *list;
    CHECK(tg_keyring_list(gw->keys, &list) == 0);
    free(list);
    tg_gateway_free(gw);
}

TEST(bus_applies_rules_and_budgets)
{
    tg_gateway_t *gw = gateway();
    CHECK(gw != NULL);
    if (!gw)
        return;
    deliver(gw, OTHER, "rule.added",
            "{\"id\":\"r-1\",\"rule\":{\"property\":\"Team\",\"value\":\"blue\",\"limit\":2,"
            "\"window\":\"1m\"}}");
    tg_rl_rule_t m[2];
    char blue[] = "blue";
    CHECK(tg_rl_registry_match(gw->rules, prop, blue, m, 2) == 1);
    CHECK(!strcmp(m[0].id, "r-1") && m[0].policy.quota == 2 && m[0].policy.window_s == 60);
    deliver(gw, OTHER, "rule.added", "{\"id\":\"r-2\",\"rule\":{\"limit\":-1}}"); /* invalid */
    tg_rl_rule_t *all;
    size_t n = tg_rl_registry_list(gw->rules, &all);
    free(all);
    CHECK(n == 1);
    deliver(gw, OTHER, "rule.deleted", "{\"id\":\"r-1\"}");
    CHECK(tg_rl_registry_match(gw->rules, prop, blue, m, 2) == 0);

    deliver(gw, OTHER, "budget.put",
            "{\"scope\":\"property:Team\",\"value\":\"red\",\"budget\":{\"daily\":2.5}}");
    tg_budget_cfg_t c;
    CHECK(tg_budget_rule_get(gw->budgets, "property:Team", "red", &c) && c.daily == 2.5);
    deliver(gw, OTHER, "budget.put", "{\"scope\":\"planet\",\"value\":\"x\",\"budget\":{}}");
    CHECK(!tg_budget_rule_get(gw->budgets, "planet", "x", &c));
    deliver(gw, OTHER, "budget.deleted", "{\"scope\":\"property:Team\",\"value\":\"red\"}");
    CHECK(!tg_budget_rule_get(gw->budgets, "property:Team", "red", &c));
    tg_gateway_free(gw);
}
