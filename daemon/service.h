/*
 * service.h - which service a sample belongs to, for the export's series
 * (one Pyroscope series per service, so that a flame graph shows one
 * service rather than the whole host).
 *
 * Runs in the collector (uid vigil, no capabilities), on the cgroup path
 * the cgroups cache resolved and the comm the BPF program recorded; it
 * reads nothing itself.  Library-like: returns 0 or -errno, never logs.
 */
#ifndef VIGIL_SERVICE_H
#define VIGIL_SERVICE_H

#include <stddef.h>

/* How many hex digits of a container id name it (docker ps shows as many). */
#define SERVICE_ID_DIGITS 12

/*
 * The service of a process in cgroup `cgpath` (cgroup v2 path from the
 * root, e.g. "/system.slice/nginx.service"; NULL or not starting with
 * '/': unknown) named `comm`:
 *   - the innermost systemd unit "*.service" ("nginx.service"), or
 *   - the innermost container cgroup, as "<runtime>-<first 12 hex of its
 *     id>": docker-<id>.scope and /docker/<id> -> "docker-…",
 *     cri-containerd-<id>.scope -> "cri-containerd-…", crio-<id>.scope ->
 *     "crio-…", libpod-<id>.scope -> "libpod-…", a bare 64-hex id under a
 *     kubepods hierarchy (cgroupfs driver) -> "kubepods-…",
 *   whichever is innermost; else
 *   - comm (or "unknown" when comm is empty).
 * Writes a NUL-terminated name into buf.  0, or -ENAMETOOLONG when it
 * does not fit in len (buf then holds nothing useful), -EINVAL on len 0.
 */
int service_of(const char *cgpath, const char *comm, char *buf, size_t len);

#endif
