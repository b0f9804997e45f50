/* core/urlpath.c: the traversal matrix — what may follow a provider's base
 * URL, what is refused, and how a model is written as one segment. */
#include "core/urlpath.h"
#include "test.h"

#include <stdlib.h>

static int check(const char *path, unsigned flags)
{
    return tg_urlpath_check(path, strlen(path), flags);
}

TEST(urlpath_plain_paths_pass)
{
    static const char *const ok[] = {
        "",
        "/",
        "/chat/completions",
        "/models/gemini-2.5-flash:generateContent",
        "/files/file-abc123/content",
        "/a//b",   /* empty segments cannot climb */
        "//x",     /* nor a leading one */
        "/a/",     /* trailing slash */
        "/v1.2/x", /* dots inside a name */
        "/.well-known/x",
        "/x..",
        "/..x",
        "/x;..",         /* a parameter that is dots */
        "/%252e%252e/x", /* double-encoded: the literal text "%2e%2e" */
        "/%2e%2ex",      /* decodes to "..x", a name */
        "/caf%C3%A9",    /* UTF-8 */
        "/a%20b",
        "/a:b@c!$&'()*+,=",
    };
    for (size_t i = 0; i < sizeof ok / sizeof ok[0]; i++) {
        if (check(ok[i], TG_URLPATH_STRICT) != 0 || check(ok[i], 0) != 0)
            tg_test_fail(__FILE__, __LINE__, "refused: \"%s\"", ok[i]);
    }
}

TEST(urlpath_traversal_refused)
{
    static const char *const bad[] = {
        "/..",
        "/../../etc/passwd",
        "/a/../../b",
        "/.",
        "/./x",
        "/a/.",
        "/%2e%2e/x",
        "/%2E%2E/x",
        "/.%2e/x",
        "/%2e./x",
        "/%2e/x",
        "/..;/x", /* Tomcat-style path parameter */
        "/..;jsessionid=1/x",
        "/..%3b/x", /* encoded ';' too */
        "/.../x",   /* dots only: Windows trims trailing dots */
        "/..%20/x", /* ... and trailing spaces */
        "/%20../x",
        "/..%00/x", /* NUL */
        "/x%00",
        "/x%0a", /* controls */
        "/x%7f",
        "/\\..\\x", /* raw backslashes */
        "/a\\b",
        "/a?b", /* a raw '?' or '#' would end the path */
        "/a#/../../x",
        "/%c0%ae%c0%ae/x", /* overlong '.' */
        "/%c0%af",         /* overlong '/' */
        "/%e0%80%ae",
        "/%ed%a0%80", /* a surrogate */
        "/%c3",       /* truncated UTF-8 */
        "/%c3/x",
        "/%ef%bc%8e%ef%bc%8e/x", /* fullwidth full stops */
        "/%e2%80%a5/x",          /* two dot leader */
        "/a%ef%bc%8fb",          /* fullwidth solidus */
        "/%",                    /* malformed escapes */
        "/%2",
        "/%zz",
        "/%%2e%2e",
        "/caf\xc3\xa9", /* raw non-ASCII */
        "/a b",
        "x/y", /* not a path */
        "..",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        if (check(bad[i], 0) != -1 || check(bad[i], TG_URLPATH_STRICT) != -1)
            tg_test_fail(__FILE__, __LINE__, "passed: \"%s\"", bad[i]);
    }
}

TEST(urlpath_encoded_slashes)
{
    /* a client's path: any encoded slash is refused */
    static const char *const strict_bad[] = {"/a%2fb", "/a%2Fb", "/a%5cb", "/a%5C", "/%2f"};
    for (size_t i = 0; i < sizeof strict_bad / sizeof strict_bad[0]; i++)
        if (check(strict_bad[i], TG_URLPATH_STRICT) != -1)
            tg_test_fail(__FILE__, __LINE__, "passed: \"%s\"", strict_bad[i]);
    /* a path the gateway built: '/' in a model is %2F, fine unless a piece of
     * it is a dot-segment for a server that decodes before splitting */
    CHECK_INT(check("/models/tuned%2Fa:generateContent", 0), 0);
    CHECK_INT(check("/a%5Cb", 0), 0);
    CHECK_INT(check("/models/..%2F..%2Fescape:generateContent", 0), -1);
    CHECK_INT(check("/models/x%2F..", 0), -1);
    CHECK_INT(check("/models/x%5C..%5Cy", 0), -1);
    CHECK_INT(check("/%2e%2e%2fx", 0), -1);
    CHECK_INT(check("/x%2F.%2Fy", 0), -1);
}

TEST(urlpath_length_is_honoured)
{
    /* only len bytes count: the check never reads past them */
    CHECK_INT(tg_urlpath_check("/ok/..", 3, TG_URLPATH_STRICT), 0);
    CHECK_INT(tg_urlpath_check("/a%2e", 3, 0), -1); /* "%2" cut short */
}

TEST(urlpath_query)
{
    CHECK_INT(tg_urlquery_check(NULL), 0);
    CHECK_INT(tg_urlquery_check(""), 0);
    CHECK_INT(tg_urlquery_check("alt=sse&key=a%20b/../c?d"), 0);
    CHECK_INT(tg_urlquery_check("a=1#/../../x"), -1);
    CHECK_INT(tg_urlquery_check("a=1 2"), -1);
    CHECK_INT(tg_urlquery_check("a=\x01"), -1);
    CHECK_INT(tg_urlquery_check("a=\xc3\xa9"), -1);
}

TEST(urlpath_put_segment)
{
    tg_buf_t b = {0};
    tg_urlpath_put_segment(&b, "gemini-2.5-flash", 16);
    CHECK_STR(b.data, "gemini-2.5-flash");
    tg_buf_reset(&b);
    tg_urlpath_put_segment(&b, "../a/b?c#d%e\\f;g:h@i", 20);
    CHECK_STR(b.data, "..%2Fa%2Fb%3Fc%23d%25e%5Cf%3Bg%3Ah%40i");
    CHECK_INT(check("/x/..%2Fa%2Fb%3Fc%23d%25e%5Cf%3Bg%3Ah%40i", 0), -1);
    tg_buf_reset(&b);
    tg_urlpath_put_segment(&b, "a\0b", 3);
    CHECK_STR(b.data, "a%00b");
    tg_buf_reset(&b);
    tg_urlpath_put_segment(&b, "..", 2); /* left as is: the check refuses it */
    CHECK_STR(b.data, "..");
    tg_buf_free(&b);
}
