/*
 * exportcreds.h - the monitor's part in exporting to Pyroscope: read the
 * export's root-only files (basic auth, bearer token, CA bundle, client
 * certificate and key) into sealed memfds, resolve the URL's host, and
 * build MSG_UPLINK_EXPORT for the uplink, which never opens a file and
 * never runs a resolver.
 *
 * Runs in the monitor: at start as root, and on SIGHUP as the dropped
 * monitor (files only: it may not open sockets, so the addresses resolved
 * at start are kept).  Every file is opened as the policy is
 * (policyfile_open: no symlink, root's, written by root only, in
 * directories only root may change); the secrets (auth files, key) must
 * also be unreadable by group and others.  An https URL without
 * --export-ca uses the system's bundle (VIGILD_SYSTEM_CA), read the same
 * way.
 *
 * Library-like: 0 or -errno, never logs; a one-line reason in why.
 */
#ifndef VIGIL_EXPORTCREDS_H
#define VIGIL_EXPORTCREDS_H

#include <stddef.h>

#include "options.h"
#include "privsep.h"

#define EXPORTCREDS_NFDS 5
#define EXPORTCREDS_PEM_MAX (4u << 20) /* a CA bundle (the system's is ~200 KiB) or a certificate */

/*
 * The files of o's export target, as the five memfds of MSG_UPLINK_EXPORT
 * (fds[], the caller closes them) and the flags saying which are real.
 * An auth file holds one line (a final newline is dropped); basic auth's
 * has a ':'.  -EPERM (group/other readable, or not root's), -EINVAL (not
 * one line), -ENOENT..., with why naming the option, the file and the fix.
 */
int exportcreds_read(const struct vigild_opts *o, int fds[EXPORTCREDS_NFDS], uint32_t *ret_flags,
		     char *why, size_t why_len);

/* The URL's host, resolved (at most UPLINK_MAX_ADDRS) into m.  -EHOSTUNREACH with why. */
int exportcreds_resolve(const struct vigild_opts *o, struct msg_uplink_export *m, char *why,
			size_t why_len);

/* m's header, url, host, port, tenant and rate from o (flags and fds: exportcreds_read). */
void exportcreds_message(const struct vigild_opts *o, struct msg_uplink_export *m);

/*
 * The uplink's set-up for export: UPLINK_F_EXPORT, and this host's name
 * and the --labels when cpconfig_uplink_setup() has not put them there
 * (no control plane): every series carries them.
 */
void exportcreds_uplink_setup(const struct vigild_opts *o, struct msg_uplink_setup *m);

#endif
