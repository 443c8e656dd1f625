/*
 * vwl.h - helpers shared by the test workloads in tests/workloads, all
 * implemented in libvwl.so so that every workload maps a shared library of
 * our own and profiles show frames from a DSO as well as from the executable.
 *
 * Workloads exist to have a known profile: they are built with frame
 * pointers, without inlining and without sibling calls (see the Makefile),
 * and every function named here is a real frame in a stack.
 */
#ifndef VWL_H
#define VWL_H

/* CPU time consumed by the calling thread, in nanoseconds. */
long long vwl_thread_ns(void);

/* CLOCK_MONOTONIC in nanoseconds. */
long long vwl_mono_ns(void);

/*
 * Value of option NAME ("--seconds") in argv, DEF when absent.  Accepts
 * "--name V" and "--name=V".  Any option not listed in KNOWN (a
 * NULL-terminated list of names) or a value that is not a number within
 * [MIN, MAX] prints one line to stderr and exits 64.
 */
double vwl_arg(int argc, char **argv, const char *const *known, const char *name,
	       double def, double min, double max);

/*
 * Burns NS nanoseconds of this thread's CPU time in a loop inside this very
 * function (the library's hot frame); used by cpusplit as its third share.
 */
void burn_gamma(long long ns);

/* Spins until CLOCK_MONOTONIC reaches END_NS, in this function. */
void vwl_lib_spin(long long end_ns);

#endif
