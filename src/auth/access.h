/*
 * access.h — who may use the gateway (SPEC §5): gateway keys and
 * security.allowed_ips and admin_allowed_ips. Built once per configuration; read-only afterwards,
 * so any thread may use it.
 */
#ifndef TG_ACCESS_H
#define TG_ACCESS_H

#include "config/config.h"

#include <stdbool.h>

typedef struct tg_access tg_access_t;

/** Build from a configuration: hashes the keys and parses the CIDRs. */
tg_access_t *tg_access_new(const tg_config_t *cfg);
void tg_access_free(tg_access_t *a);

/** True when security.allowed_ips is empty or the address is in it. */
bool tg_access_ip_allowed(const tg_access_t *a, const char *ip);

/** True when the address is in security.admin_allowed_ips (default:
 *  loopback): who may reach /api/v1 and /metrics while require_auth is off. */
bool tg_access_admin_ip_allowed(const tg_access_t *a, const char *ip);

/**
 * The configured key equal to `key` (SHA-256 compared in constant time over
 * every configured key), or NULL.
 */
const tg_api_key_cfg_t *tg_access_find_key(const tg_access_t *a, const char *key, size_t len);

/** Parse "10.0.0.0/8", "::1", "192.168.1.100" (prefix optional). 0 or -1. */
int tg_cidr_parse(const char *s, unsigned char addr[16], int *prefix_bits);
/** True when ip (v4, v6 or v4-mapped v6 text) lies in the network. */
bool tg_cidr_contains(const unsigned char net[16], int prefix_bits, const char *ip);

#endif
