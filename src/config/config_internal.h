/*
 * config_internal.h — scalar conversions shared by the files of src/config/
 * (and its unit tests). Not part of the module's public surface: other
 * modules include config/config.h only.
 */
#ifndef TG_CONFIG_INTERNAL_H
#define TG_CONFIG_INTERNAL_H

#include <stdbool.h>
#include <stdint.h>

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

#endif
