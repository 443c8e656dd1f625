/*
 * exportpolicy.c - the policy's export: section, from the collector to the
 * monitor (see exportpolicy.h).  Runs in the collector.
 */
#include <stdio.h>
#include <string.h>

#include "exportpolicy.h"
#include "log.h"

void exportpolicy_message(const struct policy *p, struct msg_export_config *m)
{
	const struct policy_export *e = p ? &p->export : NULL;

	memset(m, 0, sizeof(*m));
	m->hdr.type = MSG_EXPORT_CONFIG;
	m->hdr.len = sizeof(*m);
	m->version = PRIVSEP_VERSION;
	if (!e || !e->set)
		return;
	m->flags = EXPORT_CONFIG_F_SET;
	m->spool_max_bytes = e->spool_max_bytes;
	/* policy.h's sizes are these (_Static_assert below): nothing is cut */
	snprintf(m->url, sizeof(m->url), "%s", e->url);
	snprintf(m->tenant, sizeof(m->tenant), "%s", e->tenant);
	snprintf(m->basic_auth_file, sizeof(m->basic_auth_file), "%s", e->basic_auth_file);
	snprintf(m->bearer_token_file, sizeof(m->bearer_token_file), "%s", e->bearer_token_file);
	snprintf(m->ca, sizeof(m->ca), "%s", e->ca);
	snprintf(m->cert, sizeof(m->cert), "%s", e->cert);
	snprintf(m->key, sizeof(m->key), "%s", e->key);
}

_Static_assert(sizeof(((struct policy_export *)0)->url) == EXPORT_URL_LEN, "url");
_Static_assert(sizeof(((struct policy_export *)0)->tenant) == EXPORT_TENANT_LEN, "tenant");
_Static_assert(POLICY_EXPORT_PATH_MAX + 1 == EXPORT_PATH_LEN, "paths");

int exportpolicy_sync(struct exportpolicy *ep, const struct policy *p, int sock)
{
	struct msg_export_config m;
	int rc;

	exportpolicy_message(p, &m);
	if (!ep->sent && !m.flags)
		return 0;
	if (ep->sent && !memcmp(&m, &ep->last, sizeof(m)))
		return 0;
	rc = privsep_send(sock, &m, sizeof(m), NULL, 0);
	if (rc) {
		log_warn_errno(rc, "cannot tell the monitor about the policy's export section");
		return rc;
	}
	ep->last = m;
	ep->sent = true;
	log_info("policy: %s", m.flags ? "its export section is passed to the monitor" :
		 "no export section any more: export goes back to the command line's");
	return 0;
}
