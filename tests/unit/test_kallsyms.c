/*
 * test_kallsyms.c - unit tests of the kallsyms loader: synthetic files
 * with known contents, then the running kernel's /proc/kallsyms when this
 * process may see its addresses.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>
#include "skip.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "kallsyms.h"

static char tmpdir[] = "/tmp/vigil-kallsyms-XXXXXX";

static int setup(void **state)
{
	return mkdtemp(tmpdir) ? 0 : -1;
}

static int teardown(void **state)
{
	char cmd[128];

	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", tmpdir);
	return system(cmd) == 0 ? 0 : -1;
}

/* Write len bytes to a fresh file in tmpdir; returns its path (static buffer). */
static const char *write_file(const char *name, const char *data, size_t len)
{
	static char path[256];
	FILE *f;

	snprintf(path, sizeof(path), "%s/%s", tmpdir, name);
	f = fopen(path, "we");
	assert_non_null(f);
	assert_int_equal(fwrite(data, 1, len, f), len);
	assert_int_equal(fclose(f), 0);
	return path;
}

static int load_str(const char *text, struct kallsyms **ret)
{
	return kallsyms_load(write_file("k", text, strlen(text)), ret);
}

static const char SYNTHETIC[] =
	"0000000000000000 A fixed_percpu_data\n"
	"ffffffff81000000 T _text\n"
	"ffffffff81000000 T _stext\n"
	"ffffffff81000000 t __pi__text\n"
	"ffffffff81000100 T do_thing\n"
	"ffffffff81000200 t local_thing\n"
	"ffffffff81000300 W weak_thing\n"
	"ffffffff81000400 D some_data\n"
	"ffffffff81000500 T last_text\n"
	"ffffffff82000000 B some_bss\n"
	"ffffffffc0001000 t mod_fn_a\t[mymod]\n"
	"ffffffffc0001100 T mod_fn_b\t[mymod]\n"
	"ffffffffc0002000 t other_fn\t[othermod]\n"
	"ffffffffc0001080 t mod_fn_mid\t[mymod]"; /* unsorted, no newline */

static void expect(struct kallsyms *k, uint64_t addr, const char *name, const char *mod,
		   uint64_t off)
{
	const char *m = "unset", *got;
	uint64_t o = 12345;

	got = kallsyms_lookup(k, addr, &m, &o);
	if (!got || strcmp(got, name) != 0)
		fail_msg("lookup(%#llx) = %s, want %s", (unsigned long long)addr, got ? got : "NULL",
			 name);
	if (mod) {
		assert_non_null(m);
		assert_string_equal(m, mod);
	} else {
		assert_null(m);
	}
	assert_int_equal(o, off);
}

/*
 * Addresses whose high 32 bits differ (the table keeps the low 32 bits of
 * each address and the runs of equal high bits): a lookup finds its run,
 * and falls back to the previous run's last symbol below a run's first.
 */
static void test_runs(void **state)
{
	static const char text[] =
		"0000000100000000 T one_a\n"
		"00000001fffffff0 T one_last\n"
		"0000000200000010 T two_a\n"
		"0000000200001000 T two_b\t[m2]\n"
		"0000000500000000 T five_a\n";
	struct kallsyms *k = NULL;

	assert_int_equal(load_str(text, &k), 0);
	assert_int_equal(kallsyms_count(k), 5);
	assert_null(kallsyms_lookup(k, 0xffffffff, NULL, NULL));
	expect(k, 0x100000000, "one_a", NULL, 0);
	expect(k, 0x1fffffff0, "one_last", NULL, 0);
	/* In run 2 but below its first symbol: run 1's last covers it. */
	expect(k, 0x200000000, "one_last", NULL, 0x10);
	expect(k, 0x200000010, "two_a", NULL, 0);
	expect(k, 0x200000fff, "two_a", NULL, 0xfef);
	expect(k, 0x200001004, "two_b", "[m2]", 4);
	/* No run of high bits 3: run 2's last, too far; nor of 4. */
	assert_null(kallsyms_lookup(k, 0x300000000, NULL, NULL));
	assert_null(kallsyms_lookup(k, 0x4ffffffff, NULL, NULL));
	expect(k, 0x500000000 + KALLSYMS_MAX_SYMBOL_SIZE - 1, "five_a", NULL, KALLSYMS_MAX_SYMBOL_SIZE - 1);
	assert_null(kallsyms_lookup(k, 0x500000000 + KALLSYMS_MAX_SYMBOL_SIZE, NULL, NULL));
	assert_null(kallsyms_lookup(k, UINT64_MAX - 1, NULL, NULL));
	kallsyms_free(k);
}

