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

#include "options.h"

const char options_usage[] =
	"usage: vigild [--hz N] [--interval S] [--duration S] [--output DIR]\n"
	"              [--bpf-dir DIR] [--trust FILE] [--crl FILE] [--max-hz N]\n"
	"              [--policy FILE [--check]] [--control-period S]\n"
	"              [--build-id] [--top|--no-top]\n"
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
	"                  exited processes always symbolize, at ~3x the BPF cost\n"
	"  --top, --no-top print a top-functions table each interval (default: when\n"
	"                  stdout is a terminal)\n";

enum { OPT_BPF_DIR = 256, OPT_BUILD_ID, OPT_TOP, OPT_NO_TOP, OPT_ROLE, OPT_TRUST, OPT_CRL, OPT_MAX_HZ,
       OPT_POLICY, OPT_CHECK, OPT_CONTROL_PERIOD };

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
	{ "top", no_argument, NULL, OPT_TOP },
	{ "no-top", no_argument, NULL, OPT_NO_TOP },
	{ "help", no_argument, NULL, 'h' },
	{ "version", no_argument, NULL, 'V' },
	/* Internal: how the monitor re-executes itself as a worker. */
	{ "internal-role", required_argument, NULL, OPT_ROLE },
	{ NULL, 0, NULL, 0 },
};

/* Strict decimal: no sign, no spaces, no trailing junk, within [lo, hi]. */
static int parse_uint(const char *s, unsigned long lo, unsigned long hi, unsigned *ret)
{
	unsigned long v;
	char *end;

	if (!s || *s < '0' || *s > '9')
		return -EINVAL;
	errno = 0;
	v = strtoul(s, &end, 10);
	if (errno || *end != '\0' || v < lo || v > hi)
		return -ERANGE;
	*ret = (unsigned)v;
	return 0;
}

int options_parse(int argc, char **argv, unsigned max_hz, struct vigild_opts *ret,
		  char *err, size_t errlen)
{
	struct vigild_opts o = {
		.role = ROLE_MONITOR,
		.hz = VIGILD_DEFAULT_HZ,
		.interval_s = VIGILD_DEFAULT_INTERVAL,
		.duration_s = 0,
		.output = VIGILD_DEFAULT_OUTPUT,
		.build_id = false,
		.max_hz = VIGILD_DEFAULT_MAX_HZ < max_hz ? VIGILD_DEFAULT_MAX_HZ : max_hz,
		.control_period_s = VIGILD_DEFAULT_CONTROL_PERIOD,
	};
	bool hz_given = false;
	int c;

	opterr = 0;
	optind = 1;
	while ((c = getopt_long(argc, argv, ":h", long_opts, NULL)) != -1) {
		switch (c) {
		case 'z':
			if (parse_uint(optarg, 1, max_hz, &o.hz)) {
				snprintf(err, errlen,
					 "--hz '%s': must be a whole number from 1 to %u "
					 "(kernel.perf_event_max_sample_rate)", optarg, max_hz);
				return -EINVAL;
			}
			hz_given = true;
			break;
		case 'i':
			if (parse_uint(optarg, 1, VIGILD_MAX_INTERVAL, &o.interval_s)) {
				snprintf(err, errlen, "--interval '%s': must be a whole number of seconds from 1 to %u",
					 optarg, VIGILD_MAX_INTERVAL);
				return -EINVAL;
			}
			break;
		case 'd':
			if (parse_uint(optarg, 0, VIGILD_MAX_DURATION, &o.duration_s)) {
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
			if (parse_uint(optarg, 1, VIGILD_MAX_CONTROL_PERIOD, &o.control_period_s)) {
				snprintf(err, errlen, "--control-period '%s': must be a whole number of seconds from 1 to %u",
					 optarg, VIGILD_MAX_CONTROL_PERIOD);
				return -EINVAL;
			}
			break;
		case OPT_MAX_HZ:
			if (parse_uint(optarg, 1, max_hz, &o.max_hz)) {
				snprintf(err, errlen,
					 "--max-hz '%s': must be a whole number from 1 to %u "
					 "(kernel.perf_event_max_sample_rate)", optarg, max_hz);
				return -EINVAL;
			}
			break;
		case OPT_BUILD_ID:
			o.build_id = true;
			break;
		case OPT_TOP:
			o.top = o.top_forced = true;
			break;
		case OPT_NO_TOP:
			o.top = false;
			o.top_forced = true;
			break;
		case OPT_ROLE:
			if (strcmp(optarg, "collector") == 0) {
				o.role = ROLE_COLLECTOR;
			} else if (strcmp(optarg, "uplink") == 0) {
				o.role = ROLE_UPLINK;
			} else {
				snprintf(err, errlen, "--internal-role '%s': unknown role", optarg);
				return -EINVAL;
			}
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
	if (o.hz > o.max_hz) {
		snprintf(err, errlen, "--hz %u is above the ceiling --max-hz %u%s", o.hz, o.max_hz,
			 hz_given ? "" : " (the default --hz)");
		return -EINVAL;
	}
	if (optind < argc) {
		snprintf(err, errlen, "unexpected argument '%s' (see --help)", argv[optind]);
		return -EINVAL;
	}
	*ret = o;
	return 0;
}
