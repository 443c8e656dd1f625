/*
 * mapguard.c - SIGBUS on a guarded file mapping reads zeros (see mapguard.h).
 */
#include <errno.h>
#include <signal.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "mapguard.h"

struct range {
	uintptr_t lo, hi; /* [lo, hi); lo 0: free */
};

static struct range ranges[MAPGUARD_MAX];
static size_t top;            /* slots in use lie below */
static volatile sig_atomic_t installed;
static uint64_t faults;
static uintptr_t page_mask; /* set before the handler is */

static void on_sigbus(int sig, siginfo_t *si, void *uc)
{
	uintptr_t a = (uintptr_t)si->si_addr;
	struct sigaction dfl = { .sa_handler = SIG_DFL };

	(void)uc;
	/* Sent (kill, sigqueue), not a fault: si_addr means nothing, and nothing will repeat. */
	if (si->si_code <= 0)
		return;
	for (size_t i = 0; i < top; i++) {
		if (ranges[i].lo && a >= ranges[i].lo && a < ranges[i].hi) {
			void *p = (void *)(a & ~page_mask);

			/* The same address, private and read-only, now zeros: the read is retried. */
			if (mmap(p, (size_t)page_mask + 1, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1, 0) !=
			    MAP_FAILED) {
				__atomic_add_fetch(&faults, 1, __ATOMIC_RELAXED);
				return;
			}
			break;
		}
	}
	/*
	 * Not ours, or the page could not be replaced: die of it, as without
	 * the guard (the collector's filter allows rt_sigaction for SIGBUS).
	 */
	if (sigaction(sig, &dfl, NULL) < 0)
		_exit(128 + sig); /* refaulting into this handler again would loop */
}

int mapguard_install(void)
{
	struct sigaction sa;
	long page = sysconf(_SC_PAGESIZE);

	if (page <= 0 || (page & (page - 1)))
		return -EINVAL;
	page_mask = (uintptr_t)page - 1;
	memset(&sa, 0, sizeof(sa));
	sa.sa_sigaction = on_sigbus;
	sa.sa_flags = SA_SIGINFO;
	sigemptyset(&sa.sa_mask);
	if (sigaction(SIGBUS, &sa, NULL) < 0)
		return -errno;
	installed = 1;
	return 0;
}

bool mapguard_installed(void)
{
	return installed;
}

int mapguard_add(const void *addr, size_t len)
{
	uintptr_t lo = (uintptr_t)addr;

	if (!addr || !len || lo > UINTPTR_MAX - len)
		return -EINVAL;
	for (size_t i = 0; i < MAPGUARD_MAX; i++) {
		if (ranges[i].lo)
			continue;
		/* hi first: the handler reads lo as "in use" */
		__atomic_store_n(&ranges[i].hi, lo + len, __ATOMIC_RELAXED);
		__atomic_store_n(&ranges[i].lo, lo, __ATOMIC_RELEASE);
		if (i >= top)
			top = i + 1;
		return 0;
	}
	return -ENOSPC;
}

void mapguard_remove(const void *addr)
{
	uintptr_t lo = (uintptr_t)addr;

	for (size_t i = 0; addr && i < top; i++) {
		if (ranges[i].lo == lo) {
			__atomic_store_n(&ranges[i].lo, 0, __ATOMIC_RELEASE);
			while (top && !ranges[top - 1].lo)
				top--;
			return;
		}
	}
}

uint64_t mapguard_faults(void)
{
	return __atomic_load_n(&faults, __ATOMIC_RELAXED);
}