static void test_synthetic(void **state)
{
	struct kallsyms *k = NULL;
	uint64_t start, end;

	assert_int_equal(load_str(SYNTHETIC, &k), 0);
	/* Of _text, _stext and __pi__text: global, fewest underscores, then by name. */
	expect(k, 0xffffffff81000000, "_stext", NULL, 0);
	expect(k, 0xffffffff81000050, "_stext", NULL, 0x50);
	expect(k, 0xffffffff81000100, "do_thing", NULL, 0);
	expect(k, 0xffffffff81000101, "do_thing", NULL, 1);
	expect(k, 0xffffffff81000200, "local_thing", NULL, 0);
	expect(k, 0xffffffff81000300, "weak_thing", NULL, 0);
	/* Data symbols are not functions: the text symbol before extends over them. */
	expect(k, 0xffffffff81000400, "weak_thing", NULL, 0x100);
	expect(k, 0xffffffff81000600, "last_text", NULL, 0x100);
	/* Far past the last symbol: no blame. */
	assert_null(kallsyms_lookup(k, 0xffffffff81000500 + KALLSYMS_MAX_SYMBOL_SIZE, NULL, NULL));
	assert_null(kallsyms_lookup(k, 0xffffffff80ffffff, NULL, NULL));
	assert_null(kallsyms_lookup(k, 0, NULL, NULL));

	expect(k, 0xffffffffc0001000, "mod_fn_a", "[mymod]", 0);
	expect(k, 0xffffffffc0001001, "mod_fn_a", "[mymod]", 1);
	expect(k, 0xffffffffc0001090, "mod_fn_mid", "[mymod]", 0x10);
	expect(k, 0xffffffffc0001100, "mod_fn_b", "[mymod]", 0);
	expect(k, 0xffffffffc0002010, "other_fn", "[othermod]", 0x10);

	assert_int_equal(kallsyms_range(k, NULL, &start, &end), 0);
	assert_int_equal(start, 0xffffffff81000000);
	assert_int_equal(end, 0xffffffff81000501);
	assert_int_equal(kallsyms_range(k, "[mymod]", &start, &end), 0);
	assert_int_equal(start, 0xffffffffc0001000);
	assert_int_equal(end, 0xffffffffc0001101);
	assert_int_equal(kallsyms_range(k, "[nosuch]", &start, &end), -ENOENT);
	/* 3 kernel addresses + do_thing, local, weak, last + 4 module symbols. */
	assert_int_equal(kallsyms_count(k), 9);
	kallsyms_free(k);
	kallsyms_free(NULL);
}

/*
 * Function padding: "__pfx_NAME" just before NAME.  Both resolve, and
 * NAME's bytes are not stored again (kallsyms_bytes), unless something
 * else comes between or the names differ.
 */
/* A kallsyms text with padding symbols, the functions after two of them named ALPHA and BETA. */
#define PADDED(ALPHA, BETA)                            \
	"ffffffff81000000 T _text\n"                   \
	"ffffffff810000f0 T __pfx_alpha_function\n"    \
	"ffffffff81000100 T " ALPHA "\n"               \
	"ffffffff810001f0 t __pfx_beta\n"              \
	"ffffffff81000200 d some_data\n"               \
	"ffffffff81000200 t " BETA "\n"                \
	"ffffffff810002f0 T __pfx_gamma\n"             \
	"ffffffff81000300 T delta\n"                   \
	"ffffffff81000400 T gamma\n"

static void test_padding(void **state)
{
	struct kallsyms *k = NULL, *u = NULL;

	assert_int_equal(load_str(PADDED("alpha_function", "beta"), &k), 0);
	expect(k, 0xffffffff810000f0, "__pfx_alpha_function", NULL, 0);
	expect(k, 0xffffffff810000ff, "__pfx_alpha_function", NULL, 0xf);
	expect(k, 0xffffffff81000100, "alpha_function", NULL, 0);
	expect(k, 0xffffffff810001f0, "__pfx_beta", NULL, 0);
	expect(k, 0xffffffff81000208, "beta", NULL, 8);
	expect(k, 0xffffffff810002f0, "__pfx_gamma", NULL, 0);
	expect(k, 0xffffffff81000300, "delta", NULL, 0);
	expect(k, 0xffffffff81000410, "gamma", NULL, 0x10);
	/* the same symbols, none of the names a padding's tail */
	assert_int_equal(load_str(PADDED("alphA_function", "betA"), &u), 0);
	assert_int_equal(kallsyms_count(k), kallsyms_count(u));
	/*
	 * alpha_function and beta shared; gamma not (delta came between).  In
	 * u they are names of their own: their codes (alphA, function, the end;
	 * betA, the end: a byte each, toknames.h) and two new tokens (their
	 * bytes and offsets).
	 */
	assert_int_equal(kallsyms_bytes(u) - kallsyms_bytes(k),
			 3 + 2 + strlen("alphA") + 1 + strlen("betA") + 1 + 2 * sizeof(uint32_t));
	kallsyms_free(k);
	kallsyms_free(u);
}

