/*
 * replay.c - runs a libFuzzer target over saved inputs, without libFuzzer.
 *
 * make links every tests/fuzz/fuzz_<name>.c a second time, with this file
 * as its main (gcc, ASan and UBSan, build/libvigil-san.a), into
 * build/tests/fuzz/fuzz_<name>; make check (tests/run.sh) runs it over
 * tests/fuzz/corpus/<name>/, so that a regression on any saved input, seed
 * or past crash, fails the suite.  make fuzz still builds the real fuzzers
 * (clang, libFuzzer) into build/fuzz/.
 *
 * Usage: fuzz_<name> DIR|FILE...
 *
 * The inputs run in a child process, one after another as in libFuzzer's
 * own process, each from a heap buffer of exactly its size (ASan catches a
 * read one byte past the end) under a time limit (60 s, or
 * $VIGIL_REPLAY_TIMEOUT seconds); the child tells the parent through a
 * pipe which input it starts.  An input that crashes or hangs the child is
 * named, and a new child goes on after it.  LeakSanitizer looks when a
 * child exits: if it finds a leak, each input of that child runs again in
 * a child of its own, so that every leaking input is named and none hides
 * another's; the inputs a crashed child ran before its crash run again the
 * same way, since it never got to look.  (A child per input, as before,
 * cost 60 ms each here, forking and leak-checking an ASan process: over a
 * minute of make check.)  LLVMFuzzerInitialize, if the target has one,
 * runs first in each child, as libFuzzer runs it first in its process.
 *
 * Output: TAP, one result for the whole target:
 *   1..1
 *   ok 1 - fuzz_<name>: N inputs of DIR replayed
 * or "not ok 1 - fuzz_<name>: DIR/INPUT: killed by signal 6 ..." naming the
 * first failing input, with one "#" line per failing input after it.  An
 * argument that is missing, not a directory or file, or a directory with no
 * input in it is a failure too: a target without a corpus proves nothing.
 * Exit 0 when the result is ok, 1 otherwise.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
/* Optional in a target; NULL when it does not define one. */
int LLVMFuzzerInitialize(int *argc, char ***argv) __attribute__((weak));

#define REPLAY_MAX_INPUT (16u << 20) /* larger than any saved input should be */
#define REPLAY_TIMEOUT_S 60	     /* per input (VIGIL_REPLAY_TIMEOUT); libFuzzer's is 1200 */
#define REPLAY_MAX_NOTES 64
#define REPLAY_INIT UINT32_MAX	     /* a batch child's word for "in LLVMFuzzerInitialize" */

struct replay {
	const char *target;
	unsigned n_inputs, n_failed;
	char first[512];		   /* first failure, for the result line */
	char *notes[REPLAY_MAX_NOTES];	   /* one line per failure, "#" lines */
	unsigned n_notes;
	unsigned timeout_s;
	int argc;
	char **argv;
};

static void note(struct replay *r, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void note(struct replay *r, const char *fmt, ...)
{
	char line[512];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(line, sizeof(line), fmt, ap);
	va_end(ap);
	fprintf(stderr, "%s: %s\n", r->target, line); /* after any sanitizer report */
	if (r->n_failed++ == 0)
		snprintf(r->first, sizeof(r->first), "%s", line);
	if (r->n_notes < REPLAY_MAX_NOTES) {
		r->notes[r->n_notes] = strdup(line);
		if (r->notes[r->n_notes])
			r->n_notes++;
	}
}

/* Reads PATH into a buffer of exactly its size; 0 or -errno. */
static int read_input(const char *path, uint8_t **ret_data, size_t *ret_size)
{
	struct stat st;
	uint8_t *data;
	size_t got = 0;
	int fd = open(path, O_RDONLY | O_CLOEXEC);

	int e;

	if (fd < 0)
		return -errno;
	if (fstat(fd, &st) < 0) {
		e = -errno;
		close(fd);
		return e;
	}
	if (!S_ISREG(st.st_mode) || (uint64_t)st.st_size > REPLAY_MAX_INPUT) {
		close(fd);
		return S_ISREG(st.st_mode) ? -EFBIG : -EINVAL;
	}
	/* malloc(0) is a valid pointer to nothing under ASan, as in libFuzzer. */
	data = malloc((size_t)st.st_size);
	if (!data) {
		close(fd);
		return -ENOMEM;
	}
	while (got < (size_t)st.st_size) {
		ssize_t n = read(fd, data + got, (size_t)st.st_size - got);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			e = n < 0 ? -errno : -EIO;
			free(data);
			close(fd);
			return e;
		}
		got += (size_t)n;
	}
	close(fd);
	*ret_data = data;
	*ret_size = got;
	return 0;
}

