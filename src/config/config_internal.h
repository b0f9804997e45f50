/*
 * config_internal.h — what the files of src/config/ share (and its unit
 * tests): scalar conversions, the loader's state, the walk over the YAML
 * tree, error reporting with path and line, and the config object's
 * constructor and destructor. Not part of the module's public surface:
 * other modules include config/config.h, and config/config_keys.h to
 * declare their keys.
 *
 * Everything here runs on the thread that loads a config (main: start-up,
 * SIGHUP).
 */
#ifndef TG_CONFIG_INTERNAL_H
#define TG_CONFIG_INTERNAL_H

#include "config/config.h"
#include "config/config_keys.h"

#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <yaml.h>

/* ---- scalar conversions (config_values.c) ---- */

/**
 * Expand ${VAR} and ${VAR:-default} from the environment. An unset ${VAR}
 * gives ""; the default applies when VAR is unset or empty; "$${" gives a
 * literal "${". Returns 0 with a malloc'd *out, or -1 with *why set to a
 * static message.
 */
int tg_config_expand_env(const char *in, char **out, const char **why);

/** true/false/yes/no/on/off, case-insensitive. Returns 0 or -1. */
int tg_config_parse_bool(const char *s, bool *out);

/** A base-10 integer, the whole string. Returns 0 or -1. */
int tg_config_parse_int(const char *s, int64_t *out);

/** A finite decimal number, the whole string. Returns 0 or -1. */
int tg_config_parse_number(const char *s, double *out);

/** "80%", "0.8" or "80" (a bare number above 1 is a percentage) → fraction. */
int tg_config_parse_threshold(const char *s, double *out);

/** An IPv4/IPv6 address or CIDR (prefix length checked). Returns 0 or -1. */
int tg_config_check_ip(const char *s);

/* ---- allocation (out of memory aborts) ---- */

static inline char *tg_config_strdup(const char *s)
{
    char *p = strdup(s);
    if (!p)
        abort();
    return p;
}

/* Grows `arr` (of n elements) by one zeroed element. */
static inline void *tg_config_grow(void *arr, size_t n, size_t size)
{
    char *p = realloc(arr, (n + 1) * size);
    if (!p)
        abort();
    memset(p + n * size, 0, size);
    return p;
}

/* Appends a zeroed element to arr (n elements) and returns its address. */
#define TG_PUSH(arr, n) ((arr) = tg_config_grow((arr), (n), sizeof *(arr)), &(arr)[(n)++])

/* ---- the loader (config.c) ---- */

struct tg_conf_loader {
    yaml_document_t *doc;
    tg_config_t *cfg;
    tg_config_errors_t *errs;
    char *path; /* dotted path of the node being read */
    size_t path_len, path_cap;
    size_t visits;
    /* Every key read through a table, with its line (the value's; a
     * section's or a custom key's own): checks after the walk name it. */
    char **seen_paths;
    int *seen_lines;
    size_t n_seen;
    int *fallback_lines;    /* parallel to cfg->fallback_chain */
    int *rl_provider_lines; /* parallel to cfg->rl_providers */
    bool seen_default_rule;
    char **key_names; /* every security.api_keys name, also of skipped entries */
    size_t n_key_names;
};

/* What a walk hands to its callback: one key and value of a mapping (k is
 * the key's node, for its line), or one item of a list (key and k NULL). */
struct tg_conf_entry {
    const char *key;
    yaml_node_t *k, *v;
    void *ctx; /* the walk's caller's */
};

typedef struct tg_conf_loader loader_t;
typedef struct tg_conf_entry entry_t;

/* Returns false for a key it does not know (the walk then reports it). */
typedef bool (*tg_config_key_fn)(loader_t *L, const entry_t *e);
typedef void (*tg_config_item_fn)(loader_t *L, const entry_t *e);

size_t tg_config_path_push(loader_t *L, const char *seg, bool index);
void tg_config_path_pop(loader_t *L, size_t mark);
int tg_config_line_of(const yaml_node_t *n);
bool tg_config_is_null(const yaml_node_t *n);

/* An error at the current path. */
__attribute__((format(printf, 3, 4))) void tg_config_fail(loader_t *L, int line, const char *fmt,
                                                          ...);
/* An error at the current path plus `sub` (a key that is missing, say). */
__attribute__((format(printf, 4, 5))) void tg_config_fail_sub(loader_t *L, const char *sub,
                                                              int line, const char *fmt, ...);

/* Calls fn for each key of a mapping, path extended by the key; a null
 * node is an empty mapping. Reports unknown and duplicate keys. */
void tg_config_walk_map(loader_t *L, yaml_node_t *node, tg_config_key_fn fn, void *ctx);
/* Calls fn for each item of a sequence, path extended by "[i]" (0-based). */
void tg_config_walk_list(loader_t *L, yaml_node_t *node, tg_config_item_fn fn, void *ctx);

/* The walkers' ctx is `void *` because most callers hand their handler
 * state to fill; a key table handed through it is only ever read back as
 * `const tg_conf_key_t *` (tg_config_read_table). This is the one place
 * that drops the const for that trip. */
static inline void *tg_conf_table_ctx(const tg_conf_key_t *table)
{
    return (void *)(uintptr_t)table;
}
/* Reads a mapping against `table` into the struct at `base`; custom
 * readers get `ctx` as their entry's ctx. */
void tg_config_read_table(loader_t *L, yaml_node_t *node, const tg_conf_key_t *table, void *base,
                          void *ctx);
/* Line recorded for the key at the current path plus `sub` ("" for the
 * current path itself), 0 when it was not in the file. */
int tg_config_seen_line(const loader_t *L, const char *sub);

/* Text of a scalar that sets a value, or NULL when it is empty after
 * expansion ("not set": the default stays) or invalid (reported as
 * "expected <what>"). */
char *tg_config_value_text(loader_t *L, yaml_node_t *v, const char *what);
void tg_config_get_string(loader_t *L, yaml_node_t *v, char **dst);
/* One of `names` (NULL-terminated), case-insensitive; *dst gets the index. */
bool tg_config_get_enum(loader_t *L, yaml_node_t *v, const char *const *names, int *dst);
void tg_config_get_enum_name(loader_t *L, yaml_node_t *v, const char *const *names, char **dst);

/* An HTTP header name or Helicone property name: an RFC 9110 token. */
bool tg_config_is_token(const char *s);
bool tg_config_has_prefix_ci(const char *s, const char *prefix);

/* ---- the object (config_object.c) ---- */

/* Every default except providers and dashboard_host (set from host last). */
tg_config_t *tg_config_new(void);
/* Frees a complete or partly built object. */
void tg_config_free(tg_config_t *c);
/* Last defaults that depend on other settings; adds the built-in mock and
 * settles each provider's record (tg_provider_cfg_t.rec). */
void tg_config_finish(tg_config_t *c);
tg_provider_cfg_t *tg_config_add_provider(tg_config_t *c, const char *name);

/* Sets every slot of `table` (and its sections) that has a default. */
void tg_config_apply_defaults(const tg_conf_key_t *table, void *base);
/* Frees every string and list slot of `table` (and its sections). */
void tg_config_free_slots(const tg_conf_key_t *table, void *base);

#endif
