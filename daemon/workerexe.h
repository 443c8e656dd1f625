/*
 * workerexe.h - the programs the monitor runs its workers as.
 *
 * Each worker is its own executable beside vigild: vigild-collector and
 * vigild-uplink (the path of the running vigild with "-<role>" appended).
 * Each links only the libraries its process uses, so that the collector
 * and the monitor do not map libcurl and the TLS, LDAP, Kerberos and SSH
 * libraries it pulls in, nor the uplink libunwind and the demangler: every
 * library mapped costs each process that maps it its relocated data and
 * the pages its constructors touch (docs/benchmarks.md, "Memory").
 *
 * Runs in the monitor during start-up, as root, before any worker starts.
 * The file is opened once and executed through that descriptor
 * (fexecve), so that what runs is the file checked here, whatever
 * happens to the path later.
 *
 * Library-like: returns 0 or -errno and never logs; on failure it leaves a
 * one-line reason, naming the path at fault and the fix, in why.
 */
#ifndef VIGIL_WORKEREXE_H
#define VIGIL_WORKEREXE_H

#include <stddef.h>

/*
 * Open "<self>-<role>" read-only, close-on-exec.  self must be absolute.
 * Its directory is opened without following a symbolic link and must be
 * root's or self's owner's, and writable by no one else (unless sticky);
 * the program is opened in it, again without following one.  It must be
 * a regular file owned by self's owner (the monitor's own binary), who
 * must be root or this process's user (never the workers' user),
 * writable by neither group nor others, and executable by others (the
 * workers exec it as the unprivileged user).  On success *ret_fd is the
 * descriptor.
 *
 * -ENOENT: missing; -EPERM: owner or mode refused; -ENAMETOOLONG;
 * -EINVAL: a bad argument or a relative self; other -errno from
 * open/fstat.
 */
int workerexe_open(const char *self, const char *role, int *ret_fd, char *why, size_t whylen);

/* The same, for the running program: self's identity is the running image's (/proc/self/exe). */
int workerexe_open_self(const char *role, int *ret_fd, char *why, size_t whylen);

#endif
