/*
 * vigil-sign - sign BPF objects, verify them as vigild does, and make a
 * development CA.  See docs/vigil-sign.1.
 *
 *   vigil-sign sign --cert CERT --key KEY [--out SIG] FILE...
 *   vigil-sign verify --trust CA [--crl CRL] [--sig SIG] FILE...
 *   vigil-sign verify --trust CA [--crl CRL] --bpf [--min-version N] DIR/NAME.bpf.o...
 *   vigil-sign dev-ca --out DIR [--days N] [--name PREFIX] [--force]
 *
 * Signatures are detached DER CMS, interchangeable with `openssl cms`.
 * verify --bpf runs exactly the checks vigild runs before loading (same
 * code: bpfobj_read_verified), so an operator can test a deployment.
 *
 * Exit codes (sysexits): 0 ok, 64 usage, 65 unusable certificate, key,
 * trust or CRL file, 66 an input file is missing or unreadable, 73 an
 * output cannot be written, 77 verification refused, 70 internal error.
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <libgen.h>
#include <limits.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sysexits.h>
#include <unistd.h>

#include "bpfobj.h"
#include "devca.h"
#include "signing.h"

#define MAX_INPUT_BYTES (256u << 20) /* any file to sign or verify (BPF objects: 16 MiB) */
#define ERRLEN 1024

static const char usage_text[] =
	"usage: vigil-sign sign --cert CERT.pem --key KEY.pem|pkcs11:URI [--out SIG] FILE...\n"
	"       vigil-sign verify --trust CA.pem [--crl CRL] [--sig SIG] FILE...\n"
	"       vigil-sign verify --trust CA.pem [--crl CRL] --bpf [--min-version N] DIR/NAME.bpf.o...\n"
	"       vigil-sign dev-ca --out DIR [--days N] [--name PREFIX] [--force]\n"
	"       vigil-sign --help\n"
	"\n"
	"  sign     write FILE.sig (or --out SIG for one FILE): a detached DER CMS\n"
	"           SHA-256 signature by CERT, which must carry extendedKeyUsage\n"
	"           codeSigning; certificates after the first in CERT are included\n"
	"  verify   check FILE against FILE.sig (or --sig SIG) and the CA bundle;\n"
	"           with --bpf, also the object's name and version, as vigild does\n"
	"  dev-ca   make DIR/{ca.pem,ca.key,signer.pem,signer.key} for development\n"
	"           (default 3650 days)\n"
	"\n"
	"exit: 0 ok, 64 usage, 65 bad certificate/key/trust/CRL, 66 missing input,\n"
	"      73 cannot write output, 77 verification refused\n";

static const char *prog = "vigil-sign";

static void __attribute__((noreturn)) usage_error(const char *fmt, ...)
	__attribute__((format(printf, 1, 2)));

static void usage_error(const char *f, ...)
{
	va_list ap;

	fprintf(stderr, "%s: ", prog);
	va_start(ap, f);
	vfprintf(stderr, f, ap);
	va_end(ap);
	fprintf(stderr, " (see %s --help)\n", prog);
	exit(EX_USAGE);
}

/* getopt is silent (opterr = 0): one line, naming the option. */
static void __attribute__((noreturn)) bad_option(const char *cmd, char **argv)
{
	usage_error("%s: unknown option or missing argument: %s", cmd, argv[optind - 1]);
}

static unsigned long parse_ulong(const char *opt, const char *s, unsigned long lo, unsigned long hi)
{
	unsigned long v;
	char *end;

	errno = 0;
	if (!s || *s < '0' || *s > '9')
		usage_error("%s wants a number, not \"%s\"", opt, s ? s : "");
	v = strtoul(s, &end, 10);
	if (errno || *end || v < lo || v > hi)
		usage_error("%s must be between %lu and %lu", opt, lo, hi);
	return v;
}

