// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * Differential libFuzzer harness for lb_json_loadb() (lb/json.c): each
 * input goes to it and to json_loadb(JSON_DECODE_ANY |
 * JSON_REJECT_DUPLICATES), and the two must agree: both NULL with the same
 * error (text, line, column, position), or the same value by
 * tests/json_equal.h's strict comparison (types, key order, string bytes).
 * Any difference aborts. The fast path alone must never accept what jansson
 * rejects. Build (make fuzz):
 *
 *   clang -g -O1 -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined \
 *     -std=gnu11 -I. tests/fuzz/fuzz_json.c lb/json.c -ljansson -o fuzz_json
 *   ./fuzz_json tests/fuzz/corpus/json
 */
#include <stdint.h>
#include <stdlib.h>

#include "tests/json_equal.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct lb_test_json_loads l;

	lb_test_json_load_all(&l, (const char *)data, size);
	if (!lb_test_json_same(l.got, l.want) || (l.fast && !lb_test_json_same(l.fast, l.want)) ||
	    (!l.want && !lb_test_json_error_same(&l.got_err, &l.want_err)))
		abort();
	lb_test_json_loads_free(&l);
	return 0;
}
