/*
 * test_upmetrics.c - vigild's metrics page from fixed figures: what the
 * collector and the monitor send is refused when it cannot be meant (a
 * tenant name without its NUL, a state out of range, a ratio that is NaN,
 * infinite or negative, another protocol version), and the page carries
 * each family once with the values sent, tenant names escaped, the export
 * and spool figures, and the families that wait for data left out.
 */
#include <errno.h>
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <cmocka.h>

#include "upmetrics.h"

static char page[1 << 16];

static void fill(struct msg_collector_metrics *m)
{
	memset(m, 0, sizeof(*m));
	m->hdr.type = MSG_COLLECTOR_METRICS;
	m->hdr.len = sizeof(*m);
	m->version = PRIVSEP_VERSION;
	m->samples_total = 12345;
	m->lost_total = 7;
	m->user_stack_errors_total = 3;
	m->kernel_stack_errors_total = 4;
	m->stack_copy_lookups_total = 6;
	m->spool.bytes = 1000;
	m->spool.files = 2;
	m->spool.dropped_total = 5;
	m->ntenants = 2;
	snprintf(m->tenants[0].name, sizeof(m->tenants[0].name), "default");
	m->tenants[0].hz = 19;
	m->tenants[0].state = TENANT_OK;
	m->tenants[0].overhead_ratio = 0.00012;
	m->tenants[0].budget_ratio = 0.01;
	snprintf(m->tenants[1].name, sizeof(m->tenants[1].name), "we\"b");
	m->tenants[1].hz = 49;
	m->tenants[1].state = TENANT_OVER;
	m->tenants[1].overhead_ratio = 0.03;
	m->tenants[1].budget_ratio = 0.02;
}

static const char *render(struct upmetrics *u)
{
	struct promtext p;

	promtext_init(&p, page, sizeof(page));
	upmetrics_render(u, &p);
	assert_int_equal(promtext_error(&p), 0);
	return page;
}

static void test_refused(void **state)
{
	struct upmetrics u = { 0 };
	struct msg_collector_metrics m;
	struct msg_proc_metrics pm = { .version = PRIVSEP_VERSION };

	(void)state;
	fill(&m);
	assert_int_equal(upmetrics_take_collector(&u, &m), 0);
	m.version = PRIVSEP_VERSION + 1;
	assert_int_equal(upmetrics_take_collector(&u, &m), -EPROTO);
	fill(&m);
	m.ntenants = METRICS_MAX_TENANTS + 1;
	assert_int_equal(upmetrics_take_collector(&u, &m), -EPROTO);
	fill(&m);
	memset(m.tenants[1].name, 'a', sizeof(m.tenants[1].name));
	assert_int_equal(upmetrics_take_collector(&u, &m), -EPROTO);
	fill(&m);
	m.tenants[1].name[0] = '\0';
	assert_int_equal(upmetrics_take_collector(&u, &m), -EPROTO);
	fill(&m);
	m.tenants[0].state = TENANT_UNMEASURED + 1;
	assert_int_equal(upmetrics_take_collector(&u, &m), -EPROTO);
	fill(&m);
	m.tenants[0].overhead_ratio = NAN;
	assert_int_equal(upmetrics_take_collector(&u, &m), -EPROTO);
	fill(&m);
	m.tenants[1].budget_ratio = -0.5;
	assert_int_equal(upmetrics_take_collector(&u, &m), -EPROTO);
	fill(&m);
	m.tenants[1].overhead_ratio = INFINITY;
	assert_int_equal(upmetrics_take_collector(&u, &m), -EPROTO);
	/* a refused message leaves the figures kept before */
	assert_int_equal(u.col.samples_total, 12345);

	assert_int_equal(upmetrics_take_proc(&u, &pm), 0);
	pm.rows[1].valid = 2;
	assert_int_equal(upmetrics_take_proc(&u, &pm), -EPROTO);
	pm.rows[1].valid = 1;
	pm.rows[1].cpu_seconds = -1;
	assert_int_equal(upmetrics_take_proc(&u, &pm), -EPROTO);
	pm.rows[1].cpu_seconds = 1;
	pm.rows[2].start_time_seconds = NAN;
	assert_int_equal(upmetrics_take_proc(&u, &pm), -EPROTO);
}

