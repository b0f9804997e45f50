/*
 * keys.h — virtual gateway keys made through /api/v1/keys (SPEC §11):
 * "tg-" + 32 random bytes in base62, shown once, kept only as SHA-256.
 * Each carries permissions, model globs, a budget (a `key` scope budget,
 * budget/budget.h), a rate limit and an expiry.
 *
 * The keyring is shared by every worker (the gateway object) behind one
 * read-write lock: a revoked key is refused by the next request on any
 * worker. Entries are never freed while the gateway lives (a revoked one
 * stays as a tombstone), so a request may keep pointing at its key.
 * Threads: any.
 */
#ifndef TG_KEYS_H
#define TG_KEYS_H

#include "config/config.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define TG_KEY_NAME_MAX   64
#define TG_KEY_MAX_MODELS 32
#define TG_KEYS_MAX       10000

typedef struct {
    char name[TG_KEY_NAME_MAX];
    unsigned char hash[32]; /* SHA-256 of the key */
    bool perm_read, perm_write;
    char *models[TG_KEY_MAX_MODELS]; /* globs; none: every model */
    size_t n_models;
    double budget_daily, budget_monthly; /* USD, < 0 none */
    tg_rate_pair_t rate;
    int64_t expires_at; /* UNIX seconds, 0: never */
    char *metadata;     /* a JSON object as given, or NULL */
    int64_t created_at; /* UNIX seconds */
    bool revoked;
} tg_vkey_t;

typedef struct tg_keyring tg_keyring_t;

tg_keyring_t *tg_keyring_new(void);
void tg_keyring_free(tg_keyring_t *k);

/** A new secret: "tg-" + base62 of 32 random bytes (NUL-ended, out >= 48). */
void tg_key_generate(char out[48]);
/** SHA-256 of a key. */
void tg_key_hash(const char *key, size_t len, unsigned char out[32]);
/** base62 of `n` bytes (big-endian number), zero-padded to 43 digits for 32
 *  bytes. out must hold 2 * n + 1. */
void tg_key_base62(const unsigned char *in, size_t n, char *out);

/** Add a key (copied; strings duplicated). -1 when a live key has that
 *  name or the ring is full. */
int tg_keyring_add(tg_keyring_t *k, const tg_vkey_t *key);
/** The live key whose hash equals SHA-256(key), compared in constant time
 *  against every live key; NULL when none. The pointer stays valid (and its
 *  fields unchanged but `revoked`) while the keyring lives. */
const tg_vkey_t *tg_keyring_find(tg_keyring_t *k, const char *key, size_t len);
/** Revoke the live key of that name; false when none. */
bool tg_keyring_revoke(tg_keyring_t *k, const char *name);
/** Copies of the live keys (shallow: strings are the ring's). */
size_t tg_keyring_list(tg_keyring_t *k, tg_vkey_t **out);
/** Does `model` match one of the key's globs (or has it none)? */
bool tg_vkey_allows(const tg_vkey_t *v, const char *model);

#endif
