/* SPDX-License-Identifier: GPL-2.0-or-later */
#ifndef LB_JSON_H
#define LB_JSON_H

#include <stddef.h>

#include <jansson.h>

/*
 * Parses len bytes of JSON text at buf into jansson values: exactly what
 * json_loadb(buf, len, JSON_DECODE_ANY | JSON_REJECT_DUPLICATES, error)
 * returns (the same types, integer or real, the same key order, the same
 * string bytes), or NULL with jansson's own error in *error (error may be
 * NULL). A single pass over the buffer handles the common text; anything
 * else, invalid text included, is handed to json_loadb() itself, so its
 * errors and its odd cases stay the reference. *error is filled only when
 * NULL is returned. The caller owns the result (json_decref()).
 */
json_t *lb_json_loadb(const char *buf, size_t len, json_error_t *error);

/*
 * lb_json_loadb()'s fast path alone: the same value, or NULL where it would
 * ask jansson (invalid text among it). For tests and measurements.
 */
json_t *lb_json_load_fast(const char *buf, size_t len);

#endif
