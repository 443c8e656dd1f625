/*
 * test_cpconfig.c - the monitor's reading of the agent's key material and
 * policy trust for the workers: the files are taken only as the policy
 * file is (root's, not writable by others, no symlink) and the key only if
 * group and others cannot read it, each refusal naming the option, the
 * file and the fix; what is read arrives as sealed memfds with the files'
 * bytes; the control plane's name resolves to addresses for the uplink;
 * the uplink's set-up carries the labels.
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
	};
	return cmocka_run_group_tests_name("cpconfig", tests, setup, teardown);
}
