/*
 * test_cpconfig.c - the monitor's reading of the agent's key material and
 * policy trust for the workers: the files are taken only as the policy
 * file is (root's, not writable by others, no symlink) and the key only if
 * group and others cannot read it, each refusal naming the option, the
 * file and the fix; what is read arrives as sealed memfds with the files'
 * bytes; the control plane's name resolves to addresses for the uplink;
 * the uplink's set-up carries the labels; at start, a certificate renewed
 * through the control plane (identity.pem in the state directory) replaces
 * --cert/--key only if it is a 0600 regular file of vigil's or root's, its
 * key matches, and it renews --cert (same subject, valid, expires later).
 */
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>
#include <cmocka.h>

#include "rootonly.h"
#include "cpconfig.h"
#include "memblob.h"

static char dir[] = "/tmp/vigil-test-cpconfig.XXXXXX";
static char cert[256], key[256], ca[256], trust[256], link_[256];

static void put(const char *path, const char *text, mode_t mode)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode);

	assert_true(fd >= 0);
	assert_int_equal(write(fd, text, strlen(text)), (ssize_t)strlen(text));
	close(fd);
	assert_int_equal(chmod(path, mode), 0);
}

static int setup(void **st)
{
	if (!mkdtemp(dir) || chmod(dir, 0755))
		return -1;
	snprintf(cert, sizeof(cert), "%s/agent.pem", dir);
	snprintf(key, sizeof(key), "%s/agent.key", dir);
	snprintf(ca, sizeof(ca), "%s/ca.pem", dir);
	snprintf(trust, sizeof(trust), "%s/policy-ca.pem", dir);
	snprintf(link_, sizeof(link_), "%s/link.key", dir);
	return 0;
}

static int teardown(void **st)
{
	rm_tree(dir);
	return 0;
}

static struct vigild_opts opts(void)
{
	struct vigild_opts o = { .control_plane = "https://cp.test", .cert = cert, .key = key,
				 .ca = ca, .policy_trust = trust, .cp_port = 4320,
				 .poll_interval_s = 30 };

	snprintf(o.cp_host, sizeof(o.cp_host), "localhost");
	return o;
}

static void expect_bytes(int fd, const char *want)
{
	void *buf;
	size_t len;

	assert_int_equal(memblob_read(fd, 1 << 20, &buf, &len), 0);
	assert_int_equal(len, strlen(want));
	assert_memory_equal(buf, want, len);
	free(buf);
	close(fd);
}

static void test_read(void **st)
{
	struct vigild_opts o = opts();
	char why[512];
	int fds[3], fd;

	need_root();
	put(cert, "CERT\n", 0644);
	put(key, "KEY\n", 0600);
	put(ca, "CA\n", 0644);
	put(trust, "TRUST\n", 0644);
	assert_int_equal(cpconfig_read_creds(&o, fds, why, sizeof(why)), 0);
	expect_bytes(fds[0], "CERT\n");
	expect_bytes(fds[1], "KEY\n");
	expect_bytes(fds[2], "CA\n");
	assert_int_equal(cpconfig_read_trust(&o, &fd, why, sizeof(why)), 0);
	expect_bytes(fd, "TRUST\n");

	/* a key others may read */
	assert_int_equal(chmod(key, 0640), 0);
	assert_int_equal(cpconfig_read_creds(&o, fds, why, sizeof(why)), -EPERM);
	assert_non_null(strstr(why, "--key"));
	assert_non_null(strstr(why, "chmod 600"));
	assert_int_equal(fds[0], -1);
	assert_int_equal(chmod(key, 0600), 0);
	/* a certificate someone else may write, or owns */
	assert_int_equal(chmod(cert, 0666), 0);
	assert_int_equal(cpconfig_read_creds(&o, fds, why, sizeof(why)), -EPERM);
	assert_non_null(strstr(why, "--cert"));
	assert_int_equal(chmod(cert, 0644), 0);
	assert_int_equal(chown(ca, 65534, 65534), 0);
	assert_int_equal(cpconfig_read_creds(&o, fds, why, sizeof(why)), -EPERM);
	assert_non_null(strstr(why, "--ca"));
	assert_int_equal(chown(ca, 0, 0), 0);
	/* a symlink to the key: not followed */
	assert_int_equal(symlink(key, link_), 0);
	o.key = link_;
	assert_int_equal(cpconfig_read_creds(&o, fds, why, sizeof(why)), -ELOOP);
	assert_non_null(strstr(why, "--key"));
	o.key = key;
	/* missing */
	o.policy_trust = "/nonexistent/policy-ca.pem";
	assert_int_equal(cpconfig_read_trust(&o, &fd, why, sizeof(why)), -ENOENT);
	assert_non_null(strstr(why, "--policy-trust"));
}

