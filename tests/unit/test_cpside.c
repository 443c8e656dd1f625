/*
 * test_cpside.c - the agent's trust decision on policies from the control
 * plane, with real CMS signatures made here (devca.c, signing.c) and a
 * real state directory:
 *  - a signed policy with a serial is applied and kept as last-known-good;
 *  - unsigned, signed by an untrusted key, tampered after signing, an older
 *    serial replayed, a valid signature over invalid YAML, no serial, and
 *    oversize are each refused (FAILED) with their reason, and the policy
 *    in force and the state directory stay as they were;
 *  - at start the state directory's policy is verified again (a tampered
 *    one is not used);
 *  - over the uplink's socket, a hostile REMOTE_POLICY (lengths that do
 *    not match its memfd, an unsealed memfd, a wrong fd count) makes the
 *    collector tell the monitor (UPLINK_BROKE) and hang up, and a
 *    well-formed refused one is answered with POLICY_STATUS FAILED.
 */
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>
#include <cmocka.h>

#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

#include "certrot.h"
#include "cfghash.h"
#include "cpside.h"
#include "devca.h"
#include "memblob.h"
#include "policy.h"
#include "privsep.h"
#include "signing.h"
#include "statedir.h"

static char tmpdir[] = "/tmp/vigil-test-cpside.XXXXXX";
static char dir_a[128], dir_b[128], state[128];
static struct signing_key *key_a, *key_b;

static void path_in(char *buf, size_t len, const char *dir, const char *name)
{
	snprintf(buf, len, "%s/%s", dir, name);
}

static struct signing_key *key_of(const char *dir)
{
	char c[256], k[256], err[512];
	struct signing_key *key = NULL;

	path_in(c, sizeof(c), dir, "signer.pem");
	path_in(k, sizeof(k), dir, "signer.key");
	if (signing_key_load(c, k, &key, err, sizeof(err)))
		fail_msg("signing_key_load: %s", err);
	return key;
}

static int setup(void **st)
{
	char err[512];

	if (!mkdtemp(tmpdir))
		return -1;
	path_in(dir_a, sizeof(dir_a), tmpdir, "a");
	path_in(dir_b, sizeof(dir_b), tmpdir, "b");
	path_in(state, sizeof(state), tmpdir, "state");
	if (devca_create(dir_a, "Policy A", 30, false, err, sizeof(err)) ||
	    devca_create(dir_b, "Untrusted B", 30, false, err, sizeof(err)) || mkdir(state, 0700)) {
		fprintf(stderr, "setup: %s\n", err);
		return -1;
	}
	key_a = key_of(dir_a);
	key_b = key_of(dir_b);
	return 0;
}

static int teardown(void **st)
{
	char cmd[256];

	signing_key_free(key_a);
	signing_key_free(key_b);
	snprintf(cmd, sizeof(cmd), "rm -rf %s", tmpdir);
	return system(cmd) == 0 ? 0 : -1;
}

/* A fresh cpside over the state directory, trusting CA A; chan[1] is the uplink's end. */
static void open_cpside(struct cpside *cs, int chan[2])
{
	char ca[256], why[512];
	int fds[3], f;

	path_in(ca, sizeof(ca), dir_a, "ca.pem");
	f = open(ca, O_RDONLY | O_CLOEXEC);
	assert_true(f >= 0);
	assert_int_equal(memblob_from_file("trust", f, SIGNING_MAX_TRUST_BYTES, &fds[1]), 0);
	close(f);
	fds[0] = open(state, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	assert_true(fds[0] >= 0);
	assert_int_equal(socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, chan), 0);
	fds[2] = chan[0];
	assert_int_equal(cpside_init(cs, fds, 100000, why, sizeof(why)), 0);
}

static char *policy_text(uint64_t serial, const char *tenant)
{
	char *s = malloc(512);

	snprintf(s, 512, "version: 1\n%s%llu\ntenants:\n  - name: %s\n    cgroups: [\"/sys/fs/cgroup/%s\"]\n",
		 serial ? "serial: " : "# serial: ", (unsigned long long)serial, tenant, tenant);
	return s;
}

