/*
 * pprof_query.c - answer questions about pprof files for integration tests.
 *
 * Shell tests run vigild, then assert on what it wrote with this tool
 * instead of parsing `go tool pprof` output.  Profiles are read with
 * pprof_decode() and pprof_validate() from daemon/pprof.c, so a file this
 * tool accepts is also one our own reader accepts.
 *
 *   pprof_query check FILE...                 validate; every sample has labels
 *                                             pid, tid (numeric), comm, thread_name,
 *                                             cgroup (string); "ok FILE" per file
 *   pprof_query stacks [FILTERS] FILE...      "<count>\t<root;...;leaf>" (folded)
 *   pprof_query self [FILTERS] FILE...        "<count>\t<percent>\t<leaf function>"
 *   pprof_query total [FILTERS] FILE...       sum of values[0]
 *   pprof_query cpu [FILTERS] FILE...         sum of values[1], which must be
 *                                             cpu/nanoseconds (exit 65 if not)
 *   pprof_query count [FILTERS] FILE...       number of matching samples (the
 *                                             distinct stacks and label sets)
 *   pprof_query labels KEY [FILTERS] FILE...  "<count>\t<value>" of label KEY
 *   pprof_query mappings FILE...              "<id>\t<start>\t<limit>\t<offset>\t<file>\t<build-id>"
 *   pprof_query functions [FILTERS] FILE...   "<name>\t<system_name>" of every function
 *                                             (with FILTERS: on a matching
 *                                             sample's stack, once a frame)
 *   pprof_query info FILE                     header fields and comments
 *
 *   FILTERS: --label KEY=VALUE (repeatable, all must match; numeric labels
 *   compare as decimal).  stacks also takes --user: the user-mode frames
 *   only (those outside the [kernel.kallsyms] mapping), so that the last
 *   frame printed is the user pc the sample interrupted or entered the
 *   kernel from.
 *
 * Counts are sums of values[0] (samples; for cpu, values[1]) over matching
 * samples of all files, sorted by count (descending), then text.  An
 * unsymbolized frame prints as 0x<address>@<mapping file basename>.  Exit
 * status: 0; 1 if check finds a problem; 64 usage; 65 unreadable or
 * invalid profile (other commands).
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "pprof.h"

#define EX_USAGE 64
#define EX_DATAERR 65

typedef Perftools__Profiles__Profile Profile;
typedef Perftools__Profiles__Sample Sample;
typedef Perftools__Profiles__Location Location;

static const char *usage_text =
	"usage: pprof_query check FILE...\n"
	"       pprof_query stacks [--user] [--label KEY=VALUE]... FILE...\n"
	"       pprof_query self [--label KEY=VALUE]... FILE...\n"
	"       pprof_query total [--label KEY=VALUE]... FILE...\n"
	"       pprof_query cpu [--label KEY=VALUE]... FILE...\n"
	"       pprof_query count [--label KEY=VALUE]... FILE...\n"
	"       pprof_query labels KEY [--label KEY=VALUE]... FILE...\n"
	"       pprof_query mappings FILE...\n"
	"       pprof_query functions [--label KEY=VALUE]... FILE...\n"
	"       pprof_query info FILE\n";

static void usage(const char *why)
{
	if (why)
		fprintf(stderr, "pprof_query: %s\n", why);
	fputs(usage_text, stderr);
	exit(EX_USAGE);
}

static void die_nomem(void)
{
	fprintf(stderr, "pprof_query: out of memory\n");
	exit(70);
}

static void *xrealloc(void *p, size_t n, size_t size)
{
	if (size && n > SIZE_MAX / size)
		die_nomem();
	n *= size;
	p = realloc(p, n ? n : 1);
	if (!p)
		die_nomem();
	return p;
}

static char *xstrdup(const char *s)
{
	char *d = strdup(s);

	if (!d)
		die_nomem();
	return d;
}

/* ------------------------------------------------------------------------ */
/* Loading. */

struct id_ref {
	uint64_t id;
	const void *ptr;
};

struct prof {
	const char *path;
	Profile *p;
	struct id_ref *locs, *funcs, *maps;
};

static int id_cmp(const void *a, const void *b)
{
	uint64_t x = ((const struct id_ref *)a)->id, y = ((const struct id_ref *)b)->id;

	return x < y ? -1 : x > y;
}

static struct id_ref *index_ids(void *const *items, size_t n, size_t id_offset)
{
	struct id_ref *idx = xrealloc(NULL, n, sizeof(*idx));

