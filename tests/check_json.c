// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * lb/json.c: lb_json_loadb() returns what json_loadb(JSON_DECODE_ANY |
 * JSON_REJECT_DUPLICATES) returns, value for value (tests/json_equal.h) or
 * error for error, and its fast path takes the text configs are made of
 * (so that the speed it exists for does not quietly go).
 */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lb/json.h"
#include "lb/str.h"
#include "tests/json_equal.h"
#include "tests/unit.h"

enum path {
	FAST,		/* valid, and the fast path must parse it */
	SLOW,		/* the fast path must leave it to jansson (invalid, or rare) */
};

struct json_case {
	const char *text;
	size_t len;		/* 0: strlen(text) */
	enum path path;
};

#define C(t, p) { t, 0, p }
#define N(t, p) { t, sizeof(t) - 1, p }	/* with NUL bytes: the literal's length */

static const struct json_case cases[] = {
	/* Literals. */
	C("true", FAST), C("false", FAST), C("null", FAST), C(" \t\r\ntrue \n", FAST),
	C("truex", SLOW), C("tru", SLOW), C("nul", SLOW), C("True", SLOW), C("nulll", SLOW),
	C("[true false]", SLOW), C("[true,false,null]", FAST), C("t", SLOW), C("x", SLOW),
	/* Integers, to json_int_t's ends and one past. */
	C("0", FAST), C("-0", FAST), C("1", FAST), C("-1", FAST), C("1234567890", FAST),
	C("9223372036854775807", FAST), C("-9223372036854775808", FAST),
	C("9223372036854775808", SLOW), C("-9223372036854775809", SLOW),
	C("18446744073709551616", SLOW), C("99999999999999999999", SLOW),
	C("-99999999999999999999", SLOW), C("1000000000000000000", FAST),
	C("01", SLOW), C("-01", SLOW), C("00", SLOW), C("-", SLOW), C("-a", SLOW), C("+1", SLOW),
	C("0x10", SLOW), C("1-2", SLOW), C("[1-2]", SLOW), C("[01]", SLOW),
	/* Reals. */
	C("1.5", FAST), C("-0.0", FAST), C("0.0", FAST), C("1e5", FAST), C("1E-2", FAST),
	C("1e+2", FAST), C("2.5E+10", FAST), C("123.456e-7", FAST), C("0e0", FAST),
	C("1.7976931348623157e308", FAST), C("4.9e-324", FAST), C("0.1", FAST),
	C("3.141592653589793238462643383279502884197169399375105820974944", FAST),
	C("1.", SLOW), C(".5", SLOW), C("1.e5", SLOW), C("1e", SLOW), C("1e+", SLOW),
	C("1.0e", SLOW), C("-.5", SLOW), C("1e400", SLOW), C("-1e400", SLOW),
	C("1.8e308", SLOW), C("1e-400", FAST), C("-1e-400", FAST), C("2e-320", FAST),	/* underflow */
	/* Strings and every escape. */
	C("\"\"", FAST), C("\"abc\"", FAST), C("\"\\\"\\\\\\/\\b\\f\\n\\r\\t\"", FAST),
	C("\"a\\nb\\tc\"", FAST), C("\"\\u0041\\u00e9\\u20AC\\uffff\"", FAST),
	C("\"\\uD834\\uDD1E\"", FAST), C("\"\\ud834\\udd1e\"", FAST), C("\"x\\uDBFF\\uDFFFy\"", FAST),
	C("\"\\uD834\"", SLOW), C("\"\\uD834x\"", SLOW), C("\"\\uD834\\u0041\"", SLOW),
	C("\"\\uD834\\uD834\"", SLOW), C("\"\\uDD1E\"", SLOW), C("\"\\uDD1E\\uD834\"", SLOW),
	C("\"\\u0000\"", SLOW), C("\"a\\u0000b\"", SLOW), C("\"\\u12\"", SLOW),
	C("\"\\u12g4\"", SLOW), C("\"\\x\"", SLOW), C("\"\\'\"", SLOW), C("\"\\", SLOW),
	C("\"abc", SLOW), C("\"abc\\\"", SLOW), C("\"\\uD834\\", SLOW), C("\"\\u", SLOW),
	/* Raw control bytes; DEL is not one. */
	C("\"a\x01" "b\"", SLOW), C("\"a\tb\"", SLOW), C("\"a\nb\"", SLOW), C("\"\x1f\"", SLOW),
	C("\"\x7f\"", FAST), C("\"\\n\x01\"", SLOW),
	/* UTF-8: valid at each length and at the ends of each range, then invalid. */
	C("\"\xc2\x80 \xdf\xbf \xe0\xa0\x80 \xed\x9f\xbf \xee\x80\x80 \xef\xbf\xbf\"", FAST),
	C("\"\xf0\x90\x80\x80 \xf4\x8f\xbf\xbf \xc3\xa9\xe2\x82\xac\xf0\x9d\x84\x9e\"", FAST),
	C("\"\xc3\xa9\\n\xe2\x82\xac\"", FAST),
	C("\"\xc0\xaf\"", SLOW), C("\"\xc1\xbf\"", SLOW), C("\"\xe0\x80\xaf\"", SLOW),
	C("\"\xe0\x9f\xbf\"", SLOW), C("\"\xf0\x80\x80\xaf\"", SLOW), C("\"\xf0\x8f\xbf\xbf\"", SLOW),
	C("\"\xed\xa0\x80\"", SLOW), C("\"\xed\xbf\xbf\"", SLOW), C("\"\xf4\x90\x80\x80\"", SLOW),
	C("\"\xf5\x80\x80\x80\"", SLOW), C("\"\xff\"", SLOW), C("\"\xfe\"", SLOW),
	C("\"\xe2\x82\"", SLOW), C("\"\xe2\x82", SLOW), C("\"\xc3\"", SLOW), C("\"\x80\"", SLOW),
	C("\"\xbf\"", SLOW), C("\"\xe2\x28\xa1\"", SLOW), C("\"\\n\xc0\xaf\"", SLOW),
	C("\xc3\xa9", SLOW), C("[\xc3\xa9]", SLOW),
	/* NUL bytes in the buffer. */
	N("\"a\0b\"", SLOW), N("1\0", SLOW), N("\0", SLOW), N("[1,\0 2]", SLOW), N("{}\0", SLOW),
	N("\"a\\\0\"", SLOW), N("{\"a\0\":1}", SLOW),
	/* jansson skips a NUL byte that ends a number ([7]); the fast path leaves that to it. */
	N("[7\0]", SLOW), N("8\0", SLOW), N("[1\0,2]", SLOW),
	/* Containers. */
	C("[]", FAST), C("{}", FAST), C("[ ]", FAST), C("{ \n}", FAST), C("[[]]", FAST),
	C("[{}]", FAST), C("{\"a\":{}}", FAST), C("[1,2,3]", FAST), C("[ 1 , \"x\" , [ ] , { } ]", FAST),
	C("{\"a\":[1,{\"b\":null}],\"c\":\"d\"}", FAST),
	C("[1,]", SLOW), C("[,1]", SLOW), C("[1", SLOW), C("[", SLOW), C("]", SLOW), C("[1}", SLOW),
	C("{\"a\":1,}", SLOW), C("{\"a\" 1}", SLOW), C("{a:1}", SLOW), C("{\"a\":1 \"b\":2}", SLOW),
	C("{\"a\"}", SLOW), C("{\"a\":}", SLOW), C("{1:2}", SLOW), C("{", SLOW), C("{\"a\":1]", SLOW),
	C("{,}", SLOW), C("[1,,2]", SLOW),
	/* Keys: their order kept, escapes decoded (the value's own escapes reuse the buffer). */
	C("{\"b\":1,\"a\":2,\"c\":3,\"aa\":4,\"\":5}", FAST),
	C("{\"z\":1,\"y\":2,\"x\":3,\"w\":4,\"v\":5,\"u\":6,\"t\":7,\"s\":8,\"r\":9,\"q\":10}", FAST),
	C("{\"a\\nb\":1,\"\\u00e9\":2,\"k\\t\":\"v\\n\",\"\\uD834\\uDD1E\":[\"\\\"\"]}", FAST),
	C("{\"a\\u0000\":1}", SLOW), C("{\"\\u0000\":1}", SLOW),
	/* Duplicate keys. */
	C("{\"a\":1,\"a\":2}", SLOW), C("{\"a\":1,\"b\":{\"c\":1,\"c\":1}}", SLOW),
	C("{\"a\":1,\"\\u0061\":2}", SLOW), C("{\"\":1,\"\":1}", SLOW),
	C("[{\"a\":1},{\"a\":1}]", FAST),
	/* Top level and trailing text. */
	C("1 2", SLOW), C("[] x", SLOW), C("{}}", SLOW), C("[]]", SLOW), C("\"a\"\"b\"", SLOW),
	C("[]   \n\t\r ", FAST), C("  \n [1] \n", FAST), C("[]\f", SLOW), C("[]\v", SLOW),
	C("", SLOW), C("  \n\t\r", SLOW), C("\xef\xbb\xbf{}", SLOW),
};

