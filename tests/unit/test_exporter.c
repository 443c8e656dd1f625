/*
 * test_exporter.c - the pusher's policy and its HTTP behaviour: which
 * answers are retried (network errors, 429, 5xx) and which are final
 * (2xx pushed; 400, 401, 403, 413 rejected), the wait (0.5 s .. 5 min,
 * Retry-After honoured and capped at 5 min, both of HTTP's forms), a
 * Connect JSON error turned into one line; then a real exchange over
 * loopback with a listener in a child process: the request line and
 * headers sent, a 503 with Retry-After: 1 waited out, a 400's Connect
 * error reported.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <cmocka.h>

#include <curl/curl.h>

#include "backoff.h"
#include "exporter.h"

#define S 1000000000ull

static void test_classify(void **state)
{
	(void)state;
	assert_int_equal(exporter_classify(false, 0), EXPORTER_RETRY);
	assert_int_equal(exporter_classify(true, 200), EXPORTER_OK);
	assert_int_equal(exporter_classify(true, 204), EXPORTER_OK);
	assert_int_equal(exporter_classify(true, 429), EXPORTER_RETRY);
	assert_int_equal(exporter_classify(true, 500), EXPORTER_RETRY);
	assert_int_equal(exporter_classify(true, 503), EXPORTER_RETRY);
	assert_int_equal(exporter_classify(true, 599), EXPORTER_RETRY);
	/* a 5xx of the server's own, again and again, gives the profile up; an outage never */
	assert_false(exporter_gives_up(500, EXPORTER_MAX_SERVER_ERRORS - 1));
	assert_true(exporter_gives_up(500, EXPORTER_MAX_SERVER_ERRORS));
	assert_true(exporter_gives_up(501, EXPORTER_MAX_SERVER_ERRORS + 3));
	assert_true(exporter_gives_up(599, EXPORTER_MAX_SERVER_ERRORS));
	assert_false(exporter_gives_up(502, 1000));
	assert_false(exporter_gives_up(503, 1000));
	assert_false(exporter_gives_up(504, 1000));
	assert_false(exporter_gives_up(429, 1000));
	assert_false(exporter_gives_up(0, 1000));
	assert_int_equal(exporter_classify(true, 400), EXPORTER_REJECT);
	assert_int_equal(exporter_classify(true, 401), EXPORTER_REJECT);
	assert_int_equal(exporter_classify(true, 403), EXPORTER_REJECT);
	assert_int_equal(exporter_classify(true, 413), EXPORTER_REJECT);
	assert_int_equal(exporter_classify(true, 404), EXPORTER_REJECT);
	assert_int_equal(exporter_classify(true, 302), EXPORTER_REJECT); /* redirects are not followed */
	assert_int_equal(exporter_classify(true, 0), EXPORTER_REJECT);
}

static void test_retry_wait(void **state)
{
	struct backoff b = { 0 };
	uint64_t ns;

	(void)state;
	/* first failure: 0.5 s; then doubling, jittered, never past 5 min */
	assert_int_equal(exporter_retry_wait(&b, 0, 0), BACKOFF_MIN_NS);
	for (int i = 0; i < 30; i++)
		assert_true(exporter_retry_wait(&b, UINT64_MAX, 0) <= 300 * S);
	assert_true(exporter_retry_wait(&b, 0, 0) >= 150 * S);
	/* the server's wait when longer, but never past 5 min */
	backoff_reset(&b);
	assert_int_equal(exporter_retry_wait(&b, 0, 7 * S), 7 * S);
	backoff_reset(&b);
	assert_int_equal(exporter_retry_wait(&b, 0, 3600 * S), 300 * S);
	/* Retry-After: seconds and HTTP-date */
	assert_int_equal(backoff_parse_retry_after(" 120\r\n", 0, &ns), 0);
	assert_int_equal(ns, 120 * S);
	assert_int_equal(backoff_parse_retry_after("Sun, 06 Nov 1994 08:49:37 GMT", 784111767, &ns), 0);
	assert_int_equal(ns, 10 * S);
	assert_int_equal(backoff_parse_retry_after("soon", 0, &ns), -EINVAL);
}

