/*
 * cpopts.c - vigil-cp's command line (see cpopts.h).
 */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "checkpoint.h"
#include "decimal.h"
#include "cpopts.h"

const char cpopts_usage[] =
	"usage: vigil-cp --cert FILE --key FILE --agent-ca FILE --admin-ca FILE\n"
	"                --policy-trust FILE [options]\n"
	"\n"
	"The Vigil control plane: steers vigild agents with OpAMP over mutual TLS\n"
	"(POST /v1/opamp) and serves the admin API (/api/v1/) on the same listener.\n"
	"\n"
	"  --listen ADDR[:PORT]     address to listen on (default " CPOPTS_DEFAULT_HOST ":4320;\n"
	"                           IPv6 as [::1]:4320; 0.0.0.0:4320 for every interface)\n"
	"  --cert FILE              server certificate, PEM, followed by its chain\n"
	"  --key FILE               the server certificate's private key, PEM\n"
	"  --agent-ca FILE          CA certificates (PEM) of agents: /v1/opamp only\n"
	"  --admin-ca FILE          CA certificates (PEM) of administrators: /api/v1/ only\n"
	"  --crl FILE               CRLs (PEM, or one DER) covering both CAs' certificates\n"
	"  --policy-trust FILE      CA certificates that policy signers must chain to\n"
	"  --issuer-cert FILE       with --issuer-key: sign agents' certificate requests\n"
	"                           (OpAMP's CSR flow) with this CA, the agent CA or an\n"
	"                           intermediate under it (PEM, then its chain)\n"
	"  --issuer-key FILE        the issuer's private key, PEM\n"
	"  --issued-days N          lifetime of the certificates issued (default 30)\n"
	"  --db sqlite:PATH|postgresql://...\n"
	"                           the store (default " CPOPTS_DEFAULT_DB ")\n"
	"  --max-connections N      connections served at once (default 16384); a few\n"
	"                           more are answered 503 with Retry-After, then\n"
	"                           accepting pauses until a connection closes\n"
	"  --idle-timeout S         close a connection idle (or stalled) for S seconds\n"
	"                           (default 90)\n"
	"  --retry-after S          what overload replies ask clients to wait (default 30)\n"
	"  --log-level LEVEL        warn, info (default) or debug (one line per request)\n"
	"  --audit-key FILE         Ed25519 private key (PEM) that signs the audit log's\n"
	"                           checkpoints (GET /api/v1/audit/checkpoint); without\n"
	"                           it the log is kept but no checkpoint is served\n"
	"  --audit-origin NAME      the checkpoints' origin line and key name (default\n"
	"                           " CPOPTS_DEFAULT_AUDIT_ORIGIN "); the same on every server of a fleet\n"
	"  --metrics-listen ADDR:PORT|none\n"
	"                           serve Prometheus metrics over plain HTTP at\n"
	"                           http://ADDR:PORT/metrics (default " CPOPTS_DEFAULT_METRICS_LISTEN ");\n"
	"                           if the default is taken, vigil-cp runs without\n"
	"  -h, --help               this text\n"
	"  --version                print the version\n"
	"\n"
	"Every client presents a certificate: one that chains to --agent-ca is an\n"
	"agent, one that chains to --admin-ca an administrator.  SIGHUP reloads the\n"
	"certificate, key, CAs, CRL and policy trust; a reload that fails keeps the\n"
	"running configuration.  Exit codes: 64 usage, 66 a file cannot be read,\n"
	"78 a file's contents are unusable, 69 the listener or store is unavailable,\n"
	"70 internal error.\n";

enum { OPT_LISTEN = 256, OPT_CERT, OPT_KEY, OPT_AGENT_CA, OPT_ADMIN_CA, OPT_CRL, OPT_POLICY_TRUST,
       OPT_DB, OPT_MAX_CONN, OPT_IDLE, OPT_RETRY, OPT_LOG_LEVEL, OPT_VERSION, OPT_ISSUER_CERT,
       OPT_ISSUER_KEY, OPT_ISSUED_DAYS, OPT_AUDIT_KEY, OPT_AUDIT_ORIGIN, OPT_METRICS_LISTEN };

