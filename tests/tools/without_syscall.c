/*
 * without_syscall.c - test tool: run a command on a kernel that seems to
 * lack some system calls.
 *
 *   without_syscall NAME[=ERRNO][,NAME[=ERRNO]...] COMMAND [ARG...]
 *
 * Installs a seccomp filter under which each named system call fails with
 * ENOSYS, as on a kernel built without it, or with ERRNO (EACCES or EPERM),
 * as on a kernel that refuses it, then execs COMMAND.  The filter is
 * inherited by everything COMMAND starts.  Used to show what vigild says on
 * a kernel without Landlock, and on a Debian kernel whose
 * kernel.perf_event_paranoid=3 refuses perf_event_open without
 * CAP_SYS_ADMIN (tests/integration/paranoid.sh).
 */
#include <errno.h>
#include <seccomp.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

int main(int argc, char **argv)
{
	scmp_filter_ctx ctx;
	char *names, *name, *save = NULL;

	if (argc < 3) {
		fprintf(stderr, "usage: without_syscall NAME[=ERRNO][,NAME[=ERRNO]...] COMMAND [ARG...]\n");
		return 64;
	}
	ctx = seccomp_init(SCMP_ACT_ALLOW);
	names = argv[1];
	for (name = strtok_r(names, ",", &save); name; name = strtok_r(NULL, ",", &save)) {
		char *eq = strchr(name, '=');
		int err = ENOSYS, nr;

		if (eq) {
			*eq = '\0';
			if (strcmp(eq + 1, "EACCES") == 0)
				err = EACCES;
			else if (strcmp(eq + 1, "EPERM") == 0)
				err = EPERM;
			else {
				fprintf(stderr, "without_syscall: %s: only ENOSYS (no =), EACCES or EPERM\n",
					eq + 1);
				return 64;
			}
		}
		nr = seccomp_syscall_resolve_name(name);
		if (nr == __NR_SCMP_ERROR || seccomp_rule_add(ctx, SCMP_ACT_ERRNO(err), nr, 0) < 0) {
			fprintf(stderr, "without_syscall: unknown system call %s\n", name);
			return 64;
		}
	}
	if (seccomp_load(ctx) < 0) {
		perror("without_syscall: seccomp_load");
		return 71;
	}
	execvp(argv[2], argv + 2);
	perror(argv[2]);
	return 127;
}
