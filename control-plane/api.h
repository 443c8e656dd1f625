/*
 * api.h - vigil-cp's admin API: JSON (jansson) under /api/v1/, for
 * connections whose certificate has CP_ROLE_ADMIN.  httpd.c routes each
 * request here; this module does the rest, transport-free.
 *
 *   GET  /api/v1/agents[?selector=k=v,...]  {"agents":[AGENT...]}
 *   GET  /api/v1/agents/UID                  AGENT (UID: 32 hex digits or UUID form)
 *   POST /api/v1/policies                    {"yaml":B64,"signature":B64}
 *                                            -> 201 {"serial":N,"signer":"..."}
 *   GET  /api/v1/policies                    {"policies":[{"serial",..,"sha256",..}]}
 *   POST /api/v1/assignments                 {"serial":N,"selector":"k=v,..."} -> 201 {"id":N}
 *   GET  /api/v1/assignments                 {"assignments":[...]}
 * Errors: 4xx/5xx with {"error":"one line"}.  An upload is refused unless
 * its signature verifies against --policy-trust (signing_verify_policy),
 * the YAML is a valid policy with a serial, and the serial is new.
 * Library-like: never logs; a reason for the log line comes back in log.
 */
#ifndef VIGIL_API_H
#define VIGIL_API_H

#include <stddef.h>
#include <stdint.h>

#include "cpident.h"
#include "signing.h"
#include "store.h"

#define API_MAX_BODY (4u << 20) /* a policy upload is at most ~1.4 MiB of base64 */

struct api;

struct api_reply {
	int http_status;
	char *body;		/* JSON, malloc'ed; caller frees */
	size_t len;
	char log[256];		/* non-empty: what the caller should log */
};

/* st and trust are borrowed; api_set_trust() swaps the trust on SIGHUP. */
int api_new(struct store *st, const struct signing_trust *policy_trust, struct api **ret);
void api_set_trust(struct api *a, const struct signing_trust *policy_trust);
void api_free(struct api *a);

/*
 * One request: method ("GET", "POST"), path ("/api/v1/agents/..."), query
 * (after '?', or NULL), body (may be NULL when len is 0).  0 with *ret, or
 * -ENOMEM.  now is Unix ms.
 */
int api_handle(struct api *a, const struct cp_identity *id, const char *method, const char *path,
	       const char *query, const uint8_t *body, size_t len, int64_t now,
	       struct api_reply *ret);

#endif
