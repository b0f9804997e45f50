/*
 * main.c — command line, configuration discovery, the worker pool, signals.
 *
 * Builds the gateway object (gateway.h) and hands it to the workers
 * through the server's hooks; frees it after they have stopped.
 *
 * Thread: the main thread. After start-up it only waits for signals:
 * SIGTERM/SIGINT drain and exit 0, SIGHUP reloads the configuration file
 * (a bad file is reported and the running configuration stays).
 */
#include "config/config.h"
#include "core/log.h"
#include "core/util.h"
#include "gateway.h"
#include "providers/provider.h"
#include "proxy/pipeline.h"
#include "server/server.h"
#include "store/store.h"

#include <curl/curl.h>
#include <event2/event.h>
#include <netdb.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

#ifndef TG_VERSION
#define TG_VERSION "0.0.0"
#endif

/*
 * jemalloc's settings, read by the release binary's allocator at its first
 * allocation (the sanitizer builds ignore the symbol; MALLOC_CONF in the
 * environment still overrides each setting). jemalloc's defaults keep freed
 * pages for ~10 s (dirty_decay_ms) and return them only while the arena that
 * holds them allocates: under streamed answers with 10 KB bodies the gateway
 * peaked at ~59 MB against ~42 MB with pages returned at once
 * (docs/observability.md, "Memory"). Pages now go back over ~1 s, and a
 * background thread returns them when the arena has gone quiet (an idle
 * gateway after a burst).
 */
const char *malloc_conf = "dirty_decay_ms:1000,muzzy_decay_ms:0,background_thread:true";

static const char usage[] =
    "usage: tollgate [--config FILE] [--validate] [--version] [--help]\n"
    "\n"
    "  --config FILE   configuration file (default: $TOLLGATE_CONFIG, else\n"
    "                  $HELICONE_CONFIG_PATH, else ./tollgate.yaml if present, else\n"
    "                  built-in defaults with providers detected from the environment\n"
    "                  and the built-in `mock` provider)\n"
    "  --validate      check the configuration and exit: 0 when valid, else 1 with each\n"
    "                  problem and its YAML path and line\n"
    "  --version       print the version and exit\n"
    "  --help          print this help and exit\n"
    "\n"
    "Signals: SIGTERM/SIGINT drain in-flight requests and exit 0; SIGHUP reloads the\n"
    "configuration file without dropping connections.\n";

typedef struct {
    const char *path; /* NULL: defaults */
    tg_server_t *server;
    struct event_base *base;
    tg_config_t *cfg;
} app_t;

/* Where the configuration comes from, per SPEC §1: --config, then
 * $TOLLGATE_CONFIG, then $HELICONE_CONFIG_PATH (the variable Helicone's AI
 * gateway reads, so a deployment moved over keeps its environment). */
static const char *config_path(const char *arg)
{
    if (arg)
        return arg;
    static const char *const vars[] = {"TOLLGATE_CONFIG", "HELICONE_CONFIG_PATH"};
    for (size_t i = 0; i < sizeof vars / sizeof vars[0]; i++) {
        const char *env = getenv(vars[i]);
        if (env && *env)
            return env;
    }
    if (access("tollgate.yaml", R_OK) == 0)
        return "tollgate.yaml";
    return NULL;
}

/* Loads the file (or the defaults), reporting each problem with its line:
 * to `report`, or through the log when report is NULL (a SIGHUP reload,
 * whose errors belong where logging.output says, not on stderr). */
static tg_config_t *load(const char *path, FILE *report)
{
    if (!path)
        return tg_config_defaults();
    tg_config_errors_t errs = {0};
    tg_config_t *cfg = tg_config_load_file(path, &errs);
    for (size_t i = 0; i < errs.n; i++) {
        const tg_config_error_t *e = &errs.items[i];
        char where[32] = "";
        if (e->line)
            snprintf(where, sizeof where, ":%d", e->line);
        if (report)
            fprintf(report, "%s%s: %s%s%s\n", path, where, e->path, e->path[0] ? ": " : "",
                    e->message);
        else
            tg_error("%s%s: %s%s%s", path, where, e->path, e->path[0] ? ": " : "", e->message);
    }
    tg_config_errors_free(&errs);
    return cfg;
}

