/*
 * pyro_push.c - test tool: push profiles to a Pyroscope-compatible endpoint
 * (POST /push.v1.PusherService/Push, Connect unary, application/proto), so
 * that tests can drive tests/tools/pyro_receiver without vigild and the
 * benchmark can compare against it.  It runs as the test's user, no
 * privileges; it is a client, with libcurl.
 *
 *   pyro_push --url http://127.0.0.1:PORT [options]
 *
 * What is sent (one series; every --label applies to it):
 *   --label NAME=VALUE       a series label (repeatable; split at the first
 *                            '=', so "=v" has an empty name)
 *   --label-repeat NAME=VALUE,N   N labels NAME0=VALUE .. NAME{N-1}=VALUE
 *   --profile FILE           a RawSample whose raw_profile is FILE's bytes,
 *                            sent as they are (repeatable)
 *   --synth N                a RawSample with a generated pprof of N samples
 *                            (cpu/nanoseconds, time now), gzip-compressed
 *   --synth-age S            its time_nanos S seconds in the past (negative:
 *                            the future)
 *   --synth-sample-label KEY=V1[,V2..]   a string label on its samples,
 *                            sample i taking V[i % count] (repeatable, 8)
 *   --synth-dangling         one of its samples names a location that does
 *                            not exist (Pyroscope's checks pass it, go tool
 *                            pprof does not)
 *   --id ID                  RawSample.ID (default: a random UUID per sample)
 *   --body FILE              send FILE as the request body instead
 *   --write FILE             write the request body (after --gzip-body) to
 *                            FILE instead of sending it; no --url needed.
 *                            Serialized PushRequests concatenated are one
 *                            PushRequest with all their series (protobuf
 *                            merges repeated fields), so several writes
 *                            make a request of several series
 * How:
 *   --path P (default /push.v1.PusherService/Push), --method M,
 *   --content-type CT (default application/proto), --gzip-body (and
 *   Content-Encoding: gzip), --header "K: V" (repeatable),
 *   --tenant T (X-Scope-OrgID), --basic USER:PASS, --bearer TOKEN,
 *   --cacert F, --cert F --key F, --timeout S (default 30),
 *   --count N (send the same request N times, for the benchmark).
 *
 * Output: one line per request, "status N" (or "error: why" when there was
 * no HTTP answer), then the last answer's headers Retry-After and
 * Content-Type as "retry-after V" / "content-type V", then its body; with
 * --count > 1 a last line "requests N ok N seconds S request_bytes B".
 * Exit: 0 when the last answer is 200 (or --write wrote FILE), 1 for
 * another status, 2 for no answer, 64 usage, 66 a file cannot be read,
 * 73 FILE cannot be written.
 */
#include <errno.h>
#include <getopt.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <curl/curl.h>
#include <openssl/rand.h>
#include <zlib.h>

#include "profile.pb-c.h"
#include "push.pb-c.h"

#define MAX_FILE (256u * 1024 * 1024)
#define MAX_ITEMS 4096
#define MAX_SYNTH 1000000

struct buf {
	uint8_t *p;
	size_t n;
};

static int read_file(const char *path, struct buf *ret)
{
	FILE *f = fopen(path, "re");
	struct buf b = { 0 };
	size_t cap = 0;

	if (!f) {
		fprintf(stderr, "pyro_push: cannot read %s: %s\n", path, strerror(errno));
		return -errno;
	}
	for (;;) {
		if (b.n == cap) {
			uint8_t *np;

			cap = cap ? cap * 2 : 65536;
			if (cap > MAX_FILE + 1)
				cap = MAX_FILE + 1;
			np = realloc(b.p, cap);
			if (!np || b.n == cap) {
				fprintf(stderr, "pyro_push: %s is over %u bytes\n", path, MAX_FILE);
				free(np ? np : b.p);
				fclose(f);
				return -EFBIG;
			}
			b.p = np;
		}
		size_t k = fread(b.p + b.n, 1, cap - b.n, f);

		if (k == 0)
			break;
		b.n += k;
	}
	fclose(f);
	*ret = b;
	return 0;
}

