/* Gateway keys and address allow-lists (SPEC §5). */
#include "test.h"

#include "auth/access.h"

#include <string.h>

static bool in(const char *cidr, const char *ip)
{
    unsigned char net[16];
    int bits;
    if (tg_cidr_parse(cidr, net, &bits) != 0) {
        tg_test_fail(__FILE__, __LINE__, "cannot parse %s", cidr);
        return false;
    }
    return tg_cidr_contains(net, bits, ip);
}

TEST(access_cidr_v4_v6_and_mapped)
{
    CHECK(in("10.0.0.0/8", "10.200.3.4"));
    CHECK(!in("10.0.0.0/8", "11.0.0.1"));
    CHECK(in("127.0.0.1", "127.0.0.1"));
    CHECK(!in("127.0.0.1", "127.0.0.2"));
    CHECK(in("192.168.1.0/25", "192.168.1.127"));
    CHECK(!in("192.168.1.0/25", "192.168.1.128"));
    CHECK(in("0.0.0.0/0", "8.8.8.8"));
    CHECK(in("10.0.0.0/8", "::ffff:10.1.2.3")); /* v4-mapped client on a dual-stack socket */
    CHECK(in("::1", "::1"));
    CHECK(in("2001:db8::/32", "2001:db8:ffff::1"));
    CHECK(!in("2001:db8::/32", "2001:db9::1"));
    CHECK(!in("10.0.0.0/8", "garbage"));
    unsigned char net[16];
    int bits;
    CHECK(tg_cidr_parse("10.0.0.0/33", net, &bits) == -1);
    CHECK(tg_cidr_parse("10.0.0/8", net, &bits) == -1);
    CHECK(tg_cidr_parse("::1/129", net, &bits) == -1);
    CHECK(tg_cidr_parse("10.0.0.0/", net, &bits) == -1);
    CHECK(tg_cidr_parse("", net, &bits) == -1);
}

TEST(access_keys_and_allow_list)
{
    tg_api_key_cfg_t keys[] = {
        {.name = "dev", .key = "tg-dev-secret", .perm_read = true, .perm_write = true},
        {.name = "unset", .key = ""},
        {.name = "prod", .key = "tg-prod-secret", .perm_read = true},
    };
    char *ips[] = {"127.0.0.1", "10.0.0.0/8"};
    tg_config_t cfg = {.api_keys = keys, .n_api_keys = 3, .allowed_ips = ips, .n_allowed_ips = 2};
    tg_access_t *a = tg_access_new(&cfg);
    const tg_api_key_cfg_t *k = tg_access_find_key(a, "tg-prod-secret", 14);
    CHECK(k && !strcmp(k->name, "prod"));
    k = tg_access_find_key(a, "tg-dev-secret", 13);
    CHECK(k && !strcmp(k->name, "dev"));
    CHECK(tg_access_find_key(a, "tg-dev-secre", 12) == NULL);
    CHECK(tg_access_find_key(a, "", 0) == NULL); /* an unset key never matches */
    CHECK(tg_access_ip_allowed(a, "127.0.0.1"));
    CHECK(tg_access_ip_allowed(a, "10.9.8.7"));
    CHECK(!tg_access_ip_allowed(a, "192.168.1.1"));
    tg_access_free(a);

    tg_config_t open_cfg = {0};
    a = tg_access_new(&open_cfg);
    CHECK(tg_access_ip_allowed(a, "203.0.113.9"));
    tg_access_free(a);
}

/* /api/v1 and /metrics without keys: the admin list alone decides, and the
 * client list does not widen it. */
TEST(access_admin_list_separate_from_clients)
{
    char *ips[] = {"10.0.0.0/8"};
    char *admins[] = {"127.0.0.0/8", "::1"};
    tg_config_t cfg = {.allowed_ips = ips,
                       .n_allowed_ips = 1,
                       .admin_allowed_ips = admins,
                       .n_admin_allowed_ips = 2};
    tg_access_t *a = tg_access_new(&cfg);
    CHECK(tg_access_admin_ip_allowed(a, "127.0.0.1"));
    CHECK(tg_access_admin_ip_allowed(a, "127.5.6.7"));
    CHECK(tg_access_admin_ip_allowed(a, "::1"));
    CHECK(tg_access_admin_ip_allowed(a, "::ffff:127.0.0.1"));
    CHECK(!tg_access_admin_ip_allowed(a, "10.1.2.3")); /* may send requests, not read records */
    CHECK(tg_access_ip_allowed(a, "10.1.2.3"));
    CHECK(!tg_access_admin_ip_allowed(a, "192.168.1.1"));
    CHECK(!tg_access_admin_ip_allowed(a, NULL));
    tg_access_free(a);

    tg_config_t none = {0}; /* a list never filled: nobody (the config always fills it) */
    a = tg_access_new(&none);
    CHECK(!tg_access_admin_ip_allowed(a, "127.0.0.1"));
    tg_access_free(a);
}