/*
 * Parses text with lb_json_loadb() and json_loadb() and asserts the same
 * outcome: equal values, or NULL from both with the same error. Asserts
 * too that the fast path alone parses it (path FAST) or declines (SLOW).
 */
static void check_same(const char *text, size_t len, enum path path, const char *what)
{
	struct lb_test_json_loads l;

	lb_test_json_load_all(&l, text, len);
	ck_assert_msg(lb_test_json_same(l.got, l.want), "%s: value differs from jansson's", what);
	ck_assert_msg(l.want || lb_test_json_error_same(&l.got_err, &l.want_err),
		      "%s: error %d:%d \"%s\", jansson's %d:%d \"%s\"", what, l.got_err.line,
		      l.got_err.column, l.got_err.text, l.want_err.line, l.want_err.column, l.want_err.text);
	if (path == FAST) {
		ck_assert_msg(l.fast, "%s: the fast path gave up on it", what);
		ck_assert_msg(lb_test_json_same(l.fast, l.want), "%s: fast value differs", what);
	} else {
		ck_assert_msg(!l.fast, "%s: the fast path took it, jansson %s", what,
			      l.want ? "agreeing" : l.want_err.text);
	}
	lb_test_json_loads_free(&l);
}

START_TEST(test_table)
{
	const struct json_case *c = &cases[_i];
	char what[LB_STR_QUOTE_SIZE + 16];
	size_t len = c->len ? c->len : strlen(c->text);
	struct lb_str b = lb_str_fixed(what, sizeof(what));

	lb_str_printf(&b, "case %d ", _i);
	lb_str_escape(&b, c->text, LB_STR_QUOTE | LB_STR_CUT);
	check_same(c->text, len, c->path, what);
}
END_TEST