/* What a child's exit status says of PATH, the input it was running. */
static void judge(struct replay *r, const char *path, int status)
{
	if (WIFSIGNALED(status) && WTERMSIG(status) == SIGALRM)
		note(r, "%s: still running after %u s", path, r->timeout_s);
	else if (WIFSIGNALED(status))
		note(r, "%s: killed by signal %d (%s)", path, WTERMSIG(status), strsignal(WTERMSIG(status)));
	else if (WEXITSTATUS(status) == 2)
		note(r, "%s: cannot be read", path);
	else if (WEXITSTATUS(status) != 0)
		note(r, "%s: exit %d (see the sanitizer report on stderr)", path, WEXITSTATUS(status));
}

static bool clean(int status)
{
	return WIFEXITED(status) && WEXITSTATUS(status) == 0;
}

static int wait_child(pid_t pid, int *ret_status)
{
	while (waitpid(pid, ret_status, 0) < 0)
		if (errno != EINTR)
			return -errno;
	return 0;
}

/* The child of a batch: paths[lo, hi), each announced on fd before it runs, then hi. */
static void __attribute__((noreturn)) run_batch_child(struct replay *r, char **paths, size_t lo,
						     size_t hi, int fd)
{
	uint32_t init = REPLAY_INIT;

	alarm(r->timeout_s);
	if (write(fd, &init, sizeof(init)) != (ssize_t)sizeof(init))
		_exit(3);
	if (LLVMFuzzerInitialize)
		LLVMFuzzerInitialize(&r->argc, &r->argv);
	for (size_t i = lo; i <= hi; i++) {
		uint32_t at = (uint32_t)i;
		uint8_t *data = NULL;
		size_t size = 0;
		int e;

		if (write(fd, &at, sizeof(at)) != (ssize_t)sizeof(at))
			_exit(3);
		if (i == hi)
			break;
		alarm(r->timeout_s);
		e = read_input(paths[i], &data, &size);
		if (e < 0) {
			fprintf(stderr, "%s: %s\n", paths[i], strerror(-e));
			_exit(2);
		}
		LLVMFuzzerTestOneInput(data, size);
		free(data);
	}
	alarm(r->timeout_s); /* LeakSanitizer and atexit handlers, timed too */
	fflush(NULL);
	exit(0); /* LeakSanitizer looks now */
}

/*
 * paths[lo, hi) in one child: 0, with *ret_stop the input it was running
 * when it ended (hi: it ran them all; REPLAY_INIT: it never got past
 * LLVMFuzzerInitialize) and its exit status; -errno when it could not run.
 */
static int run_batch(struct replay *r, char **paths, size_t lo, size_t hi, size_t *ret_stop,
		     int *ret_status)
{
	uint32_t at;
	size_t stop = REPLAY_INIT;
	int p[2], e;
	pid_t pid;

	if (pipe2(p, O_CLOEXEC) < 0)
		return -errno;
	fflush(NULL);
	pid = fork();
	if (pid < 0) {
		e = -errno;
		close(p[0]);
		close(p[1]);
		return e;
	}
	if (pid == 0) {
		close(p[0]);
		run_batch_child(r, paths, lo, hi, p[1]);
	}
	close(p[1]);
	for (;;) {
		ssize_t n = read(p[0], &at, sizeof(at));

		if (n < 0 && errno == EINTR)
			continue;
		if (n != (ssize_t)sizeof(at))
			break;
		if (at == REPLAY_INIT || (at >= lo && at <= hi))
			stop = at;
	}
	close(p[0]);
	e = wait_child(pid, ret_status);
	*ret_stop = stop;
	return e;
}

/* paths[i] in a child of its own. */
static void replay_one(struct replay *r, char **paths, size_t i)
{
	size_t stop;
	int status, e;

	r->n_inputs++;
	e = run_batch(r, paths, i, i + 1, &stop, &status);
	if (e < 0)
		note(r, "%s: cannot run it: %s", paths[i], strerror(-e));
	else if (!clean(status))
		judge(r, stop == REPLAY_INIT ? "LLVMFuzzerInitialize" : paths[i], status);
}