static void sign(const struct signing_key *k, const void *data, size_t len, void **sig,
		 size_t *sig_len)
{
	char err[256];

	if (signing_sign(k, data, len, sig, sig_len, err, sizeof(err)))
		fail_msg("signing_sign: %s", err);
}

static void *lkg(size_t *len)
{
	char p[256];
	struct stat st;
	void *buf;
	int fd;

	path_in(p, sizeof(p), state, STATEDIR_POLICY);
	fd = open(p, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return NULL;
	assert_int_equal(fstat(fd, &st), 0);
	buf = malloc((size_t)st.st_size + 1);
	assert_int_equal(read(fd, buf, (size_t)st.st_size), st.st_size);
	close(fd);
	*len = (size_t)st.st_size;
	return buf;
}

/* Offer yaml signed by k (or sig given) and expect rc; on refusal, nothing changes. */
static void offer(struct cpside *cs, const char *yaml, size_t yaml_len, const void *sig,
		  size_t sig_len, int want, const char *reason_has)
{
	uint8_t hash[CONFIG_HASH_LEN];
	struct policy *p = NULL;
	uint64_t serial = cs->serial;
	size_t before_len = 0, after_len = 0;
	void *before = lkg(&before_len), *after;
	int rc;

	assert_int_equal(cfghash_policy(yaml, yaml_len, sig, sig_len, hash), 0);
	rc = cpside_accept(cs, yaml, yaml_len, sig, sig_len, hash, &p);
	if (rc != want)
		fail_msg("cpside_accept: %d, want %d (%s)", rc, want, cs->reason);
	assert_memory_equal(cs->hash, hash, CONFIG_HASH_LEN);
	if (want == 0) {
		assert_int_equal(cs->status, REMOTE_APPLIED);
		assert_int_equal(cs->serial, p->serial);
		policy_free(p);
		free(before);
		return;
	}
	assert_null(p);
	assert_int_equal(cs->status, REMOTE_FAILED);
	if (!strstr(cs->reason, reason_has))
		fail_msg("reason '%s' lacks '%s'", cs->reason, reason_has);
	assert_int_equal(cs->serial, serial);
	after = lkg(&after_len);
	assert_int_equal(before_len, after_len);
	if (before)
		assert_memory_equal(before, after, before_len);
	free(before);
	free(after);
}

static void test_accept_and_refuse(void **st)
{
	struct cpside cs;
	int chan[2];
	char *y1 = policy_text(1, "web"), *y2 = policy_text(2, "db"), *y0 = policy_text(0, "x");
	void *s1, *s2, *s0, *sb, *sbad, *sbig;
	size_t l1, l2, l0, lb, lbad, lbig;
	const char *bad = "version: 1\nserial: 3\ntenants: [{name: 7, cgroups: 12}]\n";
	char *big, *tampered;
	size_t bigl = POLICY_MAX_SIZE + 10;

	open_cpside(&cs, chan);
	sign(key_a, y1, strlen(y1), &s1, &l1);
	sign(key_a, y2, strlen(y2), &s2, &l2);
	sign(key_a, y0, strlen(y0), &s0, &l0);
	sign(key_b, y2, strlen(y2), &sb, &lb);
	sign(key_a, bad, strlen(bad), &sbad, &lbad);
	big = malloc(bigl);
	memset(big, '#', bigl);
	memcpy(big, "version: 1\nserial: 9\n", 21);
	sign(key_a, big, bigl, &sbig, &lbig);

	/* nothing in force yet: unsigned is refused */
	offer(&cs, y1, strlen(y1), "", 0, -ENOKEY, "unsigned");
	/* signed by A, serial 1: applied and kept */
	offer(&cs, y1, strlen(y1), s1, l1, 0, NULL);
	assert_int_equal(cs.serial, 1);
	assert_string_equal(cs.yaml, y1);
	/* each refusal leaves serial 1 and its file */
	offer(&cs, y2, strlen(y2), NULL, 0, -ENOKEY, "unsigned");
	offer(&cs, y2, strlen(y2), sb, lb, -EKEYREJECTED, "untrusted");
	tampered = strdup(y2);
	tampered[strlen(tampered) - 3] ^= 1;
	offer(&cs, tampered, strlen(tampered), s2, l2, -EKEYREJECTED, "digest-mismatch");
	offer(&cs, y1, strlen(y1), s1, l1, -ESTALE, "serial 1 is not newer");
	offer(&cs, bad, strlen(bad), sbad, lbad, -EBADMSG, "policy.yaml:3:");
	offer(&cs, y0, strlen(y0), s0, l0, -EBADMSG, "no serial");
	offer(&cs, big, bigl, sbig, lbig, -EFBIG, "oversize");
	offer(&cs, y2, strlen(y2), "garbage", 7, -EKEYREJECTED, "malformed-signature");
	/* serial 2 is newer: applied; then 1 replayed is stale */
	offer(&cs, y2, strlen(y2), s2, l2, 0, NULL);
	offer(&cs, y1, strlen(y1), s1, l1, -ESTALE, "serial 1 is not newer than the policy in force (serial 2)");
	assert_string_equal(cs.yaml, y2);
	cpside_release(&cs);
	close(chan[1]);

	/* a restart: the state directory's policy is verified and in force */
	{
		struct policy *p;

		open_cpside(&cs, chan);
		p = cpside_last_known_good(&cs);
		assert_non_null(p);
		assert_int_equal(p->serial, 2);
		assert_int_equal(cs.source, POLICY_SRC_REMOTE);
		assert_int_equal(cs.status, REMOTE_APPLIED);
		policy_free(p);
		assert_false(cpside_local_allowed(&cs));
		/* and a replay of serial 2 after the restart is refused */
		offer(&cs, y2, strlen(y2), s2, l2, -ESTALE, "serial 2 is not newer");
		cpside_release(&cs);
		close(chan[1]);
	}
	/* tamper with the kept file: not used at start */
	{
		char p[256];
		size_t len;
		char *buf = lkg(&len);
		int fd;

		path_in(p, sizeof(p), state, STATEDIR_POLICY);
		buf[len - l2 - 3] ^= 1; /* inside the YAML */
		fd = open(p, O_WRONLY | O_TRUNC | O_CLOEXEC);
		assert_int_equal(write(fd, buf, len), (ssize_t)len);
		close(fd);
		free(buf);
		open_cpside(&cs, chan);
		assert_null(cpside_last_known_good(&cs));
		assert_int_equal(cs.serial, 0);
		assert_true(cpside_local_allowed(&cs));
		cpside_release(&cs);
		close(chan[1]);
	}
	free(y0);
	free(y1);
	free(y2);
	free(s0);
	free(s1);
	free(s2);
	free(sb);
	free(sbad);
	free(sbig);
	free(big);
	free(tampered);
}

/* The collector's socket to the monitor is PRIVSEP_FD: put ours there. */
static int mon[2];

static void monitor_at_fd3(void)
{
	assert_int_equal(socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, mon), 0);
	if (mon[0] != PRIVSEP_FD) {
		assert_true(dup2(mon[0], PRIVSEP_FD) == PRIVSEP_FD);
		close(mon[0]);
	}
}

