/*
 * cpopts.h - vigil-cp's command line.
 *
 * Parsing is apart from the entry point so that it can be tested:
 * cpopts_parse() never prints or exits; on error it fills a one-line
 * message for vigil-cp.c to print before exiting with EX_USAGE (64).
 * Every string in struct cpopts points into argv (or is a literal default).
 */
#ifndef VIGIL_CPOPTS_H
#define VIGIL_CPOPTS_H

#include <stdbool.h>
#include <stddef.h>

#include "listenaddr.h"

/*
 * The listener defaults to loopback: a fresh vigil-cp is reachable by
 * nobody until the operator names the address agents should reach
 * (--listen 0.0.0.0:4320 or [::]:4320).  4320 is OpAMP's default port.
 */
#define CPOPTS_DEFAULT_HOST "127.0.0.1"
#define CPOPTS_DEFAULT_PORT 4320
#define CPOPTS_DEFAULT_DB "sqlite:/var/lib/vigil-cp/vigil-cp.db"
/* Enough for 10k agents polling over keep-alive, with headroom. */
#define CPOPTS_DEFAULT_MAX_CONNECTIONS 16384u
#define CPOPTS_MAX_MAX_CONNECTIONS 1000000u
/* An idle keep-alive connection is closed after this; above OpAMP's 30 s poll. */
#define CPOPTS_DEFAULT_IDLE_TIMEOUT 90u
#define CPOPTS_MAX_IDLE_TIMEOUT 3600u
/* What an overloaded server tells clients to wait (Retry-After, retry_info). */
#define CPOPTS_DEFAULT_RETRY_AFTER 30u
#define CPOPTS_MAX_RETRY_AFTER 3600u

/* Certificates signed in the CSR flow (--issued-days). */
#define CPOPTS_DEFAULT_ISSUED_DAYS 30u
#define CPOPTS_MAX_ISSUED_DAYS 3650u

/* The audit log's checkpoints (checkpoint.h: no spaces, no '+'). */
#define CPOPTS_DEFAULT_AUDIT_ORIGIN "vigil-cp/audit-log"

/*
 * Prometheus metrics: plain HTTP on loopback, a port of their own (vigild's
 * default is 9464: both may run on one host).
 */
#define CPOPTS_DEFAULT_METRICS_LISTEN "127.0.0.1:9465"

enum cp_log_level {
	CP_LOG_WARN = 0,	/* refusals and failures only */
	CP_LOG_INFO,		/* + start, reload, stop (the default) */
	CP_LOG_DEBUG,		/* + one line per request served */
};

struct cpopts {
	char host[256];			/* address to listen on, without brackets */
	unsigned port;
	const char *cert, *key;		/* server certificate (chain) and key, PEM */
	const char *agent_ca, *admin_ca;/* who may connect, and as what */
	const char *crl;		/* NULL: no revocation check */
	const char *policy_trust;	/* CAs that policy signers chain to */
	const char *db;			/* "sqlite:PATH" or "postgresql://..." */
	const char *issuer_cert, *issuer_key;	/* both or neither: the CSR flow's issuer */
	unsigned issued_days;
	unsigned max_connections;
	unsigned idle_timeout_s;
	unsigned retry_after_s;
	enum cp_log_level log_level;
	const char *audit_key;		/* Ed25519 PEM private key, or NULL: no checkpoints */
	const char *audit_origin;	/* the checkpoints' origin (and key name) */
	struct listenaddr metrics;	/* GET /metrics; .none: off */
	bool metrics_given;		/* --metrics-listen given: failing to listen is fatal */
	bool help, version;
};

/* Returns 0, or -EINVAL with a one-line message (no trailing newline) in err. */
int cpopts_parse(int argc, char **argv, struct cpopts *ret, char *err, size_t errlen);

/* The usage text, for --help. */
extern const char cpopts_usage[];

#endif
