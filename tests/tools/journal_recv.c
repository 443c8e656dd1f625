/*
 * journal_recv - TEST TOOL: stand in for journald's native protocol socket.
 *
 *   journal_recv listen SOCKET OUT
 *       Bind an AF_UNIX datagram socket at SOCKET (mode 0666, as
 *       /run/systemd/journal/socket is) and append one JSON object per
 *       entry to OUT, with the sender's pid ("_PID", from SCM_CREDENTIALS,
 *       as journald adds it), how the entry came ("_VIA": "datagram" or
 *       "memfd") and every field as a string.  Runs until
 *       SIGTERM or SIGINT.
 *   journal_recv send-big BYTES
 *       Log one entry with a field (BIG=) of BYTES bytes, a newline after
 *       every 99 letters, through libsystemd (sd_journal_send): a value
 *       with newlines goes in the binary form, and an entry too big for a
 *       datagram as a sealed memfd; for testing the listener on both.
 *
 * The native protocol, as journald parses it (systemd's
 * src/journal/journald-native.c; documented in "Native Journal Protocol",
 * systemd.io/JOURNAL_NATIVE_PROTOCOL): a datagram is a series of fields,
 * each either "KEY=VALUE\n" (VALUE without newlines) or "KEY\n" followed
 * by the value's size as a little-endian 64-bit integer, the value (any
 * bytes) and "\n".  A datagram with no data and one fd (SCM_RIGHTS) carries
 * the same series in a memfd sealed against writing and resizing.  KEY is
 * 1-64 of [A-Z0-9_], not starting with a digit; fields starting with '_'
 * are the journal's own, and a client's are dropped.
 *
 * An entry that breaks the protocol is not written: "journal_recv: ..." on
 * stderr says why, and it is counted; at exit the count is printed and a
 * non-zero count makes the exit status 2.
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <systemd/sd-journal.h>

/* journald's own limits: ENTRY_SIZE_MAX for a memfd, and DATA_SIZE_MAX. */
#define ENTRY_MAX (768u << 20)
#define MEMFD_MAX (64u << 20) /* this tool's: tests send far less */
#define KEY_MAX 64

static volatile sig_atomic_t done;
static unsigned long bad_entries;

static void on_signal(int sig)
{
	(void)sig;
	done = 1;
}

static bool valid_key(const char *k, size_t n)
{
	if (n == 0 || n > KEY_MAX || (k[0] >= '0' && k[0] <= '9'))
		return false;
	for (size_t i = 0; i < n; i++)
		if (!((k[i] >= 'A' && k[i] <= 'Z') || (k[i] >= '0' && k[i] <= '9') || k[i] == '_'))
			return false;
	return true;
}

static void json_str(FILE *out, const uint8_t *s, size_t n)
{
	fputc('"', out);
	for (size_t i = 0; i < n; i++) {
		uint8_t c = s[i];

		if (c == '"' || c == '\\')
			fprintf(out, "\\%c", c);
		else if (c == '\n')
			fputs("\\n", out);
		else if (c < 0x20 || c >= 0x7f)
			fprintf(out, "\\u%04x", c); /* bytes, not UTF-8: exact and reversible */
		else
			fputc(c, out);
	}
	fputc('"', out);
}

/*
 * Parse one entry of n bytes and write it as one JSON line.  -1 (and
 * nothing written) when it breaks the protocol.
 */
