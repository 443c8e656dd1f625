/*
 * privsep.h - every message that crosses between vigild's processes.
 *
 * The monitor (privileged) and its workers talk over SOCK_SEQPACKET
 * socketpairs, so each message arrives whole or not at all.  All message
 * types live here, with one table (privsep_rules) saying who may send each,
 * its exact length, how many fds travel with it and whether it may repeat.
 * A receiver checks a message against the table before reading any field.
 * Changing any message bumps PRIVSEP_VERSION.
 */
#ifndef VIGIL_PRIVSEP_H
#define VIGIL_PRIVSEP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "exportstats.h"

#define PRIVSEP_VERSION 15
/* The worker's end of its socketpair, placed here across the exec. */
#define PRIVSEP_FD 3
#define PRIVSEP_MAX_FDS 8

#define PRIVSEP_MAX_MSG 4096

enum privsep_peer {
	PEER_MONITOR = 1,
	PEER_COLLECTOR = 2,
	PEER_UPLINK = 3,
	PEER_LOADER = 4, /* the monitor's short-lived child that loads BPF */
};

enum privsep_type {
	/* monitor -> collector, once: configuration and the fds to work with */
	MSG_COLLECTOR_SETUP = 1,
	/* collector -> monitor, once: set up, confined and draining */
	MSG_COLLECTOR_READY = 2,
	/*
	 * collector -> monitor: /proc/PID/maps of a process, please; with
	 * OPEN_MAPS_F_FILES, and the files of its executable mappings
	 * (answered with MAPS_REPLY)
	 */
	MSG_OPEN_MAPS = 3,
	/* collector -> monitor: the file behind one executable mapping, please */
	MSG_OPEN_FILE = 4,
	/* monitor -> collector: the answer to OPEN_*, with the fd */
	MSG_FD_REPLY = 5,
	/* monitor -> collector: the answer to OPEN_*, refused or failed */
	MSG_ERR_REPLY = 6,
	/* collector -> monitor: sample a tenant at this frequency (capped by the monitor) */
	MSG_SET_HZ = 7, /* answered with MSG_HZ_REPLY */
	/* monitor -> uplink, once: configuration */
	MSG_UPLINK_SETUP = 8,
	/* uplink -> monitor, once: set up and confined */
	MSG_UPLINK_READY = 9,
	/* monitor -> collector: the policy file (at start and on SIGHUP), as an fd */
	MSG_POLICY = 10,
	/* collector -> monitor: sample this cgroup (by id) for this tenant */
	MSG_TENANT_CGROUP = 11, /* answered with MSG_HZ_REPLY */
	/* collector -> monitor: stop sampling this cgroup for its tenant */
	MSG_TENANT_CGROUP_DEL = 12,
	/* loader -> monitor: one fd of the loaded sampler (program, map, event, link) */
	MSG_LOADER_FD = 13,
	/* loader -> monitor, once: that was all of them */
	MSG_LOADER_DONE = 14,
	/* monitor -> collector: the answer to SET_HZ / TENANT_CGROUP */
	MSG_HZ_REPLY = 15,
	/*
	 * collector -> monitor, once: the tenants' cgroups are attached, start
	 * the default events (until then a tenant's task would be sampled and
	 * labelled as the default tenant's)
	 */
	MSG_SAMPLING_START = 16,
	/*
	 * monitor -> uplink, at start and on SIGHUP: the agent's mTLS
	 * identity (certificate, key, CA as sealed memfds) and the control
	 * plane's addresses, resolved by the monitor
	 */
	MSG_UPLINK_CREDS = 17,
	/* monitor -> collector, once: state directory, policy trust, socket to the uplink */
	MSG_COLLECTOR_CP = 18,
	/* monitor -> uplink, once: its end of the socket to the collector */
	MSG_UPLINK_PEER = 19,
	/* uplink -> collector: a policy and its signature from the control plane */
	MSG_REMOTE_POLICY = 20,
	/* collector -> uplink, once: who this agent is (instance_uid, from the state directory) */
	MSG_AGENT_START = 21,
	/* collector -> uplink: the policy in force, and the answer to a REMOTE_POLICY */
	MSG_POLICY_STATUS = 22,
	/* collector -> uplink: sampling and each tenant's budget state */
	MSG_AGENT_HEALTH = 23,
	/* collector -> monitor, once: the uplink broke the protocol on their socket */
	MSG_UPLINK_BROKE = 24,
	/*
	 * uplink -> collector: a renewed certificate and its key (OpAMP's CSR
	 * flow), proven by a request, to keep in the state directory
	 */
	MSG_IDENTITY_SAVE = 25,
	/* --- export to Pyroscope (issue 11): numbers 26-31 reserved --- */
	/* collector -> uplink: push this spooled profile (struct msg_export_profile) */
	MSG_EXPORT_PROFILE = 26,
	/* uplink -> collector: the push of seq is over (struct msg_export_ack) */
	MSG_EXPORT_ACK = 27,
	/*
	 * monitor -> uplink, at start and on SIGHUP: where and how to push
	 * (struct msg_uplink_export), with the secrets as sealed memfds
	 */
	MSG_UPLINK_EXPORT = 28,
	/*
	 * collector -> monitor: the export: section of the policy in force
	 * changed (struct msg_export_config); the monitor reads the files it
	 * names and sends the uplink a new MSG_UPLINK_EXPORT
	 */
	MSG_EXPORT_CONFIG = 29,
	/* --- Prometheus metrics (32..36, docs/metrics.md) --- */
	/*
	 * collector -> uplink, on their metrics socket (never the
	 * control-plane one), in answer to METRICS_WANTED: sampling counters,
	 * tenants, spool
	 */
	MSG_COLLECTOR_METRICS = 32,
	/*
	 * monitor -> uplink, on their metrics socket (never the control
	 * socket, which must stay free for CREDS and EXPORT), in answer to
	 * METRICS_WANTED: /proc figures of vigild's three processes
	 */
	MSG_PROC_METRICS = 33,
	/*
	 * monitor -> collector, once, without a control plane (whose
	 * MSG_COLLECTOR_CP carries it then) and with export: its end of the
	 * socket to the uplink
	 */
	MSG_COLLECTOR_PEER = 34,
	/*
	 * monitor -> uplink, once: the metrics listening socket, bound by the
	 * monitor, and the sockets PROC_METRICS and COLLECTOR_METRICS come on
	 */
	MSG_UPLINK_METRICS = 35,
	/* monitor -> collector, once: its end of the socket COLLECTOR_METRICS go on */
	MSG_COLLECTOR_METRICS_SOCK = 36,
	/* --- systemd readiness and watchdog (issue 11): numbers 37-40 --- */
	/* collector -> monitor, repeating: alive, progress, sampling and tenants */
	MSG_COLLECTOR_BEAT = 37,
	/* uplink -> monitor, repeating: alive, progress, control plane and export */
	MSG_UPLINK_BEAT = 38,
	/*
	 * collector -> monitor: the separate debug file of this build-id
	 * (/usr/lib/debug/.build-id/xx/rest.debug, Debian's -dbgsym packages;
	 * issue 12), answered with FD_REPLY or ERR_REPLY
	 */
	MSG_OPEN_DEBUG = 41,
	/*
	 * collector -> monitor: how a tenant's user stacks are taken, as its
	 * policy says (unwind:), answered with ERR_REPLY (issue 12)
	 */
	MSG_SET_UNWIND = 42,
	/*
	 * collector -> monitor: the debug file that one executable mapping's
	 * file names in its .gnu_debuglink (struct msg_open_debuglink; issue
	 * 12), answered with FD_REPLY or ERR_REPLY
	 */
	MSG_OPEN_DEBUGLINK = 43,
	/*
	 * uplink -> monitor and uplink -> collector, on their metrics sockets
	 * (struct msg_ready): a scrape came in; answered with PROC_METRICS and
	 * COLLECTOR_METRICS.  Figures are read when someone asks, not every
	 * second (issue 13: wake only when there is work).
	 */
	MSG_METRICS_WANTED = 44,
	/*
	 * (Readers take at most METRICS_ASKS_PER_TURN of them a loop turn: any
	 * number means what one does, and a flood must not hold the loop.)
	 */
	/*
	 * collector -> monitor: the files behind up to PRIVSEP_MAX_FDS
	 * executable mappings of one process (struct msg_open_files): one
	 * round trip for a read of its maps, not one a file (issue 13).
	 * Answered with FILES_REPLY.
	 */
	MSG_OPEN_FILES = 45,
	/*
	 * monitor -> collector: the answer to OPEN_FILES (struct
	 * msg_files_reply): one fd for each mapping whose err is 0, in order
	 */
	MSG_FILES_REPLY = 46,
	/*
	 * monitor -> collector: the answer to OPEN_MAPS with OPEN_MAPS_F_FILES
	 * (struct msg_maps_reply): the maps fd, then the files of up to
	 * MAPS_REPLY_FILES executable mappings the monitor saw in them, as
	 * OPEN_FILES would have opened them: a new process costs one round
	 * trip, not two (issue 13)
	 */
	MSG_MAPS_REPLY = 47,
	MSG_TYPE_MAX = 48,
};

