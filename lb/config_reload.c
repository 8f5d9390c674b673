// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * lb/config_reload.c: a reload reads again only the services whose text
 * changed. The running config keeps the text it was read from and where
 * each service is in it (struct lb_config_source). The next reload's JSON
 * parse (lb_json_loadb_hook) asks, at each element of "services", whether
 * the text there is, byte for byte, one of those services': that element
 * is skipped, and the parser (config_service.c) copies the service from
 * the running config instead of reading it. A service is copied only if
 * reading it gave no warning, so that the reload logs it again; the checks
 * across services run on the whole new config; and config.c reads the
 * whole text again on any error, so that its words and places are a whole
 * read's.
 */
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "lb/bigmem.h"
#include "lb/config.h"
#include "lb/config_priv.h"
#include "lb/hash.h"

/* Known services' texts are looked up by their first bytes, when not where expected. */
#define PREFIX_BYTES 32
/* Candidates with the same first bytes compared at most, before the element is parsed. */
#define PREFIX_TRIES 16

struct lb_config_prefix_slot {
	uint64_t hash;
	uint32_t j;			/* an old service, or UINT32_MAX: free */
};

void lb_config_source_free(struct lb_config_source *src)
{
	if (!src)
		return;
	lb_bigmem_free(src->text, src->text_cap);
	free(src->spans);
	free(src);
}

void lb_config_source_clean(struct lb_config_source *src, size_t i, bool clean)
{
	if (i < src->n_spans)
		src->spans[i].clean = clean;
}

void lb_config_drop_source(struct lb_config *cfg)
{
	if (!cfg)
		return;
	lb_config_source_free(cfg->source);
	cfg->source = NULL;
}

size_t lb_config_copied(const struct lb_config *cfg)
{
	return cfg && cfg->source ? cfg->source->copied : 0;
}

static uint64_t prefix_hash(const char *p)
{
	return lb_hash_mix64(lb_hash_fnv1a(LB_HASH_FNV_BASIS, p, PREFIX_BYTES));
}

/* Whether the running config's services[j] was read, with no warning, from the text at. */
static bool same_text(const struct lb_config_reread *r, uint32_t j, const char *at, size_t avail)
{
	const struct lb_config_span *sp;

	if (j >= r->old->n_spans || j >= r->c->prev->n_services)
		return false;
	sp = &r->old->spans[j];
	return sp->clean && sp->len <= avail && !memcmp(at, r->old->text + sp->off, sp->len);
}

static void index_build(struct lb_config_reread *r)
{
	const struct lb_config_source *old = r->old;
	size_t n = 1;

	r->indexed = true;
	while (n < 2 * old->n_spans)
		n <<= 1;
	r->index = malloc(n * sizeof(*r->index));
	if (!r->index)
		return;
	r->mask = n - 1;
	/* Every slot free: j UINT32_MAX. */
	memset(r->index, 0xff, n * sizeof(*r->index));
	for (size_t j = 0; j < old->n_spans; j++) {
		uint64_t h;
		size_t k;

		if (!old->spans[j].clean || old->spans[j].len < PREFIX_BYTES)
			continue;
		h = prefix_hash(old->text + old->spans[j].off);
		for (k = h & r->mask; r->index[k].j != UINT32_MAX; k = (k + 1) & r->mask)
			;
		r->index[k] = (struct lb_config_prefix_slot){ .hash = h, .j = (uint32_t)j };
	}
}

/* The old service whose text is at, found by its first bytes, or UINT32_MAX. */
static uint32_t index_find(struct lb_config_reread *r, const char *at, size_t avail)
{
	unsigned int tries = 0;
	uint64_t h;

	if (!r->indexed)
		index_build(r);
	if (!r->index || avail < PREFIX_BYTES)
		return UINT32_MAX;
	h = prefix_hash(at);
	for (size_t k = h & r->mask; r->index[k].j != UINT32_MAX; k = (k + 1) & r->mask) {
		if (r->index[k].hash != h)
			continue;
		if (same_text(r, r->index[k].j, at, avail))
			return r->index[k].j;
		if (++tries == PREFIX_TRIES)
			break;
	}
	return UINT32_MAX;
}

/*
 * lb_json_hook.known: a service is looked for where the last one found
 * leads (the next in the old text), then at its own index, then by its
 * first bytes; a service added, removed or changed costs one lookup.
 */
static size_t reread_known(void *arg, size_t i, size_t off, size_t avail)
{
	struct lb_config_reread *r = arg;
	const char *at = r->text + off;
	uint32_t j = r->next;

	if (!r->old)
		return 0;
	if (!same_text(r, j, at, avail) && !same_text(r, j = (uint32_t)i, at, avail))
		j = index_find(r, at, avail);
	if (j == UINT32_MAX)
		return 0;
	r->from = j;
	r->next = j + 1;
	return r->old->spans[j].len;
}

/* lb_json_hook.span: the new source's record of services[i], and what it copies. */
static bool reread_span(void *arg, size_t i, size_t off, size_t len)
{
	struct lb_config_reread *r = arg;
	struct lb_config_source *src = r->c->source;
	uint32_t from = r->from;
	struct lb_config_span *p;
	size_t cap;

	if (i != src->n_spans)
		return false;
	if (src->n_spans == src->cap) {
		cap = src->cap ? 2 * src->cap : 64;
		p = realloc(src->spans, cap * sizeof(*p));
		if (!p)
			return false;
		src->spans = p;
		src->cap = cap;
	}
	r->from = UINT32_MAX;
	src->spans[src->n_spans++] = (struct lb_config_span){ .off = off, .len = len, .from = from };
	return true;
}

void lb_config_reread_init(struct lb_config_reread *r, struct lb_config_ctx *c, const char *text)
{
	*r = (struct lb_config_reread){
		.c = c, .text = text, .from = UINT32_MAX,
		.old = c->source && c->prev ? c->prev->source : NULL,
		.hook = { "services", reread_known, reread_span, r },
	};
}

void lb_config_reread_fini(struct lb_config_reread *r)
{
	free(r->index);
	r->index = NULL;
}
