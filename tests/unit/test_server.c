/* Unit tests for the pure rules of src/server/: the default connection
 * limit (server.c) and the body deadline (conn.c). The connection
 * handling itself is driven end to end
 * (tests/e2e/hardening-connections.test.js). */
#include "server/server.h"
#include "test.h"

TEST(server_default_max_connections_leaves_room)
{
    /* 2 workers: 48 reserved, half the rest for clients */
    CHECK_INT(tg_server_default_max_connections(1024, 2), 488);
    CHECK_INT(tg_server_default_max_connections(64, 2), 8);
    CHECK_INT(tg_server_default_max_connections(1048576, 16), (1048576 - 160) / 2);
    /* never none: the gateway must still take a client */
    CHECK_INT(tg_server_default_max_connections(16, 2), 1);
    CHECK_INT(tg_server_default_max_connections(64, 0), 8 + 4);
}

TEST(server_body_deadline_grows_with_the_bytes_received)
{
    /* body_timeout 30 s, 64 KiB/s earn a second each */
    CHECK_INT(tg_server_body_deadline_ms(1000, 30000, 65536, 0), 31000);
    CHECK_INT(tg_server_body_deadline_ms(1000, 30000, 65536, 65536), 32000);
    CHECK_INT(tg_server_body_deadline_ms(1000, 30000, 65536, 10 * 1024 * 1024), 31000 + 160000);
    /* a client at half the rate falls behind: after 60 s it has 1920 KiB,
     * which earned 30 s on top of the 30: the deadline is now */
    CHECK_INT(tg_server_body_deadline_ms(0, 30000, 65536, 60 * 32768), 60000);
    /* no minimum rate: the whole body within body_timeout */
    CHECK_INT(tg_server_body_deadline_ms(5, 2000, 0, 1u << 30), 2005);
}