struct msg_hdr {
	uint32_t type;
	uint32_t len; /* whole message, header included */
};

#define SETUP_F_BUILD_ID 0x1u
#define SETUP_F_TOP 0x2u
#define SETUP_F_POLICY 0x4u /* a MSG_POLICY follows the setup */
#define SETUP_F_CONTROL_PLANE 0x8u /* a MSG_COLLECTOR_CP follows the setup (and policy) */
#define SETUP_F_METRICS 0x10u /* a MSG_COLLECTOR_METRICS_SOCK follows (after CP's or PEER); send COLLECTOR_METRICS */
/*
 * Profiles are exported through the uplink: spool one file per series,
 * send them to the uplink, unlink on ack (spoolq.h).  Without
 * SETUP_F_CONTROL_PLANE a MSG_COLLECTOR_PEER (struct msg_metrics_fd) follows
 * the setup (and policy): one, for export, metrics or both.
 */
#define SETUP_F_EXPORT 0x20u

#define UPLINK_HOST_LEN 256
#define UPLINK_LABELS_LEN 2048

/*
 * fds: [0] ring buffer map, [1] stats map, [2] output directory,
 * [3] /proc/kallsyms, [4] per-tenant stats map
 */
struct msg_collector_setup {
	struct msg_hdr hdr;
	uint32_t version; /* PRIVSEP_VERSION */
	uint32_t hz;
	uint32_t interval_s;
	uint32_t duration_s;
	uint32_t ncpus;
	uint32_t flags; /* SETUP_F_* */
	uint64_t start_realtime_ns; /* when sampling began */
	uint32_t max_hz; /* the monitor's ceiling, for the collector's information */
	uint32_t control_period_s; /* how often budgets are steered */
	uint64_t sample_cost_ns;   /* calibrated interrupt cost of one sample */
	uint32_t uplink_pid;       /* for the agent's own CPU time */
	uint32_t beat_ms;          /* how often to beat: BEAT_MIN_MS..BEAT_MAX_MS (below) */
	uint64_t spool_max_bytes;  /* SETUP_F_EXPORT: the spool's bound (--spool-max-bytes) */
	/*
	 * SETUP_F_EXPORT: what the series' labels are built from (the
	 * collector writes the PushRequests): the same as the uplink's
	 * setup, checked by the monitor at start
	 */
	uint32_t nlabels;          /* strings in labels */
	uint32_t pad2;
	char hostname[UPLINK_HOST_LEN]; /* this host's name (NUL-terminated) */
	char labels[UPLINK_LABELS_LEN]; /* nlabels "k=v" strings, each NUL-terminated */
};

