/*
 * options.h - vigild's command line.
 *
 * Parsing is separate from the entry point so that it can be unit-tested:
 * options_parse() never prints or exits; on error it fills a one-line
 * message for the caller to print before exiting with EX_USAGE (64).
 */
#ifndef VIGIL_OPTIONS_H
#define VIGIL_OPTIONS_H

#include <stdbool.h>
#include <stddef.h>

enum vigild_role {
	ROLE_MONITOR = 0, /* the process the operator starts */
	ROLE_COLLECTOR,   /* internal: re-executed by the monitor */
	ROLE_UPLINK,      /* internal: re-executed by the monitor */
};

struct vigild_opts {
	enum vigild_role role;
	unsigned hz;          /* sampling frequency per CPU */
	unsigned interval_s;  /* seconds per profile file */
	unsigned duration_s;  /* 0: until SIGINT/SIGTERM */
	const char *output;   /* profile directory (points into argv) */
	const char *bpf_dir;  /* directory of *.bpf.o; NULL: next to the binary, else installed */
	const char *trust;    /* CA bundle for BPF signatures; NULL: default (see monitor.c) */
	const char *crl;      /* optional CRL */
	unsigned max_hz;      /* ceiling the monitor enforces on any frequency */
	const char *policy;   /* tenants and budgets (YAML); NULL: one default tenant at hz */
	bool check;           /* with policy: validate it and exit */
	unsigned control_period_s; /* how often budgets are steered */
	bool build_id;        /* user stacks as build-id + offset (opt-in: ~3x BPF cost) */
	bool top;             /* print a top-functions table each interval */
	bool top_forced;      /* --top or --no-top given explicitly */
	bool help, version;
};

#define VIGILD_DEFAULT_HZ 19
#define VIGILD_DEFAULT_INTERVAL 10
#define VIGILD_DEFAULT_OUTPUT "/var/lib/vigil/profiles"
#define VIGILD_MAX_INTERVAL 3600
#define VIGILD_MAX_DURATION (366u * 24 * 3600)
#define VIGILD_DEFAULT_MAX_HZ 1000
#define VIGILD_DEFAULT_CONTROL_PERIOD 5
#define VIGILD_MAX_CONTROL_PERIOD 300
#define VIGILD_DEFAULT_TRUST "/etc/vigil/trust.pem"

/*
 * Parse argv into *ret.  max_hz is the kernel's perf_event_max_sample_rate.
 * Returns 0, or -EINVAL with a message (no trailing newline) in err.
 */
int options_parse(int argc, char **argv, unsigned max_hz, struct vigild_opts *ret,
		  char *err, size_t errlen);

/* The usage text, for --help. */
extern const char options_usage[];

#endif
