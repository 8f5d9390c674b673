// SPDX-License-Identifier: GPL-2.0-or-later
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <unistd.h>

#include "lb/bigmem.h"

#define HUGE_SIZE ((size_t)2 << 20)

static size_t page_round(size_t size)
{
	size_t page = (size_t)sysconf(_SC_PAGESIZE);

	return (size + page - 1) & ~(page - 1);
}

void *lb_bigmem_alloc(size_t size, bool private)
{
	size_t len = page_round(size), extra, head;
	uint8_t *p, *start;

	if (size < LB_BIGMEM_MIN)
		return calloc(1, size ? size : 1);
	if (len > SIZE_MAX - HUGE_SIZE) {
		errno = ENOMEM;
		return NULL;
	}
	/* Room to start on a 2 MB boundary; what is left over on each side goes back. */
	extra = len + HUGE_SIZE;
	p = mmap(NULL, extra, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (p == MAP_FAILED) {
		errno = ENOMEM;
		return NULL;
	}
	start = (uint8_t *)(((uintptr_t)p + HUGE_SIZE - 1) & ~(uintptr_t)(HUGE_SIZE - 1));
	head = (size_t)(start - p);
	if (head)
		munmap(p, head);
	if (extra - head - len)
		munmap(start + len, extra - head - len);
	/* Advice only: without huge pages (or without the advice) it is plain memory. */
	(void)madvise(start, len, MADV_HUGEPAGE);
	if (private)
		(void)madvise(start, len, MADV_DONTFORK);
	return start;
}

void lb_bigmem_free(void *p, size_t size)
{
	if (!p)
		return;
	if (size < LB_BIGMEM_MIN)
		free(p);
	else
		munmap(p, page_round(size));
}