/* OPEN_MAPS's flags: anything else is hostile. */
#define OPEN_MAPS_F_FILES 0x1u

struct msg_open_maps {
	struct msg_hdr hdr;
	uint32_t pid;
	uint32_t flags; /* OPEN_MAPS_F_* */
};

/* A build-id of len bytes (MSG_BUILD_ID_MIN..MSG_BUILD_ID_MAX); the rest of build_id zero. */
#define MSG_BUILD_ID_MIN 4
#define MSG_BUILD_ID_MAX 64
struct msg_open_debug {
	struct msg_hdr hdr;
	uint32_t len;
	uint32_t pad;
	uint8_t build_id[MSG_BUILD_ID_MAX];
};

/*
 * The monitor re-reads the process's maps itself and only opens the file
 * of the entry [start, end) if it is an executable file mapping whose
 * device and inode are these; the collector never names a path.
 */
struct msg_open_file {
	struct msg_hdr hdr;
	uint32_t pid;
	uint32_t dev_major;
	uint32_t dev_minor;
	uint32_t pad;
	uint64_t start;
	uint64_t end;
	uint64_t inode;
};

/* OPEN_FILE's mapping, and the name its file's .gnu_debuglink gives (NUL-terminated, zero after). */
struct msg_open_debuglink {
	struct msg_open_file map; /* its hdr is this message's */
	char name[256];
};

/* One maps entry of OPEN_FILES: what OPEN_FILE says of its mapping. */
struct msg_file_ref {
	uint32_t dev_major;
	uint32_t dev_minor;
	uint64_t start;
	uint64_t end;
	uint64_t inode;
};

/* Entries [n, PRIVSEP_MAX_FDS) are zero; n is 1 to PRIVSEP_MAX_FDS. */
struct msg_open_files {
	struct msg_hdr hdr;
	uint32_t pid;
	uint32_t n;
	struct msg_file_ref maps[PRIVSEP_MAX_FDS];
};

