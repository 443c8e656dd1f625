/*
 * opampcli.h - the agent's OpAMP messages: what goes into each
 * AgentToServer, and what is taken from each ServerToAgent.
 *
 * Behaves as opamp-go's HTTP client does (opamp-spec "Agent to server"
 * and opamp-go client/internal/httpsender.go): sequence_num grows by one
 * per message; the first message of a session and the answer to a
 * ReportFullState carry the full state (agent_description, capabilities,
 * health, effective_config, remote_config_status); other polls carry only
 * what changed since the last message the server received.  A message the
 * server did not receive leaves what it carried pending for the next one.
 *
 * Runs in the uplink; library-like (0 or -errno, never logs), so that it
 * can be tested without a network.  Bytes from the server are untrusted:
 * every size is bounded and nothing points into the reply once parsed.
 */
#ifndef VIGIL_OPAMPCLI_H
#define VIGIL_OPAMPCLI_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "privsep.h"

/* Parts of the state that changed since the server last received them. */
#define OPAMPCLI_DESC 0x1u
#define OPAMPCLI_HEALTH 0x2u
#define OPAMPCLI_EFFECTIVE 0x4u
#define OPAMPCLI_REMOTE_STATUS 0x8u
#define OPAMPCLI_ALL 0xfu

/*
 * ReportsStatus | AcceptsRemoteConfig | ReportsEffectiveConfig | ReportsHealth | ReportsRemoteConfig
 * | AcceptsOpAMPConnectionSettings | ReportsConnectionSettingsStatus (the CSR flow)
 */
#define OPAMPCLI_CAPABILITIES 0x9907u
/* ServerCapabilities_AcceptsConnectionSettingsRequest: the server signs CSRs. */
#define OPAMPCLI_SERVER_SIGNS 0x40u

/* ConnectionSettingsStatuses (#15's status). */
enum opampcli_cs_status {
	OPAMPCLI_CS_UNSET = 0,
	OPAMPCLI_CS_APPLIED = 1,
	OPAMPCLI_CS_APPLYING = 2,
	OPAMPCLI_CS_FAILED = 3,
};

struct opampcli {
	uint64_t seq;       /* sequence_num of the next message */
	unsigned dirty;     /* OPAMPCLI_* not yet received by the server */
	unsigned inflight;  /* what the message being sent carries */
};

/* What the agent reports; every pointer is borrowed for one build. */
struct opampcli_report {
	uint8_t uid[16];
	const char *hostname;
	const char *labels;       /* nlabels "k=v\0" strings */
	unsigned nlabels;
	uint64_t start_ns;        /* when sampling began (realtime) */
	/* the policy in force (MSG_POLICY_STATUS) and its bytes */
	const struct msg_policy_status *policy;
	const char *yaml;
	size_t yaml_len;
	const struct msg_agent_health *health; /* NULL: none yet */
	/* the CSR flow: a request to send (NULL: none), and a status to report (UNSET: none) */
	const char *csr;
	size_t csr_len;
	enum opampcli_cs_status cs_status;
	const uint8_t *cs_hash;   /* the offer's hash, 32 bytes, or NULL */
	const char *cs_error;     /* with FAILED */
};

/* A new session: everything is sent with the first message. */
void opampcli_init(struct opampcli *c);

/* These parts changed (OPAMPCLI_*). */
void opampcli_mark(struct opampcli *c, unsigned parts);

/*
 * The next AgentToServer, with the parts pending (all with full), or
 * agent_disconnect only with disconnect.  *ret is malloc'd protobuf bytes
 * the caller frees.  Takes the next sequence_num.  0, -ENOMEM.
 */
int opampcli_build(struct opampcli *c, const struct opampcli_report *r, bool disconnect,
		   uint8_t **ret, size_t *ret_len);

/* The last message built reached the server (ok) or not. */
void opampcli_sent(struct opampcli *c, bool ok);

#define OPAMPCLI_ERR_LEN 256

/* What a ServerToAgent said, copied out of it. */
struct opampcli_reply {
	uint64_t flags;             /* ServerToAgentFlags */
	bool error;                 /* error_response present */
	int error_type;             /* ServerErrorResponseType */
	char error_message[OPAMPCLI_ERR_LEN];
	uint64_t retry_after_ns;    /* retry_info, 0: none */
	bool remote_config;         /* remote_config present */
	uint8_t hash[CONFIG_HASH_LEN]; /* its config_hash (computed when the server sent none) */
	int files_err;              /* 0, or -ENOENT / -EBADMSG: not policy.yaml + .sig */
	uint8_t *yaml, *sig;        /* malloc'd copies (NULL with files_err) */
	size_t yaml_len, sig_len;
	uint64_t capabilities;      /* ServerCapabilities */
	bool cert_offer;            /* connection_settings.opamp.certificate present */
	uint8_t cert_hash[32];      /* the offer's hash (SHA-256 of the PEM when the server sent none) */
	uint8_t *cert;              /* malloc'd PEM, at most OPAMPCLI_MAX_CERT bytes */
	size_t cert_len;
};

/* The most a certificate offer may be (leaf and chain, PEM). */
#define OPAMPCLI_MAX_CERT (64u << 10)

/* The most memory decoding one reply may take (protobuf-c's structures). */
#define OPAMPCLI_DECODE_BUDGET (16u << 20)

/*
 * Parse a ServerToAgent of len bytes.  0 and *ret (release with
 * opampcli_reply_release), or -EBADMSG (not a ServerToAgent), -E2BIG
 * (decoding it would take more than OPAMPCLI_DECODE_BUDGET), -ENOMEM.
 */
int opampcli_parse(const uint8_t *buf, size_t len, struct opampcli_reply *ret);

void opampcli_reply_release(struct opampcli_reply *r);

#endif
