/* SPDX-License-Identifier: GPL-2.0-or-later */
#ifndef LB_JSON_H
#define LB_JSON_H

#include <stdbool.h>
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

/*
 * What lb_json_loadb_hook() tells of the array that is the value of the
 * root object's member key (a config's "services"), element by element,
 * and which elements it may leave unparsed.
 */
struct lb_json_hook {
	const char *key;
	/*
	 * At element i, which starts avail bytes before the end, at offset off:
	 * the length of the text there when it is known to be an object the
	 * caller has already read (byte for byte), or 0 to parse it. A known
	 * element is skipped and stands as JSON null in the array.
	 */
	size_t (*known)(void *arg, size_t i, size_t off, size_t avail);
	/* After element i, known or parsed: where its text is. False gives up (no memory). */
	bool (*span)(void *arg, size_t i, size_t off, size_t len);
	void *arg;
};

/*
 * lb_json_loadb() with hook: returns the value with hook->known()'s
 * elements as null, and sets *hooked, when the fast path read the text;
 * otherwise (jansson's result, every element parsed, spans reported in
 * part or not at all) leaves *hooked false.
 */
json_t *lb_json_loadb_hook(const char *buf, size_t len, json_error_t *error,
			   const struct lb_json_hook *hook, bool *hooked);

#endif