	for (size_t i = 0; i < n; i++) {
		memcpy(&idx[i].id, (const char *)items[i] + id_offset, sizeof(uint64_t));
		idx[i].ptr = items[i];
	}
	qsort(idx, n, sizeof(*idx), id_cmp);
	return idx;
}

static const void *lookup(const struct id_ref *idx, size_t n, uint64_t id)
{
	struct id_ref key = {.id = id};
	const struct id_ref *r = bsearch(&key, idx, n, sizeof(*idx), id_cmp);

	return r ? r->ptr : NULL;
}

/* Read a whole file, refusing more than PPROF_MAX_DECODED bytes. */
static int read_file(const char *path, uint8_t **ret_buf, size_t *ret_len)
{
	uint8_t *buf = NULL;
	size_t len = 0, cap = 0;
	int fd = open(path, O_RDONLY | O_CLOEXEC);

	if (fd < 0)
		return -errno;
	for (;;) {
		ssize_t n;

		if (len == cap) {
			if (cap > PPROF_MAX_DECODED) {
				free(buf);
				close(fd);
				return -E2BIG;
			}
			cap = cap ? cap * 2 : 65536;
			buf = xrealloc(buf, cap, 1);
		}
		n = read(fd, buf + len, cap - len);
		if (n < 0) {
			int err = -errno;

			if (err == -EINTR)
				continue;
			free(buf);
			close(fd);
			return err;
		}
		if (n == 0)
			break;
		len += (size_t)n;
	}
	close(fd);
	*ret_buf = buf;
	*ret_len = len;
	return 0;
}

/* Load and validate path; on failure print why and return -errno. */
static int prof_load(struct prof *pr, const char *path)
{
	uint8_t *buf = NULL;
	size_t len = 0;
	int err;

	memset(pr, 0, sizeof(*pr));
	pr->path = path;
	err = read_file(path, &buf, &len);
	if (err < 0) {
		fprintf(stderr, "pprof_query: %s: %s\n", path, strerror(-err));
		return err;
	}
	err = pprof_decode(buf, len, &pr->p);
	free(buf);
	if (err < 0) {
		fprintf(stderr, "pprof_query: %s: not a pprof profile: %s\n", path, strerror(-err));
		return err;
	}
	err = pprof_validate(pr->p);
	if (err < 0) {
		fprintf(stderr, "pprof_query: %s: invalid profile (dangling id, bad string index "
				"or wrong number of values)\n", path);
		perftools__profiles__profile__free_unpacked(pr->p, NULL);
		pr->p = NULL;
		return err;
	}
	pr->locs = index_ids((void *const *)pr->p->location, pr->p->n_location, offsetof(Location, id));
	pr->funcs = index_ids((void *const *)pr->p->function, pr->p->n_function,
			      offsetof(Perftools__Profiles__Function, id));
	pr->maps = index_ids((void *const *)pr->p->mapping, pr->p->n_mapping,
			     offsetof(Perftools__Profiles__Mapping, id));
	return 0;
}

static void prof_release(struct prof *pr)
{
	if (pr->p)
		perftools__profiles__profile__free_unpacked(pr->p, NULL);
	free(pr->locs);
	free(pr->funcs);
	free(pr->maps);
	memset(pr, 0, sizeof(*pr));
}

/* Load or exit 65: for every command but check. */
static void prof_load_or_exit(struct prof *pr, const char *path)
{
	if (prof_load(pr, path) < 0)
		exit(EX_DATAERR);
}

static const char *str(const struct prof *pr, int64_t idx)
{
	return pr->p->string_table[idx]; /* in range: validated */
}

/* ------------------------------------------------------------------------ */
/* Samples, labels and filters. */

struct filter {
	const char *key, *value;
};

struct args {
	const char *cmd, *label_key;
	bool user_only; /* stacks --user */
	bool cpu;       /* cpu: values[1] (cpu/nanoseconds), not values[0] */
	struct filter *filters;
	size_t n_filters;
	char **files;
	size_t n_files;
};

/* A label's value as text: the string, or the number in decimal. */
static const char *label_value(const struct prof *pr, const Perftools__Profiles__Label *l,
			       char *num, size_t num_size)
{
	if (l->str)
		return str(pr, l->str);
	snprintf(num, num_size, "%" PRId64, l->num);
	return num;
}

