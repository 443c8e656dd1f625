/*
 * options.c - parse vigild's command line (see options.h).
 */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "decimal.h"
#include "exporturl.h"
#include "options.h"
#include "vigil_abi.h"

const char options_usage[] =
	"usage: vigild [--hz N] [--interval S] [--duration S] [--output DIR]\n"
	"              [--bpf-dir DIR] [--trust FILE] [--crl FILE] [--max-hz N]\n"
	"              [--policy FILE [--check]] [--control-period S]\n"
	"              [--build-id] [--unwind dwarf|frame-pointer] [--top|--no-top]\n"
	"              [--control-plane https://HOST[:PORT] --cert FILE --key FILE --ca FILE\n"
	"               --policy-trust FILE [--state-dir DIR] [--poll-interval S]\n"
	"               [--label KEY=VALUE]...]\n"
	"              [--export-url URL [--export-tenant ID] [--export-ca FILE]\n"
	"               [--export-basic-auth-file FILE | --export-bearer-token-file FILE]\n"
	"               [--export-cert FILE --export-key FILE] [--export-max-rate N]\n"
	"               [--spool-max-bytes N[KiB|MiB|GiB]]]\n"
	"              [--metrics-listen ADDR:PORT|none]\n"
	"       vigild --help | --version\n"
	"\n"
	"  --hz N          samples per second per CPU (default 19)\n"
	"  --interval S    seconds covered by each profile file (default 10)\n"
	"  --duration S    stop after S seconds; 0 runs until SIGINT/SIGTERM (default 0)\n"
	"  --output DIR    where gzip pprof files are written (default " VIGILD_DEFAULT_OUTPUT ")\n"
	"  --bpf-dir DIR   where the BPF objects are (default: build/bpf next to the\n"
	"                  binary, else /usr/lib/vigil/bpf)\n"
	"  --trust FILE    CA certificates (PEM) that BPF object signatures must chain\n"
	"                  to (default " VIGILD_DEFAULT_TRUST "; build/dev-ca/ca.pem\n"
	"                  when run from the build tree)\n"
	"  --crl FILE      certificate revocation list (PEM or DER) to check signers against\n"
	"  --max-hz N      ceiling on any sampling frequency, whatever is asked (default 1000)\n"
	"  --policy FILE   tenants and their overhead budgets (docs/policy.md); SIGHUP\n"
	"                  reloads it.  Without it, one default tenant at --hz\n"
	"  --check         with --policy: validate the policy, print what is wrong, exit\n"
	"  --control-period S  seconds between budget decisions (default 5)\n"
	"  --build-id      take user stacks as build-id + file offset in the kernel:\n"
	"                  exited processes always symbolize, at ~3x the BPF cost;\n"
	"                  a frame-pointer walk, so --unwind frame-pointer unless\n"
	"                  --unwind says otherwise (dwarf tenants ignore it)\n"
	"  --unwind M      how user stacks are taken: dwarf (the default) copies the\n"
	"                  top of each stack and unwinds it with the binaries' CFI,\n"
	"                  which works without frame pointers; frame-pointer walks\n"
	"                  frame pointers only, and forbids stack copies even where\n"
	"                  a policy's unwind: asks for them (docs/unwinding.md)\n"
	"  --top, --no-top print a top-functions table each interval (default: when\n"
	"                  stdout is a terminal)\n"
	"  -h, --help      print this text and exit\n"
	"  --version       print the version and exit\n"
	"\n"
	"Control plane (docs/control-plane.md):\n"
	"  --control-plane URL  speak OpAMP to vigil-cp at https://HOST[:PORT] (default\n"
	"                  port 4320); signed policies from it replace --policy\n"
	"  --cert FILE     this agent's client certificate (PEM), its identity\n"
	"  --key FILE      its private key (PEM; root's, mode 0600)\n"
	"  --ca FILE       CA certificates (PEM) the control plane's certificate must\n"
	"                  chain to (not --trust, which is for BPF objects)\n"
	"  --policy-trust FILE  CA certificates (PEM) policy signatures must chain to\n"
	"  --state-dir DIR last-known-good policy and instance id (default\n"
	"                  " VIGILD_DEFAULT_STATE_DIR ")\n"
	"  --poll-interval S  seconds between polls of the control plane (default 30)\n"
	"  --label K=V     an attribute the control plane can select this host by\n"
	"                  (repeatable, up to 16)\n"
	"  SIGHUP re-reads --policy, --cert, --key and --ca.\n"
	"\n"
	"Export to Grafana Pyroscope (README.md, docs/security.md):\n"
	"  --export-url URL  push each interval's profiles to http[s]://HOST[:PORT][/PREFIX]\n"
	"                  (POST PREFIX/push.v1.PusherService/Push); they wait in --output\n"
	"                  until pushed\n"
	"  --export-tenant ID  the X-Scope-OrgID header (a multi-tenant Pyroscope)\n"
	"  --export-basic-auth-file FILE  one line user:password (root's, mode 0600)\n"
	"  --export-bearer-token-file FILE  one line, a bearer token (root's, mode 0600)\n"
	"  --export-ca FILE  CA certificates (PEM) for an https URL (default: the system's,\n"
	"                  " VIGILD_SYSTEM_CA ")\n"
	"  --export-cert FILE, --export-key FILE  a client certificate and its key (PEM;\n"
	"                  the key root's, mode 0600) for mutual TLS\n"
	"  --export-max-rate N  profiles pushed per second at most, e.g. draining a\n"
	"                  backlog (default 10)\n"
	"  --spool-max-bytes N[KiB|MiB|GiB]  the most profiles waiting for a push may take\n"
	"                  in --output; past it the oldest are dropped (default 256MiB)\n"
	"  --label K=V is also a label on every exported series.  SIGHUP re-reads the\n"
	"  export files.\n"
	"\n"
	"Metrics (docs/metrics.md):\n"
	"  --metrics-listen ADDR:PORT  serve Prometheus metrics at http://ADDR:PORT/metrics\n"
	"                  (default " VIGILD_DEFAULT_METRICS_LISTEN "; [::1]:PORT for IPv6; none: off).\n"
	"                  If the default address is taken, vigild runs without metrics\n";

