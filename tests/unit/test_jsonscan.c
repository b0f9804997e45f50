/* Top-level member look-up used for in-place body edits and usage reads. */
#include "test.h"

#include "proxy/jsonscan.h"

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
    const char *j = " { \"messages\" : [{\"role\":\"user\",\"content\":\"say \\\"model\\\": x\","
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
    CHECK_INT(tg_json_object_start("  {}", 4), 3);
    CHECK_INT(tg_json_object_start("[]", 2), 0);
}
