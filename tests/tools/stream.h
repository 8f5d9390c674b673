/* SPDX-License-Identifier: GPL-2.0-or-later */
/* peer's deterministic byte stream, its header, and sending from both; the
 * protocol is described at the top of peer.c. */
#ifndef LB_TESTS_TOOLS_STREAM_H
#define LB_TESTS_TOOLS_STREAM_H

#include <stddef.h>
#include <stdint.h>

#define BUF_LEN 16384
#define HDR_LEN 32
#define ST_OK 'K'
#define ST_FAIL 'F'

/* Which way a stream goes: the same seed gives each its own bytes. */
#define DIR_UP 0x7570u
#define DIR_DOWN 0x646f776eu

struct stream {
	uint64_t state;
	uint8_t buf[8];
	unsigned int avail;
};

uint64_t splitmix64(uint64_t *s);
void stream_init(struct stream *st, uint64_t seed, uint64_t dir);
void stream_fill(struct stream *st, uint8_t *p, size_t len);
/* Compares the next len bytes of st with p; returns the index of the first
 * differing byte, or len when all match. */
size_t stream_check(struct stream *st, const uint8_t *p, size_t len);

/* What is left to send: buf from off to len, then `left` bytes of st. */
struct feed {
	struct stream st;
	uint64_t left;
	uint8_t buf[BUF_LEN];
	size_t len, off;
};

/* Sends from f until all is out (0) or fd is full (-EAGAIN); -errno on
 * failure. *sent grows by what was sent. */
int feed_send(int fd, struct feed *f, uint64_t *sent);

/* Big-endian store and load of the low n bytes. */
void be_put(uint8_t *p, uint64_t v, int n);
uint64_t be_get(const uint8_t *p, int n);

/* The HDR_LEN-byte header: magic, upload and download size, seed. */
void hdr_put(uint8_t *p, uint64_t up, uint64_t down, uint64_t seed);
/* Returns 0, or -EINVAL when the magic is wrong. */
int hdr_get(const uint8_t *p, uint64_t *up, uint64_t *down, uint64_t *seed);
/* The magic, for an error message. */
uint32_t hdr_magic(const uint8_t *p);

#endif
