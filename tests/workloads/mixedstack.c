/*
 * mixedstack.c - stacks that mix code with and without frame pointers,
 * signal frames and the vDSO, for the unwinding tests (issue 12).
 *
 *   mixedstack [--seconds N]
 *
 * Built like every workload, with frame pointers; the functions marked
 * NOFP are built without, and clobber rbp while they run, as code built
 * -fomit-frame-pointer may.  It cycles every 20 ms through four phases,
 * each spinning in a known leaf:
 *
 *   fp_to_nofp:   main > phase_fp_to_nofp > nofp_middle > vwl_lib_spin
 *                 (a frame-pointer library called from code without)
 *   nofp_to_fp:   main > phase_nofp_to_fp > qsort (glibc, no frame
 *                 pointers) > ... > fp_compare_spin (a callback with them)
 *   signal:       main > phase_signal > ... interrupted by SIGALRM ...
 *                 > __restore_rt > on_alarm > handler_spin
 *   vdso:         main > phase_vdso > clock_gettime > [vdso]
 *
 * A frame-pointer walk stops at nofp_middle (rbp is 0 there); an
 * unwinder with CFI reaches main in every phase.
 */
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <time.h>

#include "vwl.h"

#define PHASE_NS 20000000LL
#define NOFP __attribute__((noinline, optimize("omit-frame-pointer")))

static volatile uint64_t sink;

NOFP void nofp_middle(long long end_ns)
{
	volatile char pad[64];

	pad[0] = 1;
	/* rbp holds no frame while this function runs (the compiler saves it around). */
	__asm__ volatile("xor %%ebp, %%ebp" ::: "rbp");
	vwl_lib_spin(end_ns);
	pad[1] = pad[0];
}

void phase_fp_to_nofp(long long end_ns)
{
	nofp_middle(end_ns);
}


int fp_compare_spin(const void *a, const void *b)
{
	/* spin a little in the callback, so that samples land here */
	for (int i = 0; i < 2000; i++)
		sink += (uint64_t)i * 7;
	return (*(const int *)a > *(const int *)b) - (*(const int *)a < *(const int *)b);
}

void phase_nofp_to_fp(long long end_ns)
{
	int v[256];

	while (vwl_mono_ns() < end_ns) {
		for (int i = 0; i < 256; i++)
			v[i] = (i * 7919) % 256;
		qsort(v, 256, sizeof(v[0]), fp_compare_spin);
	}
}

static volatile sig_atomic_t in_handler;

void handler_spin(void)
{
	long long end = vwl_mono_ns() + 2000000; /* 2 ms */

	while (vwl_mono_ns() < end)
		sink++;
}

void on_alarm(int sig)
{
	(void)sig;
	in_handler = 1;
	handler_spin();
	in_handler = 0;
}

void phase_signal(long long end_ns)
{
	struct itimerval it = { .it_interval = { 0, 2500 }, .it_value = { 0, 2500 } };

	setitimer(ITIMER_REAL, &it, NULL);
	while (vwl_mono_ns() < end_ns)
		sink++;
	memset(&it, 0, sizeof(it));
	setitimer(ITIMER_REAL, &it, NULL);
}

void phase_vdso(long long end_ns)
{
	struct timespec ts;

	do {
		clock_gettime(CLOCK_MONOTONIC, &ts);
	} while (ts.tv_sec * 1000000000LL + ts.tv_nsec < end_ns);
}

int main(int argc, char **argv)
{
	static const char *const known[] = { "--seconds", NULL };
	double seconds = vwl_arg(argc, argv, known, "--seconds", 10, 0.1, 3600);
	long long end = vwl_mono_ns() + (long long)(seconds * 1e9);
	struct sigaction sa;

	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_alarm;
	sigemptyset(&sa.sa_mask);
	sa.sa_flags = SA_RESTART;
	sigaction(SIGALRM, &sa, NULL);
	for (int phase = 0; vwl_mono_ns() < end; phase = (phase + 1) % 4) {
		long long until = vwl_mono_ns() + PHASE_NS;

		switch (phase) {
		case 0: phase_fp_to_nofp(until); break;
		case 1: phase_nofp_to_fp(until); break;
		case 2: phase_signal(until); break;
		case 3: phase_vdso(until); break;
		}
	}
	printf("%llu\n", (unsigned long long)sink);
	return 0;
}
