/*
 * uplink.h - entry point of vigild's uplink process (see uplink.c).
 */
#ifndef VIGIL_UPLINK_H
#define VIGIL_UPLINK_H

/* Runs the uplink until told to stop; returns the process exit code. */
int uplink_main(void);

#endif
