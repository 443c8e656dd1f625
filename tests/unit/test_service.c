/*
 * test_service.c - the service of a sample, from cgroup paths as systemd,
 * Docker, containerd/Kubernetes, CRI-O and Podman lay them out.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>

#include "service.h"

#define ID "4f1c2a9b8e7d6c5b4a3928171615141312111009080706050403020100ffeedd"

static void expect(const char *cg, const char *comm, const char *want)
{
	char buf[256];

	assert_int_equal(service_of(cg, comm, buf, sizeof(buf)), 0);
	assert_string_equal(buf, want);
}

static void test_systemd_units(void **state)
{
	expect("/system.slice/nginx.service", "nginx", "nginx.service");
	expect("/system.slice/system-getty.slice/getty@tty1.service", "agetty", "getty@tty1.service");
	/* a user's own units: the innermost, not the user manager */
	expect("/user.slice/user-1000.slice/user@1000.service/app.slice/pipewire.service", "pipewire",
	       "pipewire.service");
	/* not a unit: a login session, a bare slice */
	expect("/user.slice/user-1000.slice/session-3.scope", "bash", "bash");
	expect("/system.slice", "kworker/0:1", "kworker/0:1");
	/* ".service" alone is not a unit name */
	expect("/x/.service", "sh", "sh");
}

static void test_containers(void **state)
{
	expect("/system.slice/docker-" ID ".scope", "redis-server", "docker-4f1c2a9b8e7d");
	expect("/docker/" ID, "redis-server", "docker-4f1c2a9b8e7d");
	expect("/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod1234_5678.slice/"
	       "cri-containerd-" ID ".scope", "java", "cri-containerd-4f1c2a9b8e7d");
	expect("/kubepods.slice/kubepods-pod9.slice/crio-" ID ".scope", "envoy", "crio-4f1c2a9b8e7d");
	/* CRI-O's monitor beside the container is not the container */
	expect("/kubepods.slice/kubepods-pod9.slice/crio-conmon-" ID ".scope", "conmon", "conmon");
	expect("/machine.slice/libpod-" ID ".scope", "postgres", "libpod-4f1c2a9b8e7d");
	expect("/kubepods/besteffort/pod0c1e/" ID, "pause", "kubepods-4f1c2a9b8e7d");
	/* a unit inside a container (systemd as the container's init): the unit */
	expect("/system.slice/docker-" ID ".scope/system.slice/cron.service", "cron", "cron.service");
	/* a container started by a unit's process: the container */
	expect("/system.slice/containerd.service/kubepods-besteffort-pod1.slice/cri-containerd-" ID
	       ".scope", "app", "cri-containerd-4f1c2a9b8e7d");
	/* 64 hex digits outside any known runtime: not recognised */
	expect("/mystuff/" ID, "worker", "worker");
}

static void test_unknown(void **state)
{
	expect(NULL, "swapper/0", "swapper/0");
	expect("cgroup-id:1234", "sshd", "sshd");
	expect("/", "init", "init");
	expect(NULL, "", "unknown");
	expect(NULL, NULL, "unknown");
}

static void test_too_long(void **state)
{
	char small[8];

	assert_int_equal(service_of("/system.slice/nginx.service", "x", small, sizeof(small)),
			 -ENAMETOOLONG);
	assert_int_equal(service_of(NULL, "1234567", small, sizeof(small)), 0);
	assert_string_equal(small, "1234567");
	assert_int_equal(service_of(NULL, "x", small, 0), -EINVAL);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_systemd_units),
		cmocka_unit_test(test_containers),
		cmocka_unit_test(test_unknown),
		cmocka_unit_test(test_too_long),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