static void test_describe(void **state)
{
	char out[256];
	const char *connect = "{\"code\":\"invalid_argument\",\"message\":\"invalid labels '{}' "
			      "with error: service name is not provided\"}";
	const char *ctl = "bad\x01\nthing";

	(void)state;
	exporter_describe(400, (const uint8_t *)connect, strlen(connect), out, sizeof(out));
	assert_string_equal(out, "HTTP 400: invalid_argument: invalid labels '{}' with error: service name "
			    "is not provided");
	exporter_describe(413, (const uint8_t *)"too big", 7, out, sizeof(out));
	assert_string_equal(out, "HTTP 413: too big");
	exporter_describe(401, NULL, 0, out, sizeof(out));
	assert_string_equal(out, "HTTP 401");
	exporter_describe(400, (const uint8_t *)ctl, strlen(ctl), out, sizeof(out));
	assert_string_equal(out, "HTTP 400: bad? thing");
	exporter_describe(400, (const uint8_t *)"{\"code\":5}", 10, out, sizeof(out));
	assert_string_equal(out, "HTTP 400: {\"code\":5}");
}

static void test_configure_refuses(void **state)
{
	struct exporter *e;
	struct exporter_target t = { .url = "ftp://x", .host = "x", .port = 1, .max_rate = 10 };

	(void)state;
	assert_int_equal(exporter_new(&e), 0);
	assert_int_equal(exporter_configure(e, &t), -EINVAL);
	t.url = "https://x";	/* https without a CA */
	assert_int_equal(exporter_configure(e, &t), -EINVAL);
	t.url = "http://x";
	t.basic = "user-without-colon";
	t.basic_len = strlen(t.basic);
	assert_int_equal(exporter_configure(e, &t), -EINVAL);
	t.basic = "u:p\nX-Evil: 1";
	t.basic_len = strlen(t.basic);
	assert_int_equal(exporter_configure(e, &t), -EINVAL);
	t.basic = NULL;
	t.bearer = "tok\r\nX: y";
	t.bearer_len = strlen(t.bearer);
	assert_int_equal(exporter_configure(e, &t), -EINVAL);
	t.bearer = "tok";
	t.bearer_len = 3;
	t.tenant = "a\nb";
	assert_int_equal(exporter_configure(e, &t), -EINVAL);
	t.tenant = "t1";
	assert_false(exporter_configured(e));
	assert_int_equal(exporter_configure(e, &t), 0);
	assert_true(exporter_configured(e));
	assert_int_equal(exporter_stats(e)->state, EXPORT_IDLE);
	assert_int_equal(exporter_configure(e, NULL), 0);
	assert_int_equal(exporter_stats(e)->state, EXPORT_OFF);
	exporter_free(e);
	exporter_free(NULL);
}

/* --- a real exchange ----------------------------------------------------------- */

/*
 * The listener: answers connection i with answers[i], and writes every
 * request head it reads to the pipe.
 */
static void serve(int ls, int out, const char *const *answers, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		char buf[65536];
		size_t got = 0;
		int c = accept(ls, NULL, NULL);
		char *end;
		size_t clen = 0;

		if (c < 0)
			_exit(1);
		for (;;) {
			ssize_t k = read(c, buf + got, sizeof(buf) - 1 - got);

			if (k <= 0)
				_exit(2);
			got += (size_t)k;
			buf[got] = '\0';
			end = strstr(buf, "\r\n\r\n");
			if (end) {
				char *cl = strcasestr(buf, "Content-Length:");

				clen = cl ? strtoul(cl + 15, NULL, 10) : 0;
				if (got >= (size_t)(end + 4 - buf) + clen)
					break;
			}
		}
		if (write(out, buf, (size_t)(end + 4 - buf)) < 0 || write(out, "\n--\n", 4) < 0)
			_exit(3);
		if (write(c, answers[i], strlen(answers[i])) < 0)
			_exit(4);
		close(c);
	}
	_exit(0);
}

static uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * S + (uint64_t)ts.tv_nsec;
}

/* Drive e until a push is over or limit_s passes; returns the step's result. */
static int drive(struct exporter *e, struct exporter_done *d, unsigned limit_s, unsigned *retries)
{
	uint64_t end = now_ns() + limit_s * S;

	while (now_ns() < end) {
		struct pollfd p[8];
		char why[256];
		uint64_t wait = 0;
		int timeout;
		size_t n = exporter_pollfds(e, p, 8, &timeout);

		poll(p, n, timeout < 0 || timeout > 200 ? 200 : timeout);
		if (exporter_step(e, d, why, sizeof(why), &wait))
			return 1;
		if (why[0])
			(*retries)++;
	}
	return 0;
}

static void test_push_over_loopback(void **state)
{
	static const char *const answers[] = {
		"HTTP/1.1 503 Service Unavailable\r\nRetry-After: 1\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
		"HTTP/1.1 200 OK\r\nContent-Type: application/proto\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
		"HTTP/1.1 400 Bad Request\r\nContent-Type: application/json\r\nContent-Length: 50\r\n"
		"Connection: close\r\n\r\n{\"code\":\"invalid_argument\",\"message\":\"no service\"}",
	};
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	socklen_t al = sizeof(a);
	int ls, pfd[2];
	pid_t pid;
	char url[64], heads[16384];
	struct exporter *e;
	struct exporter_done d;
	struct exporter_target t = { .url = url, .host = "127.0.0.1", .tenant = "acme",
				     .basic = "alice:s3cret", .basic_len = 12, .max_rate = 1 };
	unsigned retries = 0;
	uint64_t t0;
	ssize_t hl;

	(void)state;
	assert_int_equal(curl_global_init(CURL_GLOBAL_DEFAULT), CURLE_OK);
	ls = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	assert_true(ls >= 0);
	assert_int_equal(bind(ls, (struct sockaddr *)&a, sizeof(a)), 0);
	assert_int_equal(listen(ls, 4), 0);
	assert_int_equal(getsockname(ls, (struct sockaddr *)&a, &al), 0);
	assert_int_equal(pipe(pfd), 0);
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		close(pfd[0]);
		serve(ls, pfd[1], answers, 3);
	}
	close(ls);
	close(pfd[1]);
	snprintf(url, sizeof(url), "http://127.0.0.1:%u/prefix/", ntohs(a.sin_port));
	t.port = ntohs(a.sin_port);
	assert_int_equal(exporter_new(&e), 0);
	assert_int_equal(exporter_configure(e, &t), 0);

	/* 503 + Retry-After: 1, then 200: pushed once, after about a second; 2 profiles in it */
	t0 = now_ns();
	assert_int_equal(exporter_submit(e, 7, strdup("PUSHREQUEST"), 11, 2, 3), 0);
	assert_int_equal(exporter_submit(e, 8, NULL, 1, 1, 0), -EBUSY);
	assert_int_equal(drive(e, &d, 10, &retries), 1);
	assert_int_equal(d.seq, 7);
	assert_int_equal(d.verdict, EXPORTER_OK);
	assert_int_equal(d.http_status, 200);
	assert_int_equal(retries, 1);
	assert_true(now_ns() - t0 >= 1 * S);	/* Retry-After honoured */
	assert_int_equal(exporter_stats(e)->pushed_total, 2); /* profiles, not pushes */
	assert_int_equal(exporter_stats(e)->retries_total, 1);
	assert_int_equal(exporter_stats(e)->samples_total, 3);
	assert_int_equal(exporter_stats(e)->request_bytes_total, 22);

	/* 400 with a Connect error: rejected, not retried, the reason kept */
	retries = 0;
	assert_int_equal(exporter_submit(e, 9, strdup("X"), 1, 3, 1), 0);
	{
		/*
		 * --export-max-rate 1 (profiles per second): after a push of 2
		 * profiles, the next waits 2 s after the last one began
		 */
		struct pollfd p[8];
		int timeout;

		assert_int_equal(exporter_pollfds(e, p, 8, &timeout), 0);
		assert_true(timeout > 1500 && timeout <= 2000);
	}
	assert_int_equal(drive(e, &d, 10, &retries), 1);
	assert_int_equal(d.seq, 9);
	assert_int_equal(d.verdict, EXPORTER_REJECT);
	assert_int_equal(retries, 0);
	assert_string_equal(d.why, "HTTP 400: invalid_argument: no service");
	assert_int_equal(exporter_stats(e)->rejected_total, 3);

	/* what the server saw */
	hl = read(pfd[0], heads, sizeof(heads) - 1);
	for (ssize_t k; hl > 0 && (k = read(pfd[0], heads + hl, sizeof(heads) - 1 - (size_t)hl)) > 0;)
		hl += k;
	assert_true(hl > 0);
	heads[hl] = '\0';
	assert_non_null(strstr(heads, "POST /prefix/push.v1.PusherService/Push HTTP/1.1\r\n"));
	assert_non_null(strcasestr(heads, "Content-Type: application/proto\r\n"));
	assert_non_null(strcasestr(heads, "Connect-Protocol-Version: 1\r\n"));
	assert_non_null(strcasestr(heads, "X-Scope-OrgID: acme\r\n"));
	assert_non_null(strcasestr(heads, "Authorization: Basic YWxpY2U6czNjcmV0\r\n"));
	assert_null(strcasestr(heads, "Expect:"));
	close(pfd[0]);
	{
		int st;

		assert_int_equal(waitpid(pid, &st, 0), pid);
		assert_true(WIFEXITED(st) && WEXITSTATUS(st) == 0);
	}
	exporter_free(e);
}

