/*
 * fuzz_opampsrv.c - libFuzzer target: arbitrary bytes as the body of a
 * POST /v1/opamp, handed to opampsrv_handle() with a real SQLite store in
 * a temporary directory (made once per process, removed at exit) that
 * holds a policy assigned to "env=prod", so that the remote-config path
 * runs too.
 *
 * Each input is handled three times: as a new message, again (now the
 * agent may be known: sequence and cache paths), and from another
 * certificate subject (the uid binding).  Whatever the bytes, the server
 * must not crash or leak, must return 0, and must answer 200 or 400 with
 * a ServerToAgent that carries the server's capabilities; a 400 carries a
 * BadRequest error_response and a reason for the log.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "opamp.pb-c.h"
#include "opampsrv.h"
#include "store.h"

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define CHECK(x)                                                                 \
	do {                                                                     \
		if (!(x)) {                                                      \
			fprintf(stderr, "%s:%d: invariant broken: %s\n", __FILE__, \
				__LINE__, #x);                                   \
			abort();                                                 \
		}                                                                \
	} while (0)

static char dir[64], path[128];
static struct store *st;
static struct opampsrv *srv;
static int64_t now = 1700000000000;

static void cleanup(void)
{
	char p[160];

	opampsrv_free(srv);
	store_close(st);
	srv = NULL;
	st = NULL;
	unlink(path);
	snprintf(p, sizeof(p), "%s-wal", path);
	unlink(p);
	snprintf(p, sizeof(p), "%s-shm", path);
	unlink(p);
	rmdir(dir);
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	static const char yaml[] = "serial: 1\n";
	struct store_policy p = { .serial = 1, .signer = "CN=signer", .uploaded_by = "CN=admin" };
	char url[160], err[256];
	int64_t id;

	(void)argc;
	(void)argv;
	snprintf(dir, sizeof(dir), "/tmp/fuzz_opampsrv.XXXXXX");
	CHECK(mkdtemp(dir));
	snprintf(path, sizeof(path), "%s/cp.db", dir);
	snprintf(url, sizeof(url), "sqlite:%s", path);
	if (store_open(url, &st, err, sizeof(err)) != 0) {
		fprintf(stderr, "fuzz_opampsrv: %s\n", err);
		abort();
	}
	atexit(cleanup);
	p.yaml = (uint8_t *)(uintptr_t)yaml;
	p.yaml_len = sizeof(yaml) - 1;
	p.sig = (uint8_t *)(uintptr_t)"\x30\x03sig";
	p.sig_len = 5;
	CHECK(store_policy_add(st, &p) == 0);
	CHECK(store_assign(st, "env=prod", 1, "CN=admin", now, &id) == 0);
	CHECK(opampsrv_new(st, &srv) == 0);
	return 0;
}

static void one(const struct cp_identity *who, const uint8_t *data, size_t size)
{
	struct opampsrv_reply rep;
	Opamp__Proto__V1__ServerToAgent *out;
	int r;

	now += 1000;
	r = opampsrv_handle(srv, who, data, size, now, &rep);
	CHECK(r == 0);
	CHECK(rep.body != NULL);
	CHECK(rep.http_status == 200 || rep.http_status == 400);
	CHECK(memchr(rep.log, '\0', sizeof(rep.log)) != NULL);
	out = opamp__proto__v1__server_to_agent__unpack(NULL, rep.len, rep.body);
	CHECK(out != NULL);
	CHECK(out->capabilities == 0x7);
	if (rep.http_status == 400) {
		CHECK(out->error_response != NULL);
		CHECK(out->error_response->type ==
		      OPAMP__PROTO__V1__SERVER_ERROR_RESPONSE_TYPE__ServerErrorResponseType_BadRequest);
		CHECK(rep.log[0] != '\0');
		CHECK(out->remote_config == NULL);
	} else {
		/*
		 * A 200 carries an error only for a refused certificate request
		 * (this server has no issuer): BadRequest, said in the log, and
		 * no offer.
		 */
		if (out->error_response) {
			CHECK(out->error_response->type ==
			      OPAMP__PROTO__V1__SERVER_ERROR_RESPONSE_TYPE__ServerErrorResponseType_BadRequest);
			CHECK(strstr(rep.log, "certificate request") != NULL);
			CHECK(out->connection_settings == NULL);
		}
		CHECK(out->instance_uid.len == STORE_UID_LEN);
		CHECK(out->remote_config == NULL || out->remote_config->config_hash.len == 32);
	}
	opamp__proto__v1__server_to_agent__free_unpacked(out, NULL);
	free(rep.body);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct cp_identity agent = { .role = CP_ROLE_AGENT }, other = { .role = CP_ROLE_AGENT };

	snprintf(agent.subject, sizeof(agent.subject), "CN=fuzz-agent,O=Example");
	snprintf(other.subject, sizeof(other.subject), "CN=other-agent,O=Example");
	one(&agent, data, size);
	one(&agent, data, size);
	one(&other, data, size);
	return 0;
}
