/*
 * auditapi.h - the admin API's audit routes (GET, admin certificate only;
 * api.c checks both, then calls auditapi_handle through api_set_audit):
 *
 *   GET /api/v1/audit                  200 {"size":N,"origin":"...","signed":bool}
 *   GET /api/v1/audit/checkpoint       200 text/plain: the signed checkpoint of the
 *                                      current tree (checkpoint.h); 503 without --audit-key
 *   GET /api/v1/audit/records?since=N&limit=M
 *                                      200 application/x-ndjson: records N.. in index
 *                                      order, the stored bytes exactly, one per line;
 *                                      limit 1..AUDITAPI_MAX_PAGE (default
 *                                      AUDITAPI_DEFAULT_PAGE), and the page stops past
 *                                      AUDITAPI_MAX_PAGE_BYTES (at least one record)
 *   GET /api/v1/audit/proof/inclusion?index=I&size=N
 *                                      200 {"index":I,"size":N,"leaf_hash":B64,
 *                                      "root":B64,"proof":[B64...]} (RFC 6962 PATH)
 *   GET /api/v1/audit/proof/consistency?from=M&to=N
 *                                      200 {"from":M,"to":N,"from_root":B64,
 *                                      "to_root":B64,"proof":[B64...]} (RFC 6962 PROOF)
 *
 * Sizes and indexes are decimal; a size beyond the log is 400 (the reply
 * says the log's size); an unknown or repeated query parameter is 400.
 * Proofs and checkpoints are of the tree after taking in what other
 * servers appended (cpaudit_sync).  Runs in vigil-cp.  Never logs: a
 * refusal's reason goes in api_reply.log as api.c does.
 */
#ifndef VIGIL_AUDITAPI_H
#define VIGIL_AUDITAPI_H

#include "api.h"
#include "cpaudit.h"

#define AUDITAPI_DEFAULT_PAGE 1000
#define AUDITAPI_MAX_PAGE 10000
#define AUDITAPI_MAX_PAGE_BYTES (8u << 20)

/* An api_audit_fn; arg is the struct cpaudit. */
int auditapi_handle(void *arg, const struct cp_identity *id, const char *rest, const char *query,
		    struct api_reply *ret);

#endif