static void *blob(int fd, size_t *len)
{
	void *b;

	assert_int_equal(memblob_read(fd, 1 << 20, &b, len), 0);
	return b;
}

static char *slurp(const char *path, size_t *len)
{
	FILE *f = fopen(path, "r");
	char *b = calloc(1, 65536);

	assert_non_null(f);
	*len = fread(b, 1, 65536, f);
	fclose(f);
	return b;
}

/* identity.pem made of cert file c then key file k, with mode and owner. */
static void identity(const char *state, const char *c, const char *k, mode_t mode, uid_t owner)
{
	char cmd[1024], p[300];

	snprintf(p, sizeof(p), "%s/identity.pem", state);
	unlink(p);
	snprintf(cmd, sizeof(cmd), "cat %s/%s %s/%s > %s", dir, c, dir, k, p);
	assert_int_equal(system(cmd), 0);
	assert_int_equal(chmod(p, mode), 0);
	assert_int_equal(chown(p, owner, 0), 0);
}

static void test_prefer_renewed(void **st)
{
	char cmd[4096], state[300], p[400], why[512];
	int sfd, fds[3], rc;
	size_t len, want_len;
	void *got;
	char *want;

	snprintf(cmd, sizeof(cmd), "cd %s && exec >/dev/null 2>&1 && "
		 "openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout rca.key "
		 "  -out rca.pem -days 365 -subj /CN=ca && "
		 "for n in cur:host1:10 renewed:host1:30 other:host2:30 sooner:host1:2; do "
		 "  IFS=: read name cn days <<EOF\n$n\nEOF\n"
		 "  openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout $name.key "
		 "    -subj /CN=$cn -out $name.csr && "
		 "  openssl x509 -req -in $name.csr -CA rca.pem -CAkey rca.key -CAcreateserial -days $days "
		 "    -out $name.pem || exit 1; "
		 "done", dir);
	assert_int_equal(system(cmd), 0);
	snprintf(state, sizeof(state), "%s/state", dir);
	assert_int_equal(mkdir(state, 0700), 0);
	sfd = open(state, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	assert_true(sfd >= 0);

#define CUR()                                                                                \
	do {                                                                                 \
		char *c_ = slurp(cmd, &len);                                                 \
		assert_int_equal(memblob_new("c", c_, len, NULL, 0, &fds[0]), 0);            \
		assert_int_equal(memblob_new("k", "key", 3, NULL, 0, &fds[1]), 0);           \
		fds[2] = -1;                                                                 \
		free(c_);                                                                    \
	} while (0)
	snprintf(cmd, sizeof(cmd), "%s/cur.pem", dir);

	/* none: --cert/--key stay, nothing said */
	CUR();
	assert_int_equal(cpconfig_prefer_renewed(sfd, 4242, fds, why, sizeof(why)), 0);
	assert_string_equal(why, "");
	got = blob(fds[1], &len);
	assert_int_equal(len, 3);
	free(got);
	close(fds[0]);
	close(fds[1]);

	/* a renewal, vigil's (uid 4242), 0600: used, certificate and key apart */
	identity(state, "renewed.pem", "renewed.key", 0600, 4242);
	CUR();
	assert_int_equal(cpconfig_prefer_renewed(sfd, 4242, fds, why, sizeof(why)), 1);
	assert_non_null(strstr(why, "renewed through the control plane"));
	snprintf(p, sizeof(p), "%s/renewed.pem", dir);
	want = slurp(p, &want_len);
	got = blob(fds[0], &len);
	assert_int_equal(len, want_len);
	assert_memory_equal(got, want, len);
	free(got);
	free(want);
	snprintf(p, sizeof(p), "%s/renewed.key", dir);
	want = slurp(p, &want_len);
	got = blob(fds[1], &len);
	assert_int_equal(len, want_len);
	assert_memory_equal(got, want, len);
	free(got);
	free(want);
	close(fds[0]);
	close(fds[1]);

	/* each refusal leaves --cert/--key and says why */
	struct {
		const char *c, *k;
		mode_t mode;
		uid_t owner;
		const char *why;
	} bad[] = {
		{ "renewed.pem", "renewed.key", 0640, 4242, "0600 regular file" },
		{ "renewed.pem", "renewed.key", 0600, 4343, "0600 regular file" },	/* someone else's */
		{ "renewed.pem", "other.key", 0600, 4242, "followed by its key" },
		{ "other.pem", "other.key", 0600, 4242, "not a renewal" },
		{ "sooner.pem", "sooner.key", 0600, 4242, "not a renewal" },
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		identity(state, bad[i].c, bad[i].k, bad[i].mode, bad[i].owner);
		CUR();
		rc = cpconfig_prefer_renewed(sfd, 4242, fds, why, sizeof(why));
		if (rc != 0 || !strstr(why, bad[i].why))
			fail_msg("case %zu: %d, \"%s\"", i, rc, why);
		got = blob(fds[1], &len);
		assert_int_equal(len, 3);
		free(got);
		close(fds[0]);
		close(fds[1]);
	}
	/* a symlink to a good pair */
	snprintf(p, sizeof(p), "%s/identity.pem", state);
	unlink(p);
	identity(dir, "renewed.pem", "renewed.key", 0600, 4242);
	snprintf(cmd, sizeof(cmd), "%s/identity.pem", dir);
	assert_int_equal(symlink(cmd, p), 0);
	snprintf(cmd, sizeof(cmd), "%s/cur.pem", dir);
	CUR();
	assert_int_equal(cpconfig_prefer_renewed(sfd, 4242, fds, why, sizeof(why)), 0);
	assert_non_null(strstr(why, "identity.pem"));
	got = blob(fds[1], &len);
	assert_int_equal(len, 3);
	free(got);
	close(fds[0]);
	close(fds[1]);
#undef CUR
	close(sfd);
	(void)st;
}

static void test_resolve_and_setup(void **st)
{
	struct vigild_opts o = opts();
	struct msg_uplink_creds m = { 0 };
	struct msg_uplink_setup s = { 0 };
	char why[512];

	assert_int_equal(cpconfig_resolve(&o, &m, why, sizeof(why)), 0);
	assert_true(m.naddrs >= 1 && m.naddrs <= UPLINK_MAX_ADDRS);
	for (uint32_t i = 0; i < m.naddrs; i++)
		assert_true(m.addrs[i].family == AF_INET || m.addrs[i].family == AF_INET6);
	snprintf(o.cp_host, sizeof(o.cp_host), "192.0.2.7");
	assert_int_equal(cpconfig_resolve(&o, &m, why, sizeof(why)), 0);
	assert_int_equal(m.naddrs, 1);
	assert_int_equal(m.addrs[0].family, AF_INET);
	assert_int_equal(m.addrs[0].addr[0], 192);
	assert_int_equal(m.addrs[0].addr[3], 7);
	snprintf(o.cp_host, sizeof(o.cp_host), "no-such-host.invalid");
	assert_int_equal(cpconfig_resolve(&o, &m, why, sizeof(why)), -EHOSTUNREACH);
	assert_int_equal(m.naddrs, 0);
	assert_non_null(strstr(why, "no-such-host.invalid"));

	o.labels[0] = "env=prod";
	o.labels[1] = "vigil.tenant-set=web";
	o.nlabels = 2;
	cpconfig_uplink_setup(&o, &s);
	assert_true(s.flags & UPLINK_F_CONTROL_PLANE);
	assert_int_equal(s.port, 4320);
	assert_int_equal(s.nlabels, 2);
	assert_string_equal(s.labels, "env=prod");
	assert_string_equal(s.labels + strlen("env=prod") + 1, "vigil.tenant-set=web");
	assert_true(s.hostname[0] != '\0');
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_read),
		cmocka_unit_test(test_resolve_and_setup),
		cmocka_unit_test(test_prefer_renewed),
	};
	return cmocka_run_group_tests_name("cpconfig", tests, setup, teardown);
}