static void test_network_error_retried(void **state)
{
	/* nothing listens: connection refused, a network error, retried after 0.5 s */
	struct exporter *e;
	struct exporter_target t = { .url = "http://127.0.0.1:1", .host = "127.0.0.1", .port = 1,
				     .max_rate = 2 };
	struct exporter_done d;
	char why[256] = "";
	uint64_t wait = 0, t0;
	int timeout;
	struct pollfd p[8];

	(void)state;
	assert_int_equal(exporter_new(&e), 0);
	assert_int_equal(exporter_configure(e, &t), 0);
	assert_int_equal(exporter_submit(e, 1, strdup("A"), 1, 1, 0), 0);
	t0 = now_ns();
	for (;;) {
		size_t n = exporter_pollfds(e, p, 8, &timeout);

		poll(p, n, timeout < 0 || timeout > 100 ? 100 : timeout);
		assert_int_equal(exporter_step(e, &d, why, sizeof(why), &wait), 0);
		assert_true(now_ns() - t0 < 5 * S);
		if (why[0])
			break;
	}
	/* connection refused: a network error, retried after the backoff's first 0.5 s */
	assert_int_equal(wait, BACKOFF_MIN_NS);
	assert_int_equal(exporter_stats(e)->state, EXPORT_FAILING);
	assert_int_equal(exporter_stats(e)->last_http_status, 0);
	exporter_pollfds(e, p, 8, &timeout);
	assert_true(timeout >= 400 && timeout <= 500);
	exporter_free(e);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_classify),
		cmocka_unit_test(test_retry_wait),
		cmocka_unit_test(test_describe),
		cmocka_unit_test(test_configure_refuses),
		cmocka_unit_test(test_push_over_loopback),
		cmocka_unit_test(test_network_error_retried),
	};

	signal(SIGPIPE, SIG_IGN);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
