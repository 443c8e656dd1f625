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

#include "listenaddr.h"

#define VIGILD_MAX_LABELS 16

struct vigild_opts {
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
	/*
	 * enum vigil_unwind: every tenant's until a policy says otherwise;
	 * VIGIL_UNWIND_FP also forbids stack copies whatever a policy says.
	 */
	unsigned unwind;
	bool top;             /* print a top-functions table each interval */
	bool top_forced;      /* --top or --no-top given explicitly */
	bool help, version;

	/* The control plane (all NULL / 0 without --control-plane). */
	const char *control_plane; /* the URL as given */
	char cp_host[256];         /* its host: a DNS name or an address (no brackets) */
	unsigned cp_port;          /* its port (default 4320) */
	const char *cert;          /* the agent's client certificate (PEM, + chain) */
	const char *key;           /* its private key (PEM, root-only) */
	const char *ca;            /* CA certificates the server's certificate must chain to */
	const char *policy_trust;  /* CA certificates policy signatures must chain to */
	const char *state_dir;     /* last-known-good policy and the instance id */
	unsigned poll_interval_s;  /* seconds between polls */
	const char *labels[VIGILD_MAX_LABELS]; /* "k=v" (point into argv) */
	unsigned nlabels;

	/* Export to Pyroscope (issue 11; all NULL / 0 without --export-url). */
	const char *export_url;        /* http[s]://HOST[:PORT][/PREFIX] */
	char export_host[256];         /* its host (no brackets) */
	unsigned export_port;          /* given, else 80 / 443 */
	bool export_https;
	const char *export_tenant;     /* X-Scope-OrgID */
	const char *export_basic_auth_file;   /* one line user:password, root's, 0600 */
	const char *export_bearer_token_file; /* one line, root's, 0600 */
	const char *export_ca;         /* CA bundle (PEM) for https (default: the system's) */
	const char *export_cert;       /* client certificate (PEM) for mutual TLS */
	const char *export_key;        /* its key (PEM), root's, 0600 */
	unsigned export_max_rate;      /* pushes per second at most (default 10) */
	/* Prometheus metrics, served by the uplink (docs/metrics.md). */
	struct listenaddr metrics; /* .none: off */
	bool metrics_given;        /* --metrics-listen given: failing to listen is fatal */
	/* Export's spool (spoolq.h). */
	unsigned long long spool_max_bytes; /* --spool-max-bytes (default 256 MiB) */
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
 * Not /var/lib/vigil itself: that directory holds profiles/ too, and must
 * stay root's so that no one else can rename entries in it (outdir.h).
 */
#define VIGILD_DEFAULT_STATE_DIR "/var/lib/vigil/state"
#define VIGILD_DEFAULT_CP_PORT 4320
#define VIGILD_DEFAULT_POLL 30
#define VIGILD_MAX_POLL 86400
#define VIGILD_DEFAULT_METRICS_LISTEN "127.0.0.1:9464"
#define VIGILD_LABELS_BYTES 2048  /* all --label k=v together, NULs included */
#define VIGILD_DEFAULT_EXPORT_MAX_RATE 10
#define VIGILD_MAX_EXPORT_MAX_RATE 1000
/* an https --export-url without --export-ca: the system's bundle, read by the monitor */
#define VIGILD_SYSTEM_CA "/etc/ssl/certs/ca-certificates.crt"

/*
 * Parse argv into *ret.  max_hz is the kernel's perf_event_max_sample_rate.
 * Returns 0, or -EINVAL with a message (no trailing newline) in err.
 */
int options_parse(int argc, char **argv, unsigned max_hz, struct vigild_opts *ret,
		  char *err, size_t errlen);

/*
 * Split an https://HOST[:PORT][/] URL: host (a DNS name, an IPv4 address,
 * or an IPv6 address in brackets, returned without them) and port
 * (VIGILD_DEFAULT_CP_PORT when absent).  0 or -EINVAL with a reason in err.
 */
int options_parse_url(const char *url, char *ret_host, size_t host_len, unsigned *ret_port,
		      char *err, size_t errlen);

/*
 * Whether s is a valid --label: KEY=VALUE, KEY of [A-Za-z0-9._/-] (1..63
 * bytes), VALUE of printable ASCII but ',' (0..255 bytes): selectors are
 * "k=v,k=v".  0 or -EINVAL with a reason in err.
 */
int options_check_label(const char *s, char *err, size_t errlen);

#define VIGILD_DEFAULT_SPOOL_MAX (256ull << 20)
#define VIGILD_MIN_SPOOL_MAX (4ull << 10)
#define VIGILD_MAX_SPOOL_MAX (1ull << 40)

/*
 * A size: digits, then nothing (bytes) or KiB, MiB, GiB (powers of 1024),
 * within [lo, hi].  0, -EINVAL (not such a size), -ERANGE.
 */
int options_parse_size(const char *s, unsigned long long lo, unsigned long long hi,
		       unsigned long long *ret);

/* The usage text, for --help. */
extern const char options_usage[];

#endif