/* path := buf, through a temporary in the same directory renamed into place. */
static int write_atomic(const char *path, const void *buf, size_t len)
{
	char tmp[PATH_MAX];
	const char *p = buf;
	int fd, rc = 0;

	if ((size_t)snprintf(tmp, sizeof(tmp), "%s.tmp.%ld", path, (long)getpid()) >= sizeof(tmp))
		return -ENAMETOOLONG;
	fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0644);
	if (fd < 0)
		return -errno;
	while (len > 0) {
		ssize_t n = write(fd, p, len);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			rc = -errno;
			break;
		}
		p += n;
		len -= (size_t)n;
	}
	if (close(fd) < 0 && !rc)
		rc = -errno;
	if (!rc && rename(tmp, path) < 0)
		rc = -errno;
	if (rc)
		unlink(tmp);
	return rc;
}

static int exit_for_read(int rc)
{
	return rc == -ENOMEM ? EX_OSERR : EX_NOINPUT;
}

static const char *read_errstr(int rc)
{
	switch (rc) {
	case -EFBIG:
		return "too large";
	case -EINVAL:
		return "not a regular file";
	default:
		return strerror(-rc);
	}
}

static int cmd_sign(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "cert", required_argument, NULL, 'c' },
		{ "key", required_argument, NULL, 'k' },
		{ "out", required_argument, NULL, 'o' },
		{ NULL, 0, NULL, 0 },
	};
	const char *cert = NULL, *keyfile = NULL, *out = NULL;
	struct signing_key *key;
	char err[ERRLEN];
	int c, rc, code = EX_OK;

	while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		switch (c) {
		case 'c': cert = optarg; break;
		case 'k': keyfile = optarg; break;
		case 'o': out = optarg; break;
		default: bad_option("sign", argv);
		}
	}
	if (!cert || !keyfile)
		usage_error("sign needs --cert and --key");
	if (optind >= argc)
		usage_error("sign: no file to sign");
	if (out && argc - optind != 1)
		usage_error("sign: --out takes one FILE");

	rc = signing_key_load(cert, keyfile, &key, err, sizeof(err));
	if (rc) {
		fprintf(stderr, "%s: %s\n", prog, err);
		return rc == -ENOENT || rc == -EACCES ? EX_NOINPUT : rc == -ENOMEM ? EX_OSERR : EX_DATAERR;
	}
	if (signing_key_check(key, err, sizeof(err)) != SIGNING_OK) {
		fprintf(stderr, "%s: %s: vigild would refuse what it signs: %s\n", prog, cert, err);
		signing_key_free(key);
		return EX_DATAERR;
	}
	for (int i = optind; i < argc && code == EX_OK; i++) {
		char sigpath[PATH_MAX];
		void *data, *sig;
		size_t len, sig_len;

		rc = signing_read_file(AT_FDCWD, argv[i], MAX_INPUT_BYTES, false, &data, &len);
		if (rc) {
			fprintf(stderr, "%s: %s: %s\n", prog, argv[i], read_errstr(rc));
			code = exit_for_read(rc);
			break;
		}
		rc = signing_sign(key, data, len, &sig, &sig_len, err, sizeof(err));
		free(data);
		if (rc) {
			fprintf(stderr, "%s: %s: %s\n", prog, argv[i], err);
			code = rc == -EINVAL ? EX_DATAERR : EX_SOFTWARE;
			break;
		}
		if ((size_t)snprintf(sigpath, sizeof(sigpath), "%s.sig", argv[i]) >= sizeof(sigpath))
			rc = -ENAMETOOLONG;
		else
			rc = write_atomic(out ? out : sigpath, sig, sig_len);
		free(sig);
		if (rc) {
			fprintf(stderr, "%s: %s: %s\n", prog, out ? out : sigpath, strerror(-rc));
			code = EX_CANTCREAT;
		}
	}
	signing_key_free(key);
	return code;
}

