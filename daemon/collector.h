/*
 * collector.h - entry point of vigild's collector process (see collector.c).
 */
#ifndef VIGIL_COLLECTOR_H
#define VIGIL_COLLECTOR_H

/* Runs the collector until told to stop; returns the process exit code. */
int collector_main(void);

#endif
