// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * The metrics text (lb/ctl_metrics.c) under a strict checker of the
 * Prometheus text exposition format, and the values it reports from shm.
 */
#include <check.h>
#include <ctype.h>
#include <jansson.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lb/ctl.h"
#include "tests/ctl_fixture.h"
#include "tests/unit.h"

struct family {
	char name[128];
	char type[16];
	bool help, sampled, closed;
};

struct expo {
	struct family fam[128];
	size_t n_fam;
	char *series[4096];
	size_t n_series;
	char err[256];
};

static bool name_ok(const char *s, size_t n, bool colon)
{
	if (!n || !(isalpha((unsigned char)s[0]) || s[0] == '_' || (colon && s[0] == ':')))
		return false;
	for (size_t i = 1; i < n; i++)
		if (!(isalnum((unsigned char)s[i]) || s[i] == '_' || (colon && s[i] == ':')))
			return false;
	return true;
}

static struct family *fam_get(struct expo *x, const char *name, size_t n, bool create)
{
	for (size_t i = 0; i < x->n_fam; i++)
		if (strlen(x->fam[i].name) == n && !strncmp(x->fam[i].name, name, n))
			return &x->fam[i];
	if (!create || x->n_fam == 128 || n >= sizeof(x->fam[0].name))
		return NULL;
	memcpy(x->fam[x->n_fam].name, name, n);
	return &x->fam[x->n_fam++];
}

static bool value_ok(const char *s)
{
	char *end;

	if (!strcmp(s, "+Inf") || !strcmp(s, "-Inf") || !strcmp(s, "NaN"))
		return true;
	if (!*s || isspace((unsigned char)*s))
		return false;
	strtod(s, &end);
	return *end == '\0' && strspn(s, "0123456789+-.eE") == strlen(s);
}

