/* Top-level member look-up used for in-place body edits and usage reads. */
#include "test.h"

#include "core/jsonscan.h"

static char *member(const char *json, const char *key)
{
    static char out[256];
    size_t a, b;
    if (!tg_json_member(json, strlen(json), key, &a, &b))
        return NULL;
    snprintf(out, sizeof out, "%.*s", (int)(b - a), json + a);
    return out;
}

TEST(jsonscan_finds_top_level_members_only)
{
    const char *j =
        " { \"messages\" : [{\"role\":\"user\",\"content\":\"say \\\"model\\\": x\","
        "\"model\":\"nested\"}], \"tools\":{\"model\":1},\n\"model\" : \"bench/gpt-4o\" ,"
        "\"stream\":true, \"n\": -1.5e3, \"usage\" :{\"a\":[1,{\"b\":\"}\"}]}}";
    CHECK_STR(member(j, "model"), "\"bench/gpt-4o\"");
    CHECK_STR(member(j, "stream"), "true");
    CHECK_STR(member(j, "n"), "-1.5e3");
    CHECK_STR(member(j, "usage"), "{\"a\":[1,{\"b\":\"}\"}]}");
    CHECK_STR(member(j, "messages"),
              "[{\"role\":\"user\",\"content\":\"say \\\"model\\\": x\",\"model\":\"nested\"}]");
    CHECK(member(j, "role") == NULL);
    CHECK(member(j, "missing") == NULL);
}

TEST(jsonscan_malformed_and_edges)
{
    CHECK(member("[1,2]", "model") == NULL);
    CHECK(member("", "model") == NULL);
    CHECK(member("{", "model") == NULL);
    CHECK(member("{\"model\"", "model") == NULL);
    CHECK(member("{\"model\":", "model") == NULL);
    CHECK(member("{\"model\":\"unterminated", "model") == NULL);
    CHECK(member("{}", "model") == NULL);
    CHECK_STR(member("{\"a\\\"b\":1,\"model\":null}", "model"), "null");
    /* a quote ends a string after an even run of backslashes, not an odd one */
    CHECK_STR(member("{\"a\":\"x\\\\\",\"model\":1}", "model"), "1");
    CHECK_STR(member("{\"a\":\"x\\\\\\\"\",\"model\":2}", "model"), "2");
    CHECK_STR(member("{\"a\":[\"]}\\\\\",{\"b\":\"\\\"]\"}],\"model\":3}", "model"), "3");
    CHECK_STR(member("{\"model\":\"\\\\\\\\\"}", "model"), "\"\\\\\\\\\"");
    CHECK(member("{\"model\":\"\\\"}", "model") == NULL); /* the quote is escaped: cut */
    CHECK_INT(tg_json_object_start("  {}", 4), 3);
    CHECK_INT(tg_json_object_start("[]", 2), 0);
}

static bool follows(const char *s)
{
    return tg_json_object_follows(s, strlen(s));
}

TEST(jsonscan_object_follows_a_key)
{
    CHECK(follows(":{"));
    CHECK(follows(" \t\r\n: \n{\"a\":1}"));
    CHECK(follows(":{}"));
    CHECK(!follows(":null"));
    CHECK(!follows(": [{}]"));
    CHECK(!follows("{"));        /* no colon */
    CHECK(!follows(",\"x\":{")); /* the key was a value: another member follows */
    CHECK(!follows(":"));
    CHECK(!follows(": "));
    CHECK(!follows(""));
    CHECK(!follows("x:{"));
    /* never past len */
    CHECK(!tg_json_object_follows(":{", 1));
    CHECK(tg_json_object_follows(":{", 2));
}

#include <jansson.h>
#include <stdlib.h>

static bool valid(const char *s)
{
    return tg_json_valid(s, strlen(s), NULL, NULL);
}