/* verify --bpf: the checks vigild makes, on DIR/NAME.bpf.o. */
static int verify_bpf(const struct signing_trust *trust, const char *path, uint32_t min_version)
{
	char copy[PATH_MAX], dir[PATH_MAX], name[PATH_MAX], err[ERRLEN + PATH_MAX];
	struct bpfobj *o;
	size_t n;
	int rc;

	if (snprintf(copy, sizeof(copy), "%s", path) >= (int)sizeof(copy))
		usage_error("%s: path too long", path);
	snprintf(dir, sizeof(dir), "%s", dirname(copy));
	snprintf(copy, sizeof(copy), "%s", path);
	snprintf(name, sizeof(name), "%s", basename(copy));
	n = strlen(name);
	if (n <= 6 || strcmp(name + n - 6, ".bpf.o") != 0)
		usage_error("verify --bpf: %s is not named NAME.bpf.o", path);
	name[n - 6] = '\0';

	rc = bpfobj_read_verified(dir, name, min_version, trust, &o, err, sizeof(err));
	if (rc) {
		fprintf(stderr, "%s: %s\n", prog, err);
		return rc == -EKEYREJECTED ? EX_NOPERM : rc == -ENOMEM ? EX_OSERR
			: rc == -EINVAL ? EX_USAGE : EX_NOINPUT;
	}
	printf("%s: OK: %s version %u (ABI %u), %s\n", o->path, o->meta.name, o->meta.obj_version,
	       o->meta.abi_version, o->signer);
	bpfobj_free(o);
	return EX_OK;
}

static int verify_file(const struct signing_trust *trust, const char *path, const char *sigpath_opt)
{
	char sigpath[PATH_MAX], msg[ERRLEN];
	void *data, *sig;
	size_t len, sig_len;
	enum signing_status st;
	int rc;

	rc = signing_read_file(AT_FDCWD, path, MAX_INPUT_BYTES, false, &data, &len);
	if (rc) {
		fprintf(stderr, "%s: %s: %s\n", prog, path, read_errstr(rc));
		return exit_for_read(rc);
	}
	if ((size_t)snprintf(sigpath, sizeof(sigpath), "%s", sigpath_opt ? sigpath_opt : path) >=
		    sizeof(sigpath) - 4)
		usage_error("%s: path too long", path);
	if (!sigpath_opt)
		strcat(sigpath, ".sig");
	rc = signing_read_file(AT_FDCWD, sigpath, SIGNING_MAX_SIG_BYTES, false, &sig, &sig_len);
	if (rc == -ENOENT) {
		fprintf(stderr, "%s: %s: refused (%s): %s does not exist\n", prog, path,
			signing_status_name(SIGNING_ERR_NO_SIG), sigpath);
		free(data);
		return EX_NOPERM;
	}
	if (rc == -EFBIG) {
		fprintf(stderr, "%s: %s: refused (%s): %s is larger than %u bytes\n", prog, path,
			signing_status_name(SIGNING_ERR_MALFORMED_SIG), sigpath, SIGNING_MAX_SIG_BYTES);
		free(data);
		return EX_NOPERM;
	}
	if (rc) {
		fprintf(stderr, "%s: %s: %s\n", prog, sigpath, read_errstr(rc));
		free(data);
		return exit_for_read(rc);
	}
	st = signing_verify(trust, data, len, sig, sig_len, msg, sizeof(msg));
	free(data);
	free(sig);
	if (st != SIGNING_OK) {
		fprintf(stderr, "%s: %s: refused (%s): %s\n", prog, path, signing_status_name(st), msg);
		return st == SIGNING_ERR_INTERNAL ? EX_SOFTWARE : EX_NOPERM;
	}
	printf("%s: OK: %s\n", path, msg);
	return EX_OK;
}