/* What a file can say that only this machine can check: the listen
 * addresses resolve, and require_auth has a key to accept. Returns the
 * number of problems, each reported as load() does; `fatal_keys` false
 * makes the missing key a warning (--validate: the variables may be set
 * where the gateway runs). */
static int check_environment(const char *path, const tg_config_t *c, FILE *report, bool fatal_keys)
{
    int problems = 0;
    const char *hosts[2] = {c->host, c->dashboard_enabled ? c->dashboard_host : NULL};
    const char *names[2] = {"server.host", "observability.dashboard.host"};
    for (int i = 0; i < 2; i++) {
        if (!hosts[i])
            continue;
        struct addrinfo hints = {
            .ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM, .ai_flags = AI_PASSIVE};
        struct addrinfo *ai = NULL;
        int rc = getaddrinfo(hosts[i], NULL, &hints, &ai);
        if (ai)
            freeaddrinfo(ai);
        if (rc == 0)
            continue;
        problems++;
        if (report)
            fprintf(report, "%s: %s: cannot resolve '%s': %s\n", path ? path : "defaults", names[i],
                    hosts[i], gai_strerror(rc));
        else
            tg_error("%s: %s: cannot resolve '%s': %s", path ? path : "defaults", names[i],
                     hosts[i], gai_strerror(rc));
    }
    size_t usable = 0;
    for (size_t i = 0; i < c->n_api_keys; i++)
        usable += c->api_keys[i].key && *c->api_keys[i].key;
    if (c->require_auth && !usable) {
        const char *what = "security.require_auth is true but no gateway key has a value "
                           "(security.api_keys is empty, or every key's ${VAR} is unset): "
                           "every request would be refused";
        problems += fatal_keys;
        if (report)
            fprintf(report, "%s: %s%s\n", path ? path : "defaults",
                    fatal_keys ? "" : "warning: ", what);
        else
            tg_error("%s: %s", path ? path : "defaults", what);
    }
    return problems;
}

/* Settings the file may carry that this version accepts but does not act
 * on yet: said once at start-up, never silently ignored. */
static void report_inactive(const tg_config_t *c)
{
    tg_buf_t b = {0};
#define INACTIVE(cond, name)                                                                       \
    do {                                                                                           \
        if (cond)                                                                                  \
            tg_buf_printf(&b, "%s%s", b.len ? ", " : "", name);                                    \
    } while (0)
#undef INACTIVE
    if (b.len)
        tg_warn("config: accepted but not active in this version yet: %s", b.data);
    tg_buf_free(&b);
}

static bool is_loopback(const char *host)
{
    return !strcmp(host, "127.0.0.1") || !strcmp(host, "::1") || !strcmp(host, "localhost");
}

/* Where the dashboard is (observability.dashboard), and a warning when the
 * page is open to the network without a key. */
static void describe_dashboard(const tg_config_t *c)
{
    if (!c->dashboard_enabled)
        return;
    const char *scheme = c->ssl_enabled ? "https" : "http";
    bool v6 = strchr(c->dashboard_host, ':') != NULL;
    char where[300];
    snprintf(where, sizeof where, "%s://%s%s%s:%d/", scheme, v6 ? "[" : "", c->dashboard_host,
             v6 ? "]" : "", c->dashboard_port);
    if (c->require_auth)
        tg_info("dashboard: %s (asks for a gateway key: read keys see, write keys also change)",
                where);
    else if (is_loopback(c->dashboard_host))
        tg_info("dashboard: %s (this machine only, no key needed)", where);
    else
        tg_warn("dashboard: %s is open: security.require_auth is off, so anyone who reaches it "
                "gets the page without a key; its /api/v1 answers the addresses in "
                "security.admin_allowed_ips",
                where);
}

/* One line on who may reach what (issue: an open port must never be a
 * surprise): the LLM routes, and /api/v1 with /metrics, which show every
 * stored prompt. A warning when anyone on the network may send requests
 * without a key. */
