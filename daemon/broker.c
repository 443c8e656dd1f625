/*
 * broker.c - the monitor's request handlers (see broker.h).
 *
 * Runs in the monitor with CAP_SYS_PTRACE and CAP_DAC_READ_SEARCH: it opens
 * what the unprivileged collector cannot, and only that.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/sysmacros.h>
#include <linux/magic.h>
#include <time.h>
#include <unistd.h>

#include "beats.h"
#include "broker.h"
#include "fds.h"
#include "hexdigit.h"
#include "mapfile.h"
#include "procmaps.h"
#include "procstat.h"
#include "sampler.h"
#include "vigil_abi.h"

static int reply_fd(int sock, int fd)
{
	struct msg_reply r = { .hdr = { MSG_FD_REPLY, sizeof(r) }, .err = 0 };

	return privsep_send(sock, &r, sizeof(r), &fd, 1);
}

static int reply_err(struct broker *b, int sock, int err)
{
	struct msg_reply r = { .hdr = { MSG_ERR_REPLY, sizeof(r) }, .err = err < 0 ? -err : err };

	b->last_err = err < 0 ? err : -err;
	return privsep_send(sock, &r, sizeof(r), NULL, 0);
}

static int hostile(struct broker *b, const char *why)
{
	b->violation = why;
	return -EPROTO;
}

static uint64_t mono_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static void maps_drop(struct broker *b)
{
	procmaps_free(b->maps.maps);
	b->maps.maps = NULL;
}

static bool maps_expired(const struct broker *b, uint64_t now)
{
	return now - b->maps.read_ns >= (uint64_t)BROKER_MAPS_TTL_MS * 1000000;
}

/*
 * The maps of process pid, as the monitor reads them: the kept ones if
 * they are this process's (same start time: not a reused pid) and recent
 * enough (broker.h), else read now and kept.
 */
static int maps_of(struct broker *b, uint32_t pid, const struct procmaps **ret)
{
	struct procmaps *m;
	uint64_t ticks, now = mono_ns();
	int rc;

	rc = procstat_start_ticks(pid, &ticks);
	if (rc < 0) {
		maps_drop(b);
		return rc;
	}
	if (b->maps.maps && b->maps.pid == pid && b->maps.start_ticks == ticks &&
	    !maps_expired(b, now)) {
		*ret = b->maps.maps;
		return 0;
	}
	maps_drop(b);
	b->maps_reads++;
	rc = procmaps_read((int)pid, &m);
	if (rc < 0)
		return rc;
	b->maps = (struct broker_maps){ .maps = m, .pid = pid, .start_ticks = ticks, .read_ns = now };
	*ret = m;
	return 0;
}

/*
 * OPEN_MAPS with OPEN_MAPS_F_FILES: the maps fd (fd, just opened), and
 * the files of the executable file mappings that a read of it shows, one
 * a file, at most MAPS_REPLY_FILES, each opened as OPEN_FILES opens it
 * (mapfile.h) and failing alone.  The collector asks OPEN_FILES for what
 * this leaves out.  A read that fails leaves them all out.
 */
static int reply_maps_files(struct broker *b, int sock, uint32_t pid, int fd)
{
	struct msg_maps_reply r = { .hdr = { MSG_MAPS_REPLY, sizeof(r) } };
	struct procmaps *maps = NULL;
	int fds[PRIVSEP_MAX_FDS] = { fd };
	size_t nfds = 1;
	int root = -ESRCH, rc;

	b->maps_reads++;
	if (procmaps_read_fd(fd, &maps) == 0)
		root = mapfile_root(pid);
	/* The collector reads the same open file: from its start again. */
	if (lseek(fd, 0, SEEK_SET) < 0) {
		rc = reply_err(b, sock, -errno);
		goto out;
	}
	for (size_t i = 0; root >= 0 && i < maps->n && r.n < MAPS_REPLY_FILES; i++) {
		const struct procmap *mp = &maps->maps[i];
		struct msg_maps_file *e = &r.files[r.n];
		bool dup = false;
		struct stat st;
		int ffd;

		if (!(mp->prot & PROT_EXEC) || !mp->inode || mp->path[0] != '/')
			continue;
		for (uint32_t k = 0; k < r.n && !dup; k++)
			dup = r.files[k].map.inode == mp->inode &&
			      r.files[k].map.dev_major == mp->dev_major &&
			      r.files[k].map.dev_minor == mp->dev_minor;
		if (dup)
			continue;
		e->map = (struct msg_file_ref){ .dev_major = mp->dev_major, .dev_minor = mp->dev_minor,
						.start = mp->start, .end = mp->end, .inode = mp->inode };
		ffd = mapfile_open_at(root, mp, &st);
		if (ffd < 0)
			e->err = -ffd;
		else
			fds[nfds++] = ffd;
		r.n++;
	}
	r.nfds = (uint32_t)nfds;
	rc = privsep_send(sock, &r, sizeof(r), fds, nfds);
out:
	if (root >= 0)
		close(root);
	procmaps_free(maps);
	fds_close(fds + 1, nfds - 1);
	return rc;
}

