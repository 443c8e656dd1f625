/*
 * cpident.h - who is on the other end of a vigil-cp connection: the role
 * its client certificate grants (agent or administrator) and the facts of
 * that certificate that identify it.  The certificate is the identity; the
 * store records these fields with each agent and each admin action.
 *
 * Filled by tlsconf.c from a verified TLS connection (vigil-cp, unprivileged
 * process, every field NUL-terminated); read by opampsrv.c and api.c.
 */
#ifndef VIGIL_CPIDENT_H
#define VIGIL_CPIDENT_H

#include <time.h>

struct x509_st;

enum cp_role {
	CP_ROLE_NONE = 0,	/* no verified client certificate: nothing is served */
	CP_ROLE_AGENT,		/* chains to --agent-ca: /v1/opamp only */
	CP_ROLE_ADMIN,		/* chains to --admin-ca: /api/v1/ only */
};

struct cp_identity {
	enum cp_role role;
	char subject[512];	/* RFC 2253 ("CN=host1,O=Example") */
	char sans[1024];	/* "DNS:host1.example, IP:10.0.0.1, URI:spiffe://..." or "" */
	char serial[80];	/* hex, upper case, as openssl x509 -serial prints it */
	char fingerprint[65];	/* SHA-256 of the DER certificate, lower-case hex */
	time_t not_before, not_after;
	struct x509_st *cert;	/* the verified leaf (OpenSSL's X509), borrowed from the
				   connection for one request; NULL when not at hand */
};

#endif