static void test_page(void **state)
{
	struct upmetrics u = { 0 };
	struct msg_collector_metrics m;
	struct msg_proc_metrics pm = { .version = PRIVSEP_VERSION };
	struct export_stats e = { .state = EXPORT_FAILING, .pushed_total = 9, .rejected_total = 1,
				  .retries_total = 4 };
	const char *s;

	(void)state;
	/* nothing received yet: build info, export and control plane only */
	s = render(&u);
	assert_non_null(strstr(s, "vigil_build_info{version=\"" VIGIL_VERSION "\"} 1\n"));
	assert_null(strstr(s, "vigil_samples_total"));
	assert_null(strstr(s, "process_"));
	assert_non_null(strstr(s, "\nvigil_control_plane_connected 0\n"));
	assert_null(strstr(s, "vigil_policy_serial"));

	fill(&m);
	assert_int_equal(upmetrics_take_collector(&u, &m), 0);
	pm.rows[METRICS_PROC_UPLINK] = (struct proc_row){ .valid = 1, .flags = PROC_ROW_OPEN_FDS, .cpu_seconds = 1.5,
							  .start_time_seconds = 1700000000.25,
							  .resident_bytes = 4096, .open_fds = 9, .max_fds = 1024 };
	assert_int_equal(upmetrics_take_proc(&u, &pm), 0);
	u.exp = &e;
	u.control_plane = true;
	u.cp_connected = true;
	u.have_policy = true;
	u.policy_source = POLICY_SRC_REMOTE;
	u.policy_serial = 17;
	s = render(&u);
	assert_non_null(strstr(s, "\n# TYPE vigil_samples_total counter\nvigil_samples_total 12345\n"));
	assert_non_null(strstr(s, "\nvigil_samples_lost_total 7\n"));
	assert_non_null(strstr(s, "\nvigil_stack_walk_errors_total{kind=\"user\"} 3\n"
				  "vigil_stack_walk_errors_total{kind=\"kernel\"} 4\n"));
	assert_non_null(strstr(s, "\nvigil_stack_copy_lookups_total 6\n"));
	assert_non_null(strstr(s, "\nvigil_tenant_sampling_frequency_hertz{tenant=\"we\\\"b\"} 49\n"));
	assert_non_null(strstr(s, "\nvigil_tenant_overhead_ratio{tenant=\"default\"} 0.00012\n"));
	assert_non_null(strstr(s, "\nvigil_tenant_budget_ratio{tenant=\"we\\\"b\"} 0.02\n"));
	assert_non_null(strstr(s, "\nvigil_tenant_state{tenant=\"we\\\"b\",state=\"over\"} 1\n"));
	assert_non_null(strstr(s, "\nvigil_tenant_state{tenant=\"we\\\"b\",state=\"ok\"} 0\n"));
	assert_non_null(strstr(s, "\nvigil_export_profiles_total{result=\"pushed\"} 9\n"));
	assert_non_null(strstr(s, "\nvigil_export_profiles_total{result=\"rejected\"} 1\n"));
	assert_non_null(strstr(s, "\nvigil_export_profiles_total{result=\"dropped\"} 5\n"));
	assert_non_null(strstr(s, "\nvigil_export_retries_total 4\n"));
	assert_non_null(strstr(s, "\nvigil_export_failing 1\n"));
	assert_non_null(strstr(s, "\nvigil_spool_bytes 1000\n"));
	assert_non_null(strstr(s, "\nvigil_control_plane_connected 1\n"));
	assert_non_null(strstr(s, "\nvigil_policy_serial 17\n"));
	assert_non_null(strstr(s, "\nvigil_policy_source{source=\"remote\"} 1\n"));
	assert_non_null(strstr(s, "\nprocess_cpu_seconds_total{process=\"uplink\"} 1.5\n"));
	assert_non_null(strstr(s, "\nprocess_start_time_seconds{process=\"uplink\"} 1700000000.25\n"));
	assert_non_null(strstr(s, "\nprocess_open_fds{process=\"uplink\"} 9\n"));
	/* rows the monitor could not read are left out, not shown as zero */
	assert_null(strstr(s, "process=\"collector\""));
	/* each family's HELP once */
	for (const char *f = s; (f = strstr(f, "# HELP ")); f++) {
		char name[128];

		sscanf(f + 7, "%127s", name);
		{
			char help[160];

			snprintf(help, sizeof(help), "# HELP %s ", name);
			assert_null(strstr(f + 1, help));
		}
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_refused),
		cmocka_unit_test(test_page),
	};
	return cmocka_run_group_tests_name("upmetrics", tests, NULL, NULL);
}