/*
 * err[i]: 0 (its fd came, fds in the order of the entries), or a positive
 * errno; err[n..] are 0.  nfds, the first field, is how many fds came
 * (privsep_recv checks it: rule.nfds_counted).
 */
struct msg_files_reply {
	struct msg_hdr hdr;
	uint32_t nfds;
	uint32_t n;
	int32_t err[PRIVSEP_MAX_FDS];
};

/* The files a MAPS_REPLY may carry: its fds are the maps' and theirs. */
#define MAPS_REPLY_FILES (PRIVSEP_MAX_FDS - 1)

/* One file of a MAPS_REPLY: the mapping it was opened for, and how that went. */
struct msg_maps_file {
	struct msg_file_ref map;
	int32_t err; /* 0 (its fd came) or a positive errno */
	uint32_t pad;
};

/*
 * fds: the maps (always), then one for each entry of files whose err is
 * 0, in order; nfds (the first field: rule.nfds_counted) is 1 + those.
 * The entries are the executable file mappings of the monitor's own read
 * of the maps, at most one a file (device and inode), in maps order, the
 * first MAPS_REPLY_FILES; entries [n, MAPS_REPLY_FILES) are zero.
 */
struct msg_maps_reply {
	struct msg_hdr hdr;
	uint32_t nfds;
	uint32_t n;
	struct msg_maps_file files[MAPS_REPLY_FILES];
};

/* Reply to OPEN_MAPS / OPEN_FILE: FD_REPLY carries one fd, ERR_REPLY none. */
struct msg_reply {
	struct msg_hdr hdr;
	int32_t err; /* 0 with FD_REPLY; a positive errno with ERR_REPLY */
	uint32_t pad;
};

/*
 * mode: enum vigil_unwind.  The monitor applies it unless its command line
 * said --unwind frame-pointer, which no policy can lift: then the tenant
 * stays on frame pointers and the reply says -EPERM.
 */
struct msg_set_unwind {
	struct msg_hdr hdr;
	uint32_t tenant; /* 0 .. VIGIL_MAX_TENANTS-1 */
	uint32_t mode;
};

struct msg_set_hz {
	struct msg_hdr hdr;
	uint32_t hz;
	uint32_t tenant; /* 0: the default tenant */
};

/*
 * Reply to SET_HZ and TENANT_CGROUP: what the monitor did, so that the
 * collector's budget figures use the frequency really in effect.
 */
struct msg_hz_reply {
	struct msg_hdr hdr;
	int32_t err; /* 0, or a positive errno: refused or failed */
	/*
	 * The tenant's frequency in effect now: what was asked, capped at the
	 * ceiling; after an error, the one it had (0: none yet).
	 */
	uint32_t hz;
};

/* Answered with MSG_HZ_REPLY. */
struct msg_tenant_cgroup {
	struct msg_hdr hdr;
	uint32_t tenant; /* 1 .. VIGIL_MAX_TENANTS-1 */
	uint32_t hz;
	uint64_t cgroup_id;
	uint32_t gen;    /* the names' generation (vigil_abi.h), in the samples */
	uint32_t pad;    /* 0 */
};

/* Answered with MSG_ERR_REPLY, err 0 on success. */
struct msg_tenant_cgroup_del {
	struct msg_hdr hdr;
	uint64_t cgroup_id;
};

/* fds: [0] the fd named by kind and index (sampler.c) */
struct msg_loader_fd {
	struct msg_hdr hdr;
	uint32_t kind;
	uint32_t index; /* for per-CPU fds: the slot */
	int32_t cpu;    /* for per-CPU fds: the CPU number */
	uint32_t pad;
};

struct msg_loader_done {
	struct msg_hdr hdr;
	uint32_t version;
	uint32_t ncpus;
	uint32_t hz;
	uint32_t pad;
};

/* fds: [0] the policy file, read-only */
struct msg_policy {
	struct msg_hdr hdr;
	uint32_t version;
	uint32_t pad;
	char name[240]; /* the file's name, for messages (NUL-terminated, maybe cut) */
};

#define UPLINK_F_CONTROL_PLANE 0x1u /* speak OpAMP; MSG_UPLINK_PEER and _CREDS follow */
/*
 * push profiles to Pyroscope; MSG_UPLINK_PEER (once, with or without a
 * control plane) and MSG_UPLINK_EXPORT follow
 */
