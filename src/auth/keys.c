/*
 * keys.c — the virtual key ring (keys.h): generation, hashing, constant-time
 * look-up, revocation. Threads: any; one read-write lock.
 */
#include "auth/keys.h"

#include "core/util.h"

#include <fnmatch.h>
#include <openssl/crypto.h>
#include <openssl/rand.h>
#include <openssl/sha.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

struct tg_keyring {
    pthread_rwlock_t lock;
    tg_vkey_t **keys; /* never freed before the ring: tombstones stay */
    size_t n, cap, live;
};

tg_keyring_t *tg_keyring_new(void)
{
    tg_keyring_t *k = tg_xcalloc(1, sizeof *k);
    pthread_rwlock_init(&k->lock, NULL);
    return k;
}

void tg_keyring_free(tg_keyring_t *k)
{
    if (!k)
        return;
    for (size_t i = 0; i < k->n; i++) {
        for (size_t j = 0; j < k->keys[i]->n_models; j++)
            free(k->keys[i]->models[j]);
        free(k->keys[i]->metadata);
        free(k->keys[i]);
    }
    free(k->keys);
    pthread_rwlock_destroy(&k->lock);
    free(k);
}

void tg_key_base62(const unsigned char *in, size_t n, char *out)
{
    static const char digits[] = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
    unsigned char num[64];
    size_t len = n < sizeof num ? n : sizeof num;
    memcpy(num, in, len);
    /* 62^43 > 2^256: 43 digits hold 32 bytes; repeated division by 62 */
    size_t ndig = len * 4 / 3 + 1;
    if (len == 32)
        ndig = 43;
    for (size_t d = 0; d < ndig; d++) {
        unsigned rem = 0;
        for (size_t i = 0; i < len; i++) {
            unsigned cur = rem * 256 + num[i];
            num[i] = (unsigned char)(cur / 62);
            rem = cur % 62;
        }
        out[ndig - 1 - d] = digits[rem];
    }
    out[ndig] = 0;
}

void tg_key_generate(char out[48])
{
    unsigned char raw[32];
    if (RAND_bytes(raw, sizeof raw) != 1)
        abort(); /* no randomness: no keys */
    memcpy(out, "tg-", 3);
    tg_key_base62(raw, sizeof raw, out + 3);
    OPENSSL_cleanse(raw, sizeof raw);
}

void tg_key_hash(const char *key, size_t len, unsigned char out[32])
{
    SHA256((const unsigned char *)key, len, out);
}

int tg_keyring_add(tg_keyring_t *k, const tg_vkey_t *key)
{
    pthread_rwlock_wrlock(&k->lock);
    int rc = -1;
    if (k->live >= TG_KEYS_MAX)
        goto out;
    for (size_t i = 0; i < k->n; i++)
        if (!k->keys[i]->revoked && !strcmp(k->keys[i]->name, key->name))
            goto out;
    if (k->n == k->cap) {
        k->cap = k->cap ? k->cap * 2 : 16;
        k->keys = tg_xrealloc(k->keys, k->cap * sizeof *k->keys);
    }
    tg_vkey_t *v = tg_xcalloc(1, sizeof *v);
    *v = *key;
    for (size_t j = 0; j < v->n_models; j++)
        v->models[j] = tg_xstrdup(key->models[j]);
    v->metadata = key->metadata ? tg_xstrdup(key->metadata) : NULL;
    k->keys[k->n++] = v;
    k->live++;
    rc = 0;
out:
    pthread_rwlock_unlock(&k->lock);
    return rc;
}

const tg_vkey_t *tg_keyring_find(tg_keyring_t *k, const char *key, size_t len)
{
    unsigned char h[32];
    tg_key_hash(key, len, h);
    const tg_vkey_t *found = NULL;
    pthread_rwlock_rdlock(&k->lock);
    for (size_t i = 0; i < k->n; i++) { /* every key, whatever matches: no early exit */
        const tg_vkey_t *v = k->keys[i];
        if (CRYPTO_memcmp(v->hash, h, sizeof h) == 0 && !v->revoked)
            found = v;
    }
    pthread_rwlock_unlock(&k->lock);
    return found;
}

bool tg_keyring_revoke(tg_keyring_t *k, const char *name)
{
    bool done = false;
    pthread_rwlock_wrlock(&k->lock);
    for (size_t i = 0; i < k->n; i++)
        if (!k->keys[i]->revoked && !strcmp(k->keys[i]->name, name)) {
            k->keys[i]->revoked = true;
            k->live--;
            done = true;
        }
    pthread_rwlock_unlock(&k->lock);
    return done;
}

size_t tg_keyring_list(tg_keyring_t *k, tg_vkey_t **out)
{
    pthread_rwlock_rdlock(&k->lock);
    *out = tg_xcalloc(k->live ? k->live : 1, sizeof **out);
    size_t n = 0;
    for (size_t i = 0; i < k->n; i++)
        if (!k->keys[i]->revoked)
            (*out)[n++] = *k->keys[i];
    pthread_rwlock_unlock(&k->lock);
    return n;
}

bool tg_vkey_allows(const tg_vkey_t *v, const char *model)
{
    if (!v->n_models)
        return true;
    for (size_t i = 0; i < v->n_models; i++)
        if (model && fnmatch(v->models[i], model, FNM_CASEFOLD) == 0)
            return true;
    return false;
}