static void expect_broke(void)
{
	union {
		struct msg_uplink_broke broke;
		uint8_t raw[PRIVSEP_MAX_MSG];
	} u;
	bool seen[MSG_TYPE_MAX] = { 0 };
	int fds[PRIVSEP_MAX_FDS];
	size_t len;

	assert_int_equal(privsep_recv(mon[1], PEER_COLLECTOR, seen, &u, &len, fds), MSG_UPLINK_BROKE);
}

static void test_hostile_uplink(void **st)
{
	struct msg_remote_policy m = { .hdr = { MSG_REMOTE_POLICY, sizeof(m) },
				       .version = PRIVSEP_VERSION, .yaml_len = 10, .sig_len = 5 };
	struct cpside cs;
	int chan[2], fd;

	monitor_at_fd3();
	/* lengths that do not add up to the memfd's size */
	open_cpside(&cs, chan);
	assert_int_equal(memblob_new("p", "0123456789", 10, "abcd", 4, &fd), 0);
	assert_int_equal(privsep_send(chan[1], &m, sizeof(m), &fd, 1), 0);
	close(fd);
	assert_int_equal(cpside_on_readable(&cs, NULL), -EPIPE);
	assert_int_equal(cs.chan_fd, -1);
	expect_broke();
	cpside_release(&cs);
	close(chan[1]);

	/* an unsealed memfd: the uplink could change it after the check */
	open_cpside(&cs, chan);
	fd = memfd_create("p", MFD_CLOEXEC);
	assert_int_equal(write(fd, "0123456789abcde", 15), 15);
	assert_int_equal(privsep_send(chan[1], &m, sizeof(m), &fd, 1), 0);
	close(fd);
	assert_int_equal(cpside_on_readable(&cs, NULL), -EPIPE);
	expect_broke();
	cpside_release(&cs);
	close(chan[1]);

	/* lengths past the limit (and overflowing 32 bits together) */
	open_cpside(&cs, chan);
	m.yaml_len = 0xfffffff0u;
	m.sig_len = 0x20;
	assert_int_equal(memblob_new("p", "x", 1, NULL, 0, &fd), 0);
	assert_int_equal(privsep_send(chan[1], &m, sizeof(m), &fd, 1), 0);
	close(fd);
	assert_int_equal(cpside_on_readable(&cs, NULL), -EPIPE);
	expect_broke();
	cpside_release(&cs);
	close(chan[1]);

	/* the uplink's one message for the monitor, sent here instead */
	{
		struct msg_ready r = { .hdr = { MSG_UPLINK_READY, sizeof(r) }, .version = PRIVSEP_VERSION };

		open_cpside(&cs, chan);
		assert_int_equal(privsep_send(chan[1], &r, sizeof(r), NULL, 0), 0);
		assert_int_equal(cpside_on_readable(&cs, NULL), -EPIPE);
		expect_broke();
		cpside_release(&cs);
		close(chan[1]);
	}

	/* no fd, or a message only the collector may send: the table refuses */
	open_cpside(&cs, chan);
	m.yaml_len = 1;
	m.sig_len = 0;
	assert_int_equal(privsep_send(chan[1], &m, sizeof(m), NULL, 0), 0);
	assert_int_equal(cpside_on_readable(&cs, NULL), -EPIPE);
	expect_broke();
	cpside_release(&cs);
	close(chan[1]);

	/* a well-formed but unsigned policy: FAILED, answered, nothing broken */
	{
		union {
			struct msg_policy_status s;
			uint8_t raw[PRIVSEP_MAX_MSG];
		} u;
		bool seen[MSG_TYPE_MAX] = { 0 };
		int fds[PRIVSEP_MAX_FDS];
		size_t len;

		open_cpside(&cs, chan);
		m.yaml_len = 10;
		m.sig_len = 0;
		memset(m.hash, 0xab, sizeof(m.hash));
		assert_int_equal(memblob_new("p", "version: 1", 10, NULL, 0, &fd), 0);
		assert_int_equal(privsep_send(chan[1], &m, sizeof(m), &fd, 1), 0);
		close(fd);
		assert_int_equal(cpside_on_readable(&cs, NULL), 0);
		assert_int_equal(privsep_recv(chan[1], PEER_COLLECTOR, seen, &u, &len, fds),
				 MSG_POLICY_STATUS);
		close(fds[0]);
		assert_int_equal(u.s.status, REMOTE_FAILED);
		assert_memory_equal(u.s.hash, m.hash, sizeof(m.hash));
		assert_non_null(strstr(u.s.reason, "unsigned"));
		cpside_release(&cs);
		close(chan[1]);
	}
	close(PRIVSEP_FD);
	close(mon[1]);
}

