/*
 * exportstats.h - the counters of profile export, shared by the processes
 * that keep them and the code that reports them (Prometheus metrics,
 * systemd STATUS=, health).
 *
 * struct export_stats is kept by the uplink (exporter: pushes to
 * Pyroscope); struct spool_stats by the collector (the spool in the output
 * directory).  Counters (_total) only grow; the others are gauges.  Plain
 * fixed-width fields so that either can cross a privsep socket as it is.
 */
#ifndef VIGIL_EXPORTSTATS_H
#define VIGIL_EXPORTSTATS_H

#include <stdint.h>

enum export_state {
	EXPORT_OFF = 0,      /* no export target configured */
	EXPORT_IDLE = 1,     /* configured, nothing waiting */
	EXPORT_SENDING = 2,  /* configured, last push succeeded, more waiting */
	EXPORT_FAILING = 3,  /* the last attempt failed; retrying with backoff */
};

struct export_stats {
	uint32_t state;             /* enum export_state */
	int32_t last_http_status;   /* of the last attempt; 0: none or a network error */
	uint64_t pushed_total;      /* profiles the server accepted (2xx) */
	uint64_t rejected_total;    /* profiles refused for good (4xx but 429): dropped */
	uint64_t retries_total;     /* attempts that failed and were retried */
	uint64_t request_bytes_total; /* request bodies sent, every attempt */
	uint64_t samples_total;     /* pprof samples in the profiles pushed */
};

struct spool_stats {
	uint64_t bytes;             /* spool files waiting for a push, bytes */
	uint64_t files;             /* ... and files */
	uint64_t written_total;     /* profiles (series) written into the spool */
	uint64_t dropped_total;     /* profiles (series) dropped: past --spool-max-bytes */
	uint64_t dropped_bytes_total;
};

#endif