static int cmd_verify(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "trust", required_argument, NULL, 't' },
		{ "crl", required_argument, NULL, 'r' },
		{ "sig", required_argument, NULL, 's' },
		{ "bpf", no_argument, NULL, 'b' },
		{ "min-version", required_argument, NULL, 'm' },
		{ NULL, 0, NULL, 0 },
	};
	const char *ca = NULL, *crl = NULL, *sig = NULL;
	bool bpf = false;
	unsigned long min_version = 0;
	struct signing_trust *trust;
	char err[ERRLEN];
	int c, rc, code = EX_OK;

	while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		switch (c) {
		case 't': ca = optarg; break;
		case 'r': crl = optarg; break;
		case 's': sig = optarg; break;
		case 'b': bpf = true; break;
		case 'm': min_version = parse_ulong("--min-version", optarg, 0, UINT32_MAX); break;
		default: bad_option("verify", argv);
		}
	}
	if (!ca)
		usage_error("verify needs --trust CA.pem");
	if (optind >= argc)
		usage_error("verify: no file to verify");
	if (sig && (bpf || argc - optind != 1))
		usage_error("verify: --sig takes one FILE, without --bpf");
	if (min_version && !bpf)
		usage_error("verify: --min-version goes with --bpf");

	rc = signing_trust_load(ca, crl, &trust, err, sizeof(err));
	if (rc) {
		fprintf(stderr, "%s: %s\n", prog, err);
		return rc == -ENOENT || rc == -EACCES ? EX_NOINPUT : rc == -ENOMEM ? EX_OSERR : EX_DATAERR;
	}
	/* Every file is checked; the exit code is that of the first failure. */
	for (int i = optind; i < argc; i++) {
		int r = bpf ? verify_bpf(trust, argv[i], (uint32_t)min_version)
			    : verify_file(trust, argv[i], sig);

		if (r != EX_OK && code == EX_OK)
			code = r;
	}
	signing_trust_free(trust);
	return code;
}

static int cmd_devca(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "out", required_argument, NULL, 'o' },
		{ "days", required_argument, NULL, 'd' },
		{ "name", required_argument, NULL, 'n' },
		{ "force", no_argument, NULL, 'f' },
		{ NULL, 0, NULL, 0 },
	};
	const char *out = NULL, *name = NULL;
	unsigned days = 3650;
	bool force = false;
	char err[ERRLEN];
	int c, rc;

	while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		switch (c) {
		case 'o': out = optarg; break;
		case 'd': days = (unsigned)parse_ulong("--days", optarg, 1, DEVCA_MAX_DAYS); break;
		case 'n':
			name = optarg;
			if (!*name || strlen(name) > 64)
				usage_error("--name must be 1 to 64 characters");
			break;
		case 'f': force = true; break;
		default: bad_option("dev-ca", argv);
		}
	}
	if (!out)
		usage_error("dev-ca needs --out DIR");
	if (optind != argc)
		usage_error("dev-ca takes no file arguments");
	rc = devca_create(out, name, days, force, err, sizeof(err));
	if (rc) {
		fprintf(stderr, "%s: %s\n", prog, err);
		return rc == -EIO ? EX_SOFTWARE : rc == -ENOMEM ? EX_OSERR : EX_CANTCREAT;
	}
	return EX_OK;
}

int main(int argc, char **argv)
{
	const char *cmd = argc > 1 ? argv[1] : NULL;

	if (!cmd)
		usage_error("no command: sign, verify or dev-ca");
	if (!strcmp(cmd, "--help") || !strcmp(cmd, "-h") || !strcmp(cmd, "help")) {
		fputs(usage_text, stdout);
		return EX_OK;
	}
	opterr = 0;
	/* getopt sees "vigil-sign CMD" as argv[0]. */
	if (!strcmp(cmd, "sign"))
		return cmd_sign(argc - 1, argv + 1);
	if (!strcmp(cmd, "verify"))
		return cmd_verify(argc - 1, argv + 1);
	if (!strcmp(cmd, "dev-ca"))
		return cmd_devca(argc - 1, argv + 1);
	usage_error("unknown command \"%s\": sign, verify or dev-ca", cmd);
}
