// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * libFuzzer harness for the config parser: the input, as a NUL-terminated
 * copy, goes to lb_config_parse(). Beyond not crashing, leaking or hitting
 * undefined behaviour, the result must keep lb_config_parse()'s contract
 * (lb/config.h): either a config and no errors, or no config and one or
 * more '\n'-terminated error lines, printable (user text is escaped), and
 * an accepted config must be one lb can run (no backend is one of its
 * VIPs); its warnings, if any, are lines of the same form. Build with "make fuzz"
 * (Makefile.am), or by hand:
 *
 *   clang -g -O1 -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined \
 *     -std=gnu11 -D_GNU_SOURCE -I. \
 *     tests/fuzz/fuzz_config.c lb/config.c lb/config_service.c lb/addr.c lb/log.c \
 *     -ljansson -o fuzz_config
 *   ./fuzz_config tests/fuzz/corpus/config
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "lb/config.h"
#include "lb/log.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check_errors(const char *errors)
{
	size_t n;

	if (!errors)
		abort();
	n = strlen(errors);
	if (n < 2 || errors[n - 1] != '\n')
		abort();
	for (size_t i = 0; i < n; i++) {
		unsigned char c = errors[i];

		/* An empty line, or a control character that reached the terminal unescaped. */
		if (c == '\n' ? i == 0 || errors[i - 1] == '\n' : c < 0x20 || c == 0x7f)
			abort();
	}
}

static void check_config(const struct lb_config *cfg)
{
	if (!cfg->control_path || !cfg->intercept.table || !cfg->user || !cfg->group ||
	    !cfg->n_services || !cfg->services)
		abort();
	for (size_t i = 0; i < cfg->n_services; i++) {
		const struct lb_service_conf *svc = &cfg->services[i];

		if (!svc->name || !svc->n_vips || !svc->vips || (svc->n_backends && !svc->backends))
			abort();
		for (size_t j = 0; j < svc->n_vips; j++) {
			const union lb_sockaddr *vip = &svc->vips[j];

			if (!lb_config_find_service(cfg, vip) ||
			    !lb_config_has_family(cfg, vip->sa.sa_family))
				abort();
		}
		/* lb cannot be its own backend. */
		for (size_t j = 0; j < svc->n_backends; j++)
			if (lb_config_find_service(cfg, &svc->backends[j].addr))
				abort();
		if (svc->health.type == LB_CHECK_HTTP &&
		    (!svc->health.path || svc->health.expect_min > svc->health.expect_max))
			abort();
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static int initialized;
	struct lb_config *cfg;
	char *text, *errors = NULL;

	if (!initialized) {
		/* The parser reports through *errors; keep the log quiet. */
		lb_log_init(LB_LOG_ERR, "fuzz");
		initialized = 1;
	}
	text = malloc(size + 1);
	if (!text)
		return 0;
	memcpy(text, data, size);
	text[size] = '\0';
	cfg = lb_config_parse(text, &errors);
	if (cfg) {
		if (errors)
			abort();
		check_config(cfg);
		/* Warnings follow the errors' form: printable "path: problem" lines. */
		if (cfg->warnings)
			check_errors(cfg->warnings);
		lb_config_free(cfg);
	} else {
		check_errors(errors);
		free(errors);
	}
	free(text);
	return 0;
}