/* A self-signed certificate for a new key (certrot_keygen), both PEM. */
static void make_pair(char **cert, size_t *cert_len, char **key, size_t *key_len)
{
	BIO *b = BIO_new_mem_buf(NULL, 0), *out = BIO_new(BIO_s_mem());
	EVP_PKEY *k;
	X509 *x = X509_new();
	BUF_MEM *mem;

	assert_int_equal(certrot_keygen(key, key_len), 0);
	BIO_free(b);
	b = BIO_new_mem_buf(*key, (int)*key_len);
	k = PEM_read_bio_PrivateKey(b, NULL, NULL, NULL);
	assert_non_null(k);
	assert_true(X509_NAME_add_entry_by_txt(X509_get_subject_name(x), "CN", MBSTRING_ASC,
					       (const unsigned char *)"host1", -1, -1, 0));
	assert_true(X509_set_issuer_name(x, X509_get_subject_name(x)));
	assert_true(ASN1_INTEGER_set(X509_get_serialNumber(x), 7));
	assert_non_null(X509_gmtime_adj(X509_getm_notBefore(x), -60));
	assert_non_null(X509_gmtime_adj(X509_getm_notAfter(x), 3600));
	assert_true(X509_set_pubkey(x, k));
	assert_true(X509_sign(x, k, EVP_sha256()));
	assert_true(PEM_write_bio_X509(out, x));
	BIO_get_mem_ptr(out, &mem);
	*cert = malloc(mem->length);
	memcpy(*cert, mem->data, mem->length);
	*cert_len = mem->length;
	BIO_free(out);
	BIO_free(b);
	X509_free(x);
	EVP_PKEY_free(k);
}