/* The comparison itself tells apart what json_equal() does not. */
START_TEST(test_same_is_strict)
{
	json_t *a = json_loads("{\"a\":1,\"b\":2}", 0, NULL), *b = json_loads("{\"b\":2,\"a\":1}", 0, NULL);
	json_t *i = json_integer(1), *r = json_real(1.0), *z = json_real(0.0), *nz = json_real(-0.0);

	ck_assert(json_equal(a, b) && !lb_test_json_same(a, b));
	ck_assert(!lb_test_json_same(i, r));
	ck_assert(json_equal(z, nz) && !lb_test_json_same(z, nz));
	ck_assert(lb_test_json_same(a, a));
	json_decref(a);
	json_decref(b);
	json_decref(i);
	json_decref(r);
	json_decref(z);
	json_decref(nz);
}
END_TEST

/* depth nested arrays, or objects {"k":...}, around 1. */
static char *nested(int depth, bool objects, size_t *len)
{
	struct lb_str b = { 0 };

	for (int i = 0; i < depth; i++)
		lb_str_printf(&b, objects ? "{\"k\":" : "[");
	lb_str_printf(&b, "1");
	for (int i = 0; i < depth; i++)
		lb_str_printf(&b, objects ? "}" : "]");
	ck_assert(!b.oom);
	*len = b.len;
	return lb_str_take(&b);
}

/* Past the fast path's depth jansson parses, and past jansson's (2048) it fails. */
START_TEST(test_depth)
{
	static const struct { int depth; enum path path; } d[] = {
		{ 1, FAST }, { 100, FAST }, { 512, FAST }, { 513, SLOW }, { 2047, SLOW },
		{ 2048, SLOW }, { 2049, SLOW }, { 10000, SLOW },
	};

	for (size_t i = 0; i < sizeof(d) / sizeof(d[0]); i++) {
		for (int objects = 0; objects < 2; objects++) {
			char what[64];
			size_t len;
			char *t = nested(d[i].depth, objects, &len);

			snprintf(what, sizeof(what), "depth %d %s", d[i].depth, objects ? "objects" : "arrays");
			check_same(t, len, d[i].path, what);
			free(t);
		}
	}
}
END_TEST