enum { OPT_BPF_DIR = 256, OPT_BUILD_ID, OPT_TOP, OPT_NO_TOP, OPT_TRUST, OPT_CRL, OPT_MAX_HZ,
       OPT_POLICY, OPT_CHECK, OPT_CONTROL_PERIOD, OPT_CONTROL_PLANE, OPT_CERT, OPT_KEY, OPT_CA,
       OPT_POLICY_TRUST, OPT_STATE_DIR, OPT_POLL_INTERVAL, OPT_LABEL,
       /* export to Pyroscope */
       OPT_EXPORT_URL = 400, OPT_EXPORT_TENANT, OPT_EXPORT_BASIC, OPT_EXPORT_BEARER, OPT_EXPORT_CA,
       OPT_EXPORT_CERT, OPT_EXPORT_KEY, OPT_EXPORT_MAX_RATE,
       OPT_METRICS_LISTEN };
/* export's spool */
enum { OPT_SPOOL_MAX_BYTES = 420, OPT_UNWIND };

static const struct option long_opts[] = {
	{ "hz", required_argument, NULL, 'z' },
	{ "interval", required_argument, NULL, 'i' },
	{ "duration", required_argument, NULL, 'd' },
	{ "output", required_argument, NULL, 'o' },
	{ "bpf-dir", required_argument, NULL, OPT_BPF_DIR },
	{ "trust", required_argument, NULL, OPT_TRUST },
	{ "crl", required_argument, NULL, OPT_CRL },
	{ "max-hz", required_argument, NULL, OPT_MAX_HZ },
	{ "policy", required_argument, NULL, OPT_POLICY },
	{ "check", no_argument, NULL, OPT_CHECK },
	{ "control-period", required_argument, NULL, OPT_CONTROL_PERIOD },
	{ "build-id", no_argument, NULL, OPT_BUILD_ID },
	{ "unwind", required_argument, NULL, OPT_UNWIND },
	{ "control-plane", required_argument, NULL, OPT_CONTROL_PLANE },
	{ "cert", required_argument, NULL, OPT_CERT },
	{ "key", required_argument, NULL, OPT_KEY },
	{ "ca", required_argument, NULL, OPT_CA },
	{ "policy-trust", required_argument, NULL, OPT_POLICY_TRUST },
	{ "state-dir", required_argument, NULL, OPT_STATE_DIR },
	{ "poll-interval", required_argument, NULL, OPT_POLL_INTERVAL },
	{ "label", required_argument, NULL, OPT_LABEL },
	{ "export-url", required_argument, NULL, OPT_EXPORT_URL },
	{ "export-tenant", required_argument, NULL, OPT_EXPORT_TENANT },
	{ "export-basic-auth-file", required_argument, NULL, OPT_EXPORT_BASIC },
	{ "export-bearer-token-file", required_argument, NULL, OPT_EXPORT_BEARER },
	{ "export-ca", required_argument, NULL, OPT_EXPORT_CA },
	{ "export-cert", required_argument, NULL, OPT_EXPORT_CERT },
	{ "export-key", required_argument, NULL, OPT_EXPORT_KEY },
	{ "export-max-rate", required_argument, NULL, OPT_EXPORT_MAX_RATE },
	{ "metrics-listen", required_argument, NULL, OPT_METRICS_LISTEN },
	{ "spool-max-bytes", required_argument, NULL, OPT_SPOOL_MAX_BYTES },
	{ "top", no_argument, NULL, OPT_TOP },
	{ "no-top", no_argument, NULL, OPT_NO_TOP },
	{ "help", no_argument, NULL, 'h' },
	{ "version", no_argument, NULL, 'V' },
	{ NULL, 0, NULL, 0 },
};