static void test_restricted(void **state)
{
	struct kallsyms *k = NULL;

	/* What an unprivileged reader sees with kptr_restrict. */
	assert_int_equal(load_str("0000000000000000 T _text\n"
				  "0000000000000000 T schedule\n"
				  "0000000000000000 t mod_fn\t[mymod]\n",
				  &k),
			 -EPERM);
	assert_null(k);
	/* Only data: nothing to symbolize with. */
	assert_int_equal(load_str("ffffffff82000000 D x\n", &k), -ENODATA);
	assert_int_equal(load_str("", &k), -ENODATA);
	assert_int_equal(kallsyms_load("/nonexistent/kallsyms", &k), -ENOENT);
}

/* The last address holds no function: skipped, so every range holds its symbols. */
static void test_last_address(void **state)
{
	struct kallsyms *k = NULL;
	const char *mod = (const char *)1;
	uint64_t off, start, end;

	assert_int_equal(load_str("ffffffff81000000 T _text\n"
				  "ffffffffffffffff t at_the_end\n"
				  "fffffffffff00000 t near_the_end\t[m]\n",
				  &k),
			 0);
	assert_int_equal(kallsyms_count(k), 2);
	assert_string_equal(kallsyms_lookup(k, UINT64_MAX, &mod, &off), "near_the_end");
	assert_int_equal(off, 0xfffff);
	assert_int_equal(kallsyms_range(k, mod, &start, &end), 0);
	assert_true(start <= UINT64_MAX - off && UINT64_MAX - off < end);
	assert_int_equal(kallsyms_range(k, NULL, &start, &end), 0);
	assert_int_equal(end, 0xffffffff81000001ull);
	kallsyms_free(k);
}

static void test_malformed(void **state)
{
	static const char *const bad[] = {
		"ffffffff81000000\n",
		"ffffffff81000000 T\n",
		"ffffffff81000000 T \n",
		"ffffffff81000000Tx schedule\n",
		"xyz T schedule\n",
		"11111111111111111 T schedule\n",
		"ffffffff81000000 T schedule\t[mymod\n",
		"ffffffff81000000 T schedule\tmymod]\n",
		"ffffffff81000000 T schedule\t[]\n",
		"ffffffff81000000 T schedule\t[a]b]\n",
		"ffffffff81000000 T good\nffffffff81000001 T\n",
	};
	struct kallsyms *k = NULL;

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		int r = load_str(bad[i], &k);

		if (r != -EINVAL)
			fail_msg("case %zu loaded as %d: %s", i, r, bad[i]);
	}
}

static void test_long_line(void **state)
{
	size_t n = KALLSYMS_MAX_LINE + 100;
	char *buf = malloc(n + 32);
	struct kallsyms *k = NULL;
	int len;

	assert_non_null(buf);
	len = sprintf(buf, "ffffffff81000000 T ");
	memset(buf + len, 'a', n);
	buf[len + n] = '\n';
	assert_int_equal(kallsyms_load(write_file("long", buf, (size_t)len + n + 1), &k), -EINVAL);
	free(buf);
}

/* Many lines: reading in chunks must not lose or split any. */
static void test_large(void **state)
{
	const size_t n = 200000;
	char *buf = malloc(n * 40), *p = buf;
	struct kallsyms *k = NULL;
	char want[32];

	assert_non_null(buf);
	for (size_t i = 0; i < n; i++)
		p += sprintf(p, "%016llx %c f%zu\n", 0xffffffff81000000ull + i * 16, i % 2 ? 't' : 'T', i);
	assert_int_equal(kallsyms_load(write_file("large", buf, (size_t)(p - buf)), &k), 0);
	assert_int_equal(kallsyms_count(k), n);
	for (size_t i = 0; i < n; i += 997) {
		snprintf(want, sizeof(want), "f%zu", i);
		expect(k, 0xffffffff81000000ull + i * 16 + 3, want, NULL, 3);
	}
	kallsyms_free(k);
	free(buf);
}

/* Find name's address in a kallsyms file by scanning it ourselves. */
static uint64_t find_in_file(const char *path, const char *name)
{
	char line[1024], sym[512];
	unsigned long long addr;
	char type;
	uint64_t found = 0;
	FILE *f = fopen(path, "re");

	if (!f)
		return 0;
	while (!found && fgets(line, sizeof(line), f)) {
		if (sscanf(line, "%llx %c %511s", &addr, &type, sym) == 3 && (type == 'T' || type == 't') &&
		    strcmp(sym, name) == 0)
			found = addr;
	}
	fclose(f);
	return found;
}