/* paths[lo, hi): in batches, every failing input named (see the top). */
static void replay_range(struct replay *r, char **paths, size_t lo, size_t hi)
{
	while (lo < hi) {
		size_t stop;
		int status;

		if (run_batch(r, paths, lo, hi, &stop, &status) < 0) {
			for (size_t i = lo; i < hi; i++)
				replay_one(r, paths, i);
			return;
		}
		if (stop == REPLAY_INIT) {
			/* No input can run: said once, for the target. */
			judge(r, "LLVMFuzzerInitialize", status);
			return;
		}
		if (stop == hi) {
			if (clean(status)) {
				r->n_inputs += (unsigned)(hi - lo);
			} else {
				/* A leak (or an exit that went wrong): each input alone. */
				unsigned failed = r->n_failed;

				for (size_t i = lo; i < hi; i++)
					replay_one(r, paths, i);
				if (r->n_failed == failed)
					note(r, "%s to %s: together, exit status 0x%x; none fails alone "
						"(state one input leaves to another?)", paths[lo], paths[hi - 1],
					     (unsigned)status);
			}
			return;
		}
		r->n_inputs++;
		judge(r, paths[stop], status);
		/* Those before it ran, but the child never looked for their leaks. */
		replay_range(r, paths, lo, stop);
		lo = stop + 1;
	}
}

static int by_name(const struct dirent **a, const struct dirent **b)
{
	return strcmp((*a)->d_name, (*b)->d_name);
}

static void replay_arg(struct replay *r, const char *arg)
{
	struct dirent **names;
	unsigned before = r->n_inputs;
	char **paths;
	size_t np = 0;
	struct stat st;
	int n;

	if (stat(arg, &st) < 0) {
		note(r, "%s: %s (every fuzz target needs a corpus directory)", arg, strerror(errno));
		return;
	}
	if (S_ISREG(st.st_mode)) {
		char *one = strdup(arg);

		if (one)
			replay_range(r, &one, 0, 1);
		else
			note(r, "%s: %s", arg, strerror(ENOMEM));
		free(one);
		return;
	}
	if (!S_ISDIR(st.st_mode)) {
		note(r, "%s: neither a file nor a directory", arg);
		return;
	}
	n = scandir(arg, &names, NULL, by_name);
	if (n < 0) {
		note(r, "%s: %s", arg, strerror(errno));
		return;
	}
	paths = calloc((size_t)n + 1, sizeof(*paths));
	for (int i = 0; i < n; i++) {
		char path[4096];

		if (paths && names[i]->d_name[0] != '.' &&
		    (size_t)snprintf(path, sizeof(path), "%s/%s", arg, names[i]->d_name) < sizeof(path) &&
		    stat(path, &st) == 0 && S_ISREG(st.st_mode) && (paths[np] = strdup(path)))
			np++;
		free(names[i]);
	}
	free(names);
	if (!paths) {
		note(r, "%s: %s", arg, strerror(ENOMEM));
		return;
	}
	replay_range(r, paths, 0, np);
	for (size_t i = 0; i < np; i++)
		free(paths[i]);
	free(paths);
	if (r->n_inputs == before)
		note(r, "%s: no input in the corpus directory", arg);
}

int main(int argc, char **argv)
{
	struct replay r = { .target = basename(argv[0]), .argc = argc, .argv = argv,
			    .timeout_s = REPLAY_TIMEOUT_S };
	const char *t = getenv("VIGIL_REPLAY_TIMEOUT");

	if (t && atoi(t) > 0)
		r.timeout_s = (unsigned)atoi(t);

	printf("1..1\n");
	if (argc < 2)
		note(&r, "usage: %s DIR|FILE...", r.target);
	for (int i = 1; i < argc; i++)
		replay_arg(&r, argv[i]);
	if (r.n_failed == 0) {
		printf("ok 1 - %s: %u input(s) of", r.target, r.n_inputs);
		for (int i = 1; i < argc; i++)
			printf(" %s", argv[i]);
		printf(" replayed\n");
	} else {
		printf("not ok 1 - %s: %s", r.target, r.first);
		if (r.n_failed > 1)
			printf(" (and %u more failure(s))", r.n_failed - 1);
		printf("\n");
		for (unsigned i = 0; i < r.n_notes; i++)
			printf("# %s\n", r.notes[i]);
	}
	for (unsigned i = 0; i < r.n_notes; i++)
		free(r.notes[i]);
	return r.n_failed ? 1 : 0;
}