int options_parse_url(const char *url, char *ret_host, size_t host_len, unsigned *ret_port,
		      char *err, size_t errlen)
{
	const char *h, *end, *port = NULL;
	size_t hl;
	unsigned p = VIGILD_DEFAULT_CP_PORT;

	if (strncasecmp(url, "https://", 8) != 0) {
		snprintf(err, errlen, "--control-plane '%s': must be https://HOST[:PORT] (OpAMP over "
			 "TLS only)", url);
		return -EINVAL;
	}
	h = url + 8;
	if (*h == '[') {
		end = strchr(h, ']');
		if (!end) {
			snprintf(err, errlen, "--control-plane '%s': unclosed '[' around an IPv6 address", url);
			return -EINVAL;
		}
		h++;
		hl = (size_t)(end - h);
		end++;
	} else {
		end = h + strcspn(h, ":/?#@");
		hl = (size_t)(end - h);
	}
	if (*end == ':') {
		port = end + 1;
		end = port + strcspn(port, "/?#");
	}
	if (*end == '/' && end[1] == '\0')
		end++;
	if (*end != '\0') {
		snprintf(err, errlen, "--control-plane '%s': only https://HOST[:PORT] is accepted (no "
			 "user, path or query: the path is /v1/opamp)", url);
		return -EINVAL;
	}
	if (hl == 0 || hl >= host_len || hl > 253) {
		snprintf(err, errlen, "--control-plane '%s': %s host name", url, hl ? "too long a" : "no");
		return -EINVAL;
	}
	for (size_t i = 0; i < hl; i++) {
		char c = h[i];

		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
		      c == '-' || c == '.' || (c == ':' && h[-1] == '['))) {
			snprintf(err, errlen, "--control-plane '%s': '%c' cannot be in a host name", url, c);
			return -EINVAL;
		}
	}
	if (port) {
		char buf[8];
		size_t pl = (size_t)(end - port) - (end[-1] == '/');

		if (pl == 0 || pl >= sizeof(buf)) {
			snprintf(err, errlen, "--control-plane '%s': bad port", url);
			return -EINVAL;
		}
		memcpy(buf, port, pl);
		buf[pl] = '\0';
		if (decimal_uint(buf, 1, 65535, &p)) {
			snprintf(err, errlen, "--control-plane '%s': the port must be from 1 to 65535", url);
			return -EINVAL;
		}
	}
	memcpy(ret_host, h, hl);
	ret_host[hl] = '\0';
	*ret_port = p;
	return 0;
}