static int open_maps(struct broker *b, int sock, const struct msg_open_maps *m)
{
	char path[48];
	int fd, rc;

	if (m->pid == 0 || m->pid > BROKER_PID_MAX)
		return hostile(b, "OPEN_MAPS with an impossible pid");
	if (m->flags & ~OPEN_MAPS_F_FILES)
		return hostile(b, "OPEN_MAPS with unknown flags");
	if (m->pid == (uint32_t)getpid())
		return reply_err(b, sock, -EPERM); /* the monitor's own layout stays its own */
	/* The collector's OPEN_FILEs that follow are of the maps it reads now. */
	maps_drop(b);
	snprintf(path, sizeof(path), "/proc/%" PRIu32 "/maps", m->pid);
	fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
	if (fd < 0)
		return reply_err(b, sock, errno == ENOENT ? -ESRCH : -errno);
	rc = m->flags & OPEN_MAPS_F_FILES ? reply_maps_files(b, sock, m->pid, fd) : reply_fd(sock, fd);
	close(fd);
	return rc;
}

static bool range_ok(uint64_t start, uint64_t end)
{
	return start < end && !((start | end) & 4095);
}

/*
 * The maps of pid whose files the collector asks for, as the monitor
 * reads them itself (maps_of), not the collector's word: 0 and *ret, or
 * -errno to answer with.
 */
static int file_maps_of(struct broker *b, uint32_t pid, const struct procmaps **ret)
{
	if (pid == (uint32_t)getpid())
		return -EPERM; /* the monitor's own files stay its own */
	return maps_of(b, pid, ret);
}

/* The executable file mapping in maps that the collector describes, or NULL. */
static const struct procmap *find_mapping(const struct procmaps *maps, const struct msg_file_ref *ref)
{
	const struct procmap *mp = procmaps_find(maps, ref->start);

	if (!mp || mp->start != ref->start || mp->end != ref->end || mp->path[0] != '/' ||
	    !(mp->prot & PROT_EXEC) || mp->inode != ref->inode || mp->dev_major != ref->dev_major ||
	    mp->dev_minor != ref->dev_minor)
		return NULL;
	return mp;
}

/*
 * The executable file mapping an OPEN_FILE (or OPEN_DEBUGLINK) names: 0
 * and *ret_mp; -EPROTO (hostile: the caller returns it) or 1 when an
 * error reply was sent.
 */
static int mapping_of(struct broker *b, int sock, const struct msg_open_file *m, bool debuglink,
		      const struct procmap **ret_mp)
{
	const struct msg_file_ref ref = { .dev_major = m->dev_major, .dev_minor = m->dev_minor,
					  .start = m->start, .end = m->end, .inode = m->inode };
	const struct procmaps *maps;
	int rc;

	if (m->pid == 0 || m->pid > BROKER_PID_MAX || m->pad)
		return hostile(b, debuglink ? "OPEN_DEBUGLINK with an impossible pid"
					    : "OPEN_FILE with an impossible pid");
	if (!range_ok(m->start, m->end))
		return hostile(b, debuglink ? "OPEN_DEBUGLINK with an impossible mapping range"
					    : "OPEN_FILE with an impossible mapping range");
	rc = file_maps_of(b, m->pid, &maps);
	if (rc == 0 && !(*ret_mp = find_mapping(maps, &ref)))
		rc = -ENOENT;
	if (rc < 0)
		return (rc = reply_err(b, sock, rc)) < 0 ? rc : 1;
	return 0;
}

