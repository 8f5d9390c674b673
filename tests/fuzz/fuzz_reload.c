// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * Differential libFuzzer harness for lb_config_reload() (a reload that
 * copies the services whose text did not change): the input is two
 * configs, the running one and the next, split at the first NUL byte (no
 * NUL: the same text twice). The next is read over the running one and
 * read whole; both must fail with the same error lines, or give the same
 * config (tests/config_equal.h) with the same warnings. Then the running
 * text is read back over the next, and must equal the first read of it.
 * Build with "make fuzz", or by hand (see fuzz_config.c for the sources):
 *
 *   clang -g -O1 -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined \
 *     -std=gnu11 -D_GNU_SOURCE -I. tests/fuzz/fuzz_reload.c lb/config*.c lb/json.c ... \
 *     -ljansson -o fuzz_reload
 *   ./fuzz_reload tests/fuzz/corpus/reload
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "lb/config.h"
#include "lb/log.h"
#include "tests/config_equal.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* The file that holds text now: a memfd, named by its /proc path. */
static int text_file(const uint8_t *text, size_t len, char *path, size_t path_len)
{
	int fd = memfd_create("lb-fuzz-reload", MFD_CLOEXEC);

	if (fd < 0 || (len && write(fd, text, len) != (ssize_t)len))
		abort();
	snprintf(path, path_len, "/proc/self/fd/%d", fd);
	return fd;
}

/* a (a reload's result) and b (a whole read's) must agree, errors included. */
static void same(const struct lb_config *a, const char *ea, const struct lb_config *b,
		 const char *eb)
{
	if (!a != !b)
		abort();
	if (!a) {
		if (!lb_test_str_same(ea, eb))
			abort();
		return;
	}
	if (ea || eb || lb_test_config_diff(a, b) || lb_config_copied(a) > a->n_services)
		abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static int initialized;
	const uint8_t *nul = memchr(data, 0, size);
	size_t len_a = nul ? (size_t)(nul - data) : size;
	const uint8_t *b_text = nul ? nul + 1 : data;
	size_t len_b = nul ? size - len_a - 1 : size;
	char path_a[64], path_b[64], *e_run = NULL, *e_next = NULL, *e_whole = NULL;
	char *e_back = NULL, *e_first = NULL;
	struct lb_config *run, *next, *whole, *back, *first;
	int fd_a, fd_b;

	if (!initialized) {
		lb_log_init(LB_LOG_ERR, "fuzz");
		initialized = 1;
	}
	fd_a = text_file(data, len_a, path_a, sizeof(path_a));
	fd_b = text_file(b_text, len_b, path_b, sizeof(path_b));
	run = lb_config_load_source(path_a, &e_run);
	next = lb_config_reload(path_b, run, &e_next);
	whole = lb_config_load(path_b, &e_whole);
	same(next, e_next, whole, e_whole);
	/* And back, over what the reload gave (or over the running one, as lb keeps it). */
	back = lb_config_reload(path_a, next ? next : run, &e_back);
	first = lb_config_load(path_a, &e_first);
	same(back, e_back, first, e_first);
	lb_config_free(run);
	lb_config_free(next);
	lb_config_free(whole);
	lb_config_free(back);
	lb_config_free(first);
	free(e_run);
	free(e_next);
	free(e_whole);
	free(e_back);
	free(e_first);
	close(fd_a);
	close(fd_b);
	return 0;
}