static bool identity_kept(void)
{
	char p[256];
	struct stat sb;

	path_in(p, sizeof(p), state, STATEDIR_IDENTITY);
	return stat(p, &sb) == 0;
}

/* Send IDENTITY_SAVE with a blob of a then b; the collector's answer to it. */
static int save(struct cpside *cs, int chan[2], uint32_t cert_len, uint32_t key_len, const char *a, size_t alen,
		const char *b, size_t blen)
{
	struct msg_identity_save m = { .hdr = { MSG_IDENTITY_SAVE, sizeof(m) }, .version = PRIVSEP_VERSION,
				       .cert_len = cert_len, .key_len = key_len };
	int fd;

	open_cpside(cs, chan);
	assert_int_equal(memblob_new("i", a, alen, b, blen, &fd), 0);
	assert_int_equal(privsep_send(chan[1], &m, sizeof(m), &fd, 1), 0);
	close(fd);
	return cpside_on_readable(cs, NULL);
}

/*
 * MSG_IDENTITY_SAVE: a renewed certificate and its key land in the state
 * directory, 0600; a pair that does not match is not kept; lengths that
 * lie, an unsealed memfd or sizes past the limit break the protocol.
 */
static void test_identity_save(void **st)
{
	char *cert, *key, *cert2, *key2, p[256];
	size_t cert_len, key_len, cert2_len, key2_len, len;
	struct cpside cs;
	struct stat sb;
	void *kept;
	int chan[2], fd;

	monitor_at_fd3();
	make_pair(&cert, &cert_len, &key, &key_len);
	make_pair(&cert2, &cert2_len, &key2, &key2_len);
	path_in(p, sizeof(p), state, STATEDIR_IDENTITY);
	unlink(p);

	/* another key than the certificate's: refused, nothing kept, nothing broken */
	assert_int_equal(save(&cs, chan, (uint32_t)cert_len, (uint32_t)key2_len, cert, cert_len, key2, key2_len), 0);
	assert_int_not_equal(cs.chan_fd, -1);
	assert_false(identity_kept());
	cpside_release(&cs);
	close(chan[1]);

	/* the pair: kept, 0600, certificate then key */
	assert_int_equal(save(&cs, chan, (uint32_t)cert_len, (uint32_t)key_len, cert, cert_len, key, key_len), 0);
	assert_int_equal(stat(p, &sb), 0);
	assert_int_equal(sb.st_mode & 0777, 0600);
	fd = open(p, O_RDONLY | O_CLOEXEC);
	kept = malloc(cert_len + key_len + 1);
	len = (size_t)read(fd, kept, cert_len + key_len + 1);
	close(fd);
	assert_int_equal(len, cert_len + key_len);
	assert_memory_equal(kept, cert, cert_len);
	assert_memory_equal((char *)kept + cert_len, key, key_len);
	free(kept);
	cpside_release(&cs);
	close(chan[1]);
	unlink(p);

	/* lengths that do not add up to the memfd's size */
	assert_int_equal(save(&cs, chan, (uint32_t)cert_len, (uint32_t)key_len + 1, cert, cert_len, key, key_len),
			 -EPIPE);
	expect_broke();
	cpside_release(&cs);
	close(chan[1]);
	/* no key */
	assert_int_equal(save(&cs, chan, (uint32_t)cert_len, 0, cert, cert_len, NULL, 0), -EPIPE);
	expect_broke();
	cpside_release(&cs);
	close(chan[1]);
	/* past IDENTITY_MAX, and overflowing 32 bits together */
	assert_int_equal(save(&cs, chan, 0xfffffff0u, 0x20, cert, cert_len, key, key_len), -EPIPE);
	expect_broke();
	cpside_release(&cs);
	close(chan[1]);
	/* an unsealed memfd */
	{
		struct msg_identity_save m = { .hdr = { MSG_IDENTITY_SAVE, sizeof(m) }, .version = PRIVSEP_VERSION,
					       .cert_len = (uint32_t)cert_len, .key_len = (uint32_t)key_len };

		open_cpside(&cs, chan);
		fd = memfd_create("i", MFD_CLOEXEC);
		assert_int_equal(write(fd, cert, cert_len), (ssize_t)cert_len);
		assert_int_equal(write(fd, key, key_len), (ssize_t)key_len);
		assert_int_equal(privsep_send(chan[1], &m, sizeof(m), &fd, 1), 0);
		close(fd);
		assert_int_equal(cpside_on_readable(&cs, NULL), -EPIPE);
		expect_broke();
		cpside_release(&cs);
		close(chan[1]);
	}
	assert_false(identity_kept());
	free(cert);
	free(cert2);
	free(key);
	free(key2);
	close(PRIVSEP_FD);
	close(mon[1]);
}

