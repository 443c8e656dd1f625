/*
 * collector.h - entry point of vigild's collector process (see collector.c).
 */
#ifndef VIGIL_COLLECTOR_H
#define VIGIL_COLLECTOR_H

#include "exportstats.h"

/* Runs the collector until told to stop; returns the process exit code. */
int collector_main(void);

/*
 * The export spool's counters, kept current by the collector (all zero
 * with export off).  Valid in the collector process only.
 */
const struct spool_stats *collector_spool_stats(void);

#endif
