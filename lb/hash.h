/* SPDX-License-Identifier: GPL-2.0-or-later */
#ifndef LB_HASH_H
#define LB_HASH_H

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

#endif