int options_parse_size(const char *s, unsigned long long lo, unsigned long long hi,
		       unsigned long long *ret)
{
	static const struct { const char *unit; unsigned shift; } units[] = {
		{ "", 0 }, { "KiB", 10 }, { "MiB", 20 }, { "GiB", 30 },
	};
	unsigned long long v = 0;
	const char *p = s;

	if (!s || *s < '0' || *s > '9')
		return -EINVAL;
	for (; *p >= '0' && *p <= '9'; p++) {
		if (v > (ULLONG_MAX - 9) / 10)
			return -ERANGE;
		v = v * 10 + (unsigned long long)(*p - '0');
	}
	for (size_t i = 0; i < sizeof(units) / sizeof(units[0]); i++) {
		if (strcmp(p, units[i].unit) != 0)
			continue;
		if (v > (ULLONG_MAX >> units[i].shift))
			return -ERANGE;
		v <<= units[i].shift;
		if (v < lo || v > hi)
			return -ERANGE;
		*ret = v;
		return 0;
	}
	return -EINVAL;
}

int options_check_label(const char *s, char *err, size_t errlen)
{
	const char *eq = strchr(s, '=');
	size_t kl = eq ? (size_t)(eq - s) : 0;

	if (!eq || kl == 0 || kl > 63) {
		snprintf(err, errlen, "--label '%s': must be KEY=VALUE with a key of 1 to 63 characters",
			 s);
		return -EINVAL;
	}
	for (size_t i = 0; i < kl; i++) {
		char c = s[i];

		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
		      c == '.' || c == '_' || c == '-' || c == '/')) {
			snprintf(err, errlen, "--label '%s': a key is letters, digits and . _ - / only", s);
			return -EINVAL;
		}
	}
	if (strlen(eq + 1) > 255) {
		snprintf(err, errlen, "--label '%.70s...': the value is longer than 255 bytes", s);
		return -EINVAL;
	}
	for (const char *v = eq + 1; *v; v++) {
		if (*v < 0x20 || *v > 0x7e || *v == ',') {
			snprintf(err, errlen, "--label '%s': a value is printable ASCII without ',' "
				 "(selectors are k=v,k=v)", s);
			return -EINVAL;
		}
	}
	return 0;
}

/* The --export-* options together: each needs --export-url, and they must agree. */
static int options_check_export(const struct vigild_opts *o, bool rate_given, char *err, size_t errlen)
{
	const char *orphan = o->export_tenant ? "--export-tenant" :
			     o->export_basic_auth_file ? "--export-basic-auth-file" :
			     o->export_bearer_token_file ? "--export-bearer-token-file" :
			     o->export_ca ? "--export-ca" : o->export_cert ? "--export-cert" :
			     o->export_key ? "--export-key" : rate_given ? "--export-max-rate" : NULL;

	if (!o->export_url) {
		if (orphan) {
			snprintf(err, errlen, "%s needs --export-url URL (where profiles are pushed)", orphan);
			return -EINVAL;
		}
		return 0;
	}
	if (o->export_basic_auth_file && o->export_bearer_token_file) {
		snprintf(err, errlen, "--export-basic-auth-file and --export-bearer-token-file: choose one "
			 "(both would be an Authorization header)");
		return -EINVAL;
	}
	if (!!o->export_cert != !!o->export_key) {
		snprintf(err, errlen, "%s needs %s too (a client certificate and its key)",
			 o->export_cert ? "--export-cert" : "--export-key",
			 o->export_cert ? "--export-key FILE" : "--export-cert FILE");
		return -EINVAL;
	}
	if (!o->export_https && (o->export_ca || o->export_cert)) {
		snprintf(err, errlen, "%s is for TLS, but --export-url '%.200s' is plain http://: use https://",
			 o->export_ca ? "--export-ca" : "--export-cert", o->export_url);
		return -EINVAL;
	}
	return 0;
}

