/*
 * vigild.c - the program's entry point: parse the command line and become
 * the monitor, which starts the workers as programs of their own
 * (vigild-collector.c, vigild-uplink.c).
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "monitor.h"
#include "options.h"
#include "sysctl.h"
#include "policy.h"
#include "policyfile.h"

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
		/*
		 * Validate as the daemon would, with no privilege at all: the
		 * content, and whether the daemon would read the file at all
		 * (policyfile.h: no symlink, root's, written by root only).
		 */
		struct policy_errors errs;
		struct policy *p = NULL;
		char why[512];
		int rc = policy_load_file(o.policy, sysctl_max_sample_rate(), &p, &errs), fd = -1, trc;

		if (rc != 0 && rc != -EBADMSG) {
			fprintf(stderr, "vigild: %s: %s\n", o.policy, strerror(-rc));
			return rc == -ENOENT || rc == -EACCES ? 66 : 78;
		}
		for (size_t i = 0; rc && i < errs.n; i++)
			fprintf(stderr, "%s\n", errs.e[i].text);
		if (rc && errs.n_dropped)
			fprintf(stderr, "%s: and %zu more problems\n", o.policy, errs.n_dropped);
		trc = policyfile_open(o.policy, &fd, why, sizeof(why));
		if (fd >= 0)
			close(fd);
		if (trc)
			fprintf(stderr, "vigild: %s; vigild would refuse this file\n", why);
		if (rc == 0 && trc == 0)
			printf("%s: valid: %zu tenant(s) besides default\n", o.policy, p->n_tenants - 1);
		policy_free(p);
		return rc || trc ? 78 : 0;
	}
	if (!o.top_forced)
		o.top = isatty(STDOUT_FILENO);
	return monitor_main(&o);
}