static int gzip_buf(const uint8_t *in, size_t n, struct buf *ret)
{
	z_stream z = { 0 };
	size_t cap;
	uint8_t *out;

	if (deflateInit2(&z, 6, Z_DEFLATED, 16 + MAX_WBITS, 8, Z_DEFAULT_STRATEGY) != Z_OK)
		return -ENOMEM;
	/* deflateBound is exact for one Z_FINISH call; +64 for the gzip wrapper. */
	cap = deflateBound(&z, (uLong)n) + 64;
	out = malloc(cap);
	if (!out) {
		deflateEnd(&z);
		return -ENOMEM;
	}
	z.next_in = (Bytef *)(uintptr_t)in;
	z.avail_in = (uInt)n;
	z.next_out = out;
	z.avail_out = (uInt)cap;
	if (deflate(&z, Z_FINISH) != Z_STREAM_END) {
		deflateEnd(&z);
		free(out);
		return -EIO;
	}
	ret->p = out;
	ret->n = cap - z.avail_out;
	deflateEnd(&z);
	return 0;
}

#define MAX_SAMPLE_LABELS 8
#define MAX_SAMPLE_LABEL_VALUES 8

/* --synth-sample-label KEY=V1,V2,..: sample i gets KEY = V[i % nvals]. */
struct sample_label {
	char *key;
	char *vals[MAX_SAMPLE_LABEL_VALUES];
	size_t nvals;
};

/*
 * A small CPU profile: N samples, each a distinct two-frame stack
 * (main -> fN), value 10 ms, with the given string sample labels.  Enough
 * for go tool pprof and for Pyroscope's checks; no mappings (go tool pprof
 * accepts that).
 */
static int synth_profile(long n, long age_s, bool dangling, const struct sample_label *sl, size_t nsl,
			 struct buf *ret)
{
	Perftools__Profiles__Profile p = PERFTOOLS__PROFILES__PROFILE__INIT;
	Perftools__Profiles__ValueType vt[2], *vtp[2];
	long nfn = n + 1, i;
	Perftools__Profiles__Function *fns = calloc((size_t)nfn, sizeof(*fns));
	Perftools__Profiles__Function **fnp = calloc((size_t)nfn, sizeof(*fnp));
	Perftools__Profiles__Location *locs = calloc((size_t)nfn, sizeof(*locs));
	Perftools__Profiles__Location **locp = calloc((size_t)nfn, sizeof(*locp));
	Perftools__Profiles__Line *lines = calloc((size_t)nfn, sizeof(*lines));
	Perftools__Profiles__Line **linep = calloc((size_t)nfn, sizeof(*linep));
	Perftools__Profiles__Sample *smp = calloc((size_t)n, sizeof(*smp));
	Perftools__Profiles__Sample **smpp = calloc((size_t)n, sizeof(*smpp));
	uint64_t *ids = calloc((size_t)n * 2, sizeof(*ids));
	int64_t *vals = calloc((size_t)n * 2, sizeof(*vals));
	size_t cap_strs = (size_t)nfn + 5 + nsl * (1 + MAX_SAMPLE_LABEL_VALUES), next;
	char **strs = calloc(cap_strs, sizeof(*strs));
	Perftools__Profiles__Label *lab = calloc((size_t)n * nsl + 1, sizeof(*lab));
	Perftools__Profiles__Label **labp = calloc((size_t)n * nsl + 1, sizeof(*labp));
	int64_t kidx[MAX_SAMPLE_LABELS], vidx[MAX_SAMPLE_LABELS][MAX_SAMPLE_LABEL_VALUES];
	struct timespec now;
	struct buf raw = { 0 };
	int rc = -ENOMEM;