int options_parse(int argc, char **argv, unsigned max_hz, struct vigild_opts *ret,
		  char *err, size_t errlen)
{
	struct vigild_opts o = {
		.hz = VIGILD_DEFAULT_HZ,
		.interval_s = VIGILD_DEFAULT_INTERVAL,
		.duration_s = 0,
		.output = VIGILD_DEFAULT_OUTPUT,
		.build_id = false,
		.unwind = VIGIL_UNWIND_DWARF,
		.max_hz = VIGILD_DEFAULT_MAX_HZ < max_hz ? VIGILD_DEFAULT_MAX_HZ : max_hz,
		.control_period_s = VIGILD_DEFAULT_CONTROL_PERIOD,
		.poll_interval_s = VIGILD_DEFAULT_POLL,
		.export_max_rate = VIGILD_DEFAULT_EXPORT_MAX_RATE,
		.spool_max_bytes = VIGILD_DEFAULT_SPOOL_MAX,
	};
	bool export_rate_given = false;
	bool state_given = false, poll_given = false;
	size_t label_bytes = 0;
	bool hz_given = false, unwind_given = false;
	int c;

	if (listenaddr_parse("--metrics-listen", VIGILD_DEFAULT_METRICS_LISTEN, false, &o.metrics, err,
			     errlen))
		return -EINVAL;
	opterr = 0;
	optind = 1;
	while ((c = getopt_long(argc, argv, ":h", long_opts, NULL)) != -1) {
		switch (c) {
		case 'z':
			if (decimal_uint(optarg, 1, max_hz, &o.hz)) {
				snprintf(err, errlen,
					 "--hz '%s': must be a whole number from 1 to %u "
					 "(kernel.perf_event_max_sample_rate)", optarg, max_hz);
				return -EINVAL;
			}
			hz_given = true;
			break;
		case 'i':
			if (decimal_uint(optarg, 1, VIGILD_MAX_INTERVAL, &o.interval_s)) {
				snprintf(err, errlen, "--interval '%s': must be a whole number of seconds from 1 to %u",
					 optarg, VIGILD_MAX_INTERVAL);
				return -EINVAL;
			}
			break;
		case 'd':
			if (decimal_uint(optarg, 0, VIGILD_MAX_DURATION, &o.duration_s)) {
				snprintf(err, errlen, "--duration '%s': must be a whole number of seconds from 0 to %u",
					 optarg, VIGILD_MAX_DURATION);
				return -EINVAL;
			}
			break;
		case 'o':
			if (!*optarg) {
				snprintf(err, errlen, "--output: the directory name is empty");
				return -EINVAL;
			}
			o.output = optarg;
			break;
		case OPT_BPF_DIR:
			o.bpf_dir = optarg;
			break;
		case OPT_TRUST:
			o.trust = optarg;
			break;
		case OPT_CRL:
			o.crl = optarg;
			break;
		case OPT_POLICY:
			if (!*optarg) {
				snprintf(err, errlen, "--policy: the file name is empty");
				return -EINVAL;
			}
			o.policy = optarg;
			break;
		case OPT_CHECK:
			o.check = true;
			break;
		case OPT_CONTROL_PERIOD:
			if (decimal_uint(optarg, 1, VIGILD_MAX_CONTROL_PERIOD, &o.control_period_s)) {
				snprintf(err, errlen, "--control-period '%s': must be a whole number of seconds from 1 to %u",
					 optarg, VIGILD_MAX_CONTROL_PERIOD);
				return -EINVAL;
			}
			break;
		case OPT_CONTROL_PLANE:
			if (options_parse_url(optarg, o.cp_host, sizeof(o.cp_host), &o.cp_port, err, errlen))
				return -EINVAL;
			o.control_plane = optarg;
			break;
		case OPT_CERT:
		case OPT_KEY:
		case OPT_CA:
		case OPT_POLICY_TRUST:
		case OPT_STATE_DIR:
			if (!*optarg) {
				snprintf(err, errlen, "%s: the file name is empty", argv[optind - 1]);
				return -EINVAL;
			}
			*(c == OPT_CERT ? &o.cert : c == OPT_KEY ? &o.key : c == OPT_CA ? &o.ca :
			  c == OPT_POLICY_TRUST ? &o.policy_trust : &o.state_dir) = optarg;
			state_given |= c == OPT_STATE_DIR;
			break;
		case OPT_POLL_INTERVAL:
			if (decimal_uint(optarg, 1, VIGILD_MAX_POLL, &o.poll_interval_s)) {
				snprintf(err, errlen, "--poll-interval '%s': must be a whole number of seconds "
					 "from 1 to %u", optarg, VIGILD_MAX_POLL);
				return -EINVAL;
			}
			poll_given = true;
			break;
		case OPT_LABEL:
			if (options_check_label(optarg, err, errlen))
				return -EINVAL;
			label_bytes += strlen(optarg) + 1;
			if (o.nlabels == VIGILD_MAX_LABELS || label_bytes > VIGILD_LABELS_BYTES) {
				snprintf(err, errlen, "--label: at most %d labels of %d bytes in all",
					 VIGILD_MAX_LABELS, VIGILD_LABELS_BYTES);
				return -EINVAL;
			}
			o.labels[o.nlabels++] = optarg;
			break;
		case OPT_EXPORT_URL: {
			struct exporturl u;

			if (exporturl_parse("--export-url", optarg, &u, err, errlen))
				return -EINVAL;
			o.export_url = optarg;
			memcpy(o.export_host, u.host, sizeof(o.export_host));
			o.export_port = u.port;
			o.export_https = u.https;
			break;
		}
		case OPT_EXPORT_TENANT:
			if (exporturl_check_tenant("--export-tenant", optarg, err, errlen))
				return -EINVAL;
			o.export_tenant = optarg;
			break;
		case OPT_EXPORT_BASIC:
		case OPT_EXPORT_BEARER:
		case OPT_EXPORT_CA:
		case OPT_EXPORT_CERT:
		case OPT_EXPORT_KEY:
			if (!*optarg) {
				snprintf(err, errlen, "%s: the file name is empty", argv[optind - 1]);
				return -EINVAL;
			}
			*(c == OPT_EXPORT_BASIC ? &o.export_basic_auth_file :
			  c == OPT_EXPORT_BEARER ? &o.export_bearer_token_file :
			  c == OPT_EXPORT_CA ? &o.export_ca : c == OPT_EXPORT_CERT ? &o.export_cert :
			  &o.export_key) = optarg;
			break;
		case OPT_EXPORT_MAX_RATE:
			if (decimal_uint(optarg, 1, VIGILD_MAX_EXPORT_MAX_RATE, &o.export_max_rate)) {
				snprintf(err, errlen, "--export-max-rate '%s': must be a whole number of profiles "
					 "per second from 1 to %u", optarg, VIGILD_MAX_EXPORT_MAX_RATE);
				return -EINVAL;
			}
			export_rate_given = true;
			break;
		case OPT_METRICS_LISTEN:
			if (listenaddr_parse("--metrics-listen", optarg, false, &o.metrics, err, errlen))
				return -EINVAL;
			o.metrics_given = true;
			break;
		case OPT_SPOOL_MAX_BYTES:
			if (options_parse_size(optarg, VIGILD_MIN_SPOOL_MAX, VIGILD_MAX_SPOOL_MAX,
					       &o.spool_max_bytes)) {
				snprintf(err, errlen, "--spool-max-bytes '%s': must be a size from 4KiB to "
					 "1024GiB: digits, then nothing (bytes), KiB, MiB or GiB", optarg);
				return -EINVAL;
			}
			break;
		case OPT_MAX_HZ:
			if (decimal_uint(optarg, 1, max_hz, &o.max_hz)) {
				snprintf(err, errlen,
					 "--max-hz '%s': must be a whole number from 1 to %u "
					 "(kernel.perf_event_max_sample_rate)", optarg, max_hz);
				return -EINVAL;
			}
			break;
		case OPT_BUILD_ID:
			o.build_id = true;
			break;
		case OPT_UNWIND:
			unwind_given = true;
			if (strcmp(optarg, "dwarf") == 0) {
				o.unwind = VIGIL_UNWIND_DWARF;
			} else if (strcmp(optarg, "frame-pointer") == 0) {
				o.unwind = VIGIL_UNWIND_FP;
			} else {
				snprintf(err, errlen, "--unwind '%s': must be dwarf or frame-pointer", optarg);
				return -EINVAL;
			}
			break;
		case OPT_TOP:
			o.top = o.top_forced = true;
			break;
		case OPT_NO_TOP:
			o.top = false;
			o.top_forced = true;
			break;
		case 'h':
			o.help = true;
			break;
		case 'V':
			o.version = true;
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
	if (o.check && !o.policy) {
		snprintf(err, errlen, "--check needs --policy FILE");
		return -EINVAL;
	}
	/* Build-id frames come from the kernel's frame-pointer walk. */
	if (o.build_id && !unwind_given)
		o.unwind = VIGIL_UNWIND_FP;
	if (o.hz > o.max_hz) {
		snprintf(err, errlen, "--hz %u is above the ceiling --max-hz %u%s", o.hz, o.max_hz,
			 hz_given ? "" : " (the default --hz)");
		return -EINVAL;
	}
	if (o.control_plane) {
		const char *missing = !o.cert ? "--cert FILE (this agent's certificate)"
				    : !o.key ? "--key FILE (its private key)"
				    : !o.ca ? "--ca FILE (the CA the control plane's certificate chains to)"
				    : !o.policy_trust ? "--policy-trust FILE (the CA policy signatures chain to)"
				    : NULL;

		if (missing) {
			snprintf(err, errlen, "--control-plane needs %s", missing);
			return -EINVAL;
		}
		if (!o.state_dir)
			o.state_dir = VIGILD_DEFAULT_STATE_DIR;
	} else if (o.cert || o.key || o.ca || o.policy_trust || state_given || poll_given ||
		   (o.nlabels && !o.export_url)) {
		snprintf(err, errlen, "%s is only for a control plane: add --control-plane "
			 "https://HOST[:PORT] (--trust is the BPF objects' trust store%s)",
			 o.cert ? "--cert" : o.key ? "--key" : o.ca ? "--ca" : o.policy_trust ?
			 "--policy-trust" : state_given ? "--state-dir" : poll_given ?
			 "--poll-interval" : "--label", o.nlabels && !o.cert && !o.key && !o.ca &&
			 !o.policy_trust && !state_given && !poll_given ? "; or --export-url URL, whose "
			 "series carry the labels" : "");
		return -EINVAL;
	}
	if (options_check_export(&o, export_rate_given, err, errlen))
		return -EINVAL;
	if (optind < argc) {
		snprintf(err, errlen, "unexpected argument '%s' (see --help)", argv[optind]);
		return -EINVAL;
	}
	*ret = o;
	return 0;
}
