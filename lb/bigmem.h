/* SPDX-License-Identifier: GPL-2.0-or-later */
#ifndef LB_BIGMEM_H
#define LB_BIGMEM_H

#include <stdbool.h>
#include <stddef.h>

/*
 * Large arrays that a reload builds anew (at 100,000 VIPs: the VIP map,
 * the rules' VIP lists and keys, the health checker's probes, the config's
 * text, some 40 MB). From the heap, every 4 KB page of them costs a fault
 * when first written, and a page the last fork left shared with workers a
 * copy too: 10,000 faults, half of such a reload on this VM. From here,
 * an array of LB_BIGMEM_MIN bytes or more has a mapping of its own, 2 MB
 * aligned and advised for transparent huge pages, so that filling it takes
 * one fault per 2 MB where the kernel has huge pages to give. Smaller
 * arrays come from the heap, as they would anyway.
 */
#define LB_BIGMEM_MIN (2u << 20)

/*
 * size bytes of zeroed memory, or NULL (errno ENOMEM). A private array
 * is the master's alone: workers forked later do not inherit it
 * (MADV_DONTFORK), so the master's writes to it copy nothing, and a
 * worker must never touch it.
 */
void *lb_bigmem_alloc(size_t size, bool private);

/* Frees what lb_bigmem_alloc(size) returned; size must be the same. NULL is fine. */
void lb_bigmem_free(void *p, size_t size);

#endif
