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
#include "sysctl.h"
#include "policy.h"
#include "uplink.h"

#define EX_USAGE 64

int main(int argc, char **argv)
{
	struct vigild_opts o;
	char err[512];

	if (options_parse(argc, argv, sysctl_max_sample_rate(), &o, err, sizeof(err))) {
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
		int rc = policy_load_file(o.policy, sysctl_max_sample_rate(), &p, &errs);

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