static int open_file(struct broker *b, int sock, const struct msg_open_file *m)
{
	const struct procmap *mp;
	struct stat st;
	int fd, rc;

	rc = mapping_of(b, sock, m, false, &mp);
	if (rc)
		return rc < 0 ? rc : 0;
	fd = mapfile_open(m->pid, mp, &st);
	if (fd < 0)
		return reply_err(b, sock, fd);
	rc = reply_fd(sock, fd);
	close(fd);
	return rc;
}

/*
 * OPEN_FILE for up to PRIVSEP_MAX_FDS mappings of one process, answered
 * in one FILES_REPLY: each entry is checked and opened as OPEN_FILE's,
 * and fails alone.  The shape of every entry is checked before any is
 * opened: a hostile request gets no answer.
 */
static int open_files(struct broker *b, int sock, const struct msg_open_files *m)
{
	static const struct msg_file_ref zero;
	struct msg_files_reply r = { .hdr = { MSG_FILES_REPLY, sizeof(r) } };
	const struct procmaps *maps = NULL;
	int fds[PRIVSEP_MAX_FDS];
	size_t nfds = 0;
	int found, root = -1, rc;

	if (m->pid == 0 || m->pid > BROKER_PID_MAX)
		return hostile(b, "OPEN_FILES with an impossible pid");
	if (m->n == 0 || m->n > PRIVSEP_MAX_FDS)
		return hostile(b, "OPEN_FILES with an impossible count");
	for (uint32_t i = 0; i < PRIVSEP_MAX_FDS; i++) {
		if (i >= m->n && memcmp(&m->maps[i], &zero, sizeof(zero)) != 0)
			return hostile(b, "OPEN_FILES with entries past its count");
		if (i < m->n && !range_ok(m->maps[i].start, m->maps[i].end))
			return hostile(b, "OPEN_FILES with an impossible mapping range");
	}
	r.n = m->n;
	/* The maps and the root once for all the entries. */
	found = file_maps_of(b, m->pid, &maps);
	if (found == 0 && (root = mapfile_root(m->pid)) < 0)
		found = root;
	for (uint32_t i = 0; i < m->n; i++) {
		const struct procmap *mp = found < 0 ? NULL : find_mapping(maps, &m->maps[i]);
		struct stat st;
		int fd = found < 0 ? found : !mp ? -ENOENT : mapfile_open_at(root, mp, &st);

		if (fd < 0) {
			r.err[i] = -fd;
			b->last_err = fd;
			continue;
		}
		fds[nfds++] = fd;
	}
	if (root >= 0)
		close(root);
	r.nfds = (uint32_t)nfds;
	rc = privsep_send(sock, &r, sizeof(r), fds, nfds);
	fds_close(fds, nfds);
	return rc;
}

/*
 * The debug file the mapped file names in its .gnu_debuglink, looked for
 * beside it as GDB does (mapfile_open_debuglink: same owner, no symlink).
 * The name must be a plain file name, NUL-terminated, zero after.
 */
static int open_debuglink(struct broker *b, int sock, const struct msg_open_debuglink *m)
{
	const struct procmap *mp;
	size_t n = strnlen(m->name, sizeof(m->name));
	int fd, rc;

	if (m->map.hdr.type != MSG_OPEN_DEBUGLINK || n == 0 || n > MAPFILE_DEBUGLINK_MAX)
		return hostile(b, "OPEN_DEBUGLINK without a name");
	for (size_t i = n; i < sizeof(m->name); i++)
		if (m->name[i])
			return hostile(b, "OPEN_DEBUGLINK with bytes past its name");
	if (!mapfile_debuglink_name_ok(m->name))
		return hostile(b, "OPEN_DEBUGLINK with a name that is not a plain file name");
	rc = mapping_of(b, sock, &m->map, true, &mp);
	if (rc)
		return rc < 0 ? rc : 0;
	fd = mapfile_open_debuglink(m->map.pid, mp, m->name);
	if (fd < 0)
		return reply_err(b, sock, fd);
	rc = reply_fd(sock, fd);
	close(fd);
	return rc;
}

