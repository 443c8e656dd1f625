/*
 * test_metricsrv.c - the uplink's metrics HTTP server on a real loopback
 * socket: GET and HEAD /metrics answered with the page and its
 * Content-Length, other paths 404, other methods 405, other versions 505,
 * a malformed request line 400, bare LF line ends, a request that arrives
 * in pieces, one larger than 4 KiB refused with 431, a page larger than the
 * first buffer, one too large for any (500), a fifth connection
 * evicting the oldest while the others stay open; and a server that
 * fetches its figures for each scrape: the page waits for them, or for
 * METRICSRV_WAIT_MS.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>
#include <cmocka.h>

#include "listenaddr.h"
#include "metricsrv.h"

static size_t page_bytes;   /* 0: a small page */

static void render(void *ctx, struct promtext *p)
{
	(void)ctx;
	promtext_family(p, "vigil_test_total", PROMTEXT_COUNTER, "Test.");
	promtext_sample_u64(p, "vigil_test_total", NULL, 0, 42);
	if (page_bytes) {
		static char pad[1024];
		struct promtext_label l = { "pad", pad };

		memset(pad, 'x', sizeof(pad) - 1);
		promtext_family(p, "vigil_pad", PROMTEXT_GAUGE, "Padding.");
		for (size_t n = 0; n < page_bytes / 1024 + 1 && !promtext_error(p); n++) {
			pad[0] = (char)('a' + n % 26);
			pad[1] = (char)('a' + n / 26 % 26);
			pad[2] = (char)('a' + n / 676 % 26);
			promtext_sample_u64(p, "vigil_pad", &l, 1, n);
		}
	}
}

struct fixture {
	struct metricsrv *s;
	unsigned port;
};

static int setup(void **state)
{
	static struct fixture f;
	struct listenaddr a;
	char err[200];
	int fd;

	signal(SIGPIPE, SIG_IGN);
	page_bytes = 0;
	assert_int_equal(listenaddr_parse("--x", "127.0.0.1:0", true, &a, err, sizeof(err)), 0);
	assert_int_equal(listenaddr_listen(&a, 16, &fd), 0);
	f.port = listenaddr_port(fd);
	assert_true(f.port > 0);
	assert_int_equal(metricsrv_new(fd, render, NULL, NULL, &f.s), 0);
	*state = &f;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *f = *state;

	metricsrv_free(f->s);
	return 0;
}

/* Run the server's side for ms milliseconds. */
static void pump(struct metricsrv *s, int ms)
{
	struct timespec t0, t;

	clock_gettime(CLOCK_MONOTONIC, &t0);
	for (;;) {
		struct pollfd p[METRICSRV_NPOLLFDS];
		size_t n = metricsrv_pollfds(s, p);
		long el;

		poll(p, n, 10);
		metricsrv_handle(s, p, n);
		clock_gettime(CLOCK_MONOTONIC, &t);
		el = (t.tv_sec - t0.tv_sec) * 1000 + (t.tv_nsec - t0.tv_nsec) / 1000000;
		if (el >= ms)
			return;
	}
}

static int client(unsigned port)
{
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons((uint16_t)port),
				 .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	int fd = socket(AF_INET, SOCK_STREAM, 0);

	assert_true(fd >= 0);
	assert_int_equal(connect(fd, (struct sockaddr *)&a, sizeof(a)), 0);
	return fd;
}

/* Everything the server sends until it closes (pumping it meanwhile), NUL-terminated. */
static char *read_all(struct metricsrv *s, int fd, size_t *ret_len)
{
	size_t cap = 1 << 16, len = 0;
	char *buf = malloc(cap + 1);

	for (int rounds = 0; rounds < 400; rounds++) {
		ssize_t n;

		pump(s, 5);
		for (;;) {
			if (len == cap) {
				cap *= 2;
				buf = realloc(buf, cap + 1);
			}
			n = recv(fd, buf + len, cap - len, MSG_DONTWAIT);
			if (n > 0) {
				len += (size_t)n;
				continue;
			}
			break;
		}
		if (n == 0 || (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK))
			break;
	}
	buf[len] = '\0';
	if (ret_len)
		*ret_len = len;
	close(fd);
	return buf;
}

static char *request(struct fixture *f, const char *req)
{
	int fd = client(f->port);

	assert_int_equal(send(fd, req, strlen(req), 0), (ssize_t)strlen(req));
	return read_all(f->s, fd, NULL);
}

