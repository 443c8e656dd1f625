/*
 * opamp_msg.c - test tool: make and read OpAMP messages (proto/opamp.proto)
 * for tests that speak to vigil-cp with curl.
 *
 *   opamp_msg a2s UID SEQ [--describe HOST] [--disconnect] > msg.bin
 *       a serialized AgentToServer: instance_uid UID (32 hex digits, or any
 *       other length of hex to test the server's refusal), sequence_num SEQ,
 *       capabilities ReportsStatus|AcceptsRemoteConfig|ReportsHealth|
 *       ReportsRemoteConfig; --describe adds an agent_description with
 *       host.name HOST (identifying) and env=test (non-identifying);
 *       --disconnect adds agent_disconnect.
 *   opamp_msg s2a [FILE]
 *       parse a ServerToAgent (stdin by default) and print one line:
 *       "uid=HEX flags=N capabilities=N error=TYPE retry_ns=N remote_config=0|1
 *        message=TEXT"; exit 1 when it does not parse.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "opamp.pb-c.h"

#define MAX_IN (8u << 20)

static int unhex(const char *s, uint8_t *out, size_t max, size_t *ret_len)
{
	size_t n = strlen(s);

	if (n % 2 || n / 2 > max)
		return -EINVAL;
	for (size_t i = 0; i < n / 2; i++) {
		unsigned v;

		if (sscanf(s + 2 * i, "%2x", &v) != 1)
			return -EINVAL;
		out[i] = (uint8_t)v;
	}
	*ret_len = n / 2;
	return 0;
}

static int make_a2s(int argc, char **argv)
{
	Opamp__Proto__V1__AgentToServer m;
	Opamp__Proto__V1__AgentDescription d;
	Opamp__Proto__V1__AgentDisconnect disc;
	Opamp__Proto__V1__KeyValue kv[2], *ident[1], *nonident[1];
	Opamp__Proto__V1__AnyValue av[2];
	uint8_t uid[64], *buf;
	size_t uidlen, len;

	if (argc < 4 || unhex(argv[2], uid, sizeof(uid), &uidlen)) {
		fprintf(stderr, "usage: opamp_msg a2s UIDHEX SEQ [--describe HOST] [--disconnect]\n");
		return 2;
	}
	opamp__proto__v1__agent_to_server__init(&m);
	m.instance_uid.data = uid;
	m.instance_uid.len = uidlen;
	m.sequence_num = strtoull(argv[3], NULL, 10);
	m.capabilities = 0x1 | 0x2 | 0x800 | 0x1000;
	for (int i = 4; i < argc; i++) {
		if (strcmp(argv[i], "--describe") == 0 && i + 1 < argc) {
			opamp__proto__v1__agent_description__init(&d);
			for (int k = 0; k < 2; k++) {
				opamp__proto__v1__key_value__init(&kv[k]);
				opamp__proto__v1__any_value__init(&av[k]);
				av[k].value_case = OPAMP__PROTO__V1__ANY_VALUE__VALUE_STRING_VALUE;
				kv[k].value = &av[k];
			}
			kv[0].key = (char *)"host.name";
			av[0].string_value = argv[++i];
			kv[1].key = (char *)"env";
			av[1].string_value = (char *)"test";
			ident[0] = &kv[0];
			nonident[0] = &kv[1];
			d.n_identifying_attributes = 1;
			d.identifying_attributes = ident;
			d.n_non_identifying_attributes = 1;
			d.non_identifying_attributes = nonident;
			m.agent_description = &d;
		} else if (strcmp(argv[i], "--disconnect") == 0) {
			opamp__proto__v1__agent_disconnect__init(&disc);
			m.agent_disconnect = &disc;
		} else {
			fprintf(stderr, "opamp_msg: unknown argument '%s'\n", argv[i]);
			return 2;
		}
	}
	len = opamp__proto__v1__agent_to_server__get_packed_size(&m);
	buf = malloc(len + 1);
	if (!buf)
		return 1;
	opamp__proto__v1__agent_to_server__pack(&m, buf);
	if (fwrite(buf, 1, len, stdout) != len)
		return 1;
	free(buf);
	return 0;
}

static int read_s2a(int argc, char **argv)
{
	FILE *f = argc > 2 ? fopen(argv[2], "rb") : stdin;
	Opamp__Proto__V1__ServerToAgent *m;
	uint8_t *buf = malloc(MAX_IN);
	size_t len;

	if (!f || !buf) {
		fprintf(stderr, "opamp_msg: %s: %s\n", argc > 2 ? argv[2] : "stdin", strerror(errno));
		return 1;
	}
	len = fread(buf, 1, MAX_IN, f);
	m = opamp__proto__v1__server_to_agent__unpack(NULL, len, buf);
	if (!m) {
		fprintf(stderr, "opamp_msg: %zu bytes are not a ServerToAgent\n", len);
		return 1;
	}
	printf("uid=");
	for (size_t i = 0; i < m->instance_uid.len; i++)
		printf("%02x", m->instance_uid.data[i]);
	printf(" flags=%llu capabilities=%llu error=%d retry_ns=%llu remote_config=%d message=%s\n",
	       (unsigned long long)m->flags, (unsigned long long)m->capabilities,
	       m->error_response ? (int)m->error_response->type : -1,
	       m->error_response && m->error_response->details_case ==
					    OPAMP__PROTO__V1__SERVER_ERROR_RESPONSE__DETAILS_RETRY_INFO
		       ? (unsigned long long)m->error_response->retry_info->retry_after_nanoseconds
		       : 0ULL,
	       m->remote_config != NULL,
	       m->error_response && m->error_response->error_message ? m->error_response->error_message : "");
	opamp__proto__v1__server_to_agent__free_unpacked(m, NULL);
	free(buf);
	if (f != stdin)
		fclose(f);
	return 0;
}

int main(int argc, char **argv)
{
	if (argc >= 2 && strcmp(argv[1], "a2s") == 0)
		return make_a2s(argc, argv);
	if (argc >= 2 && strcmp(argv[1], "s2a") == 0)
		return read_s2a(argc, argv);
	fprintf(stderr, "usage: opamp_msg a2s UIDHEX SEQ [--describe HOST] [--disconnect] | s2a [FILE]\n");
	return 2;
}