/*
 * The separate debug file of a build-id, where Debian's -dbgsym packages
 * put it: /usr/lib/debug/.build-id/xx/rest.debug (a path made here from the
 * bytes, never a path of the collector's).  Whether it is the right file is
 * the collector's to check (its build-id note must match): anyone who can
 * write under /usr/lib/debug is root already.
 */
static int open_debug(struct broker *b, int sock, const struct msg_open_debug *m)
{
	char hex[2 * MSG_BUILD_ID_MAX + 1], path[sizeof(BROKER_DEBUG_DIR) + sizeof(hex) + 16];
	struct stat st;
	int fd, rc;

	if (m->len < MSG_BUILD_ID_MIN || m->len > MSG_BUILD_ID_MAX || m->pad)
		return hostile(b, "OPEN_DEBUG with an impossible build-id length");
	for (size_t i = m->len; i < MSG_BUILD_ID_MAX; i++)
		if (m->build_id[i])
			return hostile(b, "OPEN_DEBUG with bytes past its build-id");
	hexdigit_encode(m->build_id, m->len, hex);
	snprintf(path, sizeof(path), "%s/%.2s/%s.debug", BROKER_DEBUG_DIR, hex, hex + 2);
	fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK | O_NOCTTY);
	if (fd < 0)
		return reply_err(b, sock, -errno);
	if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode)) {
		close(fd);
		return reply_err(b, sock, -EINVAL);
	}
	rc = reply_fd(sock, fd);
	close(fd);
	return rc;
}

static unsigned cap_hz(struct broker *b, unsigned asked)
{
	unsigned hz = asked > b->max_hz ? b->max_hz : asked;

	b->last_hz_asked = asked;
	b->last_hz_applied = hz;
	return hz;
}

/*
 * The answer to SET_HZ and TENANT_CGROUP: rc, and the tenant's frequency in
 * effect now (on success what was applied; on failure what it still has).
 */
static int reply_hz(struct broker *b, int sock, int rc, unsigned tenant, unsigned applied)
{
	struct msg_hz_reply r = { .hdr = { MSG_HZ_REPLY, sizeof(r) }, .err = rc < 0 ? -rc : 0 };

	if (rc < 0) {
		b->last_err = rc;
		applied = b->sampler ? sampler_tenant_hz(b->sampler, tenant) : 0;
	}
	b->last_hz_applied = applied;
	r.hz = applied;
	return privsep_send(sock, &r, sizeof(r), NULL, 0);
}

static int set_hz(struct broker *b, int sock, const struct msg_set_hz *m)
{
	unsigned hz;
	int rc = 0;

	if (m->hz == 0)
		return hostile(b, "SET_HZ of 0");
	if (m->tenant >= VIGIL_MAX_TENANTS)
		return hostile(b, "SET_HZ for a tenant index out of range");
	hz = cap_hz(b, m->hz);
	b->last_tenant = m->tenant;
	if (b->sampler)
		rc = sampler_set_tenant_hz(b->sampler, m->tenant, hz);
	return reply_hz(b, sock, rc, m->tenant, hz);
}

/*
 * A cgroup named by its id: opened by file handle (kernfs ids are handles)
 * beneath the cgroup2 mount, so that no path from the collector is used,
 * and checked to be a cgroup2 directory with that id.
 */
static int open_cgroup(struct broker *b, uint64_t id)
{
	struct {
		struct file_handle fh;
		uint64_t id;
	} h = { .fh = { .handle_bytes = sizeof(uint64_t), .handle_type = 0xfe /* FILEID_KERNFS */ } };
	struct statfs sfs;
	struct stat st;
	int fd;

	if (b->cgroup_root_fd < 0)
		return -ENODEV;
	memcpy(h.fh.f_handle, &id, sizeof(id));
	fd = open_by_handle_at(b->cgroup_root_fd, &h.fh, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0)
		return errno == ESTALE ? -ENOENT : -errno;
	if (fstatfs(fd, &sfs) < 0 || sfs.f_type != CGROUP2_SUPER_MAGIC || fstat(fd, &st) < 0 ||
	    !S_ISDIR(st.st_mode) || st.st_ino != id) {
		close(fd);
		return -ENOENT;
	}
	return fd;
}