static const struct option long_opts[] = {
	{ "listen", required_argument, NULL, OPT_LISTEN },
	{ "cert", required_argument, NULL, OPT_CERT },
	{ "key", required_argument, NULL, OPT_KEY },
	{ "agent-ca", required_argument, NULL, OPT_AGENT_CA },
	{ "admin-ca", required_argument, NULL, OPT_ADMIN_CA },
	{ "crl", required_argument, NULL, OPT_CRL },
	{ "policy-trust", required_argument, NULL, OPT_POLICY_TRUST },
	{ "db", required_argument, NULL, OPT_DB },
	{ "issuer-cert", required_argument, NULL, OPT_ISSUER_CERT },
	{ "issuer-key", required_argument, NULL, OPT_ISSUER_KEY },
	{ "issued-days", required_argument, NULL, OPT_ISSUED_DAYS },
	{ "audit-key", required_argument, NULL, OPT_AUDIT_KEY },
	{ "audit-origin", required_argument, NULL, OPT_AUDIT_ORIGIN },
	{ "metrics-listen", required_argument, NULL, OPT_METRICS_LISTEN },
	{ "max-connections", required_argument, NULL, OPT_MAX_CONN },
	{ "idle-timeout", required_argument, NULL, OPT_IDLE },
	{ "retry-after", required_argument, NULL, OPT_RETRY },
	{ "log-level", required_argument, NULL, OPT_LOG_LEVEL },
	{ "help", no_argument, NULL, 'h' },
	{ "version", no_argument, NULL, OPT_VERSION },
	{ NULL, 0, NULL, 0 },
};

/* "HOST", "HOST:PORT", "[V6]" or "[V6]:PORT". */
static int parse_listen(const char *s, struct cpopts *o, char *err, size_t errlen)
{
	const char *host = s, *port = NULL, *colon;
	size_t hostlen;

	if (*s == '[') {
		const char *close = strchr(s, ']');

		if (!close || close == s + 1 || (close[1] && close[1] != ':')) {
			snprintf(err, errlen, "--listen '%s': an IPv6 address goes in brackets, as [::1]:4320", s);
			return -EINVAL;
		}
		host = s + 1;
		hostlen = (size_t)(close - host);
		if (close[1] == ':')
			port = close + 2;
	} else {
		colon = strchr(s, ':');
		if (colon && strchr(colon + 1, ':')) {
			snprintf(err, errlen, "--listen '%s': an IPv6 address goes in brackets, as [::1]:4320", s);
			return -EINVAL;
		}
		hostlen = colon ? (size_t)(colon - s) : strlen(s);
		if (colon)
			port = colon + 1;
	}
	if (hostlen == 0 || hostlen >= sizeof(o->host)) {
		snprintf(err, errlen, "--listen '%s': expected ADDR:PORT, e.g. 127.0.0.1:4320", s);
		return -EINVAL;
	}
	memcpy(o->host, host, hostlen);
	o->host[hostlen] = '\0';
	if (port && decimal_uint(port, 1, 65535, &o->port)) {
		snprintf(err, errlen, "--listen '%s': the port must be a number from 1 to 65535", s);
		return -EINVAL;
	}
	return 0;
}

static int need_file(const char *opt, const char *arg, const char **dst, char *err, size_t errlen)
{
	if (!*arg) {
		snprintf(err, errlen, "%s: the file name is empty", opt);
		return -EINVAL;
	}
	*dst = arg;
	return 0;
}