static void test_memblob(void **st)
{
	void *buf;
	size_t len;
	int fd, p[2];

	assert_int_equal(memblob_new("t", "abc", 3, "de", 2, &fd), 0);
	assert_int_equal(memblob_read(fd, 5, &buf, &len), 0);
	assert_int_equal(len, 5);
	assert_memory_equal(buf, "abcde", 5);
	free(buf);
	assert_int_equal(memblob_read(fd, 4, &buf, &len), -EFBIG);
	/* sealed: the sender cannot change it any more */
	assert_int_equal(write(fd, "x", 1), -1);
	close(fd);
	/* a pipe, a plain file: not memfds */
	assert_int_equal(pipe2(p, O_CLOEXEC), 0);
	assert_int_equal(memblob_read(p[0], 100, &buf, &len), -EPROTO);
	close(p[0]);
	close(p[1]);
	fd = open("/proc/self/status", O_RDONLY | O_CLOEXEC);
	assert_int_equal(memblob_read(fd, 100000, &buf, &len), -EPROTO);
	close(fd);
}

static void test_instance_uid(void **st)
{
	uint8_t a[16], b[16];
	char text[37];
	int dfd = open(state, O_RDONLY | O_DIRECTORY | O_CLOEXEC), made;

	assert_int_equal(statedir_instance_uid(dfd, a, &made), 0);
	assert_int_equal(made, 1);
	assert_int_equal(a[6] >> 4, 7);        /* UUID v7 */
	assert_int_equal(a[8] >> 6, 2);        /* variant 10 */
	assert_int_equal(statedir_instance_uid(dfd, b, &made), 0);
	assert_int_equal(made, 0);
	assert_memory_equal(a, b, 16);        /* kept */
	statedir_uuid_format(a, text);
	assert_int_equal(strlen(text), 36);
	/* a symlink planted in its place is not followed; a new id is made over it */
	unlinkat(dfd, STATEDIR_UID, 0);
	assert_int_equal(symlinkat("/etc/passwd", dfd, STATEDIR_UID), 0);
	assert_int_equal(statedir_instance_uid(dfd, b, &made), 0);
	assert_int_equal(made, 1);
	close(dfd);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_accept_and_refuse),
		cmocka_unit_test(test_hostile_uplink),
		cmocka_unit_test(test_identity_save),
		cmocka_unit_test(test_memblob),
		cmocka_unit_test(test_instance_uid),
	};
	return cmocka_run_group_tests_name("cpside", tests, setup, teardown);
}