static int reply_status(struct broker *b, int sock, int rc)
{
	struct msg_reply r = { .hdr = { MSG_ERR_REPLY, sizeof(r) }, .err = rc < 0 ? -rc : 0 };

	if (rc < 0)
		b->last_err = rc;
	return privsep_send(sock, &r, sizeof(r), NULL, 0);
}

static int tenant_cgroup(struct broker *b, int sock, const struct msg_tenant_cgroup *m)
{
	unsigned hz;
	int fd, rc;

	if (m->tenant == 0 || m->tenant >= VIGIL_MAX_TENANTS)
		return hostile(b, "TENANT_CGROUP for a tenant index out of range");
	if (m->hz == 0 || m->cgroup_id == 0 || m->pad)
		return hostile(b, "TENANT_CGROUP with 0 Hz, cgroup id 0 or padding set");
	hz = cap_hz(b, m->hz);
	b->last_tenant = m->tenant;
	b->last_cgroup_id = m->cgroup_id;
	if (!b->sampler)
		return reply_hz(b, sock, 0, m->tenant, hz);
	fd = open_cgroup(b, m->cgroup_id);
	if (fd < 0)
		return reply_hz(b, sock, fd, m->tenant, hz);
	rc = sampler_tenant_add_cgroup(b->sampler, m->tenant, m->gen, fd, m->cgroup_id, hz, b->detail,
				       sizeof(b->detail));
	close(fd);
	return reply_hz(b, sock, rc, m->tenant, hz);
}

static int set_unwind(struct broker *b, int sock, const struct msg_set_unwind *m)
{
	if (m->tenant >= VIGIL_MAX_TENANTS)
		return hostile(b, "SET_UNWIND for a tenant index out of range");
	if (m->mode != VIGIL_UNWIND_FP && m->mode != VIGIL_UNWIND_DWARF)
		return hostile(b, "SET_UNWIND with an unknown mode");
	b->last_tenant = m->tenant;
	if (m->mode == VIGIL_UNWIND_DWARF && b->unwind != VIGIL_UNWIND_DWARF) {
		snprintf(b->detail, sizeof(b->detail), "--unwind frame-pointer forbids stack copies");
		return reply_status(b, sock, -EPERM);
	}
	return reply_status(b, sock, b->sampler ? sampler_set_unwind(b->sampler, m->tenant, m->mode) : 0);
}

static int tenant_cgroup_del(struct broker *b, int sock, const struct msg_tenant_cgroup_del *m)
{
	if (m->cgroup_id == 0)
		return hostile(b, "TENANT_CGROUP_DEL of cgroup id 0");
	return reply_status(b, sock, b->sampler ? sampler_tenant_remove_cgroup(b->sampler, m->cgroup_id) : 0);
}

