/*
 * test_keys.c — virtual keys (auth/keys.h): generation (prefix, base62,
 * length, uniqueness), SHA-256 hashing and look-up, revocation, model globs.
 */
#include "auth/keys.h"
#include "test.h"

#include <stdlib.h>

#include <openssl/sha.h>

TEST(keys_base62_of_known_bytes)
{
    unsigned char zero[32] = {0}, ones[32];
    memset(ones, 0xff, sizeof ones);
    char out[80];
    tg_key_base62(zero, 32, out);
    CHECK_INT(strlen(out), 43);
    CHECK_STR(out, "0000000000000000000000000000000000000000000");
    /* 2^256 - 1 in base 62: 43 digits hold any 32 bytes */
    tg_key_base62(ones, 32, out);
    CHECK_STR(out, "yhjskwdA6OZ1AL1YmHWZWm8LLG7HjnuCA2j5rOw8Xp1");
    unsigned char one[32] = {0};
    one[31] = 61;
    tg_key_base62(one, 32, out);
    CHECK(out[42] == 'z' && out[41] == '0');
    one[31] = 62;
    tg_key_base62(one, 32, out);
    CHECK(out[42] == '0' && out[41] == '1');
}

TEST(keys_generate_hash_find_revoke)
{
    char a[48], b[48];
    tg_key_generate(a);
    tg_key_generate(b);
    CHECK(!strncmp(a, "tg-", 3));
    CHECK_INT(strlen(a), 46);
    CHECK(strcmp(a, b) != 0);
    for (const char *p = a + 3; *p; p++)
        CHECK((*p >= '0' && *p <= '9') || (*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z'));
    unsigned char h[32], want[32];
    tg_key_hash(a, strlen(a), h);
    SHA256((const unsigned char *)a, strlen(a), want);
    CHECK(memcmp(h, want, 32) == 0);

    tg_keyring_t *ring = tg_keyring_new();
    tg_vkey_t k;
    memset(&k, 0, sizeof k);
    snprintf(k.name, sizeof k.name, "ci");
    memcpy(k.hash, h, 32);
    k.perm_read = true;
    char *globs[] = {"gpt-4o*", "fake/claude-*"};
    k.models[0] = globs[0];
    k.models[1] = globs[1];
    k.n_models = 2;
    CHECK_INT(tg_keyring_add(ring, &k), 0);
    CHECK_INT(tg_keyring_add(ring, &k), -1); /* the name is taken */
    const tg_vkey_t *f = tg_keyring_find(ring, a, strlen(a));
    CHECK(f != NULL && !strcmp(f->name, "ci") && f->perm_read && !f->perm_write);
    CHECK(tg_keyring_find(ring, b, strlen(b)) == NULL);
    CHECK(tg_keyring_find(ring, a, strlen(a) - 1) == NULL);
    CHECK(tg_vkey_allows(f, "gpt-4o-mini"));
    CHECK(tg_vkey_allows(f, "fake/claude-haiku-4-5"));
    CHECK(!tg_vkey_allows(f, "claude-haiku-4-5"));
    CHECK(!tg_vkey_allows(f, NULL));
    CHECK(tg_keyring_revoke(ring, "ci"));
    CHECK(!tg_keyring_revoke(ring, "ci"));
    CHECK(tg_keyring_find(ring, a, strlen(a)) == NULL); /* at once */
    CHECK(f->revoked);                                  /* the old pointer stays readable */
    CHECK_INT(tg_keyring_add(ring, &k), 0);             /* the name is free again */
    tg_vkey_t *list;
    CHECK_INT(tg_keyring_list(ring, &list), 1);
    free(list);
    tg_keyring_free(ring);
}