int cpopts_parse(int argc, char **argv, struct cpopts *ret, char *err, size_t errlen)
{
	struct cpopts o = {
		.host = CPOPTS_DEFAULT_HOST,
		.port = CPOPTS_DEFAULT_PORT,
		.db = CPOPTS_DEFAULT_DB,
		.max_connections = CPOPTS_DEFAULT_MAX_CONNECTIONS,
		.idle_timeout_s = CPOPTS_DEFAULT_IDLE_TIMEOUT,
		.retry_after_s = CPOPTS_DEFAULT_RETRY_AFTER,
		.log_level = CP_LOG_INFO,
		.issued_days = CPOPTS_DEFAULT_ISSUED_DAYS,
		.audit_origin = CPOPTS_DEFAULT_AUDIT_ORIGIN,
	};
	int c;

	if (listenaddr_parse("--metrics-listen", CPOPTS_DEFAULT_METRICS_LISTEN, false, &o.metrics, err, errlen))
		return -EINVAL;
	opterr = 0;
	optind = 1;
	while ((c = getopt_long(argc, argv, ":h", long_opts, NULL)) != -1) {
		switch (c) {
		case OPT_LISTEN:
			if (parse_listen(optarg, &o, err, errlen))
				return -EINVAL;
			break;
		case OPT_CERT:
			if (need_file("--cert", optarg, &o.cert, err, errlen))
				return -EINVAL;
			break;
		case OPT_KEY:
			if (need_file("--key", optarg, &o.key, err, errlen))
				return -EINVAL;
			break;
		case OPT_AGENT_CA:
			if (need_file("--agent-ca", optarg, &o.agent_ca, err, errlen))
				return -EINVAL;
			break;
		case OPT_ADMIN_CA:
			if (need_file("--admin-ca", optarg, &o.admin_ca, err, errlen))
				return -EINVAL;
			break;
		case OPT_CRL:
			if (need_file("--crl", optarg, &o.crl, err, errlen))
				return -EINVAL;
			break;
		case OPT_POLICY_TRUST:
			if (need_file("--policy-trust", optarg, &o.policy_trust, err, errlen))
				return -EINVAL;
			break;
		case OPT_ISSUER_CERT:
			if (need_file("--issuer-cert", optarg, &o.issuer_cert, err, errlen))
				return -EINVAL;
			break;
		case OPT_ISSUER_KEY:
			if (need_file("--issuer-key", optarg, &o.issuer_key, err, errlen))
				return -EINVAL;
			break;
		case OPT_AUDIT_KEY:
			if (need_file("--audit-key", optarg, &o.audit_key, err, errlen))
				return -EINVAL;
			break;
		case OPT_AUDIT_ORIGIN: {
			char why[256];

			if (checkpoint_check_name(optarg, why, sizeof(why))) {
				snprintf(err, errlen, "--audit-origin: %s", why);
				return -EINVAL;
			}
			o.audit_origin = optarg;
			break;
		}
		case OPT_ISSUED_DAYS:
			if (decimal_uint(optarg, 1, CPOPTS_MAX_ISSUED_DAYS, &o.issued_days)) {
				snprintf(err, errlen, "--issued-days '%s': must be a whole number of days from 1 to %u",
					 optarg, CPOPTS_MAX_ISSUED_DAYS);
				return -EINVAL;
			}
			break;
		case OPT_DB:
			/* A postgresql URL is not echoed: it may hold a password. */
			if (!((strncmp(optarg, "sqlite:", 7) == 0 && optarg[7]) ||
			      (strncmp(optarg, "postgresql://", 13) == 0 && optarg[13]) ||
			      (strncmp(optarg, "postgres://", 11) == 0 && optarg[11]))) {
				snprintf(err, errlen, "--db: expected sqlite:PATH or postgresql://[USER@]HOST/DB");
				return -EINVAL;
			}
			o.db = optarg;
			break;
		case OPT_MAX_CONN:
			if (decimal_uint(optarg, 1, CPOPTS_MAX_MAX_CONNECTIONS, &o.max_connections)) {
				snprintf(err, errlen, "--max-connections '%s': must be a whole number from 1 to %u",
					 optarg, CPOPTS_MAX_MAX_CONNECTIONS);
				return -EINVAL;
			}
			break;
		case OPT_IDLE:
			if (decimal_uint(optarg, 1, CPOPTS_MAX_IDLE_TIMEOUT, &o.idle_timeout_s)) {
				snprintf(err, errlen, "--idle-timeout '%s': must be a whole number of seconds from 1 to %u",
					 optarg, CPOPTS_MAX_IDLE_TIMEOUT);
				return -EINVAL;
			}
			break;
		case OPT_RETRY:
			if (decimal_uint(optarg, 1, CPOPTS_MAX_RETRY_AFTER, &o.retry_after_s)) {
				snprintf(err, errlen, "--retry-after '%s': must be a whole number of seconds from 1 to %u",
					 optarg, CPOPTS_MAX_RETRY_AFTER);
				return -EINVAL;
			}
			break;
		case OPT_LOG_LEVEL:
			if (strcmp(optarg, "warn") == 0) {
				o.log_level = CP_LOG_WARN;
			} else if (strcmp(optarg, "info") == 0) {
				o.log_level = CP_LOG_INFO;
			} else if (strcmp(optarg, "debug") == 0) {
				o.log_level = CP_LOG_DEBUG;
			} else {
				snprintf(err, errlen, "--log-level '%s': must be warn, info or debug", optarg);
				return -EINVAL;
			}
			break;
		case 'h':
			o.help = true;
			break;
		case OPT_VERSION:
			o.version = true;
			break;
		case OPT_METRICS_LISTEN:
			if (listenaddr_parse("--metrics-listen", optarg, false, &o.metrics, err, errlen))
				return -EINVAL;
			o.metrics_given = true;
			break;
		case ':':
			snprintf(err, errlen, "option '%s' needs a value", argv[optind - 1]);
			return -EINVAL;
		default:
			if (optopt)
				snprintf(err, errlen, "unknown option '-%c' (see --help)", optopt);
			else
				snprintf(err, errlen, "unknown option '%s' (see --help)", argv[optind - 1]);
			return -EINVAL;
		}
	}
	if (optind < argc) {
		snprintf(err, errlen, "unexpected argument '%s' (see --help)", argv[optind]);
		return -EINVAL;
	}
	if (!o.help && !o.version) {
		static const char *const names[] = { "--cert", "--key", "--agent-ca", "--admin-ca",
						     "--policy-trust" };
		const char *vals[] = { o.cert, o.key, o.agent_ca, o.admin_ca, o.policy_trust };

		for (size_t i = 0; i < sizeof(vals) / sizeof(vals[0]); i++) {
			if (!vals[i]) {
				snprintf(err, errlen, "%s FILE is required (see --help)", names[i]);
				return -EINVAL;
			}
		}
	}
	if (!o.issuer_cert != !o.issuer_key) {
		snprintf(err, errlen, "--issuer-cert and --issuer-key go together: give both or neither");
		return -EINVAL;
	}
	*ret = o;
	return 0;
}