	if (!fns || !fnp || !locs || !locp || !lines || !linep || !smp || !smpp || !ids || !vals || !strs ||
	    !lab || !labp)
		goto out;
	/* strings: "", samples, count, cpu, nanoseconds, main, f0.. */
	strs[0] = "";
	strs[1] = "samples";
	strs[2] = "count";
	strs[3] = "cpu";
	strs[4] = "nanoseconds";
	strs[5] = "main";
	for (i = 1; i < nfn; i++) {
		if (asprintf(&strs[5 + i], "f%ld", i - 1) < 0)
			goto out;
	}
	/* The labels' strings point into argv: not freed below. */
	next = (size_t)nfn + 5;
	for (size_t j = 0; j < nsl; j++) {
		kidx[j] = (int64_t)next;
		strs[next++] = sl[j].key;
		for (size_t v = 0; v < sl[j].nvals; v++) {
			vidx[j][v] = (int64_t)next;
			strs[next++] = sl[j].vals[v];
		}
	}
	for (i = 0; i < nfn; i++) {
		perftools__profiles__function__init(&fns[i]);
		fns[i].id = (uint64_t)i + 1;
		fns[i].name = 5 + i;
		fnp[i] = &fns[i];
		perftools__profiles__line__init(&lines[i]);
		lines[i].function_id = (uint64_t)i + 1;
		linep[i] = &lines[i];
		perftools__profiles__location__init(&locs[i]);
		locs[i].id = (uint64_t)i + 1;
		locs[i].address = 0x1000 + (uint64_t)i * 16;
		locs[i].n_line = 1;
		locs[i].line = &linep[i];
		locp[i] = &locs[i];
	}
	for (i = 0; i < n; i++) {
		perftools__profiles__sample__init(&smp[i]);
		ids[2 * i] = (uint64_t)i + 2; /* leaf first */
		ids[2 * i + 1] = 1;
		if (dangling && i == 0)
			ids[0] = (uint64_t)nfn + 1000;
		smp[i].n_location_id = 2;
		smp[i].location_id = &ids[2 * i];
		vals[2 * i] = 1;
		vals[2 * i + 1] = 10000000;
		smp[i].n_value = 2;
		smp[i].value = &vals[2 * i];
		for (size_t j = 0; j < nsl; j++) {
			Perftools__Profiles__Label *l = &lab[(size_t)i * nsl + j];

			perftools__profiles__label__init(l);
			l->key = kidx[j];
			l->str = vidx[j][(size_t)i % sl[j].nvals];
			labp[(size_t)i * nsl + j] = l;
		}
		smp[i].n_label = nsl;
		smp[i].label = &labp[(size_t)i * nsl];
		smpp[i] = &smp[i];
	}
	perftools__profiles__value_type__init(&vt[0]);
	perftools__profiles__value_type__init(&vt[1]);
	vt[0].type = 1, vt[0].unit = 2;
	vt[1].type = 3, vt[1].unit = 4;
	vtp[0] = &vt[0], vtp[1] = &vt[1];
	p.n_sample_type = 2;
	p.sample_type = vtp;
	p.n_sample = (size_t)n;
	p.sample = smpp;
	p.n_location = (size_t)nfn;
	p.location = locp;
	p.n_function = (size_t)nfn;
	p.function = fnp;
	p.n_string_table = next;
	p.string_table = strs;
	clock_gettime(CLOCK_REALTIME, &now);
	p.time_nanos = ((int64_t)now.tv_sec - age_s) * 1000000000 + now.tv_nsec;
	p.duration_nanos = 10LL * 1000000000;
	p.period_type = &vt[1];
	p.period = 10000000;
	raw.n = perftools__profiles__profile__get_packed_size(&p);
	raw.p = malloc(raw.n);
	if (!raw.p)
		goto out;
	perftools__profiles__profile__pack(&p, raw.p);
	rc = gzip_buf(raw.p, raw.n, ret);
out:
	free(raw.p);
	if (strs)
		for (i = 6; i < nfn + 5; i++)
			free(strs[i]);
	free(strs), free(vals), free(ids), free(smpp), free(smp), free(linep), free(lines);
	free(lab), free(labp);
	free(locp), free(locs), free(fnp), free(fns);
	return rc;
}

