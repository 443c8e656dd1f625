/*
 * mapguard.h - file mappings whose truncation must not kill the process.
 *
 * A page of a file mapping past the file's end, or whose read fails,
 * raises SIGBUS when touched.  The collector maps the .eh_frame of files
 * only root can change (cfi.c), and root may still truncate one in place
 * (cp over a library in use) or the disk may fail: with the guard
 * installed, a SIGBUS inside a registered range turns that page into a
 * page of zeros and the read goes on (the CFI there is then garbage,
 * which unwinding already survives: its reads are bounds-checked and a
 * stack it cannot follow ends with [truncated]).  A SIGBUS anywhere else
 * is not ours: the default action is restored and the fault repeats.
 *
 * Only faults count (si_code > 0): a SIGBUS sent with kill() is ignored.
 *
 * The registry is a fixed table (MAPGUARD_MAX ranges), read by the
 * handler without locks: register and unregister from the thread that
 * reads the mappings (the collector has one).  SIGBUS must not be blocked
 * where the mappings are read: a fault while it is blocked kills whatever
 * the handler.  libunwind blocks every signal around its global cache's
 * lock, inside which it reads CFI through unwind.c's accessor; the
 * collector's sigprocmask() does nothing while it unwinds
 * (vigild-collector.c), which is what lets the guard work there.
 * Library-like: returns 0 or -errno, never logs.
 */
#ifndef VIGIL_MAPGUARD_H
#define VIGIL_MAPGUARD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define MAPGUARD_MAX 4096

/* Install the SIGBUS handler (before seccomp: rt_sigaction).  0 or -errno. */
int mapguard_install(void);

/* Whether mapguard_install() succeeded in this process. */
bool mapguard_installed(void);

/* Guard [addr, addr + len).  0; -ENOSPC when the table is full; -EINVAL. */
int mapguard_add(const void *addr, size_t len);

/* Stop guarding the range that starts at addr (before munmap). */
void mapguard_remove(const void *addr);

/* Pages turned to zeros since start. */
uint64_t mapguard_faults(void);

#endif