static void test_get(void **state)
{
	struct fixture *f = *state;
	char *r = request(f, "GET /metrics HTTP/1.1\r\nHost: x\r\nAccept: */*\r\n\r\n");
	const char *body = strstr(r, "\r\n\r\n");
	char want[64];

	assert_non_null(body);
	body += 4;
	assert_true(!strncmp(r, "HTTP/1.1 200 OK\r\n", 17));
	assert_non_null(strstr(r, "\r\nContent-Type: text/plain; version=0.0.4; charset=utf-8\r\n"));
	assert_non_null(strstr(r, "\r\nConnection: close\r\n"));
	snprintf(want, sizeof(want), "\r\nContent-Length: %zu\r\n", strlen(body));
	assert_non_null(strstr(r, want));
	assert_non_null(strstr(body, "\nvigil_test_total 42\n"));
	free(r);
	/* a query string is the same page; HEAD has the headers only */
	r = request(f, "GET /metrics?x=1 HTTP/1.0\n\n");
	assert_true(!strncmp(r, "HTTP/1.1 200 OK\r\n", 17));
	free(r);
	r = request(f, "HEAD /metrics HTTP/1.1\r\n\r\n");
	assert_true(!strncmp(r, "HTTP/1.1 200 OK\r\n", 17));
	assert_string_equal(strstr(r, "\r\n\r\n"), "\r\n\r\n");
	free(r);
	assert_true(metricsrv_stats(f->s)->requests_total >= 3);
}

static void test_refusals(void **state)
{
	struct fixture *f = *state;
	static const struct {
		const char *req, *status;
	} cases[] = {
		{ "GET / HTTP/1.1\r\n\r\n", "HTTP/1.1 404 " },
		{ "GET /metricsx HTTP/1.1\r\n\r\n", "HTTP/1.1 404 " },
		{ "POST /metrics HTTP/1.1\r\nContent-Length: 0\r\n\r\n", "HTTP/1.1 405 " },
		{ "DELETE /metrics HTTP/1.1\r\n\r\n", "HTTP/1.1 405 " },
		{ "GET /metrics HTTP/2.0\r\n\r\n", "HTTP/1.1 505 " },
		{ "GET /metrics HTTP/1.10\r\n\r\n", "HTTP/1.1 505 " },
		{ "GET /metrics\r\n\r\n", "HTTP/1.1 400 " },
		{ "GET  /metrics HTTP/1.1\r\n\r\n", "HTTP/1.1 400 " },
		{ "GET /metrics HTTP/1.1 extra\r\n\r\n", "HTTP/1.1 400 " },
		{ "\r\n\r\n", "HTTP/1.1 400 " },
	};

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		char *r = request(f, cases[i].req);

		if (strncmp(r, cases[i].status, strlen(cases[i].status)))
			fail_msg("%s: got '%.40s', want %s", cases[i].req, r, cases[i].status);
		free(r);
	}
	{
		char *r = request(f, "POST /metrics HTTP/1.1\r\n\r\n");

		assert_non_null(strstr(r, "\r\nAllow: GET, HEAD\r\n"));
		free(r);
	}
}

static void test_pieces_and_too_large(void **state)
{
	struct fixture *f = *state;
	const char *parts[] = { "GE", "T /metr", "ics HTTP/1.1\r", "\nHost: x\r\n", "\r\n" };
	char big[METRICSRV_MAX_REQUEST + 100];
	int fd = client(f->port);
	char *r;

	for (size_t i = 0; i < 5; i++) {
		assert_int_equal(send(fd, parts[i], strlen(parts[i]), 0), (ssize_t)strlen(parts[i]));
		pump(f->s, 20);
	}
	r = read_all(f->s, fd, NULL);
	assert_true(!strncmp(r, "HTTP/1.1 200 OK\r\n", 17));
	free(r);

	memset(big, 'a', sizeof(big));
	memcpy(big, "GET /metrics HTTP/1.1\r\nX: ", 26);
	fd = client(f->port);
	assert_int_equal(send(fd, big, METRICSRV_MAX_REQUEST, 0), METRICSRV_MAX_REQUEST);
	r = read_all(f->s, fd, NULL);
	assert_true(!strncmp(r, "HTTP/1.1 431 ", 13));
	free(r);
}

static void test_big_page(void **state)
{
	struct fixture *f = *state;
	size_t len;
	char *r;
	int fd;

	page_bytes = 300u << 10; /* past the first 64 KiB buffer, within the limit */
	fd = client(f->port);
	send(fd, "GET /metrics HTTP/1.1\r\n\r\n", 25, 0);
	r = read_all(f->s, fd, &len);
	assert_true(!strncmp(r, "HTTP/1.1 200 OK\r\n", 17));
	assert_true(len > page_bytes);
	assert_non_null(strstr(r, "\nvigil_test_total 42\n"));
	free(r);

	page_bytes = METRICSRV_MAX_PAGE + 1024; /* never fits: an error, not a page cut short */
	r = request(f, "GET /metrics HTTP/1.1\r\n\r\n");
	assert_true(!strncmp(r, "HTTP/1.1 500 ", 13));
	free(r);
	page_bytes = 0;
}