static void uuid4(char out[37])
{
	uint8_t b[16];

	if (RAND_bytes(b, sizeof(b)) != 1)
		memset(b, 0, sizeof(b));
	b[6] = (b[6] & 0x0f) | 0x40;
	b[8] = (b[8] & 0x3f) | 0x80;
	snprintf(out, 37, "%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x", b[0], b[1],
		 b[2], b[3], b[4], b[5], b[6], b[7], b[8], b[9], b[10], b[11], b[12], b[13], b[14], b[15]);
}

static size_t on_header(char *line, size_t sz, size_t n, void *arg)
{
	char **keep = arg;
	size_t len = sz * n;

	if (len > 12 && !strncasecmp(line, "retry-after:", 12)) {
		free(keep[0]);
		keep[0] = strndup(line + 12, len - 12);
	} else if (len > 13 && !strncasecmp(line, "content-type:", 13)) {
		free(keep[1]);
		keep[1] = strndup(line + 13, len - 13);
	}
	return len;
}

static size_t on_body(char *p, size_t sz, size_t n, void *arg)
{
	FILE *f = arg;

	return fwrite(p, sz, n, f);
}

static void trim_print(const char *what, const char *v)
{
	size_t a = 0, b;

	if (!v)
		return;
	while (v[a] == ' ' || v[a] == '\t')
		a++;
	b = strlen(v);
	while (b > a && (v[b - 1] == '\r' || v[b - 1] == '\n' || v[b - 1] == ' '))
		b--;
	printf("%s %.*s\n", what, (int)(b - a), v + a);
}

static void usage(void)
{
	fprintf(stderr, "usage: pyro_push --url URL [--label N=V]... [--label-repeat N=V,COUNT]\n"
			"         [--profile FILE]... [--synth N [--synth-age S] [--synth-dangling]\n"
			"         [--synth-sample-label KEY=V1,V2..]...]\n"
			"         [--id ID] [--body FILE] [--write FILE] [--path P] [--method M] [--content-type CT]\n"
			"         [--gzip-body] [--header 'K: V']... [--tenant T] [--basic U:P]\n"
			"         [--bearer TOKEN] [--cacert F] [--cert F --key F] [--timeout S] [--count N]\n");
}

static long num_arg(const char *opt, const char *v, long lo, long hi)
{
	char *end;
	long n;

	errno = 0;
	n = strtol(v, &end, 10);
	if (errno || end == v || *end || n < lo || n > hi) {
		fprintf(stderr, "pyro_push: %s %s: expected a number from %ld to %ld\n", opt, v, lo, hi);
		exit(64);
	}
	return n;
}

