/* SPDX-License-Identifier: GPL-2.0-or-later */
#ifndef LB_TESTS_JSON_EQUAL_H
#define LB_TESTS_JSON_EQUAL_H

#include <stdbool.h>
#include <string.h>

#include <jansson.h>

#include "lb/json.h"

/*
 * Whether a and b are the same value, more strictly than json_equal(),
 * which lb_json_loadb() must match: an integer is never equal to a real,
 * reals are equal bit for bit (-0.0 is not 0.0), strings byte for byte
 * with their lengths, and objects hold the same keys in the same insertion
 * order (the order config errors and json_dumps() follow). With the
 * loading of one text all three ways below, shared by tests/check_json.c
 * and tests/fuzz/fuzz_json.c.
 */
static inline bool lb_test_json_same(json_t *a, json_t *b)
{
	void *ia, *ib;

	if (!a || !b)
		return a == b;
	if (json_typeof(a) != json_typeof(b))
		return false;
	switch (json_typeof(a)) {
	case JSON_INTEGER:
		return json_integer_value(a) == json_integer_value(b);
	case JSON_REAL: {
		double x = json_real_value(a), y = json_real_value(b);

		return memcmp(&x, &y, sizeof(x)) == 0;
	}
	case JSON_STRING:
		return json_string_length(a) == json_string_length(b) &&
		       memcmp(json_string_value(a), json_string_value(b), json_string_length(a)) == 0;
	case JSON_ARRAY:
		if (json_array_size(a) != json_array_size(b))
			return false;
		for (size_t i = 0; i < json_array_size(a); i++)
			if (!lb_test_json_same(json_array_get(a, i), json_array_get(b, i)))
				return false;
		return true;
	case JSON_OBJECT:
		if (json_object_size(a) != json_object_size(b))
			return false;
		for (ia = json_object_iter(a), ib = json_object_iter(b); ia || ib;
		     ia = json_object_iter_next(a, ia), ib = json_object_iter_next(b, ib)) {
			size_t n;

			if (!ia || !ib)
				return false;
			n = json_object_iter_key_len(ia);
			if (n != json_object_iter_key_len(ib) ||
			    memcmp(json_object_iter_key(ia), json_object_iter_key(ib), n) != 0 ||
			    !lb_test_json_same(json_object_iter_value(ia), json_object_iter_value(ib)))
				return false;
		}
		return true;
	default:
		/* true, false, null: the type is the value. */
		return true;
	}
}

/* Whether two failed loads said the same: message, source, line, column and offset. */
static inline bool lb_test_json_error_same(const json_error_t *a, const json_error_t *b)
{
	return !strcmp(a->text, b->text) && !strcmp(a->source, b->source) && a->line == b->line &&
	       a->column == b->column && a->position == b->position;
}

/* One text loaded by jansson (want), by lb_json_loadb() (got) and by its fast path alone. */
struct lb_test_json_loads {
	json_t *want, *got, *fast;
	json_error_t want_err, got_err;
};

static inline void lb_test_json_load_all(struct lb_test_json_loads *l, const char *text, size_t len)
{
	memset(l, 0, sizeof(*l));
	/* Not zeros: a got_err that lb_json_loadb() left unfilled must show. */
	memset(&l->got_err, 0x55, sizeof(l->got_err));
	l->want = json_loadb(text, len, JSON_DECODE_ANY | JSON_REJECT_DUPLICATES, &l->want_err);
	l->got = lb_json_loadb(text, len, &l->got_err);
	l->fast = lb_json_load_fast(text, len);
}

static inline void lb_test_json_loads_free(struct lb_test_json_loads *l)
{
	json_decref(l->want);
	json_decref(l->got);
	json_decref(l->fast);
}

#endif
