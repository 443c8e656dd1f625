/*
 * tscclock.h - timing short stretches of work cheaply: the CPU's
 * time-stamp counter, scaled to nanoseconds by CLOCK_MONOTONIC.
 *
 * The collector times the unwinding of every record (what it charges
 * each tenant, budgets.h): two clock reads a record.  clock_gettime goes
 * through the vDSO, which on a VM reads the paravirtual clock's page; in
 * the collector, between records that evict it, that was 11% of its CPU
 * in the steady state on this project's VMs (perf).  rdtsc is one
 * instruction.  It is used only where the CPU says its counter is
 * invariant (CPUID 0x80000007 EDX bit 8: same rate in every P- and
 * C-state, as Linux's nonstop_tsc) and only once its rate is known:
 * tscclock_calibrate() measures it against CLOCK_MONOTONIC from the
 * first call on, and until 100 ms have passed the clock is read instead.
 * The scale is refitted at every call over the whole time since, so its
 * error shrinks as the collector runs.
 *
 * Not thread-safe; one per thread.
 */
#ifndef VIGIL_TSCCLOCK_H
#define VIGIL_TSCCLOCK_H

#include <stdbool.h>
#include <stdint.h>

/* How long the counter is measured against the clock before it is used. */
#define TSCCLOCK_CALIBRATE_NS 100000000ull

struct tscclock {
	bool invariant;     /* the CPU's counter runs at one rate */
	uint64_t tsc0, mono0; /* the first calibration's reading */
	double ns_per_tick; /* 0 until calibrated: tscclock_read() reads the clock */
};

/* Set up t; which counter it will use is decided here (CPUID). */
void tscclock_init(struct tscclock *t);

/* Note the time (CLOCK_MONOTONIC, mono_now) and refit the counter's rate. */
void tscclock_calibrate(struct tscclock *t, uint64_t mono_now);

/* A reading: counter ticks once calibrated, else CLOCK_MONOTONIC ns. */
uint64_t tscclock_read(const struct tscclock *t);

/* Nanoseconds between two readings a and b (b later), taken with no calibration between them. */
uint64_t tscclock_ns(const struct tscclock *t, uint64_t a, uint64_t b);

#endif
