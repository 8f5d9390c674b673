/* SPDX-License-Identifier: GPL-2.0-or-later */
#ifndef LB_HASH_H
#define LB_HASH_H

#include <stddef.h>
#include <stdint.h>

/*
 * MurmurHash3's 64-bit finaliser: every input bit reaches every output
 * bit, so the tables in shared memory (keyset, affinity, CID table) can
 * take their window from any part of a key. Equal in every process.
 */
static inline uint64_t lb_hash_mix64(uint64_t h)
{
	h ^= h >> 33;
	h *= 0xff51afd7ed558ccdull;
	h ^= h >> 33;
	h *= 0xc4ceb9fe1a85ec53ull;
	h ^= h >> 33;
	return h;
}

#define LB_HASH_FNV_BASIS 0xcbf29ce484222325ull

/*
 * FNV-1a of the n bytes at p, going on from h (LB_HASH_FNV_BASIS, or a
 * seed mixed into it). A multiply carries bits only upwards: mix the
 * result (lb_hash_mix64) before a table takes its low bits.
 */
static inline uint64_t lb_hash_fnv1a(uint64_t h, const void *p, size_t n)
{
	const unsigned char *b = p;

	for (size_t i = 0; i < n; i++)
		h = (h ^ b[i]) * 0x100000001b3ull;
	return h;
}

#endif