#define UPLINK_F_EXPORT 0x2u
/* serve metrics: MSG_UPLINK_METRICS follows the setup */
#define UPLINK_F_METRICS 0x4u

struct msg_uplink_setup {
	struct msg_hdr hdr;
	uint32_t version;
	uint32_t flags;          /* UPLINK_F_* */
	uint32_t port;           /* the control plane's TCP port */
	uint32_t poll_interval_s;
	uint32_t nlabels;        /* strings in labels */
	uint32_t beat_ms;        /* how often to beat: BEAT_MIN_MS..BEAT_MAX_MS (below) */
	uint64_t start_realtime_ns; /* when sampling began, for health */
	char host[UPLINK_HOST_LEN];     /* the control plane's host name (NUL-terminated) */
	char hostname[UPLINK_HOST_LEN]; /* this host's name, for host.name */
	char labels[UPLINK_LABELS_LEN]; /* nlabels "k=v" strings, each NUL-terminated */
};

#define UPLINK_MAX_ADDRS 8

struct uplink_addr {
	uint32_t family; /* AF_INET or AF_INET6 */
	uint8_t addr[16];
};

/*
 * fds: [0] certificate (PEM, with chain), [1] private key (PEM), [2] CA
 * certificates (PEM): sealed memfds (memblob.h).  naddrs 0: the name did
 * not resolve at start.
 */
struct msg_uplink_creds {
	struct msg_hdr hdr;
	uint32_t version;
	uint32_t naddrs;
	struct uplink_addr addrs[UPLINK_MAX_ADDRS];
};

/* fds: [0] the state directory, [1] policy trust (sealed memfd), [2] socket to the uplink */
struct msg_collector_cp {
	struct msg_hdr hdr;
	uint32_t version;
	uint32_t pad;
};

/* fds: [0] the socket to the collector */
struct msg_uplink_peer {
	struct msg_hdr hdr;
	uint32_t version;
	uint32_t pad;
};

/* The most bytes a remote policy and its signature may take together. */
#define REMOTE_POLICY_MAX (4u << 20)
#define CONFIG_HASH_LEN 32

/*
 * fds: [0] sealed memfd of yaml_len bytes of policy.yaml, then sig_len
 * bytes of policy.yaml.sig.  hash: the remote config's config_hash, to
 * echo in the answer.
 */
struct msg_remote_policy {
	struct msg_hdr hdr;
	uint32_t version;
	uint32_t yaml_len;
	uint32_t sig_len;
	uint32_t pad;
	uint8_t hash[CONFIG_HASH_LEN];
};

struct msg_agent_start {
	struct msg_hdr hdr;
	uint32_t version;
	uint32_t pad;
	uint8_t instance_uid[16];
};

enum policy_source {
	POLICY_SRC_DEFAULT = 0, /* no policy: one default tenant at --hz */
	POLICY_SRC_LOCAL = 1,   /* --policy */
	POLICY_SRC_REMOTE = 2,  /* signed, from the control plane (or the state directory) */
};

enum remote_status {
	REMOTE_NONE = 0,    /* nothing received from the control plane yet */
	REMOTE_APPLIED = 1,
	REMOTE_FAILED = 3,  /* OpAMP's numbers */
};

#define POLICY_REASON_LEN 512

/*
 * fds: [0] sealed memfd of the policy.yaml in force (empty for the default
 * policy).  Sent at start, whenever the policy in force changes, and as
 * the answer to each REMOTE_POLICY.
 */
struct msg_policy_status {
	struct msg_hdr hdr;
	uint32_t version;
	uint32_t source;       /* enum policy_source of the policy in force */
	uint64_t serial;       /* of the policy in force (0: unsigned) */
	uint32_t status;       /* enum remote_status of the last remote config */
	uint32_t pad;
	uint8_t hash[CONFIG_HASH_LEN];    /* the last remote config's hash (status != NONE) */
	char reason[POLICY_REASON_LEN];   /* FAILED: why, one line (NUL-terminated) */
};

#define HEALTH_MAX_TENANTS 32

enum tenant_health {
	TENANT_OK = 0,          /* under budget */
	TENANT_THROTTLED = 1,   /* frequency lowered to stay under budget */
	TENANT_OVER = 2,        /* over budget at the lowest frequency */
	TENANT_UNMEASURED = 3,  /* no CPU time or no figures yet */
};

struct health_tenant {
	char name[64];
	uint32_t hz;
	uint32_t state;         /* enum tenant_health */
	uint32_t overhead_ppm;  /* the last period's overhead, millionths of its CPU */
	uint32_t pad;
};