/* A config of n services shaped like a large lb.json, as a generator would write it. */
static char *big_config(int n, size_t *len)
{
	struct lb_str b = { 0 };

	lb_str_printf(&b, "{\n\t\"workers\": 2,\n\t\"control\": {\"path\": \"/run/lb/ctl.sock\"},\n"
		      "\t\"weight\": 1.5,\n\t\"services\": [\n");
	for (int i = 0; i < n; i++) {
		lb_str_printf(&b, "\t\t{\"name\": \"s%d\", \"vips\": [\"198.19.%d.%d:80\", \"[2001:db8::%x]:443\"], "
			      "\"backends\": [{\"address\": \"198.18.%d.%d:80\", \"weight\": %d}], "
			      "\"health\": {\"type\": \"tcp\", \"interval_ms\": 2000, \"up\": true, "
			      "\"path\": null, \"note\": \"caf\xc3\xa9 \\\"%d\\\"\\n\"}}%s\n",
			      i, i / 256 % 256, i % 256, i, i / 256 % 256, i % 256, i % 7 - 3, i,
			      i + 1 < n ? "," : "");
	}
	lb_str_printf(&b, "\t]\n}\n");
	ck_assert(!b.oom);
	*len = b.len;
	return lb_str_take(&b);
}

START_TEST(test_big_config)
{
	size_t len;
	char *t = big_config(20000, &len);

	check_same(t, len, FAST, "20,000 services");
	/* A duplicate key in the first service fails, with jansson's line and column. */
	memcpy(strstr(t, "\"interval_ms\"") , "\"type\"       ", 13);
	check_same(t, len, SLOW, "20,000 services, a duplicate in the first");
	free(t);
}
END_TEST

/* Invalid text gets jansson's message, line and column, which config errors repeat. */
START_TEST(test_errors)
{
	static const struct { const char *text; const char *error; int line, column; } e[] = {
		{ "{\"a\":1,\n \"a\":2}", "duplicate object key", 2, 4 },
		{ "{\"a\": 01}", "invalid token near '0'", 1, 7 },
		{ "[1,\n2,\n]", "unexpected token near ']'", 3, 1 },
		{ "", "unexpected token near end of file", 1, 0 },
	};
	json_error_t err;

	for (size_t i = 0; i < sizeof(e) / sizeof(e[0]); i++) {
		memset(&err, 0, sizeof(err));
		ck_assert_ptr_null(lb_json_loadb(e[i].text, strlen(e[i].text), &err));
		ck_assert_msg(strstr(err.text, e[i].error), "\"%s\": got \"%s\"", e[i].text, err.text);
		ck_assert_int_eq(err.line, e[i].line);
		ck_assert_int_eq(err.column, e[i].column);
	}
	/* NULL error, NULL buffer: as jansson. */
	ck_assert_ptr_null(lb_json_loadb("[", 1, NULL));
	ck_assert_ptr_null(lb_json_loadb(NULL, 0, &err));
}
END_TEST

/* What the hook saw: each element's place, and which it was asked about. */
struct hook_log {
	const char *text;
	bool skip[8];			/* elements to report as known */
	bool asked[8];
	size_t off[8], len[8], n;
	bool fail_span;			/* the span callback gives up */
};

static size_t log_known(void *arg, size_t i, size_t off, size_t avail)
{
	struct hook_log *h = arg;
	const char *at = h->text + off;
	size_t n;

	ck_assert_uint_lt(i, 8);
	ck_assert_int_eq(*at, '{');
	h->asked[i] = true;
	if (!h->skip[i])
		return 0;
	/* The test's objects nest nothing: the first '}' ends them. */
	n = (size_t)(strchr(at, '}') - at) + 1;
	ck_assert_uint_le(n, avail);
	return n;
}

static bool log_span(void *arg, size_t i, size_t off, size_t len)
{
	struct hook_log *h = arg;

	ck_assert_uint_eq(i, h->n);
	h->off[h->n] = off;
	h->len[h->n++] = len;
	return !h->fail_span;
}