static bool sample_matches(const struct prof *pr, const Sample *s, const struct args *a)
{
	char num[32];

	for (size_t f = 0; f < a->n_filters; f++) {
		bool hit = false;

		for (size_t i = 0; i < s->n_label && !hit; i++) {
			const Perftools__Profiles__Label *l = s->label[i];

			hit = !strcmp(str(pr, l->key), a->filters[f].key) &&
			      !strcmp(label_value(pr, l, num, sizeof(num)), a->filters[f].value);
		}
		if (!hit)
			return false;
	}
	return true;
}

/* What a sample counts for: values[0] (samples), or values[1] for cpu. */
static int64_t sample_count(const struct args *a, const Sample *s)
{
	size_t i = a->cpu ? 1 : 0;

	return s->n_value > i ? s->value[i] : 0;
}

/* For cpu: values[1] must be cpu/nanoseconds; exits 65 if not. */
static void require_cpu_ns(const struct prof *pr, const char *file)
{
	const Perftools__Profiles__ValueType *vt = pr->p->n_sample_type > 1 ? pr->p->sample_type[1] : NULL;

	if (!vt || strcmp(str(pr, vt->type), "cpu") || strcmp(str(pr, vt->unit), "nanoseconds")) {
		fprintf(stderr, "pprof_query: %s: the second sample type is not cpu/nanoseconds\n", file);
		exit(EX_DATAERR);
	}
}

/* ------------------------------------------------------------------------ */
/* Frames. */

struct sbuf {
	char *s;
	size_t len, cap;
};