static int parse_entry(const uint8_t *p, size_t n, int pid, const char *via, FILE *out)
{
	char *line = NULL;
	size_t cap = 0;
	FILE *mem = open_memstream(&line, &cap);
	size_t off = 0, fields = 0;
	const char *why = NULL;

	if (!mem)
		return -1;
	fprintf(mem, "{\"_PID\":\"%d\",\"_VIA\":\"%s\"", pid, via);
	while (off < n) {
		const uint8_t *k = p + off, *eq, *nl;
		size_t rest = n - off, klen;

		eq = memchr(k, '=', rest);
		nl = memchr(k, '\n', rest);
		if (!nl) {
			why = "a field without its newline";
			break;
		}
		if (eq && eq < nl) {
			/* KEY=VALUE\n */
			klen = (size_t)(eq - k);
			if (!valid_key((const char *)k, klen)) {
				why = "an invalid field name";
				break;
			}
			if (k[0] != '_') {
				fputc(',', mem);
				json_str(mem, k, klen);
				fputc(':', mem);
				json_str(mem, eq + 1, (size_t)(nl - eq - 1));
				fields++;
			}
			off += (size_t)(nl - k) + 1;
			continue;
		}
		/* KEY\n<le64 size><value>\n */
		{
			uint64_t size = 0;
			size_t hdr;

			klen = (size_t)(nl - k);
			if (!valid_key((const char *)k, klen)) {
				why = "an invalid field name";
				break;
			}
			hdr = klen + 1;
			if (rest < hdr + 8) {
				why = "a binary field cut before its size";
				break;
			}
			for (int i = 7; i >= 0; i--)
				size = size << 8 | k[hdr + i];
			if (size > ENTRY_MAX || size + 1 > rest - hdr - 8) {
				why = "a binary field's size runs past the entry";
				break;
			}
			if (k[hdr + 8 + size] != '\n') {
				why = "a binary field not followed by a newline";
				break;
			}
			if (k[0] != '_') {
				fputc(',', mem);
				json_str(mem, k, klen);
				fputc(':', mem);
				json_str(mem, k + hdr + 8, (size_t)size);
				fields++;
			}
			off += hdr + 8 + (size_t)size + 1;
		}
	}
	if (!why && fields == 0)
		why = "no fields";
	fputs("}\n", mem);
	fclose(mem);
	if (why) {
		fprintf(stderr, "journal_recv: entry from pid %d refused: %s (at byte %zu of %zu)\n", pid,
			why, off, n);
		bad_entries++;
		free(line);
		return -1;
	}
	fputs(line, out);
	fflush(out);
	free(line);
	return 0;
}

/* An entry in a memfd: journald takes only one sealed against change. */
static void take_memfd(int fd, int pid, FILE *out)
{
	const int want = F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_WRITE;
	int seals = fcntl(fd, F_GET_SEALS);
	struct stat st;
	void *p;

	if (seals < 0 || (seals & want) != want) {
		fprintf(stderr, "journal_recv: entry from pid %d refused: an fd that is not a sealed memfd\n",
			pid);
		bad_entries++;
		return;
	}
	if (fstat(fd, &st) < 0 || st.st_size <= 0 || (uint64_t)st.st_size > MEMFD_MAX) {
		fprintf(stderr, "journal_recv: entry from pid %d refused: memfd of %lld bytes\n", pid,
			(long long)st.st_size);
		bad_entries++;
		return;
	}
	p = mmap(NULL, (size_t)st.st_size, PROT_READ, MAP_PRIVATE, fd, 0);
	if (p == MAP_FAILED) {
		perror("journal_recv: mmap");
		bad_entries++;
		return;
	}
	parse_entry(p, (size_t)st.st_size, pid, "memfd", out);
	munmap(p, (size_t)st.st_size);
}