TEST(jsonscan_members_in_one_pass)
{
    static const char *const keys[] = {"model", "stream", "max_tokens", "absent", "m"};
    tg_json_span_t sp[5];
    const char *j = "{\"messages\":[{\"model\":\"inner\",\"stream\":false}],\"model\":\"a\","
                    "\"m\":1,\"max_tokens\":64,\"stream\":true,\"model\":\"last\"}";
    CHECK(tg_json_members(j, strlen(j), keys, 5, sp));
    CHECK(sp[0].found && sp[1].found && sp[2].found && !sp[3].found && sp[4].found);
    /* the last of a repeated key counts, as with tg_json_member */
    size_t a, b;
    CHECK(tg_json_member(j, strlen(j), "model", &a, &b));
    CHECK(sp[0].start == a && sp[0].end == b);
    char out[16];
    CHECK(tg_json_span_plain_string(j, sp[0], out, sizeof out) == 1);
    CHECK_STR(out, "last");
    CHECK(tg_json_span_is(j, sp[1], "true"));
    CHECK(!tg_json_span_is(j, sp[1], "tru"));
    CHECK(tg_json_span_long(j, sp[2]) == 64);
    CHECK(tg_json_span_long(j, sp[3]) == -1);
    CHECK(tg_json_span_plain_string(j, sp[3], out, sizeof out) == 0);
    CHECK(tg_json_span_plain_string(j, sp[4], out, sizeof out) == -1); /* not a string */
    /* a document cut inside a member: nothing counts, as tg_json_member says */
    const char *cut = "{\"model\":\"a\",\"stream\":tr";
    CHECK(!tg_json_members(cut, strlen(cut), keys, 5, sp));
    CHECK(!sp[0].found && !sp[1].found);
    CHECK(!tg_json_member(cut, strlen(cut), "model", &a, &b));
    CHECK(!tg_json_members("[1]", 3, keys, 5, sp) && !sp[0].found);
    CHECK(tg_json_members("{}", 2, keys, 5, sp) && !sp[0].found);
}

TEST(jsonscan_valid_members_checks_and_finds_in_one_walk)
{
    static const char *const keys[] = {"model", "stream", "max_tokens", "absent", "m"};
    tg_json_span_t one[5], two[5];
    const char *j = " {\"messages\":[{\"model\":\"inner\",\"stream\":false}],\"model\":\"a\","
                    "\"m\":{},\"max_tokens\" : 64 ,\"stream\":true,\"model\":\"last\", \"mo\":[]} ";
    size_t off = 0;
    const char *why = NULL;
    CHECK(tg_json_valid_members(j, strlen(j), keys, 5, one, &off, &why));
    CHECK(tg_json_members(j, strlen(j), keys, 5, two));
    for (int k = 0; k < 5; k++) {
        CHECK(one[k].found == two[k].found);
        CHECK(one[k].start == two[k].start && one[k].end == two[k].end);
    }
    char out[16];
    CHECK(tg_json_span_plain_string(j, one[0], out, sizeof out) == 1);
    CHECK_STR(out, "last"); /* the last of a repeated key */
    CHECK(tg_json_span_long(j, one[2]) == 64);
    CHECK(tg_json_span_is(j, one[1], "true"));
    CHECK(one[4].found && one[4].end - one[4].start == 2); /* {} */
    CHECK(!one[3].found);
    /* not valid: false, the reason, nothing found */
    const char *bad = "{\"model\":\"a\",\"stream\":tru}";
    CHECK(!tg_json_valid_members(bad, strlen(bad), keys, 5, one, &off, &why));
    CHECK(!one[0].found && why != NULL && off == 22);
    /* valid, not an object: nothing found */
    CHECK(tg_json_valid_members("[{\"model\":1}]", 13, keys, 5, one, NULL, NULL));
    CHECK(!one[0].found);
    /* no keys asked: the plain check */
    CHECK(tg_json_valid_members("{\"a\":1}", 7, NULL, 0, NULL, NULL, NULL));
}