static void test_eviction(void **state)
{
	struct fixture *f = *state;
	int fds[METRICSRV_MAX_CONNS + 1];
	char c;

	for (int i = 0; i <= METRICSRV_MAX_CONNS; i++) {
		fds[i] = client(f->port);
		pump(f->s, 20); /* accepted in order: the first is the oldest */
	}
	pump(f->s, 50);
	/* the oldest was closed to make room */
	assert_int_equal(recv(fds[0], &c, 1, MSG_DONTWAIT), 0);
	for (int i = 1; i <= METRICSRV_MAX_CONNS; i++) {
		assert_int_equal(recv(fds[i], &c, 1, MSG_DONTWAIT), -1);
		assert_int_equal(errno, EAGAIN);
	}
	assert_true(metricsrv_stats(f->s)->refused_total >= 1);
	/* a real request on the newest is answered */
	send(fds[METRICSRV_MAX_CONNS], "GET /metrics HTTP/1.1\r\n\r\n", 25, 0);
	{
		char *r = read_all(f->s, fds[METRICSRV_MAX_CONNS], NULL);

		assert_true(!strncmp(r, "HTTP/1.1 200 OK\r\n", 17));
		free(r);
	}
	for (int i = 0; i < METRICSRV_MAX_CONNS; i++)
		close(fds[i]);
	/* with connections open, a timeout is due within METRICSRV_TIMEOUT_MS */
	pump(f->s, 20);
	assert_true(metricsrv_timeout_ms(f->s) <= METRICSRV_TIMEOUT_MS);
}

struct fetched {
	unsigned asks;   /* want() calls */
	unsigned figure; /* what the page shows */
};

static void want(void *ctx)
{
	((struct fetched *)ctx)->asks++;
}

static void render_figure(void *ctx, struct promtext *p)
{
	promtext_family(p, "vigil_test_figure", PROMTEXT_GAUGE, "Test.");
	promtext_sample_u64(p, "vigil_test_figure", NULL, 0, ((struct fetched *)ctx)->figure);
}

static uint64_t now_ms(void)
{
	struct timespec t;

	clock_gettime(CLOCK_MONOTONIC, &t);
	return (uint64_t)t.tv_sec * 1000 + (uint64_t)t.tv_nsec / 1000000;
}

static void test_want(void **state)
{
	static const char get[] = "GET /metrics HTTP/1.1\r\n\r\n";
	struct fetched fe = { .figure = 1 };
	struct metricsrv *s;
	struct listenaddr a;
	char err[200], buf[64], *r;
	uint64_t t0;
	int fd, c;

	signal(SIGPIPE, SIG_IGN);
	assert_int_equal(listenaddr_parse("--x", "127.0.0.1:0", true, &a, err, sizeof(err)), 0);
	assert_int_equal(listenaddr_listen(&a, 16, &fd), 0);
	struct fixture f = { .port = listenaddr_port(fd) };
	assert_int_equal(metricsrv_new(fd, render_figure, want, &fe, &s), 0);
	f.s = s;

	/* a scrape asks for the figures once, and waits for them */
	c = client(f.port);
	assert_int_equal(send(c, get, strlen(get), 0), (ssize_t)strlen(get));
	pump(s, 50);
	assert_int_equal(fe.asks, 1);
	assert_int_equal(recv(c, buf, sizeof(buf), MSG_DONTWAIT), -1);
	assert_true(errno == EAGAIN || errno == EWOULDBLOCK);
	fe.figure = 7;
	metricsrv_fresh(s);
	r = read_all(s, c, NULL);
	assert_true(!strncmp(r, "HTTP/1.1 200 OK\r\n", 17));
	assert_non_null(strstr(r, "\nvigil_test_figure 7\n"));
	free(r);

	/* figures that do not come: the page as it is, after the wait */
	t0 = now_ms();
	c = client(f.port);
	assert_int_equal(send(c, get, strlen(get), 0), (ssize_t)strlen(get));
	r = read_all(s, c, NULL);
	assert_true(now_ms() - t0 >= METRICSRV_WAIT_MS);
	assert_int_equal(fe.asks, 2);
	assert_non_null(strstr(r, "\nvigil_test_figure 7\n"));
	free(r);

	/* what is not the page is answered at once, without asking */
	r = request(&f, "GET /nothing HTTP/1.1\r\n\r\n");
	assert_true(!strncmp(r, "HTTP/1.1 404", 12));
	assert_int_equal(fe.asks, 2);
	free(r);
	assert_int_equal(metricsrv_stats(s)->requests_total, 3);
	metricsrv_free(s);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_get, setup, teardown),
		cmocka_unit_test_setup_teardown(test_refusals, setup, teardown),
		cmocka_unit_test_setup_teardown(test_pieces_and_too_large, setup, teardown),
		cmocka_unit_test_setup_teardown(test_big_page, setup, teardown),
		cmocka_unit_test_setup_teardown(test_eviction, setup, teardown),
		cmocka_unit_test(test_want),
	};
	return cmocka_run_group_tests_name("metricsrv", tests, NULL, NULL);
}
