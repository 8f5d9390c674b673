// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * lb/bigmem.c: a large array has a mapping of its own, 2 MB aligned,
 * zeroed, advised for huge pages (VmFlags "hg"), and, when private, not
 * inherited by a forked child (VmFlags "dc"; not in the child's
 * /proc/self/maps); a small one comes from the heap.
 */
#include <check.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#include "lb/bigmem.h"
#include "tests/unit.h"

/*
 * Whether line starts a mapping in /proc/self/maps or smaps ("LO-HI ...");
 * if so, *in tells whether that mapping holds p.
 */
static bool range_line(const char *line, const void *p, bool *in)
{
	unsigned long lo, hi, at = (unsigned long)(uintptr_t)p;

	if (sscanf(line, "%lx-%lx ", &lo, &hi) != 2 || strchr(line, ' ') < strchr(line, '-'))
		return false;
	*in = lo <= at && at < hi;
	return true;
}

/* The VmFlags line of the mapping that holds p, from /proc/self/smaps ("" if none). */
static void vm_flags(const void *p, char *out, size_t len)
{
	char line[512];
	bool in = false;
	FILE *f = fopen("/proc/self/smaps", "r");

	ck_assert_ptr_nonnull(f);
	out[0] = '\0';
	while (fgets(line, sizeof(line), f))
		if (!range_line(line, p, &in) && in && !strncmp(line, "VmFlags:", 8))
			snprintf(out, len, "%.200s", line + 8);
	fclose(f);
}

static bool has_flag(const char *flags, const char *flag)
{
	char pad[8];

	snprintf(pad, sizeof(pad), " %s", flag);
	return strstr(flags, pad) != NULL;
}

/* Whether p is inside a mapping of this process, from /proc/self/maps (no syscall on p itself). */
static bool mapped(const void *p)
{
	char line[512];
	bool in = false;
	FILE *f = fopen("/proc/self/maps", "r");

	if (!f)
		return false;
	while (!in && fgets(line, sizeof(line), f))
		range_line(line, p, &in);
	fclose(f);
	return in;
}

/* Whether a child forked now has p mapped. */
static bool child_has(const void *p)
{
	int status;
	pid_t pid = fork();

	ck_assert_int_ge(pid, 0);
	if (pid == 0)
		_exit(mapped(p) ? 0 : 1);
	ck_assert_int_eq(waitpid(pid, &status, 0), pid);
	ck_assert(WIFEXITED(status));
	return WEXITSTATUS(status) == 0;
}

START_TEST(test_large)
{
	const size_t size = 5 * (1u << 20) + 123;
	char flags[512];

	for (int private = 0; private <= 1; private++) {
		unsigned char *p = lb_bigmem_alloc(size, private);

		ck_assert_ptr_nonnull(p);
		ck_assert_uint_eq((uintptr_t)p % (2u << 20), 0);
		for (size_t i = 0; i < size; i += 4096)
			ck_assert_uint_eq(p[i], 0);
		ck_assert_uint_eq(p[size - 1], 0);
		memset(p, 0xa5, size);
		vm_flags(p, flags, sizeof(flags));
		ck_assert_msg(has_flag(flags, "hg"), "no huge page advice: VmFlags%s", flags);
		ck_assert_msg(has_flag(flags, "dc") == private, "VmFlags%s for private %d", flags,
			      private);
		ck_assert(mapped(p) && mapped(p + size - 1));
		ck_assert_int_eq(child_has(p), !private);
		ck_assert_int_eq(child_has(p + size - 1), !private);
		lb_bigmem_free(p, size);
		/* Gone whole: nothing of it is left mapped. */
		ck_assert(!mapped(p) && !mapped(p + size - 1));
	}
}
END_TEST

START_TEST(test_small)
{
	unsigned char *p = lb_bigmem_alloc(LB_BIGMEM_MIN - 1, true), *q = lb_bigmem_alloc(0, true);

	/* From the heap: zeroed, inherited (a child sees it), freed with free(). */
	ck_assert_ptr_nonnull(p);
	ck_assert_ptr_nonnull(q);
	ck_assert_uint_eq(p[0] | p[LB_BIGMEM_MIN - 2], 0);
	ck_assert(child_has(p));
	lb_bigmem_free(p, LB_BIGMEM_MIN - 1);
	lb_bigmem_free(q, 0);
	lb_bigmem_free(NULL, 0);
	lb_bigmem_free(NULL, LB_BIGMEM_MIN);
}
END_TEST

int main(void)
{
	return lb_test_main("bigmem", NULL, NULL, 0, LB_TESTS(test_large, test_small));
}
