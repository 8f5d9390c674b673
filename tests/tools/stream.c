// SPDX-License-Identifier: GPL-2.0-or-later
/* peer's byte stream and header; see stream.h. */
#include <errno.h>
#include <string.h>
#include <sys/socket.h>

#include "stream.h"

#define HDR_MAGIC 0x4c425031u /* "LBP1" */

/* splitmix64: tiny, fast and good enough to catch any reordering, loss or
 * corruption of bytes. */
uint64_t splitmix64(uint64_t *s)
{
	uint64_t z = (*s += 0x9e3779b97f4a7c15ull);

	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
	return z ^ (z >> 31);
}

void stream_init(struct stream *st, uint64_t seed, uint64_t dir)
{
	st->state = seed ^ (dir * 0xd6e8feb86659fd93ull);
	st->avail = 0;
}

void stream_fill(struct stream *st, uint8_t *p, size_t len)
{
	while (len > 0) {
		size_t n;

		if (st->avail == 0) {
			uint64_t v = splitmix64(&st->state);

			for (int i = 0; i < 8; i++)
				st->buf[i] = (uint8_t)(v >> (8 * i));
			st->avail = 8;
		}
		n = len < st->avail ? len : st->avail;
		memcpy(p, st->buf + 8 - st->avail, n);
		st->avail -= n;
		p += n;
		len -= n;
	}
}

size_t stream_check(struct stream *st, const uint8_t *p, size_t len)
{
	uint8_t want[BUF_LEN];
	size_t done = 0;

	while (done < len) {
		size_t n = len - done < sizeof(want) ? len - done : sizeof(want);

		stream_fill(st, want, n);
		if (memcmp(want, p + done, n) != 0) {
			for (size_t i = 0; i < n; i++)
				if (want[i] != p[done + i])
					return done + i;
		}
		done += n;
	}
	return len;
}

int feed_send(int fd, struct feed *f, uint64_t *sent)
{
	for (;;) {
		ssize_t n;

		if (f->off == f->len) {
			if (f->left == 0)
				return 0;
			f->len = f->left < BUF_LEN ? (size_t)f->left : BUF_LEN;
			f->off = 0;
			stream_fill(&f->st, f->buf, f->len);
			f->left -= f->len;
		}
		n = send(fd, f->buf + f->off, f->len - f->off, MSG_NOSIGNAL);
		if (n == -1)
			return errno == EINTR ? -EAGAIN : -errno;
		f->off += (size_t)n;
		*sent += (size_t)n;
	}
}

void be_put(uint8_t *p, uint64_t v, int n)
{
	for (int i = 0; i < n; i++)
		p[i] = (uint8_t)(v >> (8 * (n - 1 - i)));
}

uint64_t be_get(const uint8_t *p, int n)
{
	uint64_t v = 0;

	for (int i = 0; i < n; i++)
		v = v << 8 | p[i];
	return v;
}

void hdr_put(uint8_t *p, uint64_t up, uint64_t down, uint64_t seed)
{
	be_put(p, HDR_MAGIC, 4);
	be_put(p + 4, 0, 4);
	be_put(p + 8, up, 8);
	be_put(p + 16, down, 8);
	be_put(p + 24, seed, 8);
}

uint32_t hdr_magic(const uint8_t *p)
{
	return (uint32_t)be_get(p, 4);
}

int hdr_get(const uint8_t *p, uint64_t *up, uint64_t *down, uint64_t *seed)
{
	if (hdr_magic(p) != HDR_MAGIC)
		return -EINVAL;
	*up = be_get(p + 8, 8);
	*down = be_get(p + 16, 8);
	*seed = be_get(p + 24, 8);
	return 0;
}