int broker_serve_one(struct broker *b, int sock, enum privsep_peer from)
{
	union {
		struct msg_hdr hdr;
		struct msg_open_maps open_maps;
		struct msg_open_file open_file;
		struct msg_open_files open_files;
		struct msg_open_debug open_debug;
		struct msg_open_debuglink open_debuglink;
		struct msg_set_hz set_hz;
		struct msg_tenant_cgroup tcg;
		struct msg_tenant_cgroup_del tcg_del;
		struct msg_set_unwind set_unwind;
		struct msg_ready start;
		struct msg_uplink_broke broke;
		struct msg_export_config export_cfg;
		struct msg_collector_beat cbeat;
		struct msg_uplink_beat ubeat;
		uint8_t raw[PRIVSEP_MAX_MSG];
	} u;
	int fds[PRIVSEP_MAX_FDS];
	size_t len;
	int type, rc;

	b->last_type = 0;
	b->last_err = 0;
	b->violation = NULL;
	b->detail[0] = '\0';
	type = privsep_recv(sock, from, from == PEER_UPLINK ? b->seen_uplink : b->seen_collector, &u,
			    &len, fds);
	if (type == -EAGAIN)
		return 0; /* spurious wake-up: nothing there */
	if (type == -EPROTO)
		return hostile(b, "a message the table does not allow (type, sender, length, fds or repeat)");
	if (type < 0)
		return type;
	b->last_type = type;
	/*
	 * No message a worker may send the monitor carries fds; REMOTE_POLICY
	 * does (privsep_recv let it through), but it is for the collector and
	 * refused below, its fd closed.
	 */
	switch (type) {
	case MSG_COLLECTOR_READY:
	case MSG_UPLINK_READY:
		return 0;
	case MSG_SAMPLING_START:
		if (u.start.version != PRIVSEP_VERSION)
			return hostile(b, "SAMPLING_START of another protocol version");
		if (b->sampler && (rc = sampler_start(b->sampler)) < 0)
			b->last_err = rc;
		return 0;
	case MSG_OPEN_MAPS:
		rc = open_maps(b, sock, &u.open_maps);
		break;
	case MSG_OPEN_FILE:
		rc = open_file(b, sock, &u.open_file);
		break;
	case MSG_OPEN_FILES:
		rc = open_files(b, sock, &u.open_files);
		break;
	case MSG_OPEN_DEBUG:
		rc = open_debug(b, sock, &u.open_debug);
		break;
	case MSG_OPEN_DEBUGLINK:
		rc = open_debuglink(b, sock, &u.open_debuglink);
		break;
	case MSG_SET_HZ:
		rc = set_hz(b, sock, &u.set_hz);
		break;
	case MSG_TENANT_CGROUP:
		rc = tenant_cgroup(b, sock, &u.tcg);
		break;
	case MSG_TENANT_CGROUP_DEL:
		rc = tenant_cgroup_del(b, sock, &u.tcg_del);
		break;
	case MSG_SET_UNWIND:
		rc = set_unwind(b, sock, &u.set_unwind);
		break;
	case MSG_UPLINK_BROKE:
		/* The collector says so; the monitor's loop kills the uplink. */
		memcpy(b->detail, u.broke.why, sizeof(u.broke.why));
		b->detail[sizeof(u.broke.why) - 1] = '\0';
		return 0;
	case MSG_EXPORT_CONFIG:
		/* The policy's export: section; the monitor's loop checks and applies it. */
		if (u.export_cfg.version != PRIVSEP_VERSION)
			return hostile(b, "EXPORT_CONFIG of another protocol version");
		b->export_cfg = u.export_cfg;
		b->export_cfg.url[sizeof(b->export_cfg.url) - 1] = '\0';
		b->export_cfg.tenant[sizeof(b->export_cfg.tenant) - 1] = '\0';
		b->export_cfg.basic_auth_file[EXPORT_PATH_LEN - 1] = '\0';
		b->export_cfg.bearer_token_file[EXPORT_PATH_LEN - 1] = '\0';
		b->export_cfg.ca[EXPORT_PATH_LEN - 1] = '\0';
		b->export_cfg.cert[EXPORT_PATH_LEN - 1] = '\0';
		b->export_cfg.key[EXPORT_PATH_LEN - 1] = '\0';
		return 0;
	/* systemd readiness and watchdog (issue 11): kept for the monitor's loop */
	case MSG_COLLECTOR_BEAT:
	case MSG_UPLINK_BEAT: {
		const char *why = NULL;

		if (!b->beats)
			return 0;
		rc = type == MSG_COLLECTOR_BEAT
			     ? beats_take_collector(b->beats, &u.cbeat, mono_ns() / 1000, &why)
			     : beats_take_uplink(b->beats, &u.ubeat, mono_ns() / 1000, &why);
		return rc ? hostile(b, why) : 0;
	}
	default:
		fds_close(fds, privsep_rules[type].nfds);
		return hostile(b, "a message type the monitor does not answer");
	}
	/*
	 * The worker's socket is non-blocking on this side: a correct worker
	 * has one request outstanding at a time, so an answer that does not
	 * fit means it stopped reading, and the monitor will not wait on it.
	 */
	if (rc == -EAGAIN)
		return hostile(b, "the worker does not read its answers");
	return rc;
}

int broker_maps_timeout_ms(const struct broker *b)
{
	uint64_t now = mono_ns(), ttl = (uint64_t)BROKER_MAPS_TTL_MS * 1000000;

	if (!b->maps.maps)
		return -1;
	if (maps_expired(b, now))
		return 0;
	return (int)((b->maps.read_ns + ttl - now + 999999) / 1000000);
}

void broker_expire(struct broker *b)
{
	if (b->maps.maps && maps_expired(b, mono_ns()))
		maps_drop(b);
}

void broker_release(struct broker *b)
{
	if (b)
		maps_drop(b);
}