static void describe_access(const tg_config_t *c)
{
    tg_buf_t who = {0}, admins = {0};
    for (size_t i = 0; i < c->n_allowed_ips; i++)
        tg_buf_printf(&who, "%s%s", i ? ", " : "", c->allowed_ips[i]);
    for (size_t i = 0; i < c->n_admin_allowed_ips; i++)
        tg_buf_printf(&admins, "%s%s", i ? ", " : "", c->admin_allowed_ips[i]);
    bool loopback = is_loopback(c->host);
    const char *clients = c->n_allowed_ips ? who.data : loopback ? "this machine" : "any address";
    if (c->require_auth)
        tg_info("access: LLM routes: %s, with a gateway key; /api/v1 and /metrics: keys with "
                "read (write to change)",
                clients);
    else if (loopback || c->n_allowed_ips)
        tg_info("access: LLM routes: %s, no key needed; /api/v1 and /metrics: %s "
                "(security.admin_allowed_ips)",
                clients, admins.data);
    else
        tg_warn("access: LLM routes: any address that reaches %s:%d, no key needed "
                "(security.require_auth is off, security.allowed_ips is empty); /api/v1 and "
                "/metrics: %s (security.admin_allowed_ips)",
                c->host, c->port, admins.data);
    tg_buf_free(&who);
    tg_buf_free(&admins);
}

static void describe(const tg_config_t *c)
{
    tg_buf_t b = {0};
    for (size_t i = 0; i < c->n_providers; i++) {
        const tg_provider_cfg_t *p = &c->providers[i];
        tg_buf_printf(&b, "%s%s(%s%s)", i ? ", " : "", p->name, tg_provider_type_name(p->type),
                      tg_provider_rec_of(p)->local ? ""
                      : p->api_key                 ? ", key configured"
                                                   : ", client's key");
    }
    tg_info("tollgate %s listening on %s:%d with %d worker(s); config: %s; providers: %s",
            TG_VERSION, c->host, c->port, c->workers, c->source ? c->source : "built-in defaults",
            b.data);
    tg_buf_free(&b);
    describe_access(c);
    describe_dashboard(c);
}

/* Client connections, provider connections and the store all take file
 * descriptors, and a soft limit of 1024 is soon reached: take what the hard
 * limit allows. server.max_connections' default follows from the result. */
static void raise_fd_limit(void)
{
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) != 0 || rl.rlim_cur >= rl.rlim_max)
        return;
    rlim_t soft = rl.rlim_cur;
    rl.rlim_cur = rl.rlim_max;
    if (setrlimit(RLIMIT_NOFILE, &rl) != 0)
        tg_warn("cannot raise the file descriptor limit from %llu to %llu",
                (unsigned long long)soft, (unsigned long long)rl.rlim_max);
}

static void on_stop_signal(evutil_socket_t sig, short what, void *arg)
{
    app_t *app = arg;
    tg_info("signal %d: draining in-flight requests (up to %lld ms), then exiting", (int)sig,
            (long long)app->cfg->shutdown_timeout_ms);
    tg_server_shutdown(app->server);
    event_base_loopbreak(app->base);
}

static void on_reload_signal(evutil_socket_t sig, short what, void *arg)
{
    app_t *app = arg;
    if (!app->path) {
        tg_info("SIGHUP: running on built-in defaults, nothing to reload");
        return;
    }
    tg_config_t *cfg = load(app->path, NULL);
    if (cfg && check_environment(app->path, cfg, NULL, true)) {
        tg_config_release(cfg);
        cfg = NULL;
    }
    if (!cfg) {
        tg_error("SIGHUP: %s has errors (above); the running configuration stays", app->path);
        return;
    }
    if (cfg->port != app->cfg->port || strcmp(cfg->host, app->cfg->host) != 0 ||
        cfg->workers != app->cfg->workers || cfg->ssl_enabled != app->cfg->ssl_enabled ||
        cfg->dashboard_enabled != app->cfg->dashboard_enabled ||
        cfg->dashboard_port != app->cfg->dashboard_port ||
        strcmp(cfg->dashboard_host, app->cfg->dashboard_host) != 0)
        tg_warn("SIGHUP: server.host, port, workers, ssl and observability.dashboard changes "
                "take effect after a restart");
    if (tg_events_config_differs(cfg, app->cfg))
        tg_warn("SIGHUP: cost_tracking.webhook_url and webhook_secret, webhooks and "
                "observability.alerts changes take effect after a restart");
    if (tg_otlp_config_differs(cfg, app->cfg))
        tg_warn("SIGHUP: observability.otlp changes take effect after a restart");
    tg_log_init(cfg->log_level, cfg->log_format, cfg->log_output);
    tg_server_reload(app->server, cfg);
    tg_config_release(app->cfg);
    app->cfg = cfg;
    tg_info("SIGHUP: configuration reloaded from %s", app->path);
    report_inactive(cfg);
}