static int expo_bad(struct expo *x, int lineno, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static int expo_bad(struct expo *x, int lineno, const char *fmt, ...)
{
	int n = snprintf(x->err, sizeof(x->err), "line %d: ", lineno);
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(x->err + n, sizeof(x->err) - n, fmt, ap);
	va_end(ap);
	return -1;
}

/*
 * Returns 0 when text is valid exposition format 0.0.4 as lb must produce
 * it: every line ends in \n, HELP/TYPE precede their samples, families are
 * contiguous, names and labels are well formed, label values use only the
 * three escapes, values are numbers, no series repeats. Else sets x->err.
 */
static int expo_check(const char *text, struct expo *x)
{
	const char *p = text;
	int lineno = 0;
	struct family *cur = NULL;

	memset(x, 0, sizeof(*x));
#define BAD(...) return expo_bad(x, lineno, __VA_ARGS__)
	if (!*text || text[strlen(text) - 1] != '\n')
		BAD("text does not end with a newline");
	while (*p) {
		const char *nl = strchr(p, '\n'), *q;
		char line[4096], key[4096];
		size_t n = nl - p, kn = 0;
		struct family *f;

		lineno++;
		if (n >= sizeof(line))
			BAD("too long");
		memcpy(line, p, n);
		line[n] = '\0';
		p = nl + 1;
		if (!n)
			BAD("empty line");
		if (!strncmp(line, "# HELP ", 7) || !strncmp(line, "# TYPE ", 7)) {
			const char *name = line + 7, *sp = strchr(name, ' ');

			if (!sp || !name_ok(name, sp - name, true))
				BAD("bad metric name in %s", line);
			f = fam_get(x, name, sp - name, true);
			if (!f)
				BAD("too many families");
			if (f->sampled || f->closed)
				BAD("%s after the family's samples", line);
			if (line[2] == 'H') {
				if (f->help)
					BAD("second HELP for %s", f->name);
				f->help = true;
				for (q = sp + 1; *q; q++)
					if (*q == '\\' && q[1] != '\\' && q[1] != 'n')
						BAD("bad escape in HELP");
			} else {
				if (f->type[0])
					BAD("second TYPE for %s", f->name);
				if (strcmp(sp + 1, "counter") && strcmp(sp + 1, "gauge") &&
				    strcmp(sp + 1, "histogram") && strcmp(sp + 1, "summary") &&
				    strcmp(sp + 1, "untyped"))
					BAD("unknown type %s", sp + 1);
				snprintf(f->type, sizeof(f->type), "%s", sp + 1);
			}
			if (cur && cur != f)
				cur->closed = true;
			cur = f;
			continue;
		}
		if (line[0] == '#')
			continue;
		/* A sample: name{labels} value [timestamp] */
		q = line;
		while (*q && *q != '{' && *q != ' ')
			q++;
		if (!name_ok(line, q - line, true))
			BAD("bad metric name: %s", line);
		f = fam_get(x, line, q - line, false);
		/* A histogram's samples are NAME_bucket, NAME_sum and NAME_count. */
		for (const char *const *sfx = (const char *const[]){ "_bucket", "_sum", "_count", NULL };
		     !f && *sfx; sfx++) {
			size_t sl = strlen(*sfx), ln = q - line;

			if (ln > sl && !strncmp(q - sl, *sfx, sl)) {
				f = fam_get(x, line, ln - sl, false);
				if (f && strcmp(f->type, "histogram"))
					BAD("%s: %s is not a histogram", line, f->name);
			}
		}
		if (!f || !f->type[0])
			BAD("sample without a TYPE before it: %s", line);
		if (f->closed)
			BAD("family %s is not contiguous", f->name);
		if (!strcmp(f->type, "counter") &&
		    (strlen(f->name) < 6 || strcmp(f->name + strlen(f->name) - 6, "_total")))
			BAD("counter %s does not end in _total", f->name);
		if (cur && cur != f)
			cur->closed = true;
		cur = f;
		f->sampled = true;
		memcpy(key, line, q - line);
		kn = q - line;
		if (*q == '{') {
			char names[32][64];
			int n_names = 0;

			key[kn++] = *q++;
			while (*q != '}') {
				const char *ln = q;

				while (*q && *q != '=')
					q++;
				if (!name_ok(ln, q - ln, false) || q - ln >= 64 || !strncmp(ln, "__", 2))
					BAD("bad label name in %s", line);
				for (int i = 0; i < n_names; i++)
					if (strlen(names[i]) == (size_t)(q - ln) &&
					    !strncmp(names[i], ln, q - ln))
						BAD("repeated label in %s", line);
				if (n_names == 32)
					BAD("too many labels");
				memcpy(names[n_names], ln, q - ln);
				names[n_names++][q - ln] = '\0';
				memcpy(key + kn, ln, q - ln + 1);
				kn += q - ln + 1;
				if (q[1] != '"')
					BAD("label value not quoted in %s", line);
				q += 2;
				key[kn++] = '"';
				for (; *q != '"'; q++) {
					if (!*q)
						BAD("unterminated label value in %s", line);
					if (*q == '\\') {
						if (q[1] != '\\' && q[1] != '"' && q[1] != 'n')
							BAD("bad escape in label value: %s", line);
						key[kn++] = *q++;
					}
					key[kn++] = *q;
				}
				key[kn++] = *q++;
				if (*q == ',') {
					key[kn++] = *q++;
				} else if (*q != '}') {
					BAD("expected , or } in %s", line);
				}
			}
			key[kn++] = *q++;
		}
		key[kn] = '\0';
		if (*q != ' ')
			BAD("no space before the value: %s", line);
		q++;
		{
			char val[64];
			const char *sp = strchr(q, ' ');
			size_t vn = sp ? (size_t)(sp - q) : strlen(q);

			if (vn >= sizeof(val))
				BAD("value too long");
			memcpy(val, q, vn);
			val[vn] = '\0';
			if (!value_ok(val))
				BAD("bad value '%s' in %s", val, line);
			if (sp && (!sp[1] || strspn(sp + 1, "-0123456789") != strlen(sp + 1)))
				BAD("bad timestamp in %s", line);
		}
		for (size_t i = 0; i < x->n_series; i++)
			if (!strcmp(x->series[i], key))
				BAD("series repeated: %s", key);
		if (x->n_series < 4096)
			x->series[x->n_series++] = strdup(key);
	}
	for (size_t i = 0; i < x->n_fam; i++)
		if (!x->fam[i].type[0])
			BAD("family %s has no TYPE", x->fam[i].name);
#undef BAD
	return 0;
}

static void expo_free(struct expo *x)
{
	for (size_t i = 0; i < x->n_series; i++)
		free(x->series[i]);
}

static void expect_fail(const char *text)
{
	struct expo x;

	ck_assert_msg(expo_check(text, &x) < 0, "checker accepted: %s", text);
	expo_free(&x);
}

START_TEST(test_checker_rejects)
{
	/* The checker itself: each of these breaks one rule. */
	expect_fail("a 1\n");
	expect_fail("# TYPE a gauge\na 1");
	expect_fail("# TYPE a gauge\na x\n");
	expect_fail("# TYPE a gauge\na{b=\"c} 1\n");
	expect_fail("# TYPE a gauge\na{b=\"\\t\"} 1\n");
	expect_fail("# TYPE a gauge\na{1b=\"c\"} 1\n");
	expect_fail("# TYPE a gauge\na{b=c} 1\n");
	expect_fail("# TYPE a gauge\na 1\na 2\n");
	expect_fail("# TYPE a counter\na 1\n");
	expect_fail("# TYPE a gauge\na 1\n# TYPE b gauge\nb 1\na{x=\"1\"} 1\n");
	expect_fail("# TYPE a gauge\n# TYPE a gauge\na 1\n");
	expect_fail("# TYPE 1a gauge\n1a 1\n");
	expect_fail("# TYPE a gauge\na{b=\"c\",b=\"d\"} 1\n");
	expect_fail("# TYPE a gauge\na  1\n");
}
END_TEST

/* The value of series key (exactly as printed) in text, or -1. */
static long long sample(const char *text, const char *key)
{
	size_t n = strlen(key);

	for (const char *p = text; *p; p = strchr(p, '\n') + 1)
		if (!strncmp(p, key, n) && p[n] == ' ')
			return strtoll(p + n + 1, NULL, 10);
	return -1;
}

START_TEST(test_metrics)
{
	struct lb_shm_backend *b = lb_shm_backend(shm, 0, 0);
	struct expo x;
	char *text;
	json_t *r, *d;

	atomic_store(&b->active, 3);
	atomic_store(&b->total, 12);
	atomic_store(&b->bytes_in, 100);
	atomic_store(&b->bytes_out, 200);
	atomic_store(&b->connect_failures, 1);
	atomic_store(&shm->services[0].no_backend, 9);
	atomic_store(&shm->workers[1].active, 4);
	lb_shm_set_admin(shm, cfg, 0, 1, LB_ADMIN_DRAIN, "test");
	lb_shm_set_health(shm, cfg, 0, 2, LB_HEALTH_DOWN, "test");
	text = lb_ctl_metrics(&st);
	ck_assert_ptr_nonnull(text);
	if (expo_check(text, &x) < 0)
		ck_abort_msg("%s", x.err);
	expo_free(&x);
	ck_assert_int_eq(sample(text, "lb_backend_active_connections{service=\"web\","
				"backend=\"198.18.2.2:80\"}"), 3);
	ck_assert_int_eq(sample(text, "lb_backend_connections_total{service=\"web\","
				"backend=\"198.18.2.2:80\"}"), 12);
	ck_assert_int_eq(sample(text, "lb_backend_bytes_in_total{service=\"web\","
				"backend=\"198.18.2.2:80\"}"), 100);
	ck_assert_int_eq(sample(text, "lb_backend_bytes_out_total{service=\"web\","
				"backend=\"198.18.2.2:80\"}"), 200);
	ck_assert_int_eq(sample(text, "lb_backend_connect_failures_total{service=\"web\","
				"backend=\"198.18.2.2:80\"}"), 1);
	ck_assert_int_eq(sample(text, "lb_backend_up{service=\"web\","
				"backend=\"[2001:db8:2::2]:80\"}"), 0);
	ck_assert_int_eq(sample(text, "lb_backend_up{service=\"web\","
				"backend=\"198.18.2.3:80\"}"), 1);
	ck_assert_int_eq(sample(text, "lb_backend_admin_state{service=\"web\","
				"backend=\"198.18.2.3:80\",state=\"drain\"}"), 1);
	ck_assert_int_eq(sample(text, "lb_backend_admin_state{service=\"web\","
				"backend=\"198.18.2.3:80\",state=\"up\"}"), 0);
	ck_assert_int_eq(sample(text, "lb_backend_weight{service=\"web\","
				"backend=\"198.18.2.3:80\"}"), 5);
	ck_assert_int_eq(sample(text, "lb_backend_max_connections{service=\"db\","
				"backend=\"198.18.2.2:5432\"}"), 10);
	ck_assert_int_eq(sample(text, "lb_service_no_backend_total{service=\"web\"}"), 9);
	ck_assert_int_eq(sample(text, "lb_worker_active_connections{worker=\"1\",generation=\"1\"}"), 4);
	ck_assert_int_ge(sample(text, "lb_uptime_seconds"), 5);
	ck_assert_int_eq(sample(text, "lb_config_generation"), 1);

	/* The command returns the same text as a JSON string. */
	d = ask_ok("{'cmd': 'metrics'}", &r);
	ck_assert(json_is_string(d));
	ck_assert_int_eq(expo_check(json_string_value(d), &x), 0);
	expo_free(&x);
	json_decref(r);
	free(text);
}
END_TEST

/*
 * Latency histograms: cumulative buckets, _sum in seconds and _count in
 * /metrics; p50/p99 in ms in the backends and services replies, which
 * lb_ctl_status_json() (the HTTP /status.json) carries together with status.
 */
START_TEST(test_histograms)
{
	struct lb_shm_backend *b = lb_shm_backend(shm, 0, 0);
	json_t *r, *d, *o, *lat;
	json_error_t jerr;
	struct expo x;
	char *text;

	/* 80 connects of 200 µs, 20 of 3 ms; 2 clients queued 40 ms. */
	for (int i = 0; i < 100; i++)
		lb_hist_observe(&b->connect, LB_HIST_CONNECT, i < 80 ? 200 : 3000);
	lb_hist_observe(&shm->services[0].queue, LB_HIST_QUEUE, 40000);
	lb_hist_observe(&shm->services[0].queue, LB_HIST_QUEUE, 40000);
	text = lb_ctl_metrics(&st);
	if (expo_check(text, &x) < 0)
		ck_abort_msg("%s", x.err);
	expo_free(&x);
#define BE "service=\"web\",backend=\"198.18.2.2:80\""
	ck_assert_int_eq(sample(text, "lb_backend_connect_seconds_bucket{" BE ",le=\"0.0001\"}"), 0);
	ck_assert_int_eq(sample(text, "lb_backend_connect_seconds_bucket{" BE ",le=\"0.00025\"}"), 80);
	ck_assert_int_eq(sample(text, "lb_backend_connect_seconds_bucket{" BE ",le=\"0.0025\"}"), 80);
	ck_assert_int_eq(sample(text, "lb_backend_connect_seconds_bucket{" BE ",le=\"0.005\"}"), 100);
	ck_assert_int_eq(sample(text, "lb_backend_connect_seconds_bucket{" BE ",le=\"+Inf\"}"), 100);
	ck_assert_int_eq(sample(text, "lb_backend_connect_seconds_count{" BE "}"), 100);
	ck_assert_ptr_nonnull(strstr(text, "lb_backend_connect_seconds_sum{" BE "} 0.076000\n"));
#undef BE
	ck_assert_int_eq(sample(text, "lb_service_queue_seconds_bucket{service=\"web\",le=\"0.05\"}"), 2);
	ck_assert_int_eq(sample(text, "lb_service_queue_seconds_bucket{service=\"web\",le=\"0.025\"}"), 0);
	ck_assert_int_eq(sample(text, "lb_service_connection_duration_seconds_count{service=\"db\"}"), 0);
	free(text);

	d = ask_ok("{'cmd': 'backends', 'service': 'web'}", &r);
	lat = json_object_get(json_array_get(d, 0), "connect_ms");
	ck_assert_int_eq(json_integer_value(json_object_get(lat, "count")), 100);
	/* Half of them below 250 µs: p50 interpolates inside 100..250 µs. */
	ck_assert(json_real_value(json_object_get(lat, "p50")) > 0.1 &&
		  json_real_value(json_object_get(lat, "p50")) <= 0.25);
	ck_assert(json_real_value(json_object_get(lat, "p99")) > 2.5 &&
		  json_real_value(json_object_get(lat, "p99")) <= 5);
	ck_assert(json_is_null(json_object_get(json_object_get(json_array_get(d, 1), "connect_ms"),
					       "p50")));
	json_decref(r);

	text = lb_ctl_status_json(&st);
	ck_assert_ptr_nonnull(text);
	ck_assert_int_eq(text[strlen(text) - 1], '\n');
	o = json_loads(text, 0, &jerr);
	ck_assert_ptr_nonnull(o);
	ck_assert_int_eq(json_integer_value(json_object_get(json_object_get(o, "status"),
							     "generation")), 1);
	ck_assert_uint_eq(json_array_size(json_object_get(o, "services")), 2);
	lat = json_object_get(json_array_get(json_object_get(o, "services"), 0), "queue_ms");
	ck_assert_int_eq(json_integer_value(json_object_get(lat, "count")), 2);
	ck_assert_uint_eq(json_array_size(json_object_get(o, "backends")),
			  shm->services[0].n_backends + shm->services[1].n_backends);
	json_decref(o);
	free(text);
}
END_TEST

/* Label values are escaped: a name with a quote, a backslash and a newline. */
START_TEST(test_metrics_escaping)
{
	static const char odd[] = "we\"b\\x\ny";
	struct expo x;
	char *text;

	free(cfg->services[0].name);
	cfg->services[0].name = strdup(odd);
	text = lb_ctl_metrics(&st);
	if (expo_check(text, &x) < 0)
		ck_abort_msg("%s", x.err);
	expo_free(&x);
	ck_assert_int_eq(sample(text, "lb_service_no_backend_total{service=\"we\\\"b\\\\x\\ny\"}"),
			 0);
	free(text);
	/* ... and JSON replies carry the name as it is. */
	{
		json_t *r, *d = ask_ok("{'cmd': 'services'}", &r);

		ck_assert_str_eq(sget(json_array_get(d, 0), "name"), odd);
		json_decref(r);
	}
}
END_TEST

/* Clients refused per service, and each service's top clients by open connections. */
START_TEST(test_clients)
{
	uint32_t web = shm->services[0].clients_key, held;
	union lb_sockaddr a;
	const char *why;
	struct expo x;
	char *text;

	ck_assert_int_eq(lb_addr_parse("[2001:db8::10]:1000", &a, &why), 0);
	ck_assert_int_eq(lb_clients_take(shm->pool->clients, web, &a, 0, &held), 0);
	lb_shm_client_drops(shm, 0, "deny", 10);
	atomic_store(&shm->services[1].client_conns, 3);
	text = lb_ctl_metrics(&st);
	ck_assert_ptr_nonnull(text);
	if (expo_check(text, &x) < 0)
		ck_abort_msg("%s", x.err);
	expo_free(&x);
	ck_assert_int_eq(sample(text, "lb_service_clients_refused_total{service=\"web\","
				"reason=\"deny\"}"), 10);
	ck_assert_int_eq(sample(text, "lb_service_clients_refused_total{service=\"web\","
				"reason=\"rate\"}"), 0);
	ck_assert_int_eq(sample(text, "lb_service_clients_refused_total{service=\"db\","
				"reason=\"max_conns\"}"), 3);
	ck_assert_int_eq(sample(text, "lb_service_top_client_connections{service=\"web\","
				"client=\"2001:db8::10\"}"), 1);
	free(text);
	lb_clients_put(shm->pool->clients, &held);
}
END_TEST

/* The gateway's families: drain state and announcements (no device: the block comes after prepare). */
START_TEST(test_gateway_metrics)
{
	struct lb_announce *a = lb_announce_alloc();
	char err[256], msg[256], *text;
	struct expo x;

	ck_assert_ptr_nonnull(a);
	/* A block but no device (lb_announce_open not called): no root needed. */
	cfg->announce.enabled = true;
	cfg->announce.table = 200;
	ck_assert_int_eq(lb_announce_prepare(a, cfg, err, sizeof(err)), 0);
	lb_announce_use(a, cfg, shm);
	lb_announce_ready(a, lb_clock_ms());
	st.announce = a;
	text = lb_ctl_metrics(&st);
	ck_assert_ptr_nonnull(text);
	if (expo_check(text, &x) < 0)
		ck_abort_msg("%s\n%s", x.err, text);
	expo_free(&x);
	ck_assert_int_eq(sample(text, "lb_gateway_serving"), 1);
	ck_assert_int_eq(sample(text, "lb_gateway_draining"), 0);
	ck_assert_int_eq(sample(text, "lb_announce_vips"), 3);
	free(text);
	ck_assert_int_eq(lb_announce_drain(a, false, 30000, lb_clock_ms(), msg, sizeof(msg)), 0);
	text = lb_ctl_metrics(&st);
	ck_assert_ptr_nonnull(text);
	ck_assert_int_eq(sample(text, "lb_gateway_draining"), 1);
	ck_assert_int_eq(sample(text, "lb_gateway_serving"), 0);
	free(text);
	st.announce = NULL;
	lb_announce_free(a);
}
END_TEST

int main(void)
{
	return lb_test_main("ctl_metrics", ctl_fixture_setup, ctl_fixture_teardown, 0,
			    LB_TESTS(test_checker_rejects, test_metrics, test_histograms,
				     test_metrics_escaping, test_gateway_metrics,
				     test_clients));
}
