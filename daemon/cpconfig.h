/*
 * cpconfig.h - the monitor's part in speaking to the control plane: read
 * the agent's key material and the policy trust store (root-only files)
 * into sealed memfds for the workers, resolve the control plane's name,
 * and fill the uplink's set-up message.
 *
 * Runs in the monitor: at start-up as root, and on SIGHUP (key material
 * only) as the dropped monitor, whose CAP_DAC_READ_SEARCH reads root's
 * 0600 files and whose seccomp filter allows openat, openat2 and
 * memfd_create.  Name resolution happens at start-up only: the dropped
 * monitor may not open sockets (docs/security.md).
 *
 * Library-like: 0 or -errno, never logs; a one-line reason in why.
 */
#ifndef VIGIL_CPCONFIG_H
#define VIGIL_CPCONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "options.h"
#include "privsep.h"

/*
 * --cert, --key and --ca as sealed memfds, fds[0..2] (the caller closes
 * them).  Each file is opened as policyfile_open() opens the policy (no
 * symlink, root's, written by root only, in directories only root may
 * change); the key must also be unreadable by group and others.
 */
int cpconfig_read_creds(const struct vigild_opts *o, int fds[3], char *why, size_t why_len);

/*
 * At start: replace fds[0] and fds[1] (from cpconfig_read_creds) with the
 * certificate and key renewed through OpAMP's CSR flow and kept in the
 * state directory (statedir.h, identity.pem), when that file is a regular
 * file (not a symlink) owned by root or by owner, not readable by group or
 * others, its key matches its certificate, and the certificate has the
 * subject of --cert, is valid now and expires later than --cert.  1
 * when replaced (why says so), 0 when --cert/--key stay (why says why
 * when the file exists but is not used), -errno on failure (fds unchanged).
 */
int cpconfig_prefer_renewed(int state_fd, uid_t owner, int fds[3], char *why, size_t why_len);

/* --policy-trust as a sealed memfd, same rules as the certificates. */
int cpconfig_read_trust(const struct vigild_opts *o, int *ret_fd, char *why, size_t why_len);

/*
 * The control plane's addresses (at most UPLINK_MAX_ADDRS), into m->addrs
 * and m->naddrs.  -EHOSTUNREACH (why says getaddrinfo's reason) when the
 * name does not resolve.
 */
int cpconfig_resolve(const struct vigild_opts *o, struct msg_uplink_creds *m, char *why,
		     size_t why_len);

/*
 * host's distinct IPv4 and IPv6 addresses, at most UPLINK_MAX_ADDRS, into
 * addrs and *ret_n (0 on failure).  -EHOSTUNREACH with the reason in why.
 * For every address the monitor resolves for the uplink (control plane,
 * export target).
 */
int cpconfig_resolve_host(const char *host, struct uplink_addr addrs[UPLINK_MAX_ADDRS],
			  uint32_t *ret_n, char *why, size_t why_len);

/*
 * Open path as a policy file is opened (policyfile.h: root's, no symlink);
 * a secret must also be unreadable by group and others.  0 and *ret_fd,
 * or -errno with why naming opt, the path and the fix.
 */
int cpconfig_open_file(const char *opt, const char *path, bool secret, int *ret_fd, char *why,
		       size_t why_len);

/* The uplink's set-up message for o (flags, host, labels, hostname). */
void cpconfig_uplink_setup(const struct vigild_opts *o, struct msg_uplink_setup *m);

/* The agent's host name and --labels, for the uplink (control plane or export). */
void cpconfig_uplink_identity(const struct vigild_opts *o, struct msg_uplink_setup *m);

#endif
