/*
 * vigild.c - the program's entry point: parse the command line and become
 * the monitor, or (when re-executed by the monitor) a worker.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "collector.h"
#include "monitor.h"
#include "options.h"
#include "policy.h"
#include "uplink.h"

#define EX_USAGE 64

static unsigned max_sample_rate(void)
{
	char buf[32];
	unsigned long v;
	ssize_t n;
	int fd;

	fd = open("/proc/sys/kernel/perf_event_max_sample_rate", O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return 100000;
	n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n <= 0)
		return 100000;
	buf[n] = '\0';
	v = strtoul(buf, NULL, 10);
	return v ? (unsigned)v : 100000;
}

int main(int argc, char **argv)
{
	struct vigild_opts o;
	char err[512];

	if (options_parse(argc, argv, max_sample_rate(), &o, err, sizeof(err))) {
		fprintf(stderr, "vigild: %s\n", err);
		return EX_USAGE;
	}
	if (o.help) {
		fputs(options_usage, stdout);
		return 0;
	}
	if (o.version) {
		puts("vigild " VIGIL_VERSION);
		return 0;
	}
	if (o.check) {
		/* Validate as the daemon would, with no privilege at all. */
		struct policy_errors errs;
		struct policy *p = NULL;
		int rc = policy_load_file(o.policy, max_sample_rate(), &p, &errs);

		if (rc == 0) {
			printf("%s: valid: %zu tenant(s) besides default\n", o.policy, p->n_tenants - 1);
			policy_free(p);
			return 0;
		}
		if (rc != -EBADMSG) {
			fprintf(stderr, "vigild: %s: %s\n", o.policy, strerror(-rc));
			return rc == -ENOENT || rc == -EACCES ? 66 : 78;
		}
		for (size_t i = 0; i < errs.n; i++)
			fprintf(stderr, "%s\n", errs.e[i].text);
		if (errs.n_dropped)
			fprintf(stderr, "%s: and %zu more problems\n", o.policy, errs.n_dropped);
		return 78;
	}
	if (o.role == ROLE_COLLECTOR)
		return collector_main();
	if (o.role == ROLE_UPLINK)
		return uplink_main();
	if (!o.top_forced)
		o.top = isatty(STDOUT_FILENO);
	return monitor_main(&o);
}