TEST(jsonscan_validator_accepts_and_rejects)
{
    const char *good[] = {"{}",
                          "[]",
                          " {\"a\" : [1, -2.5e+3, 0, 0.1, true, false, null]} ",
                          "\"x\"",
                          "0",
                          "-0",
                          "1E9",
                          "{\"s\":\"\\u00e9\\n\\\"\\\\\\/\"}",
                          "{\"e\":\"\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80\"}",
                          "{\"pair\":\"\\ud83d\\ude00\"}",
                          "[[[[[]]]]]",
                          "{\"a\":{\"b\":{}}}"};
    for (size_t i = 0; i < sizeof good / sizeof good[0]; i++)
        if (!valid(good[i]))
            tg_test_fail(__FILE__, __LINE__, "rejected valid %s", good[i]);
    const char *bad[] = {"",
                         " ",
                         "{",
                         "}",
                         "{\"a\":}",
                         "{\"a\" 1}",
                         "{a:1}",
                         "[1,]",
                         "{\"a\":1,}",
                         "01",
                         "1.",
                         ".5",
                         "-",
                         "1e",
                         "+1",
                         "tru",
                         "nul",
                         "[1 2]",
                         "{}{}",
                         "{} x",
                         "\"unterminated",
                         "\"ctl\x01\"",
                         "\"bad\\x\"",
                         "\"\\u12\"",
                         "\"\\ud800\"",
                         "\"\\udc00\"",
                         "\"\\ud800\\u0041\"",
                         "\"\xc0\xaf\"",
                         "\"\xed\xa0\x80\"",
                         "\"\xf5\x80\x80\x80\"",
                         "\"\xe2\x82\"",
                         "[\"a\"]]",
                         "{\"a\":1]",
                         "[1}",
                         "'x'",
                         "NaN",
                         "Infinity"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        if (valid(bad[i]))
            tg_test_fail(__FILE__, __LINE__, "accepted invalid %s", bad[i]);

    size_t off;
    const char *why;
    CHECK(!tg_json_valid("{\"model\": ", 10, &off, &why));
    CHECK_INT(off, 10);
    CHECK_STR(why, "unexpected end of input");

    char deep[2000];
    memset(deep, '[', 1000);
    memset(deep + 1000, ']', 1000);
    CHECK(!tg_json_valid(deep, 2000, &off, &why));
    CHECK_STR(why, "nested too deeply");
}

/* The validator and jansson agree on mutations of realistic bodies (apart
 * from numbers jansson cannot represent, which only it rejects). */
TEST(jsonscan_validator_agrees_with_jansson)
{
    const char *seeds[] = {
        "{\"model\":\"gpt-4o\",\"messages\":[{\"role\":\"user\",\"content\":"
        "\"h\\u00e9llo \\\"x\\\"\"}],"
        "\"temperature\":0.7,\"stream\":true,\"stop\":null,\"n\":1}",
        "{\"a\":[1,2,{\"b\":[true,false,null,\"\xe2\x82\xac\"]}],\"c\":-1.5e-3}",
        "[\"\\ud83d\\ude00\",{\"k\":{}}]",
        /* long strings, escapes about the 32nd byte */
        "{\"content\":"
        "\"0123456789abcdefghijklmnopqrstuvwxyz01\\\"23\\\\45\\\\\\\"6789012345678901234567\\\\\","
        "\"model\":\"m\",\"x\":[\"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\\\\\\\"b\",\"\"]}"};
    const char alphabet[] = "{}[]\",:\\ 0123456789.eE+-tfnulrsa\x01\x7f\x80\xc3\xa9\xff";
    unsigned seed = 12345;
    int disagreements = 0;
    for (int round = 0; round < 30000; round++) {
        char buf[256];
        const char *src = seeds[round % 4];
        size_t n = strlen(src);
        memcpy(buf, src, n);
        int edits = 1 + (int)((seed = seed * 1103515245u + 12345u) >> 16) % 3;
        for (int e = 0; e < edits; e++) {
            seed = seed * 1103515245u + 12345u;
            size_t pos = (seed >> 8) % n;
            seed = seed * 1103515245u + 12345u;
            char c = alphabet[(seed >> 8) % (sizeof alphabet - 1)];
            int op = (int)(seed >> 20) % 3;
            if (op == 0) {
                buf[pos] = c;
            } else if (op == 1 && n + 1 < sizeof buf) {
                memmove(buf + pos + 1, buf + pos, n - pos);
                buf[pos] = c;
                n++;
            } else if (n > 1) {
                memmove(buf + pos, buf + pos + 1, n - pos - 1);
                n--;
            }
        }
        json_error_t je;
        json_t *j = json_loadb(buf, n, JSON_DECODE_ANY | JSON_ALLOW_NUL, &je);
        bool ours = tg_json_valid(buf, n, NULL, NULL);
        bool theirs = j != NULL;
        /* the one-pass check and look-up says what the two walks say */
        static const char *const keys[] = {"model", "stream", "a", "s", "max_tokens"};
        tg_json_span_t one[5], two[5];
        bool ours_too = tg_json_valid_members(buf, n, keys, 5, one, NULL, NULL);
        if (ours_too != ours)
            tg_test_fail(__FILE__, __LINE__, "valid_members=%d valid=%d on %.*s", ours_too, ours,
                         (int)n, buf);
        tg_json_members(buf, n, keys, 5, two); /* on any bytes: never past n (ASan) */
        if (!ours)
            memset(two, 0, sizeof two);
        for (int k = 0; k < 5; k++)
            if (one[k].found != two[k].found ||
                (one[k].found && (one[k].start != two[k].start || one[k].end != two[k].end))) {
                if (disagreements++ < 5)
                    tg_test_fail(__FILE__, __LINE__, "member %s differs on %.*s", keys[k], (int)n,
                                 buf);
            }
        json_decref(j);
        if (ours != theirs &&
            !(ours && (strstr(je.text, "too big") || strstr(je.text, "overflow")))) {
            if (disagreements++ < 5)
                tg_test_fail(__FILE__, __LINE__, "ours=%d jansson=%d (%s) on %.*s", ours, theirs,
                             theirs ? "" : je.text, (int)n, buf);
        }
    }
    CHECK_INT(disagreements, 0);
}