struct msg_agent_health {
	struct msg_hdr hdr;
	uint32_t version;
	uint32_t sampling;      /* 1 when samples arrive */
	uint32_t ntenants;      /* tenants in the policy */
	uint32_t nlisted;       /* of them in tenants[] (at most HEALTH_MAX_TENANTS) */
	uint64_t samples;       /* samples taken since the start */
	struct health_tenant tenants[HEALTH_MAX_TENANTS];
};

/* The most bytes a renewed certificate (with chain) and its key may take together. */
#define IDENTITY_MAX (128u << 10)
/*
 * fds: [0] sealed memfd of cert_len bytes of PEM certificate (then its
 * chain), then key_len bytes of PEM private key.
 */
struct msg_identity_save {
	struct msg_hdr hdr;
	uint32_t version;
	uint32_t cert_len;
	uint32_t key_len;
	uint32_t pad;
};
struct msg_uplink_broke {
	struct msg_hdr hdr;
	uint32_t version;
	uint32_t pad;
	char why[128];
};

/* --- Prometheus metrics (docs/metrics.md) ------------------------------------ */

/* One tenant's row: ratios are fractions of the tenant's own CPU time (1% is 0.01). */
struct metrics_tenant {
	char name[64];          /* NUL-terminated */
	uint32_t hz;            /* frequency in effect */
	uint32_t state;         /* enum tenant_health */
	double overhead_ratio;  /* measured in the last control period (0: not yet) */
	double budget_ratio;    /* the policy's max_overhead */
};

#define METRICS_MAX_TENANTS HEALTH_MAX_TENANTS

/* Counters (_total) since the start; the BPF ones summed over CPUs. */
struct msg_collector_metrics {
	struct msg_hdr hdr;
	uint32_t version;
	uint32_t ntenants;              /* rows in tenants[] (at most METRICS_MAX_TENANTS) */
	uint64_t samples_total;         /* samples recorded (BPF) */
	uint64_t lost_total;            /* samples lost: ring buffer full */
	uint64_t idle_total;            /* ticks on an idle CPU */
	uint64_t user_stack_errors_total;
	uint64_t kernel_stack_errors_total;
	uint64_t exec_lost_total;       /* exec events lost */
	uint64_t stack_copy_lookups_total; /* DWARF stack copies that looked the mapping up */
	uint64_t malformed_total;       /* ring buffer records that failed validation */
	uint64_t profiles_written_total;
	uint64_t profiles_lost_total;   /* profiles that could not be written and were dropped */
	struct spool_stats spool;
	struct metrics_tenant tenants[METRICS_MAX_TENANTS];
};

enum metrics_proc { METRICS_PROC_MONITOR, METRICS_PROC_COLLECTOR, METRICS_PROC_UPLINK, METRICS_NPROC };

#define PROC_ROW_OPEN_FDS 0x1u      /* open_fds is known (Linux >= 6.2 or counted) */

/* What the monitor read from /proc/PID/{stat,status,limits,fd} (procmetrics.h). */
struct proc_row {
	uint32_t valid;                 /* 0: the process is not running or unreadable */
	uint32_t flags;                 /* PROC_ROW_* */
	double cpu_seconds;             /* user + system */
	double start_time_seconds;      /* since the Unix epoch */
	uint64_t resident_bytes;
	uint64_t virtual_bytes;
	uint64_t open_fds;
	uint64_t max_fds;               /* soft RLIMIT_NOFILE (0: unlimited) */
};

struct msg_proc_metrics {
	struct msg_hdr hdr;
	uint32_t version;
	uint32_t pad;
	struct proc_row rows[METRICS_NPROC]; /* by enum metrics_proc */
};

/*
 * COLLECTOR_PEER (fds: [0] the collector's end of its socket to the
 * uplink, without a control plane), COLLECTOR_METRICS_SOCK (fds: [0] the
 * collector's end of the socket
 * COLLECTOR_METRICS go on) and UPLINK_METRICS (fds: [0] listening TCP
 * socket, [1] the uplink's end of the socket PROC_METRICS come on, [2] its
 * end of the one COLLECTOR_METRICS come on).  The sending ends are
 * non-blocking.
 */
struct msg_metrics_fd {
	struct msg_hdr hdr;
	uint32_t version;
	uint32_t pad;
	char what[64];                  /* UPLINK_METRICS: the address, for messages (NUL-terminated) */
};

/* COLLECTOR_READY, UPLINK_READY and SAMPLING_START */
struct msg_ready {
	struct msg_hdr hdr;
	uint32_t version;
	uint32_t pad;
};

