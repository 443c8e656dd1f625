/*
 * bpf_floor - attach a BPF object's first program to a software cpu-clock
 * perf event on every online CPU, keep it attached for a while, and exit.
 *
 * Usage: bpf_floor --hz N --duration S OBJ
 *
 * With build/bpf/empty.bpf.o this is the benchmark's floor: the cost of
 * sampling at N Hz with a program that does nothing.  With --duration 0 it
 * attaches and detaches at once, which makes it a probe for "can this host
 * run perf_event BPF programs" (tests/integration/lib.sh uses it so).
 *
 * Once attached it prints "bpf_floor: prog_id=ID cpus=N hz=N" on stdout.
 * SIGINT/SIGTERM end the wait early.  Exit codes: 0 done, 64 usage, 77 not
 * permitted (needs root or CAP_BPF + CAP_PERFMON), 1 any other failure.
 */
#include <errno.h>
#include <limits.h>
#include <linux/perf_event.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include <bpf/bpf.h>
#include <bpf/libbpf.h>

#define MAX_CPUS 4096
#define MAX_HZ 100000
#define MAX_DURATION 86400

static void usage(void)
{
	fprintf(stderr, "usage: bpf_floor --hz N --duration S OBJ\n");
	exit(64);
}

static long parse_num(const char *what, const char *s, long min, long max)
{
	char *end;
	long v;

	errno = 0;
	v = strtol(s, &end, 10);
	if (errno || end == s || *end || v < min || v > max) {
		fprintf(stderr, "bpf_floor: %s must be an integer in [%ld, %ld], not '%s'\n",
			what, min, max, s);
		exit(64);
	}
	return v;
}

static int exit_code(int err)
{
	err = err < 0 ? -err : err;
	return err == EPERM || err == EACCES ? 77 : 1;
}

/* CPUs listed in /sys/devices/system/cpu/online ("0-3,5"), into cpus[]. */
static int online_cpus(int *cpus, int max)
{
	char buf[4096], *p = buf;
	int n = 0;
	FILE *f = fopen("/sys/devices/system/cpu/online", "re");

	if (!f)
		return -errno;
	if (!fgets(buf, sizeof(buf), f)) {
		fclose(f);
		return -EIO;
	}
	fclose(f);
	while (*p && *p != '\n') {
		char *end;
		long lo = strtol(p, &end, 10), hi = lo;

		if (end == p)
			return -EINVAL;
		p = end;
		if (*p == '-') {
			hi = strtol(p + 1, &end, 10);
			if (end == p + 1)
				return -EINVAL;
			p = end;
		}
		for (long c = lo; c <= hi; c++) {
			if (n >= max)
				return -E2BIG;
			cpus[n++] = (int)c;
		}
		if (*p == ',')
			p++;
	}
	return n;
}

int main(int argc, char **argv)
{
	static int cpus[MAX_CPUS];
	static struct bpf_link *links[MAX_CPUS];
	long hz = -1, duration = -1;
	const char *path = NULL;
	struct bpf_object *obj;
	struct bpf_program *prog;
	struct bpf_prog_info info;
	__u32 info_len = sizeof(info);
	int ncpus, nlinks = 0, rc = 0, err;

	for (int i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--hz") == 0 && i + 1 < argc)
			hz = parse_num("--hz", argv[++i], 1, MAX_HZ);
		else if (strcmp(argv[i], "--duration") == 0 && i + 1 < argc)
			duration = parse_num("--duration", argv[++i], 0, MAX_DURATION);
		else if (argv[i][0] != '-' && !path)
			path = argv[i];
		else
			usage();
	}
	if (hz < 0 || duration < 0 || !path)
		usage();

	ncpus = online_cpus(cpus, MAX_CPUS);
	if (ncpus <= 0) {
		fprintf(stderr, "bpf_floor: cannot read online CPUs: %s\n", strerror(-ncpus));
		return 1;
	}

	obj = bpf_object__open_file(path, NULL);
	if (!obj) {
		err = errno;
		fprintf(stderr, "bpf_floor: %s: %s\n", path, strerror(err));
		return 1;
	}
	err = bpf_object__load(obj);
	if (err) {
		fprintf(stderr, "bpf_floor: loading %s: %s\n", path, strerror(-err));
		bpf_object__close(obj);
		return exit_code(err);
	}
	prog = bpf_object__next_program(obj, NULL);
	if (!prog) {
		fprintf(stderr, "bpf_floor: %s has no program\n", path);
		bpf_object__close(obj);
		return 1;
	}

	for (int i = 0; i < ncpus; i++) {
		struct perf_event_attr attr = {
			.type = PERF_TYPE_SOFTWARE,
			.size = sizeof(attr),
			.config = PERF_COUNT_SW_CPU_CLOCK,
			.freq = 1,
			.sample_freq = (__u64)hz,
		};
		int fd = (int)syscall(SYS_perf_event_open, &attr, -1, cpus[i], -1,
				      PERF_FLAG_FD_CLOEXEC);

		if (fd < 0) {
			err = errno;
			fprintf(stderr, "bpf_floor: perf_event_open(cpu-clock, cpu %d, %ld Hz): %s\n",
				cpus[i], hz, strerror(err));
			rc = exit_code(err);
			goto out;
		}
		links[nlinks] = bpf_program__attach_perf_event(prog, fd);
		if (!links[nlinks]) {
			err = errno;
			close(fd);
			fprintf(stderr, "bpf_floor: attaching to cpu %d: %s\n", cpus[i], strerror(err));
			rc = exit_code(err);
			goto out;
		}
		nlinks++;
	}

	memset(&info, 0, sizeof(info));
	if (bpf_obj_get_info_by_fd(bpf_program__fd(prog), &info, &info_len) == 0)
		printf("bpf_floor: prog_id=%u cpus=%d hz=%ld\n", info.id, ncpus, hz);
	else
		printf("bpf_floor: prog_id=? cpus=%d hz=%ld\n", ncpus, hz);
	fflush(stdout);

	if (duration > 0) {
		sigset_t set;
		struct timespec ts = {.tv_sec = duration};

		sigemptyset(&set);
		sigaddset(&set, SIGINT);
		sigaddset(&set, SIGTERM);
		sigprocmask(SIG_BLOCK, &set, NULL);
		while (sigtimedwait(&set, NULL, &ts) < 0 && errno == EINTR)
			;
	}
out:
	for (int i = 0; i < nlinks; i++)
		bpf_link__destroy(links[i]);
	bpf_object__close(obj);
	return rc;
}
