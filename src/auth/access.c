/*
 * access.c — gateway keys and address allow-lists. Pure after construction;
 * any thread.
 *
 * Keys live here only as SHA-256 digests; a presented key is hashed and
 * compared with CRYPTO_memcmp against every configured digest, with no early
 * exit, so timing says nothing about which key (or how much of one) matched.
 * Addresses are kept as 16 bytes: IPv4 as IPv4-mapped IPv6, so one
 * comparison serves both families.
 */
#include "auth/access.h"

#include "core/util.h"

#include <arpa/inet.h>
#include <openssl/crypto.h>
#include <openssl/sha.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
    unsigned char digest[SHA256_DIGEST_LENGTH];
    const tg_api_key_cfg_t *cfg;
} key_entry_t;

typedef struct {
    unsigned char addr[16];
    int prefix; /* in bits of the 128-bit form */
} net_t;

typedef struct {
    net_t *nets;
    size_t n;
} net_list_t;

struct tg_access {
    key_entry_t *keys;
    size_t n_keys;
    net_list_t clients; /* security.allowed_ips; empty = everyone */
    net_list_t admins;  /* security.admin_allowed_ips; never empty */
};

static const unsigned char v4_mapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};

/* Text address → 16 bytes (v4 mapped). Returns 4 or 6 for the family, 0 if invalid. */
static int parse_addr(const char *s, unsigned char out[16])
{
    struct in_addr a4;
    if (inet_pton(AF_INET, s, &a4) == 1) {
        memcpy(out, v4_mapped, 12);
        memcpy(out + 12, &a4, 4);
        return 4;
    }
    if (inet_pton(AF_INET6, s, out) == 1)
        return 6;
    return 0;
}

int tg_cidr_parse(const char *s, unsigned char addr[16], int *prefix_bits)
{
    char buf[64];
    const char *slash = strchr(s, '/');
    size_t n = slash ? (size_t)(slash - s) : strlen(s);
    if (n == 0 || n >= sizeof buf)
        return -1;
    memcpy(buf, s, n);
    buf[n] = 0;
    int fam = parse_addr(buf, addr);
    if (!fam)
        return -1;
    int max = fam == 4 ? 32 : 128;
    int bits = max;
    if (slash) {
        char *end;
        long v = strtol(slash + 1, &end, 10);
        if (!slash[1] || *end || v < 0 || v > max)
            return -1;
        bits = (int)v;
    }
    *prefix_bits = fam == 4 ? bits + 96 : bits;
    return 0;
}

bool tg_cidr_contains(const unsigned char net[16], int prefix_bits, const char *ip)
{
    unsigned char a[16];
    if (!ip || !parse_addr(ip, a))
        return false;
    int full = prefix_bits / 8, rest = prefix_bits % 8;
    if (memcmp(a, net, (size_t)full) != 0)
        return false;
    if (rest) {
        unsigned char mask = (unsigned char)(0xff << (8 - rest));
        if ((a[full] & mask) != (net[full] & mask))
            return false;
    }
    return true;
}

/* The config checked every entry; one that does not parse is left out. */
static void parse_nets(net_list_t *l, char *const *items, size_t n)
{
    l->nets = tg_xcalloc(n ? n : 1, sizeof *l->nets);
    for (size_t i = 0; i < n; i++)
        if (tg_cidr_parse(items[i], l->nets[l->n].addr, &l->nets[l->n].prefix) == 0)
            l->n++;
}

static bool in_nets(const net_list_t *l, const char *ip)
{
    for (size_t i = 0; i < l->n; i++)
        if (tg_cidr_contains(l->nets[i].addr, l->nets[i].prefix, ip))
            return true;
    return false;
}

tg_access_t *tg_access_new(const tg_config_t *cfg)
{
    tg_access_t *a = tg_xcalloc(1, sizeof *a);
    a->keys = tg_xcalloc(cfg->n_api_keys, sizeof *a->keys);
    for (size_t i = 0; i < cfg->n_api_keys; i++) {
        const tg_api_key_cfg_t *k = &cfg->api_keys[i];
        if (!k->key || !*k->key)
            continue; /* an unset ${VAR}: that key cannot be used */
        SHA256((const unsigned char *)k->key, strlen(k->key), a->keys[a->n_keys].digest);
        a->keys[a->n_keys].cfg = k;
        a->n_keys++;
    }
    parse_nets(&a->clients, cfg->allowed_ips, cfg->n_allowed_ips);
    parse_nets(&a->admins, cfg->admin_allowed_ips, cfg->n_admin_allowed_ips);
    return a;
}

void tg_access_free(tg_access_t *a)
{
    if (!a)
        return;
    free(a->keys);
    free(a->clients.nets);
    free(a->admins.nets);
    free(a);
}

bool tg_access_ip_allowed(const tg_access_t *a, const char *ip)
{
    return !a->clients.n || in_nets(&a->clients, ip);
}

bool tg_access_admin_ip_allowed(const tg_access_t *a, const char *ip)
{
    return in_nets(&a->admins, ip);
}

const tg_api_key_cfg_t *tg_access_find_key(const tg_access_t *a, const char *key, size_t len)
{
    if (!key || !len)
        return NULL;
    unsigned char d[SHA256_DIGEST_LENGTH];
    SHA256((const unsigned char *)key, len, d);
    const tg_api_key_cfg_t *found = NULL;
    for (size_t i = 0; i < a->n_keys; i++)
        if (CRYPTO_memcmp(d, a->keys[i].digest, sizeof d) == 0)
            found = a->keys[i].cfg;
    return found;
}
