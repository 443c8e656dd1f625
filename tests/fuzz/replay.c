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
 * Each input runs in a child process of its own, so that a crash names its
 * input and one input cannot hide another's leak (LeakSanitizer runs when
 * the child exits), from a heap buffer of exactly its size (ASan catches a
 * read one byte past the end), under a time limit (60 s, or
 * $VIGIL_REPLAY_TIMEOUT seconds).  LLVMFuzzerInitialize,
 * if the target has one, runs first in each child, as libFuzzer runs it
 * first in its process.
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

/* The child: one input, then exit so that LeakSanitizer looks. */
static void __attribute__((noreturn)) run_child(struct replay *r, const char *path)
{
	uint8_t *data = NULL;
	size_t size = 0;
	int e;

	alarm(r->timeout_s);
	e = read_input(path, &data, &size);
	if (e < 0) {
		fprintf(stderr, "%s: %s\n", path, strerror(-e));
		_exit(2);
	}
	if (LLVMFuzzerInitialize)
		LLVMFuzzerInitialize(&r->argc, &r->argv);
	LLVMFuzzerTestOneInput(data, size);
	free(data);
	fflush(NULL);
	exit(0);
}

static void replay_one(struct replay *r, const char *path)
{
	int status;
	pid_t pid;

	r->n_inputs++;
	fflush(NULL);
	pid = fork();
	if (pid < 0) {
		note(r, "%s: fork: %s", path, strerror(errno));
		return;
	}
	if (pid == 0)
		run_child(r, path);
	while (waitpid(pid, &status, 0) < 0) {
		if (errno != EINTR) {
			note(r, "%s: waitpid: %s", path, strerror(errno));
			return;
		}
	}
	if (WIFSIGNALED(status) && WTERMSIG(status) == SIGALRM)
		note(r, "%s: still running after %u s", path, r->timeout_s);
	else if (WIFSIGNALED(status))
		note(r, "%s: killed by signal %d (%s)", path, WTERMSIG(status), strsignal(WTERMSIG(status)));
	else if (WEXITSTATUS(status) == 2)
		note(r, "%s: cannot be read", path);
	else if (WEXITSTATUS(status) != 0)
		note(r, "%s: exit %d (see the sanitizer report on stderr)", path, WEXITSTATUS(status));
}

static int by_name(const struct dirent **a, const struct dirent **b)
{
	return strcmp((*a)->d_name, (*b)->d_name);
}

static void replay_arg(struct replay *r, const char *arg)
{
	struct dirent **names;
	unsigned before = r->n_inputs;
	struct stat st;
	int n;

	if (stat(arg, &st) < 0) {
		note(r, "%s: %s (every fuzz target needs a corpus directory)", arg, strerror(errno));
		return;
	}
	if (S_ISREG(st.st_mode)) {
		replay_one(r, arg);
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
	for (int i = 0; i < n; i++) {
		char path[4096];

		if (names[i]->d_name[0] != '.' &&
		    (size_t)snprintf(path, sizeof(path), "%s/%s", arg, names[i]->d_name) < sizeof(path) &&
		    stat(path, &st) == 0 && S_ISREG(st.st_mode))
			replay_one(r, path);
		free(names[i]);
	}
	free(names);
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