static void sb_printf(struct sbuf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void sb_printf(struct sbuf *b, const char *fmt, ...)
{
	va_list ap;
	int n;

	for (;;) {
		va_start(ap, fmt);
		n = vsnprintf(b->s ? b->s + b->len : NULL, b->s ? b->cap - b->len : 0, fmt, ap);
		va_end(ap);
		if (n < 0)
			die_nomem();
		if (b->s && (size_t)n < b->cap - b->len)
			break;
		b->cap = (b->cap + (size_t)n + 1) * 2;
		b->s = xrealloc(b->s, b->cap, 1);
	}
	b->len += (size_t)n;
}

static const char *basename_of(const char *path)
{
	const char *slash = strrchr(path, '/');

	return slash ? slash + 1 : path;
}

/* Function name of line i of loc. */
static const char *line_func(const struct prof *pr, const Location *loc, size_t i)
{
	const Perftools__Profiles__Function *f =
		lookup(pr->funcs, pr->p->n_function, loc->line[i]->function_id);

	return f ? str(pr, f->name) : "?";
}

static void append_address(struct sbuf *b, const struct prof *pr, const Location *loc)
{
	const Perftools__Profiles__Mapping *m =
		loc->mapping_id ? lookup(pr->maps, pr->p->n_mapping, loc->mapping_id) : NULL;

	sb_printf(b, "0x%" PRIx64, loc->address);
	if (m && *str(pr, m->filename))
		sb_printf(b, "@%s", basename_of(str(pr, m->filename)));
}

/* The mapping vigild gives kernel frames (daemon/symbolizer.c). */
static bool in_kernel(const struct prof *pr, const Location *loc)
{
	const Perftools__Profiles__Mapping *m =
		loc->mapping_id ? lookup(pr->maps, pr->p->n_mapping, loc->mapping_id) : NULL;

	return m && !strcmp(str(pr, m->filename), "[kernel.kallsyms]");
}

/* Folded stack, root first, the kernel's frames left out if user_only.  A
 * location's lines run callee first (inlined frames before the function
 * they were inlined into), so reverse them too. */
static void folded_stack(struct sbuf *b, const struct prof *pr, const Sample *s, bool user_only)
{
	bool first = true;

	b->len = 0;
	sb_printf(b, "%s", "");
	for (size_t i = s->n_location_id; i-- > 0;) {
		const Location *loc = lookup(pr->locs, pr->p->n_location, s->location_id[i]);

		if (user_only && in_kernel(pr, loc))
			continue;
		if (!loc->n_line) {
			if (!first)
				sb_printf(b, ";");
			append_address(b, pr, loc);
			first = false;
			continue;
		}
		for (size_t j = loc->n_line; j-- > 0;) {
			sb_printf(b, "%s%s", first ? "" : ";", line_func(pr, loc, j));
			first = false;
		}
	}
}

/* The leaf frame: innermost function of the first location. */
static void leaf_frame(struct sbuf *b, const struct prof *pr, const Sample *s)
{
	const Location *loc;

	b->len = 0;
	sb_printf(b, "%s", "");
	if (!s->n_location_id) {
		sb_printf(b, "<no frames>");
		return;
	}
	loc = lookup(pr->locs, pr->p->n_location, s->location_id[0]);
	if (loc->n_line)
		sb_printf(b, "%s", line_func(pr, loc, 0));
	else
		append_address(b, pr, loc);
}

/* ------------------------------------------------------------------------ */
/* Aggregation: (text, count) pairs merged by text, sorted by count. */

struct tally_entry {
	char *text;
	int64_t count;
};

struct tally {
	struct tally_entry *e;
	size_t n, cap;
};

static void tally_add(struct tally *t, const char *text, int64_t count)
{
	if (t->n == t->cap) {
		t->cap = t->cap ? t->cap * 2 : 256;
		t->e = xrealloc(t->e, t->cap, sizeof(*t->e));
	}
	t->e[t->n].text = xstrdup(text);
	t->e[t->n].count = count;
	t->n++;
}

static int by_text(const void *a, const void *b)
{
	return strcmp(((const struct tally_entry *)a)->text, ((const struct tally_entry *)b)->text);
}

static int by_count_desc(const void *a, const void *b)
{
	const struct tally_entry *x = a, *y = b;

	if (x->count != y->count)
		return x->count > y->count ? -1 : 1;
	return strcmp(x->text, y->text);
}

static void tally_finish(struct tally *t)
{
	size_t i, out = 0;

	qsort(t->e, t->n, sizeof(*t->e), by_text);
	for (i = 0; i < t->n; i++) {
		if (out && !strcmp(t->e[out - 1].text, t->e[i].text)) {
			t->e[out - 1].count += t->e[i].count;
			free(t->e[i].text);
		} else {
			t->e[out++] = t->e[i];
		}
	}
	t->n = out;
	qsort(t->e, t->n, sizeof(*t->e), by_count_desc);
}

static void tally_free(struct tally *t)
{
	for (size_t i = 0; i < t->n; i++)
		free(t->e[i].text);
	free(t->e);
}

/* ------------------------------------------------------------------------ */
/* Commands. */

static int cmd_check(const struct args *a)
{
	static const char *const num_keys[] = {"pid", "tid"};
	static const char *const str_keys[] = {"comm", "thread_name", "cgroup"};
	int status = 0;

	for (size_t f = 0; f < a->n_files; f++) {
		struct prof pr;
		const char *problem = NULL, *key = NULL;
		size_t bad = 0;

		if (prof_load(&pr, a->files[f]) < 0) {
			status = 1;
			continue;
		}
		for (size_t i = 0; i < pr.p->n_sample && !problem; i++) {
			const Sample *s = pr.p->sample[i];

			for (size_t k = 0; k < 5 && !problem; k++) {
				bool numeric = k < 2;
				const char *want = numeric ? num_keys[k] : str_keys[k - 2];
				bool found = false;

				for (size_t j = 0; j < s->n_label && !found; j++) {
					const Perftools__Profiles__Label *l = s->label[j];

					found = !strcmp(str(&pr, l->key), want) &&
						(numeric ? l->str == 0 : l->str != 0);
				}
				if (!found) {
					problem = numeric ? "missing numeric label" : "missing string label";
					key = want;
					bad = i;
				}
			}
		}
		if (problem) {
			fprintf(stderr, "pprof_query: %s: sample %zu: %s %s\n", a->files[f], bad, problem,
				key);
			status = 1;
		} else {
			printf("ok %s\n", a->files[f]);
		}
		prof_release(&pr);
	}
	return status;
}

enum fold_mode { FOLD_STACKS, FOLD_SELF, FOLD_LABELS };

/* Tally matching samples of every file by stack, leaf or label value. */
static int64_t collect(const struct args *a, enum fold_mode mode, struct tally *t)
{
	struct sbuf b = {0};
	int64_t total = 0;
	char num[32];

	for (size_t f = 0; f < a->n_files; f++) {
		struct prof pr;

		prof_load_or_exit(&pr, a->files[f]);
		if (a->cpu)
			require_cpu_ns(&pr, a->files[f]);
		for (size_t i = 0; i < pr.p->n_sample; i++) {
			const Sample *s = pr.p->sample[i];

			if (!sample_matches(&pr, s, a))
				continue;
			total += sample_count(a, s);
			if (!t)
				continue;
			switch (mode) {
			case FOLD_STACKS:
				folded_stack(&b, &pr, s, a->user_only);
				tally_add(t, b.s, sample_count(a, s));
				break;
			case FOLD_SELF:
				leaf_frame(&b, &pr, s);
				tally_add(t, b.s, sample_count(a, s));
				break;
			case FOLD_LABELS:
				for (size_t j = 0; j < s->n_label; j++)
					if (!strcmp(str(&pr, s->label[j]->key), a->label_key))
						tally_add(t, label_value(&pr, s->label[j], num, sizeof(num)),
							  sample_count(a, s));
				break;
			}
		}
		prof_release(&pr);
	}
	free(b.s);
	if (t)
		tally_finish(t);
	return total;
}

static int cmd_fold(const struct args *a, enum fold_mode mode)
{
	struct tally t = {0};
	int64_t total = collect(a, mode, &t);

	for (size_t i = 0; i < t.n; i++) {
		if (mode == FOLD_SELF)
			printf("%" PRId64 "\t%.2f\t%s\n", t.e[i].count,
			       total ? 100.0 * (double)t.e[i].count / (double)total : 0.0, t.e[i].text);
		else
			printf("%" PRId64 "\t%s\n", t.e[i].count, t.e[i].text);
	}
	tally_free(&t);
	return 0;
}

static int cmd_total(const struct args *a)
{
	printf("%" PRId64 "\n", collect(a, FOLD_STACKS, NULL));
	return 0;
}

static int cmd_count(const struct args *a)
{
	size_t n = 0;

	for (size_t f = 0; f < a->n_files; f++) {
		struct prof pr;

		prof_load_or_exit(&pr, a->files[f]);
		for (size_t i = 0; i < pr.p->n_sample; i++)
			n += sample_matches(&pr, pr.p->sample[i], a);
		prof_release(&pr);
	}
	printf("%zu\n", n);
	return 0;
}

static int cmd_mappings(const struct args *a)
{
	for (size_t f = 0; f < a->n_files; f++) {
		struct prof pr;

		prof_load_or_exit(&pr, a->files[f]);
		for (size_t i = 0; i < pr.p->n_mapping; i++) {
			const Perftools__Profiles__Mapping *m = pr.p->mapping[i];

			printf("%" PRIu64 "\t0x%" PRIx64 "\t0x%" PRIx64 "\t0x%" PRIx64 "\t%s\t%s\n", m->id,
			       m->memory_start, m->memory_limit, m->file_offset, str(&pr, m->filename),
			       str(&pr, m->build_id));
		}
		prof_release(&pr);
	}
	return 0;
}

static void print_function(const struct prof *pr, const Perftools__Profiles__Function *fn)
{
	printf("%s\t%s\n", str(pr, fn->name), str(pr, fn->system_name));
}

/* The functions of a matching sample's stack, a line each (sort -u for a set). */
static void print_sample_functions(const struct prof *pr, const Sample *s)
{
	for (size_t i = 0; i < s->n_location_id; i++) {
		const Location *loc = lookup(pr->locs, pr->p->n_location, s->location_id[i]);

		for (size_t j = 0; loc && j < loc->n_line; j++) {
			const Perftools__Profiles__Function *fn =
				lookup(pr->funcs, pr->p->n_function, loc->line[j]->function_id);

			if (fn)
				print_function(pr, fn);
		}
	}
}

static int cmd_functions(const struct args *a)
{
	for (size_t f = 0; f < a->n_files; f++) {
		struct prof pr;

		prof_load_or_exit(&pr, a->files[f]);
		if (!a->n_filters) {
			for (size_t i = 0; i < pr.p->n_function; i++)
				print_function(&pr, pr.p->function[i]);
		} else {
			for (size_t i = 0; i < pr.p->n_sample; i++)
				if (sample_matches(&pr, pr.p->sample[i], a))
					print_sample_functions(&pr, pr.p->sample[i]);
		}
		prof_release(&pr);
	}
	return 0;
}

static void print_vt(const struct prof *pr, const Perftools__Profiles__ValueType *vt)
{
	printf("%s/%s", str(pr, vt->type), str(pr, vt->unit));
}

static int cmd_info(const struct args *a)
{
	struct prof pr;
	const Profile *p;

	prof_load_or_exit(&pr, a->files[0]);
	p = pr.p;
	printf("time_nanos: %" PRId64 "\n", p->time_nanos);
	printf("duration_nanos: %" PRId64 "\n", p->duration_nanos);
	printf("period: %" PRId64 "\n", p->period);
	printf("period_type: ");
	if (p->period_type)
		print_vt(&pr, p->period_type);
	printf("\nsample_types:");
	for (size_t i = 0; i < p->n_sample_type; i++) {
		printf(" ");
		print_vt(&pr, p->sample_type[i]);
	}
	printf("\nsamples: %zu\nlocations: %zu\nfunctions: %zu\nmappings: %zu\n", p->n_sample,
	       p->n_location, p->n_function, p->n_mapping);
	for (size_t i = 0; i < p->n_comment; i++)
		printf("comment: %s\n", str(&pr, p->comment[i]));
	prof_release(&pr);
	return 0;
}

/* ------------------------------------------------------------------------ */

static void parse_args(struct args *a, int argc, char **argv, bool filters_ok)
{
	int i = 2;
	bool opts = true, user_ok = !strcmp(a->cmd, "stacks");

	if (!strcmp(a->cmd, "labels")) {
		if (argc < 3 || !*argv[2])
			usage("labels needs a KEY");
		a->label_key = argv[2];
		i = 3;
	}
	a->filters = xrealloc(NULL, (size_t)argc, sizeof(*a->filters));
	a->files = xrealloc(NULL, (size_t)argc, sizeof(*a->files));
	for (; i < argc; i++) {
		char *arg = argv[i], *spec = NULL, *eq;

		if (opts && !strcmp(arg, "--")) {
			opts = false;
			continue;
		}
		if (opts && user_ok && !strcmp(arg, "--user")) {
			a->user_only = true;
			continue;
		}
		if (opts && !strcmp(arg, "--label")) {
			if (++i >= argc)
				usage("--label needs KEY=VALUE");
			spec = argv[i];
		} else if (opts && !strncmp(arg, "--label=", 8)) {
			spec = arg + 8;
		} else if (opts && arg[0] == '-' && arg[1]) {
			fprintf(stderr, "pprof_query: unknown option %s\n", arg);
			usage(NULL);
		} else {
			a->files[a->n_files++] = arg;
			continue;
		}
		if (!filters_ok)
			usage("this command takes no --label filters");
		eq = strchr(spec, '=');
		if (!eq || eq == spec)
			usage("--label needs KEY=VALUE");
		*eq = '\0';
		a->filters[a->n_filters++] = (struct filter){.key = spec, .value = eq + 1};
	}
	if (!a->n_files)
		usage("no profile given");
}

int main(int argc, char **argv)
{
	struct args a = {0};
	int ret;

	if (argc < 2)
		usage(NULL);
	a.cmd = argv[1];
	if (!strcmp(a.cmd, "-h") || !strcmp(a.cmd, "--help")) {
		fputs(usage_text, stdout);
		return 0;
	}
	if (!strcmp(a.cmd, "check")) {
		parse_args(&a, argc, argv, false);
		ret = cmd_check(&a);
	} else if (!strcmp(a.cmd, "stacks")) {
		parse_args(&a, argc, argv, true);
		ret = cmd_fold(&a, FOLD_STACKS);
	} else if (!strcmp(a.cmd, "self")) {
		parse_args(&a, argc, argv, true);
		ret = cmd_fold(&a, FOLD_SELF);
	} else if (!strcmp(a.cmd, "total")) {
		parse_args(&a, argc, argv, true);
		ret = cmd_total(&a);
	} else if (!strcmp(a.cmd, "cpu")) {
		parse_args(&a, argc, argv, true);
		a.cpu = true;
		ret = cmd_total(&a);
	} else if (!strcmp(a.cmd, "count")) {
		parse_args(&a, argc, argv, true);
		ret = cmd_count(&a);
	} else if (!strcmp(a.cmd, "labels")) {
		parse_args(&a, argc, argv, true);
		ret = cmd_fold(&a, FOLD_LABELS);
	} else if (!strcmp(a.cmd, "mappings")) {
		parse_args(&a, argc, argv, false);
		ret = cmd_mappings(&a);
	} else if (!strcmp(a.cmd, "functions")) {
		parse_args(&a, argc, argv, true);
		ret = cmd_functions(&a);
	} else if (!strcmp(a.cmd, "info")) {
		parse_args(&a, argc, argv, false);
		if (a.n_files != 1)
			usage("info takes exactly one FILE");
		ret = cmd_info(&a);
	} else {
		fprintf(stderr, "pprof_query: unknown command %s\n", a.cmd);
		usage(NULL);
		return EX_USAGE;
	}
	free(a.filters);
	free(a.files);
	if (fflush(stdout) != 0 || ferror(stdout)) {
		fprintf(stderr, "pprof_query: write error: %s\n", strerror(errno));
		return 74; /* EX_IOERR */
	}
	return ret;
}