int main(int argc, char **argv)
{
	enum { O_URL = 256, O_LABEL, O_LREP, O_PROFILE, O_SYNTH, O_SAGE, O_SDANG, O_SLABEL, O_ID, O_BODY, O_PATH,
	       O_METHOD, O_CT, O_GZ, O_HDR, O_TENANT, O_BASIC, O_BEARER, O_CACERT, O_CERT, O_KEY, O_TIMEOUT,
	       O_COUNT, O_WRITE };
	static const struct option opts[] = {
		{ "url", required_argument, NULL, O_URL },
		{ "label", required_argument, NULL, O_LABEL },
		{ "label-repeat", required_argument, NULL, O_LREP },
		{ "profile", required_argument, NULL, O_PROFILE },
		{ "synth", required_argument, NULL, O_SYNTH },
		{ "synth-age", required_argument, NULL, O_SAGE },
		{ "synth-dangling", no_argument, NULL, O_SDANG },
		{ "synth-sample-label", required_argument, NULL, O_SLABEL },
		{ "id", required_argument, NULL, O_ID },
		{ "body", required_argument, NULL, O_BODY },
		{ "path", required_argument, NULL, O_PATH },
		{ "method", required_argument, NULL, O_METHOD },
		{ "content-type", required_argument, NULL, O_CT },
		{ "gzip-body", no_argument, NULL, O_GZ },
		{ "header", required_argument, NULL, O_HDR },
		{ "tenant", required_argument, NULL, O_TENANT },
		{ "basic", required_argument, NULL, O_BASIC },
		{ "bearer", required_argument, NULL, O_BEARER },
		{ "cacert", required_argument, NULL, O_CACERT },
		{ "cert", required_argument, NULL, O_CERT },
		{ "key", required_argument, NULL, O_KEY },
		{ "timeout", required_argument, NULL, O_TIMEOUT },
		{ "count", required_argument, NULL, O_COUNT },
		{ "write", required_argument, NULL, O_WRITE },
		{ 0 },
	};
	char *id = NULL;
	const char *url = NULL, *body_file = NULL, *write_file = NULL, *path = "/push.v1.PusherService/Push";
	const char *method = "POST", *ctype = "application/proto", *tenant = NULL, *basic = NULL;
	const char *bearer = NULL, *cacert = NULL, *cert = NULL, *key = NULL;
	static Push__V1__LabelPair lp[MAX_ITEMS], *lpp[MAX_ITEMS];
	static Push__V1__RawSample rs[MAX_ITEMS], *rsp[MAX_ITEMS];
	size_t nl = 0, ns = 0;
	long timeout = 30, count = 1, synth = -1, synth_age = 0;
	bool gz = false, dangling = false;
	struct sample_label slabels[MAX_SAMPLE_LABELS] = { 0 };
	size_t nslabels = 0;
	struct curl_slist *hdrs = NULL;
	struct buf body = { 0 };
	char ids[MAX_ITEMS][37];
	int c, rc = 2;

	while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		switch (c) {
		case O_URL: url = optarg; break;
		case O_LABEL:
		case O_LREP: {
			char *eq = strchr(optarg, '='), *comma = NULL;
			long rep = 1;

			if (!eq) {
				fprintf(stderr, "pyro_push: --label %s: expected NAME=VALUE\n", optarg);
				return 64;
			}
			if (c == O_LREP) {
				comma = strrchr(eq, ',');
				if (!comma) {
					fprintf(stderr, "pyro_push: --label-repeat %s: expected NAME=VALUE,COUNT\n", optarg);
					return 64;
				}
				rep = num_arg("--label-repeat", comma + 1, 1, MAX_ITEMS);
			}
			for (long k = 0; k < rep; k++) {
				if (nl >= MAX_ITEMS) {
					fprintf(stderr, "pyro_push: more than %d labels\n", MAX_ITEMS);
					return 64;
				}
				push__v1__label_pair__init(&lp[nl]);
				if (c == O_LREP) {
					if (asprintf(&lp[nl].name, "%.*s%ld", (int)(eq - optarg), optarg, k) < 0)
						return 71;
					lp[nl].value = strndup(eq + 1, (size_t)(comma - eq - 1));
				} else {
					lp[nl].name = strndup(optarg, (size_t)(eq - optarg));
					lp[nl].value = eq + 1;
				}
				lpp[nl] = &lp[nl];
				nl++;
			}
			break;
		}
		case O_PROFILE: {
			struct buf b;

			if (ns >= MAX_ITEMS)
				return 64;
			if (read_file(optarg, &b) < 0)
				return 66;
			push__v1__raw_sample__init(&rs[ns]);
			rs[ns].raw_profile.data = b.p;
			rs[ns].raw_profile.len = b.n;
			rsp[ns] = &rs[ns];
			ns++;
			break;
		}
		case O_SYNTH: synth = num_arg("--synth", optarg, 1, MAX_SYNTH); break;
		case O_SAGE: synth_age = num_arg("--synth-age", optarg, -(1L << 30), 1L << 30); break;
		case O_SDANG: dangling = true; break;
		case O_SLABEL: {
			char *eq = strchr(optarg, '='), *save = NULL, *v;
			struct sample_label *l = &slabels[nslabels];

			if (!eq || eq == optarg || nslabels >= MAX_SAMPLE_LABELS) {
				fprintf(stderr, "pyro_push: --synth-sample-label %s: expected KEY=V1[,V2..], at most %d\n",
					optarg, MAX_SAMPLE_LABELS);
				return 64;
			}
			*eq = '\0';
			l->key = optarg;
			for (v = strtok_r(eq + 1, ",", &save); v && l->nvals < MAX_SAMPLE_LABEL_VALUES;
			     v = strtok_r(NULL, ",", &save))
				l->vals[l->nvals++] = v;
			if (!l->nvals) {
				fprintf(stderr, "pyro_push: --synth-sample-label %s: no value\n", optarg);
				return 64;
			}
			nslabels++;
			break;
		}
		case O_ID: id = optarg; break;
		case O_BODY: body_file = optarg; break;
		case O_PATH: path = optarg; break;
		case O_METHOD: method = optarg; break;
		case O_CT: ctype = optarg; break;
		case O_GZ: gz = true; break;
		case O_HDR: hdrs = curl_slist_append(hdrs, optarg); break;
		case O_TENANT: tenant = optarg; break;
		case O_BASIC: basic = optarg; break;
		case O_BEARER: bearer = optarg; break;
		case O_CACERT: cacert = optarg; break;
		case O_CERT: cert = optarg; break;
		case O_KEY: key = optarg; break;
		case O_TIMEOUT: timeout = num_arg("--timeout", optarg, 1, 3600); break;
		case O_COUNT: count = num_arg("--count", optarg, 1, 100000000); break;
		case O_WRITE: write_file = optarg; break;
		default: usage(); return 64;
		}
	}
	if ((!url && !write_file) || optind != argc || !cert != !key) {
		usage();
		return 64;
	}
	if (synth > 0) {
		struct buf b;

		if (ns >= MAX_ITEMS || synth_profile(synth, synth_age, dangling, slabels, nslabels, &b) < 0) {
			fprintf(stderr, "pyro_push: cannot make a profile of %ld samples\n", synth);
			return 71;
		}
		push__v1__raw_sample__init(&rs[ns]);
		rs[ns].raw_profile.data = b.p;
		rs[ns].raw_profile.len = b.n;
		rsp[ns] = &rs[ns];
		ns++;
	}
	if (body_file) {
		if (read_file(body_file, &body) < 0)
			return 66;
	} else {
		Push__V1__PushRequest pr = PUSH__V1__PUSH_REQUEST__INIT;
		Push__V1__RawProfileSeries s = PUSH__V1__RAW_PROFILE_SERIES__INIT, *sp = &s;

		for (size_t i = 0; i < ns; i++) {
			if (id) {
				rs[i].id = id;
			} else {
				uuid4(ids[i]);
				rs[i].id = ids[i];
			}
		}
		s.n_labels = nl;
		s.labels = lpp;
		s.n_samples = ns;
		s.samples = rsp;
		pr.n_series = 1;
		pr.series = &sp;
		body.n = push__v1__push_request__get_packed_size(&pr);
		body.p = malloc(body.n ? body.n : 1);
		if (!body.p)
			return 71;
		push__v1__push_request__pack(&pr, body.p);
	}
	if (gz) {
		struct buf z;

		if (gzip_buf(body.p, body.n, &z) < 0)
			return 71;
		free(body.p);
		body = z;
		hdrs = curl_slist_append(hdrs, "Content-Encoding: gzip");
	}
	if (write_file) {
		FILE *wf = fopen(write_file, "we");

		if (!wf || fwrite(body.p, 1, body.n, wf) != body.n || fclose(wf) != 0) {
			fprintf(stderr, "pyro_push: cannot write %s: %s\n", write_file, strerror(errno));
			return 73;
		}
		curl_slist_free_all(hdrs);
		free(body.p);
		return 0;
	}

	char line[4096];
	snprintf(line, sizeof(line), "Content-Type: %s", ctype);
	hdrs = curl_slist_append(hdrs, line);
	hdrs = curl_slist_append(hdrs, "Connect-Protocol-Version: 1");
	hdrs = curl_slist_append(hdrs, "Expect:");
	if (tenant) {
		snprintf(line, sizeof(line), "X-Scope-OrgID: %s", tenant);
		hdrs = curl_slist_append(hdrs, line);
	}
	if (bearer) {
		snprintf(line, sizeof(line), "Authorization: Bearer %s", bearer);
		hdrs = curl_slist_append(hdrs, line);
	}

	char full[4096];
	snprintf(full, sizeof(full), "%s%s", url, path);
	curl_global_init(CURL_GLOBAL_DEFAULT);
	CURL *cu = curl_easy_init();
	char *keep[2] = { NULL, NULL };
	char *resp = NULL;
	size_t respn = 0;
	long ok = 0, status = 0;
	struct timespec t0, t1;

	if (!cu)
		return 71;
	curl_easy_setopt(cu, CURLOPT_URL, full);
	curl_easy_setopt(cu, CURLOPT_CUSTOMREQUEST, method);
	if (!strcmp(method, "POST") || !strcmp(method, "PUT")) {
		curl_easy_setopt(cu, CURLOPT_POSTFIELDS, body.p);
		curl_easy_setopt(cu, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)body.n);
	}
	curl_easy_setopt(cu, CURLOPT_HTTPHEADER, hdrs);
	curl_easy_setopt(cu, CURLOPT_USERAGENT, "pyro_push/" VIGIL_VERSION);
	curl_easy_setopt(cu, CURLOPT_TIMEOUT, timeout);
	curl_easy_setopt(cu, CURLOPT_HEADERFUNCTION, on_header);
	curl_easy_setopt(cu, CURLOPT_HEADERDATA, keep);
	curl_easy_setopt(cu, CURLOPT_WRITEFUNCTION, on_body);
	if (basic) {
		curl_easy_setopt(cu, CURLOPT_HTTPAUTH, CURLAUTH_BASIC);
		curl_easy_setopt(cu, CURLOPT_USERPWD, basic);
	}
	if (cacert)
		curl_easy_setopt(cu, CURLOPT_CAINFO, cacert);
	if (cert) {
		curl_easy_setopt(cu, CURLOPT_SSLCERT, cert);
		curl_easy_setopt(cu, CURLOPT_SSLKEY, key);
	}
	clock_gettime(CLOCK_MONOTONIC, &t0);
	for (long i = 0; i < count; i++) {
		FILE *rf = open_memstream(&resp, &respn);
		CURLcode cc;

		if (!rf)
			return 71;
		curl_easy_setopt(cu, CURLOPT_WRITEDATA, rf);
		cc = curl_easy_perform(cu);
		fclose(rf);
		if (cc != CURLE_OK) {
			printf("error: %s\n", curl_easy_strerror(cc));
			rc = 2;
		} else {
			curl_easy_getinfo(cu, CURLINFO_RESPONSE_CODE, &status);
			printf("status %ld\n", status);
			rc = status == 200 ? 0 : 1;
			ok += status == 200;
		}
		if (i + 1 < count) {
			free(resp);
			resp = NULL;
			free(keep[0]), free(keep[1]);
			keep[0] = keep[1] = NULL;
		}
	}
	clock_gettime(CLOCK_MONOTONIC, &t1);
	trim_print("retry-after", keep[0]);
	trim_print("content-type", keep[1]);
	if (resp && respn) {
		fwrite(resp, 1, respn, stdout);
		if (resp[respn - 1] != '\n')
			putchar('\n');
	}
	if (count > 1)
		printf("requests %ld ok %ld seconds %.6f request_bytes %zu\n", count, ok,
		       (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9, body.n);
	free(resp);
	free(keep[0]), free(keep[1]);
	curl_easy_cleanup(cu);
	curl_slist_free_all(hdrs);
	free(body.p);
	return rc;
}
