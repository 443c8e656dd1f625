/*
 * monitor.h - entry point of vigild's monitor, the privileged process.
 */
#ifndef VIGIL_MONITOR_H
#define VIGIL_MONITOR_H

#include "options.h"

/* Runs vigild; returns the process exit code (sysexits). */
int monitor_main(const struct vigild_opts *o);

#endif