static int listen_main(const char *path, const char *outpath)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	struct sigaction act = { .sa_handler = on_signal };
	size_t bufsz = 1u << 16;
	uint8_t *buf = malloc(bufsz);
	int fd, one = 1;
	FILE *out;

	if (!buf || strlen(path) >= sizeof(sa.sun_path)) {
		fprintf(stderr, "journal_recv: %s: name too long\n", path);
		return 1;
	}
	sigaction(SIGTERM, &act, NULL);
	sigaction(SIGINT, &act, NULL);
	memcpy(sa.sun_path, path, strlen(path) + 1);
	fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (fd < 0 || setsockopt(fd, SOL_SOCKET, SO_PASSCRED, &one, sizeof(one)) < 0) {
		perror("journal_recv: socket");
		return 1;
	}
	unlink(path);
	if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0 || chmod(path, 0666) < 0) {
		fprintf(stderr, "journal_recv: %s: %s\n", path, strerror(errno));
		return 1;
	}
	out = fopen(outpath, "ae");
	if (!out) {
		fprintf(stderr, "journal_recv: %s: %s\n", outpath, strerror(errno));
		return 1;
	}
	while (!done) {
		union {
			char b[CMSG_SPACE(sizeof(struct ucred)) + CMSG_SPACE(sizeof(int) * 4)];
			struct cmsghdr align;
		} ctl;
		struct iovec iov;
		struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1 };
		struct ucred cred = { .pid = 0 };
		int fds[4], nfds = 0;
		ssize_t n;

		/* The datagram's size first, so that any entry fits whole. */
		iov.iov_base = buf;
		iov.iov_len = 0;
		n = recv(fd, NULL, 0, MSG_PEEK | MSG_TRUNC);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			perror("journal_recv: recv");
			return 1;
		}
		if ((size_t)n > bufsz) {
			uint8_t *nb = (size_t)n <= ENTRY_MAX ? realloc(buf, (size_t)n) : NULL;

			if (!nb) {
				fprintf(stderr, "journal_recv: a datagram of %zd bytes: too big\n", n);
				recv(fd, buf, 1, 0);
				bad_entries++;
				continue;
			}
			buf = nb;
			bufsz = (size_t)n;
		}
		iov.iov_len = bufsz;
		mh.msg_control = ctl.b;
		mh.msg_controllen = sizeof(ctl.b);
		n = recvmsg(fd, &mh, MSG_CMSG_CLOEXEC);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			perror("journal_recv: recvmsg");
			return 1;
		}
		for (struct cmsghdr *c = CMSG_FIRSTHDR(&mh); c; c = CMSG_NXTHDR(&mh, c)) {
			if (c->cmsg_level != SOL_SOCKET)
				continue;
			if (c->cmsg_type == SCM_CREDENTIALS && c->cmsg_len == CMSG_LEN(sizeof(cred)))
				memcpy(&cred, CMSG_DATA(c), sizeof(cred));
			if (c->cmsg_type == SCM_RIGHTS) {
				size_t k = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);

				for (size_t i = 0; i < k && nfds < 4; i++)
					memcpy(&fds[nfds++], CMSG_DATA(c) + i * sizeof(int), sizeof(int));
			}
		}
		if (mh.msg_flags & (MSG_TRUNC | MSG_CTRUNC)) {
			fprintf(stderr, "journal_recv: a datagram or its fds cut short\n");
			bad_entries++;
		} else if (nfds == 1 && n == 0) {
			take_memfd(fds[0], cred.pid, out);
		} else if (nfds) {
			fprintf(stderr, "journal_recv: entry from pid %d refused: %d fds, %zd bytes "
				"(one fd and no data, or data and no fd)\n", cred.pid, nfds, n);
			bad_entries++;
		} else {
			parse_entry(buf, (size_t)n, cred.pid, "datagram", out);
		}
		for (int i = 0; i < nfds; i++)
			close(fds[i]);
	}
	fclose(out);
	unlink(path);
	free(buf);
	fprintf(stderr, "journal_recv: %lu entries refused\n", bad_entries);
	return bad_entries ? 2 : 0;
}

static int send_big(size_t bytes)
{
	char *v = malloc(bytes + 5);
	int rc;

	if (!v)
		return 1;
	memcpy(v, "BIG=", 4);
	for (size_t i = 0; i < bytes; i++)
		v[4 + i] = i % 100 == 99 ? '\n' : (char)('a' + i % 26);
	v[4 + bytes] = '\0';
	rc = sd_journal_send("MESSAGE=a big entry", "PRIORITY=6", "SYSLOG_IDENTIFIER=journal_recv",
			     "%s", v, NULL);
	free(v);
	if (rc < 0) {
		fprintf(stderr, "journal_recv: sd_journal_send: %s\n", strerror(-rc));
		return 1;
	}
	return 0;
}

int main(int argc, char **argv)
{
	if (argc == 4 && !strcmp(argv[1], "listen"))
		return listen_main(argv[2], argv[3]);
	if (argc == 3 && !strcmp(argv[1], "send-big"))
		return send_big(strtoul(argv[2], NULL, 10));
	fprintf(stderr, "usage: journal_recv listen SOCKET OUT | journal_recv send-big BYTES\n");
	return 64;
}
