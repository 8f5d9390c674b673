// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * libFuzzer harness for the control protocol: the input is a byte stream
 * from a client, cut into chunks as the first byte says and fed through the
 * line splitter; every line goes to lb_ctl_handle_line(). Each reply must
 * be one line of JSON with a boolean "ok". The whole input is also tried
 * as a single request. Build:
 *
 *   make fuzz      (the sources are FUZZ_CTL_SRCS in Makefile.am)
 *   ./fuzz_ctl tests/fuzz/corpus/ctl
 */
#include <jansson.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "lb/ctl.h"
#include "lb/log.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const char config_json[] =
	"{\"workers\": 2, \"services\": ["
	" {\"name\": \"web\", \"vips\": [\"198.18.100.1:80\", \"[2001:db8:100::1]:80\"],"
	"  \"backends\": [{\"address\": \"198.18.2.2:80\"}, {\"address\": \"198.18.2.3:80\", \"weight\": 5},"
	"               {\"address\": \"[2001:db8:2::2]:80\", \"max_conns\": 3}]},"
	" {\"name\": \"db\", \"vips\": [\"198.18.100.2:5432\"], \"scheduler\": \"maglev\","
	"  \"backends\": [{\"address\": \"198.18.2.2:5432\"}]}]}";

static struct lb_config *cfg;
static struct lb_shm *shm;
static struct lb_ctl_state st;
static struct lb_announce *announce;

/*
 * The shm's Maglev build state is malloc'ed, but its only pointer lives in
 * the shared mapping, which LeakSanitizer does not scan: held here too, so
 * the harness's one shm for all runs is not reported as a leak.
 */
static struct lb_shm_build *shm_build;

static void init(void)
{
	char *errors = NULL;

	lb_log_init(LB_LOG_ERR, "fuzz");
	cfg = lb_config_parse(config_json, &errors);
	if (!cfg) {
		fprintf(stderr, "fuzz_ctl: config: %s", errors);
		abort();
	}
	shm = lb_shm_create(cfg, 2, 1000);
	if (!shm)
		abort();
	shm_build = shm->build;
	st.cfg = cfg;
	st.shm = shm;
	st.config_path = "/etc/lb/lb.json";
	st.start_ms = lb_clock_ms();
	st.generation = 1;
	atomic_store(&shm->workers[0].pid, 100);
	/* drain-gateway and resume-gateway act on it; never opened, so no device. */
	announce = lb_announce_alloc();
	cfg->announce.enabled = true;
	cfg->announce.table = 200;
	cfg->announce.protocol = 250;
	if (!announce || lb_announce_prepare(announce, cfg, (char[128]){ 0 }, 128) < 0)
		abort();
	lb_announce_use(announce, cfg, shm);
	lb_announce_ready(announce, lb_clock_ms());
	st.announce = announce;
}

/* Every run starts from the same states, so a crash reproduces from its input alone. */
static void reset(void)
{
	char msg[128];

	lb_announce_resume(announce, lb_clock_ms(), msg, sizeof(msg));
	for (size_t i = 0; i < cfg->n_services; i++)
		for (size_t j = 0; j < cfg->services[i].n_backends; j++) {
			struct lb_shm_backend *b = lb_shm_backend(shm, i, j);

			atomic_store(&b->admin, LB_ADMIN_UP);
			atomic_store(&b->weight, cfg->services[i].backends[j].weight);
		}
}

static void check_reply(char *reply)
{
	size_t n;
	json_t *j;

	if (!reply)
		abort();
	n = strlen(reply);
	if (n < 2 || reply[n - 1] != '\n' || memchr(reply, '\n', n - 1))
		abort();
	j = json_loads(reply, 0, NULL);
	if (!j || !json_is_boolean(json_object_get(j, "ok")))
		abort();
	if (json_is_false(json_object_get(j, "ok")) &&
	    !json_is_string(json_object_get(json_object_get(j, "error"), "code")))
		abort();
	json_decref(j);
	free(reply);
}

static void drain(struct lb_ctl_input *in, bool eof)
{
	const char *line;
	size_t len;
	enum lb_ctl_next r;

	while ((r = lb_ctl_input_next(in, &line, &len, eof)) != LB_CTL_NONE) {
		if (r == LB_CTL_LINE) {
			if (len > LB_CTL_LINE_MAX || memchr(line, '\n', len))
				abort();
			check_reply(lb_ctl_handle_line(&st, line, len, NULL));
		}
	}
	if (eof && lb_ctl_input_pending(in))
		abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const size_t chunks[] = { 1, 2, 3, 7, 16, 64, 512, 4096, 16384, SIZE_MAX };
	struct lb_ctl_input in = { 0 };
	struct ucred peer = { .pid = 1, .uid = 0, .gid = 0 };
	size_t chunk, off = 0;
	uint8_t mode;

	if (!cfg)
		init();
	reset();
	if (!size)
		return 0;
	mode = data[0];
	data++;
	size--;
	chunk = chunks[(mode & 0x0f) % (sizeof(chunks) / sizeof(chunks[0]))];
	while (off < size) {
		size_t n = size - off < chunk ? size - off : chunk;

		if (lb_ctl_input_append(&in, (const char *)data + off, n) < 0)
			abort();
		off += n;
		/* Bit 4: a line longer than the limit in the middle of the stream. */
		if ((mode & 0x10) && off >= size / 2 && off - n < size / 2) {
			static char big[LB_CTL_LINE_MAX + 64];

			memset(big, 'x', sizeof(big));
			lb_ctl_input_append(&in, big, sizeof(big) - (mode >> 5));
		}
		drain(&in, false);
		/* After a drain only an unfinished line, never longer than the limit, is held. */
		if (lb_ctl_input_pending(&in) > LB_CTL_LINE_MAX)
			abort();
	}
	drain(&in, true);
	lb_ctl_input_fini(&in);
	check_reply(lb_ctl_handle_line(&st, (const char *)data, size, &peer));
	return 0;
}
