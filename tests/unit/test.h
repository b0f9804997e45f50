/*
 * test.h — the unit test harness: TEST(name) registers a test at load time,
 * CHECK* record failures without stopping the test. tests/unit/main.c runs
 * every registered test (or those whose name contains argv[1]) and prints
 * "N passed, N failed".
 */
#ifndef TG_TEST_H
#define TG_TEST_H

#include <stdio.h>
#include <string.h>

typedef void (*tg_test_fn)(void);
void tg_test_register(const char *name, tg_test_fn fn);
void tg_test_fail(const char *file, int line, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

#define TEST(name)                                                                                 \
    static void name(void);                                                                        \
    __attribute__((constructor)) static void tg_reg_##name(void)                                   \
    {                                                                                              \
        tg_test_register(#name, name);                                                             \
    }                                                                                              \
    static void name(void)

#define CHECK(cond)                                                                                \
    do {                                                                                           \
        if (!(cond))                                                                               \
            tg_test_fail(__FILE__, __LINE__, "CHECK(%s)", #cond);                                  \
    } while (0)

#define CHECK_INT(a, b)                                                                            \
    do {                                                                                           \
        long long tg_a_ = (long long)(a), tg_b_ = (long long)(b);                                  \
        if (tg_a_ != tg_b_)                                                                        \
            tg_test_fail(__FILE__, __LINE__, "%s == %lld, expected %lld", #a, tg_a_, tg_b_);       \
    } while (0)

#define CHECK_STR(a, b)                                                                            \
    do {                                                                                           \
        const char *tg_a_ = (a), *tg_b_ = (b);                                                     \
        if (!tg_a_ || !tg_b_ || strcmp(tg_a_, tg_b_) != 0)                                         \
            tg_test_fail(__FILE__, __LINE__, "%s == \"%s\", expected \"%s\"", #a,                  \
                         tg_a_ ? tg_a_ : "(null)", tg_b_ ? tg_b_ : "(null)");                      \
    } while (0)

#endif
