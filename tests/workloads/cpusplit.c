/*
 * cpusplit - burns CPU split between three functions by construction:
 * 50% burn_alpha, 30% burn_beta (both in this executable) and 20%
 * burn_gamma (in libvwl.so).
 *
 * The split is of thread CPU time, not wall time, so it holds however the
 * threads are scheduled next to other load: each thread runs cycles of
 * 10 slots (5 alpha, 3 beta, 2 gamma) and every function burns until its
 * own accumulated CPU time reaches its accumulated quota, so the overshoot
 * of one slice is paid back in the next.  The slots are shuffled and the
 * slice length drawn (2-8 ms) anew for every cycle: a fixed pattern of
 * fixed slices would alias with a sampler's fixed period (a 99 Hz sampler
 * hits every other 5 ms slice, and alpha held every other slot), so that
 * the samples of a 10 s run could be off by several points for nothing but
 * phase.  Each burn function
 * loops in its own frame and reads the clock only every ~50 us; samples
 * taken during that clock read still have the burn function on the stack,
 * so tests count a function's samples inclusively.
 *
 * Usage: cpusplit [--seconds S] [--threads N] [--duty PCT]
 * Threads are named split-0, split-1, ...  At exit it prints the CPU time
 * each function actually got.  --duty (default 100) makes each thread
 * sleep after every cycle for as long as keeps it busy PCT% of the time:
 * a process that is always there to be sampled, in a test that needs
 * some samples, not all the CPU.
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include "vwl.h"

#define SLICE_NS 5000000LL
#define CHECK_EVERY 32768
#define MAX_THREADS 64

void burn_alpha(long long ns);
void burn_beta(long long ns);

void burn_alpha(long long ns)
{
	long long end = vwl_thread_ns() + ns;

	do {
		for (volatile long i = 0; i < CHECK_EVERY; i++)
			;
	} while (vwl_thread_ns() < end);
}

void burn_beta(long long ns)
{
	long long end = vwl_thread_ns() + ns;

	do {
		for (volatile long i = 0; i < CHECK_EVERY; i++)
			;
	} while (vwl_thread_ns() < end);
}

struct worker {
	pthread_t thread;
	int index;
	long long end_mono;
	int duty;
	long long spent[3];
};

static void *split_run(void *arg)
{
	static void (*const burn[3])(long long) = {burn_alpha, burn_beta, burn_gamma};
	int pattern[10] = {0, 0, 0, 0, 0, 1, 1, 1, 2, 2};
	struct worker *w = arg;
	long long quota[3] = {0, 0, 0};
	unsigned seed = 0x9e3779b9u ^ (unsigned)w->index;
	char name[16];

	snprintf(name, sizeof(name), "split-%d", w->index);
	pthread_setname_np(pthread_self(), name);
	while (vwl_mono_ns() < w->end_mono) {
		long long busy0 = vwl_thread_ns();
		/* every slot of a cycle gets the same slice: the split stays exact */
		long long slice = SLICE_NS * 2 / 5 + rand_r(&seed) % (SLICE_NS * 6 / 5);

		for (int k = 9; k > 0; k--) { /* Fisher-Yates */
			int j = rand_r(&seed) % (k + 1), t = pattern[k];

			pattern[k] = pattern[j];
			pattern[j] = t;
		}
		for (int k = 0; k < 10; k++) {
			int f = pattern[k];
			long long left;

			quota[f] += slice;
			left = quota[f] - w->spent[f];
			if (left > 0) {
				long long t0 = vwl_thread_ns();

				burn[f](left);
				w->spent[f] += vwl_thread_ns() - t0;
			}
		}
		if (w->duty < 100) {
			long long idle = (vwl_thread_ns() - busy0) * (100 - w->duty) / w->duty;
			struct timespec ts = { idle / 1000000000LL, idle % 1000000000LL };

			nanosleep(&ts, NULL);
		}
	}
	return NULL;
}

int main(int argc, char **argv)
{
	static const char *const known[] = {"--seconds", "--threads", "--duty", NULL};
	double seconds = vwl_arg(argc, argv, known, "--seconds", 10, 0.01, 86400);
	int nthreads = (int)vwl_arg(argc, argv, known, "--threads", 1, 1, MAX_THREADS);
	int duty = (int)vwl_arg(argc, argv, known, "--duty", 100, 1, 100);
	static struct worker w[MAX_THREADS];
	long long end = vwl_mono_ns() + (long long)(seconds * 1e9);
	long long total[3] = {0, 0, 0}, sum;

	for (int i = 0; i < nthreads; i++) {
		w[i].index = i;
		w[i].end_mono = end;
		w[i].duty = duty;
		if (pthread_create(&w[i].thread, NULL, split_run, &w[i]) != 0) {
			fprintf(stderr, "cpusplit: cannot create thread %d\n", i);
			return 1;
		}
	}
	for (int i = 0; i < nthreads; i++) {
		pthread_join(w[i].thread, NULL);
		for (int f = 0; f < 3; f++)
			total[f] += w[i].spent[f];
	}
	sum = total[0] + total[1] + total[2];
	if (sum <= 0)
		sum = 1;
	printf("cpusplit: burn_alpha %.1f%% burn_beta %.1f%% burn_gamma %.1f%% of %.3f s CPU\n",
	       100.0 * total[0] / sum, 100.0 * total[1] / sum, 100.0 * total[2] / sum, sum / 1e9);
	return 0;
}