static void test_proc_kallsyms(void **state)
{
	static const char *const names[] = { "schedule", "do_syscall_64", "vfs_read" };
	struct kallsyms *k = NULL;
	int r;

	/* Addresses are shown to root only (kptr_restrict); a loader that
	 * fails where they are shown is broken, not skipped. */
	if (!host_shows_kernel_addresses())
		skip_because("/proc/kallsyms shows no kernel addresses here (needs root)");
	r = kallsyms_load("/proc/kallsyms", &k);
	assert_int_equal(r, 0);
	assert_true(kallsyms_count(k) > 10000);
	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
		uint64_t addr = find_in_file("/proc/kallsyms", names[i]);
		const char *mod = "unset";
		uint64_t off;

		if (!addr)
			fail_msg("%s not in /proc/kallsyms", names[i]);
		expect(k, addr, names[i], NULL, 0);
		assert_string_equal(kallsyms_lookup(k, addr + 1, &mod, &off), names[i]);
		/* with function padding, its __pfx_ symbol just before it */
		{
			char pfx[64];
			uint64_t paddr;

			snprintf(pfx, sizeof(pfx), "__pfx_%s", names[i]);
			paddr = find_in_file("/proc/kallsyms", pfx);
			if (paddr)
				expect(k, paddr, pfx, NULL, 0);
		}
		assert_null(mod);
		assert_int_equal(off, 1);
	}
	kallsyms_free(k);
}

/*
 * Every text symbol of the running kernel whose address carries no other
 * text symbol comes back by name, byte for byte, from the tokens; every
 * line is counted, checked or skipped as an alias or as a BPF program's
 * (module "[bpf]": programs that tests running beside this one load and
 * unload between the two reads of /proc/kallsyms).
 */
static void test_proc_every_name(void **state)
{
	struct kallsyms *k = NULL;
	char line[KALLSYMS_MAX_LINE + 2], name[KALLSYMS_MAX_LINE + 1];
	unsigned long long *addr = NULL;
	char **names = NULL;
	size_t n = 0, cap = 0, checked = 0, aliases = 0, bpf = 0;
	FILE *f;

	if (!host_shows_kernel_addresses())
		skip_because("/proc/kallsyms shows no kernel addresses here (needs root)");
	assert_int_equal(kallsyms_load("/proc/kallsyms", &k), 0);
	/* 16 hex digits each: sorted as text is sorted by address */
	assert_non_null(f = popen("grep -E '^[0-9a-f]{16} [tTwW] ' /proc/kallsyms | sort -s -k1,1", "r"));
	while (fgets(line, sizeof(line), f)) {
		unsigned long long a;
		char type;

		assert_int_equal(sscanf(line, "%llx %c %4096s", &a, &type, name), 3);
		if (strstr(line, "\t[bpf]")) {
			bpf++;
			continue;
		}
		if (n == cap) {
			cap = cap ? 2 * cap : 4096;
			assert_non_null(addr = realloc(addr, cap * sizeof(*addr)));
			assert_non_null(names = realloc(names, cap * sizeof(*names)));
		}
		addr[n] = a;
		assert_non_null(names[n++] = strdup(name));
	}
	pclose(f);
	for (size_t i = 0; i < n; i++) {
		const char *got;

		if ((i > 0 && addr[i - 1] == addr[i]) || (i + 1 < n && addr[i + 1] == addr[i])) {
			aliases++;
			continue;
		}
		got = kallsyms_lookup(k, addr[i], NULL, NULL);
		if (!got || strcmp(got, names[i]) != 0)
			fail_msg("%#llx: got %s, want %s", addr[i], got ? got : "NULL", names[i]);
		checked++;
	}
	print_message("# %zu text symbols: %zu checked by name, %zu at an address with others, "
		      "%zu of BPF programs left out; the table holds %zu bytes\n", n + bpf, checked,
		      aliases, bpf, kallsyms_bytes(k));
	assert_int_equal(checked + aliases, n);
	assert_true(checked > 10000);
	for (size_t i = 0; i < n; i++)
		free(names[i]);
	free(names);
	free(addr);
	kallsyms_free(k);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_synthetic),
		cmocka_unit_test(test_runs),
		cmocka_unit_test(test_padding),
		cmocka_unit_test(test_restricted),
		cmocka_unit_test(test_last_address),
		cmocka_unit_test(test_malformed),
		cmocka_unit_test(test_long_line),
		cmocka_unit_test(test_large),
		cmocka_unit_test(test_proc_kallsyms),
		cmocka_unit_test(test_proc_every_name),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