/* --- export to Pyroscope (issue 11; docs/security.md, "Profiles leaving the host") --- */

#define EXPORT_PROFILE_MAX (16u << 20)   /* bytes of one spool file: a PushRequest */
#define EXPORT_SERVICE_LEN 1024
#define EXPORT_TENANT_LEN 64
#define EXPORT_ID_LEN 64
/* RawProfileSeries in one spool file (SNAPSHOT_MAX_SERIES per interval, with room) */
#define EXPORT_SERIES_MAX 4096

/*
 * collector -> uplink: push this spool file, one interval's part
 * ("cpu-<stamp>_<k>_<n>.push", spoolq.h).  fds: [0] a sealed memfd of len
 * bytes: a serialized push.v1.PushRequest of nseries series, the HTTP body
 * as it is; the uplink neither decodes nor re-encodes it.
 */
struct msg_export_profile {
	struct msg_hdr hdr;
	uint32_t version;
	uint32_t len;                       /* 1 .. EXPORT_PROFILE_MAX */
	uint64_t seq;                       /* the collector's number, echoed in the ack */
	int64_t time_ns;                    /* the interval's start, realtime */
	uint32_t nseries;                   /* 1 .. EXPORT_SERIES_MAX: profiles in the file */
	uint32_t pad;
	uint64_t samples;                   /* pprof samples in them, counted by the collector (stats) */
};

enum export_result { EXPORT_PUSHED = 0, EXPORT_REJECTED = 1 /* 400/401/403/413...: not retried, dropped and reported */ };

/* uplink -> collector: the push of seq is over */
struct msg_export_ack {
	struct msg_hdr hdr;
	uint32_t version;
	uint32_t result;       /* enum export_result */
	uint64_t seq;
	int32_t http_status;   /* 0: none */
	uint32_t pad;
	char why[256];         /* REJECTED: one line (NUL-terminated) */
};

#define EXPORT_URL_LEN 1024
#define UPLINK_EXPORT_F_ON 0x1u     /* export on; else off (the fds are empty) */
#define UPLINK_EXPORT_F_BASIC 0x2u  /* fds[0]: "user:password" */
#define UPLINK_EXPORT_F_BEARER 0x4u /* fds[1]: a bearer token */
#define UPLINK_EXPORT_F_CA 0x8u     /* fds[2]: CA certificates (PEM) */
#define UPLINK_EXPORT_F_CERT 0x10u  /* fds[3], fds[4]: client certificate and key (PEM) */

/*
 * monitor -> uplink.  fds: [0] basic auth, [1] bearer token, [2] CA
 * bundle, [3] client certificate, [4] its key: always five sealed memfds
 * (the table wants an exact count), empty where flags do not name them.
 * naddrs 0 with a host name: it did not resolve.
 */
struct msg_uplink_export {
	struct msg_hdr hdr;
	uint32_t version;
	uint32_t flags;           /* UPLINK_EXPORT_F_* */
	uint32_t port;            /* the URL's port */
	uint32_t naddrs;
	uint32_t max_rate;        /* pushes per second, >= 1 */
	uint32_t pad;
	struct uplink_addr addrs[UPLINK_MAX_ADDRS];
	char url[EXPORT_URL_LEN];       /* http[s]://host[:port][/prefix] (NUL-terminated) */
	char host[UPLINK_HOST_LEN];     /* its host, no brackets (NUL-terminated) */
	char tenant[EXPORT_TENANT_LEN]; /* X-Scope-OrgID, "" for none (NUL-terminated) */
};

#define EXPORT_PATH_LEN 256
#define EXPORT_CONFIG_F_SET 0x1u /* the policy has an export: section; else back to the command line */

/*
 * collector -> monitor.  Strings NUL-terminated, "" where the policy does
 * not set the key.  The monitor checks every one again (the collector is
 * less trusted): files only under /etc/vigil/, the command line's port.
 */
struct msg_export_config {
	struct msg_hdr hdr;
	uint32_t version;
	uint32_t flags;                 /* EXPORT_CONFIG_F_* */
	uint64_t spool_max_bytes;       /* 0: not set */
	char url[EXPORT_URL_LEN];
	char tenant[EXPORT_TENANT_LEN];
	char basic_auth_file[EXPORT_PATH_LEN];
	char bearer_token_file[EXPORT_PATH_LEN];
	char ca[EXPORT_PATH_LEN];
	char cert[EXPORT_PATH_LEN];
	char key[EXPORT_PATH_LEN];
};

/* --- systemd readiness and watchdog (issue 11) ------------------------- */