/*
 * lb_json_loadb_hook(): the root object's array under the hook's key, and
 * only that one, has its known elements as null, and every element's
 * place reported; anything the fast path gives up on is jansson's whole.
 */
START_TEST(test_hook)
{
	static const char text[] = "{\"a\": {\"services\": [{\"n\": 1}]}, \"services\": [ "
				   "{\"x\": 1} , 2, {\"y\": [3]}, {\"z\": \"w\"} ], \"b\": [{\"q\": 1}]}";
	static const char *const elems[] = { "{\"x\": 1}", "2", "{\"y\": [3]}", "{\"z\": \"w\"}" };
	struct hook_log h = { .text = text, .skip = { true, false, false, true } };
	struct lb_json_hook hook = { "services", log_known, log_span, &h };
	json_t *root, *arr, *want;
	json_error_t err;
	bool hooked = false;

	root = lb_json_loadb_hook(text, strlen(text), &err, &hook, &hooked);
	ck_assert_ptr_nonnull(root);
	ck_assert(hooked);
	arr = json_object_get(root, "services");
	ck_assert_uint_eq(json_array_size(arr), 4);
	ck_assert(json_is_null(json_array_get(arr, 0)));
	ck_assert_int_eq(json_integer_value(json_array_get(arr, 1)), 2);
	ck_assert(json_is_object(json_array_get(arr, 2)));
	ck_assert(json_is_null(json_array_get(arr, 3)));
	/* Asked about the objects alone. */
	ck_assert(h.asked[0] && !h.asked[1] && h.asked[2] && h.asked[3]);
	ck_assert_uint_eq(h.n, 4);
	for (size_t i = 0; i < 4; i++) {
		ck_assert_uint_eq(h.off[i], (size_t)(strstr(text, elems[i]) - text));
		ck_assert_uint_eq(h.len[i], strlen(elems[i]));
	}
	/* The same key deeper down, and other arrays, are parsed as ever. */
	want = lb_json_loadb(text, strlen(text), &err);
	ck_assert_ptr_nonnull(want);
	ck_assert(lb_test_json_same(json_object_get(root, "a"), json_object_get(want, "a")));
	ck_assert(lb_test_json_same(json_object_get(root, "b"), json_object_get(want, "b")));
	ck_assert(lb_test_json_same(json_array_get(arr, 2), json_array_get(json_object_get(want,
		  "services"), 2)));
	json_decref(root);

	/* Nothing known: the very value lb_json_loadb() gives. */
	memset(&h, 0, sizeof(h));
	h.text = text;
	root = lb_json_loadb_hook(text, strlen(text), &err, &hook, &hooked);
	ck_assert(hooked);
	ck_assert(lb_test_json_same(root, want));
	json_decref(root);

	/* A span that cannot be kept: jansson's whole tree, and hooked false. */
	memset(&h, 0, sizeof(h));
	h.text = text;
	h.skip[0] = true;
	h.fail_span = true;
	root = lb_json_loadb_hook(text, strlen(text), &err, &hook, &hooked);
	ck_assert(!hooked);
	ck_assert(lb_test_json_same(root, want));
	json_decref(root);
	json_decref(want);

	/* Invalid text: jansson's error, and hooked false. */
	{
		static const char dup[] = "{\"services\": [{\"x\": 1}],\n \"services\": []}";

		memset(&h, 0, sizeof(h));
		h.text = dup;
		h.skip[0] = true;
		hooked = true;
		ck_assert_ptr_null(lb_json_loadb_hook(dup, strlen(dup), &err, &hook, &hooked));
		ck_assert(!hooked);
		ck_assert_msg(strstr(err.text, "duplicate object key"), "got \"%s\"", err.text);
		ck_assert_int_eq(err.line, 2);
	}
}
END_TEST

int main(void)
{
	Suite *s = suite_create("json");
	TCase *tc = tcase_create("json");

	tcase_add_loop_test(tc, test_table, 0, (int)(sizeof(cases) / sizeof(cases[0])));
	tcase_add_test(tc, test_same_is_strict);
	tcase_add_test(tc, test_depth);
	tcase_add_test(tc, test_big_config);
	tcase_add_test(tc, test_errors);
	tcase_add_test(tc, test_hook);
	tcase_set_timeout(tc, 60);
	suite_add_tcase(s, tc);
	return lb_test_run(s);
}
