/*
 * uplinklocal.h - entry point of vigild-uplink-local, the uplink when
 * vigild has neither a control plane nor an export target (see uplinklocal.c).
 */
#ifndef VIGIL_UPLINKLOCAL_H
#define VIGIL_UPLINKLOCAL_H

/* Runs the uplink until told to stop; returns the process exit code. */
int uplinklocal_main(void);

#endif
