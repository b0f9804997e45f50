/* core/util: the one JSON string writer every error and record goes through. */
#include "test.h"

#include "core/jsonscan.h"
#include "core/util.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

static char *esc(const char *s, size_t len)
{
    tg_buf_t b = {0};
    tg_buf_puts(&b, "\"");
    tg_buf_json_escape(&b, s, len);
    tg_buf_puts(&b, "\"");
    return b.data;
}

TEST(util_json_escape_always_valid_utf8)
{
    char *o = esc("a\"b\\c\n\x01", 7);
    CHECK_STR(o, "\"a\\\"b\\\\c\\n\\u0001\"");
    free(o);
    o = esc("h\xC3\xA9 \xE2\x82\xAC \xF0\x9F\x98\x80", 12); /* é € 😀 kept as they are */
    CHECK_STR(o, "\"h\xC3\xA9 \xE2\x82\xAC \xF0\x9F\x98\x80\"");
    free(o);
    /* raw bytes of a hostile path, an overlong '/', a surrogate, a cut sequence */
    static const struct {
        const char *in;
        size_t len;
        const char *out;
    } bad[] = {
        {"/v1/\xFF\xFE", 6, "\"/v1/\xEF\xBF\xBD\xEF\xBF\xBD\""},
        {"\xC0\xAF", 2, "\"\xEF\xBF\xBD\xEF\xBF\xBD\""},
        {"\xED\xA0\x80", 3, "\"\xEF\xBF\xBD\xEF\xBF\xBD\xEF\xBF\xBD\""},
        {"ab\xE2\x82", 4, "\"ab\xEF\xBF\xBD\xEF\xBF\xBD\""},
        {"\xF4\x90\x80\x80", 4, "\"\xEF\xBF\xBD\xEF\xBF\xBD\xEF\xBF\xBD\xEF\xBF\xBD\""},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        o = esc(bad[i].in, bad[i].len);
        CHECK_STR(o, bad[i].out);
        size_t off;
        const char *why;
        CHECK(tg_json_valid(o, strlen(o), &off, &why)); /* the strict scanner agrees */
        free(o);
    }
    /* every byte value, alone: valid JSON each time */
    for (int c = 0; c < 256; c++) {
        char in[1] = {(char)c};
        o = esc(in, 1);
        size_t off;
        const char *why;
        CHECK(tg_json_valid(o, strlen(o), &off, &why));
        free(o);
    }
}

/* The one redaction of connection strings: no password reaches a log line. */
TEST(util_redact_secrets)
{
    static const struct {
        const char *in, *out;
    } cases[] = {
        {"postgresql://tollgate:s3cret@127.0.0.1:5432/db",
         "postgresql://tollgate:***@127.0.0.1:5432/db"},
        {"storage.url postgres://u:p%40ss@@h/db?sslmode=require: refused",
         "storage.url postgres://u:***@h/db?sslmode=require: refused"},
        {"redis://:hunter2@cache:6379/0", "redis://:***@cache:6379/0"},
        {"postgres://user@h:5432", "postgres://user@h:5432"}, /* no password: as is */
        {"rediss://secret@h:6380", "rediss://***@h:6380"},    /* Redis: the password alone */
        {"url redis://a@b@h/1 x", "url redis://***@h/1 x"},
        {"postgresql://h/db?user=a&password=xyz&sslmode=disable",
         "postgresql://h/db?user=a&password=***&sslmode=disable"},
        {"host=h password = 'a b\\'c' dbname=x", "host=h password = *** dbname=x"},
        {"host=h PASSWORD=abc", "host=h PASSWORD=***"},
        {"sqlite:/var/lib/tollgate.db", "sqlite:/var/lib/tollgate.db"},
        {"mypassword=keep", "mypassword=keep"}, /* not the keyword */
        {"password authentication failed for user \"tollgate\"",
         "password authentication failed for user \"tollgate\""},
        {"", ""},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char *o = tg_redact_secrets(cases[i].in);
        CHECK_STR(o, cases[i].out);
        free(o);
    }
    CHECK(tg_redact_secrets(NULL) == NULL);
}

/* tg_str_contains: the same answer as memmem, a NUL inside the text too. */
TEST(util_str_contains)
{
    CHECK(tg_str_contains("{\"usage\":{}}", 12, "\"usage\""));
    CHECK(!tg_str_contains("{\"usag\":{}}", 11, "\"usage\""));
    CHECK(!tg_str_contains("", 0, "\"error\""));
    static const char nul[] = "{\"x\":\"\0\",\"error\":{}}";
    CHECK(tg_str_contains(nul, sizeof nul - 1, "\"error\""));
    CHECK(!tg_str_contains(nul, sizeof nul - 1, "\"usage\""));
}

/* tg_put_hex: the chunk-size digits, as printf's %zx writes them. */
TEST(util_put_hex_as_printf)
{
    static const uint64_t vals[] = {0,   1,   9,    10,    15,         16,
                                    255, 256, 4096, 10755, 0xdeadbeef, UINT64_MAX};
    for (size_t i = 0; i < sizeof vals / sizeof vals[0]; i++) {
        char got[17], want[24];
        size_t n = tg_put_hex(got, vals[i]);
        got[n] = 0;
        snprintf(want, sizeof want, "%llx", (unsigned long long)vals[i]);
        CHECK_STR(got, want);
    }
}

/* The header-name compares of the request path, done by hand, say what
 * strncasecmp says (header names are ASCII; the C locale). */
TEST(util_name_compares_as_strncasecmp)
{
    static const char *const names[] = {"",
                                        "h",
                                        "Helicone-",
                                        "helicone-user-id",
                                        "HELICONE-X",
                                        "Helicone",
                                        "Heliconx-",
                                        "content-length",
                                        "Content-Length",
                                        "CONTENT-LENGTH ",
                                        "connection",
                                        "te",
                                        "TE",
                                        "Te\xc3\xa9",
                                        "x-api-key",
                                        "@[`{",
                                        "`elicone-"};
    size_t n = sizeof names / sizeof names[0];
    for (size_t i = 0; i < n; i++)
        for (size_t j = 0; j < n; j++) {
            bool want = strncasecmp(names[i], names[j], strlen(names[j])) == 0;
            if (tg_has_prefix_ci(names[i], names[j]) != want)
                tg_test_fail(__FILE__, __LINE__, "prefix %s of %s", names[j], names[i]);
        }
    static const tg_name_t set[] = {TG_NAME("host"), TG_NAME("te"), TG_NAME("content-length")};
    for (size_t i = 0; i < n; i++) {
        size_t len = strlen(names[i]);
        bool want = false;
        for (size_t k = 0; k < 3; k++)
            want = want || (set[k].n == len && !strncasecmp(names[i], set[k].s, len));
        if (tg_name_in(names[i], len, set, 3) != want)
            tg_test_fail(__FILE__, __LINE__, "name_in %s", names[i]);
    }
    CHECK(tg_name_in("Content-Length", 14, set, 3) && tg_name_in("TE", 2, set, 3));
    CHECK(!tg_name_in("", 0, set, 3) && !tg_name_in("Hos", 3, set, 3));
    CHECK(tg_hop_by_hop("Transfer-Encoding", 17) && !tg_hop_by_hop("Content-Type", 12));
}