/*
 * Heartbeats.  Each worker sends one at least every beat_ms (its setup's)
 * from its main loop, and at once when what STATUS= shows of it changes,
 * so that the monitor pets systemd's watchdog only while both are alive
 * and turning, and shows their state in STATUS= (notify.h, beats.h).
 * progress is a counter that advances whenever the worker's loop turns: a
 * worker that is stopped, stuck in a call or spinning outside its loop
 * stops it.  beat_ms is a sixth of systemd's watchdog (WATCHDOG_USEC),
 * within BEAT_MIN_MS..BEAT_MAX_MS, and BEAT_MAX_MS without one: a beat is
 * a wakeup of the worker and of the monitor (issue 13), worth it only as
 * often as something watches.  A worker is stalled after three silent
 * beats (beats.h).
 */
#define BEAT_MIN_MS 1000
#define METRICS_ASKS_PER_TURN 8
#define BEAT_MAX_MS 10000
/*
 * How early periodic work (a beat, metrics, a control period) may be done
 * so that it shares a wakeup with other work; every process uses the same.
 */
#define BEAT_SLACK_MS 200
#define BEAT_MAX_TENANTS 16

struct msg_collector_beat {
	struct msg_hdr hdr;
	uint32_t version;
	uint32_t sampling;      /* 1 when the BPF program ran (samples or idle ticks) since the last beat */
	uint64_t progress;      /* loop turns since the start */
	uint64_t samples;       /* samples taken since the start */
	uint32_t ntenants;      /* tenants in the policy in force */
	uint32_t nlisted;       /* of them in tenants[] (at most BEAT_MAX_TENANTS) */
	uint32_t reloads;       /* policies from the monitor (SIGHUP) taken, applied or not */
	uint32_t pad;
	struct health_tenant tenants[BEAT_MAX_TENANTS]; /* name, hz, state */
};

enum beat_cp_state {
	BEAT_CP_OFF = 0,        /* no --control-plane */
	BEAT_CP_CONNECTING = 1, /* not connected yet */
	BEAT_CP_CONNECTED = 2,  /* the last request succeeded */
	BEAT_CP_FAILING = 3,    /* was connected, or tried: the last request failed */
};

struct msg_uplink_beat {
	struct msg_hdr hdr;
	uint32_t version;
	uint32_t cp_state;      /* enum beat_cp_state */
	uint64_t progress;      /* loop turns (and transfer progress callbacks) since the start */
	uint64_t serial;        /* serial of the policy in force, as the collector said (0: unsigned) */
	struct export_stats export; /* exportstats.h; state EXPORT_OFF without an export target */
};

struct privsep_rule {
	enum privsep_peer sender;
	uint32_t len;    /* exact */
	uint32_t nfds;   /* exact; with nfds_counted, the most */
	bool once;
	/*
	 * The message's first uint32_t after its header says how many fds
	 * came with it (0 to nfds): privsep_recv checks that it is so.
	 */
	bool nfds_counted;
};

/* Indexed by enum privsep_type; entries with len 0 are not valid types. */
extern const struct privsep_rule privsep_rules[MSG_TYPE_MAX];

/*
 * Send one message with nfds descriptors.  0 or -errno.
 */
int privsep_send(int sock, const void *msg, size_t len, const int *fds, size_t nfds);

/*
 * Receive one message into buf (size PRIVSEP_MAX_MSG) and check it against
 * privsep_rules for a message from `from`.  seen[] (MSG_TYPE_MAX entries)
 * tracks once-only types across calls.  On success returns the type and
 * fills *ret_len and ret_fds (room for PRIVSEP_MAX_FDS: received fds,
 * CLOEXEC, owned by the caller; for a type with nfds_counted, -1 in the
 * slots up to rule.nfds that no fd came for).
 * Errors: -EPIPE peer closed; -EPROTO the message breaks the table (any fds
 * received are closed); other -errno from the socket.
 */
int privsep_recv(int sock, enum privsep_peer from, bool *seen, void *buf, size_t *ret_len,
		 int *ret_fds);

/*
 * Take up to max asks of type `type` (struct msg_ready: nothing in them
 * but the ask, as MSG_METRICS_WANTED) from a non-blocking sock, without
 * waiting: what waits beyond max is for the next loop turn, so that a
 * flood cannot hold the loop.  Returns how many came (0: none); -EPROTO
 * when anything else came (another type, version or a table break: the
 * peer broke the protocol); -EPIPE when it is gone or the socket failed.
 */
int privsep_take_asks(int sock, enum privsep_peer from, bool *seen, enum privsep_type type, int max);

#endif