int main(int argc, char **argv)
{
    const char *config_arg = NULL;
    bool validate = false;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--config") || !strcmp(argv[i], "-c")) {
            if (i + 1 >= argc) {
                fprintf(stderr, "tollgate: --config needs a file\n%s", usage);
                return 2;
            }
            config_arg = argv[++i];
        } else if (!strncmp(argv[i], "--config=", 9)) {
            config_arg = argv[i] + 9;
        } else if (!strcmp(argv[i], "--validate")) {
            validate = true;
        } else if (!strcmp(argv[i], "--version") || !strcmp(argv[i], "-V")) {
            printf("tollgate %s\n", TG_VERSION);
            return 0;
        } else if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
            fputs(usage, stdout);
            return 0;
        } else {
            fprintf(stderr, "tollgate: unknown argument '%s'\n%s", argv[i], usage);
            return 2;
        }
    }

    app_t app = {.path = config_path(config_arg)};
    if (validate) {
        tg_config_t *cfg = load(app.path, stdout);
        if (!cfg)
            return 1;
        int problems = check_environment(app.path, cfg, stdout, false);
        tg_config_release(cfg);
        if (problems)
            return 1;
        printf("%s: valid\n", app.path ? app.path : "built-in defaults");
        return 0;
    }

    app.cfg = load(app.path, stderr);
    if (!app.cfg)
        return 1;
    if (check_environment(app.path, app.cfg, stderr, true)) {
        tg_config_release(app.cfg);
        return 1;
    }
    if (tg_log_init(app.cfg->log_level, app.cfg->log_format, app.cfg->log_output) < 0) {
        fprintf(stderr, "tollgate: logging.output %s: cannot open\n", app.cfg->log_output);
        return 1;
    }
    signal(SIGPIPE, SIG_IGN);
    raise_fd_limit();
    curl_global_init(CURL_GLOBAL_DEFAULT);

    tg_store_t *store = NULL;
    char err[512];
    if (app.cfg->request_logging_enabled) {
        tg_store_options_t so;
        tg_store_options_default(&so);
        so.url = app.cfg->storage_url;
        if (tg_store_open(&so, &store, err, sizeof err) < 0) {
            char *shown = tg_redact_secrets(app.cfg->storage_url);
            tg_error("storage.url %s: %s", shown, err);
            free(shown);
            tg_config_release(app.cfg);
            return 1;
        }
    }
    tg_gateway_t *gw = tg_gateway_new(app.cfg, store, err, sizeof err); /* takes the store */
    if (!gw) {
        char *shown = tg_redact_secrets(app.cfg->storage_url);
        tg_error("storage.url %s: runtime rate limits: %s", shown, err);
        free(shown);
        tg_config_release(app.cfg);
        return 1;
    }
    const tg_server_hooks_t hooks = {
        .worker_init = tg_pipeline_worker_init,
        .worker_free = tg_pipeline_worker_free,
        .handle = tg_pipeline_handle,
        .config_changed = tg_pipeline_config_changed,
        .before_write = tg_pipeline_before_write,
        .arg = gw,
        .metrics = gw->metrics,
    };

    app.base = event_base_new();
    struct event *sigterm = evsignal_new(app.base, SIGTERM, on_stop_signal, &app);
    struct event *sigint = evsignal_new(app.base, SIGINT, on_stop_signal, &app);
    struct event *sighup = evsignal_new(app.base, SIGHUP, on_reload_signal, &app);
    evsignal_add(sigterm, NULL);
    evsignal_add(sigint, NULL);
    evsignal_add(sighup, NULL);
    app.server = tg_server_start(app.cfg, &hooks);
    int rc = app.server ? 0 : 1;
    if (app.server) {
        describe(app.cfg);
        report_inactive(app.cfg);
        event_base_dispatch(app.base);
        tg_server_join(app.server);
    }
    tg_gateway_free(gw); /* closing its store writes every record still queued */
    if (app.server)
        tg_info("stopped");

    event_free(sigterm);
    event_free(sigint);
    event_free(sighup);
    event_base_free(app.base);
    tg_config_release(app.cfg);
    curl_global_cleanup();
    return rc;
}
