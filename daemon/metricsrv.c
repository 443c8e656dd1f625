/*
 * metricsrv.c - GET /metrics over HTTP/1.x, bounded and non-blocking (see
 * metricsrv.h).
 *
 * Runs in vigild's uplink, unprivileged and confined; it parses bytes from
 * anyone who can reach the port, so it reads only the request line, into
 * a fixed buffer, and answers from a page it renders itself.  HTTP is RFC
 * 9112: a request line "METHOD SP TARGET SP HTTP/1.x CRLF", header lines,
 * an empty line; a bare LF is accepted as a line end (section 2.2).
 */
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "metricsrv.h"

#define FIRST_PAGE (64u << 10)
/* Connections taken per wakeup, so that a flood cannot hold the loop. */
#define ACCEPT_BATCH 8

struct conn {
	int fd;                 /* -1: free */
	uint64_t deadline_ns;
	uint64_t wait_ns;       /* waiting for fresh figures until then; 0: not waiting */
	bool head;              /* the waiting request is a HEAD */
	size_t in_len;
	char in[METRICSRV_MAX_REQUEST];
	char *out;              /* the answer, once the request is complete */
	size_t out_len, out_off;
};

struct metricsrv {
	int lfd;
	metricsrv_render_fn render;
	metricsrv_want_fn want;
	void *ctx;
	struct conn c[METRICSRV_MAX_CONNS];
	int polled[METRICSRV_MAX_CONNS]; /* conn index of pollfd entry 1 + i */
	size_t npolled;
	struct metricsrv_stats st;
};

static uint64_t mono_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

int metricsrv_new(int listen_fd, metricsrv_render_fn render, metricsrv_want_fn want, void *ctx,
		  struct metricsrv **ret)
{
	struct metricsrv *s = calloc(1, sizeof(*s));

	if (!s)
		return -ENOMEM;
	s->lfd = listen_fd;
	s->render = render;
	s->want = want;
	s->ctx = ctx;
	for (size_t i = 0; i < METRICSRV_MAX_CONNS; i++)
		s->c[i].fd = -1;
	*ret = s;
	return 0;
}

static void conn_close(struct conn *c)
{
	if (c->fd >= 0)
		close(c->fd);
	free(c->out);
	c->fd = -1;
	c->out = NULL;
	c->in_len = c->out_len = c->out_off = 0;
	c->wait_ns = 0;
}

size_t metricsrv_pollfds(struct metricsrv *s, struct pollfd *p)
{
	size_t n = 0;

	p[n++] = (struct pollfd){ .fd = s->lfd, .events = POLLIN };
	s->npolled = 0;
	for (size_t i = 0; i < METRICSRV_MAX_CONNS; i++) {
		if (s->c[i].fd < 0)
			continue;
		/* A waiting request reads nothing more: only an error or hang-up is reported. */
		p[n++] = (struct pollfd){ .fd = s->c[i].fd,
					  .events = s->c[i].out ? POLLOUT : s->c[i].wait_ns ? 0 : POLLIN };
		s->polled[s->npolled++] = (int)i;
	}
	return n;
}

int metricsrv_timeout_ms(const struct metricsrv *s)
{
	uint64_t now = mono_ns(), first = UINT64_MAX;

	for (size_t i = 0; i < METRICSRV_MAX_CONNS; i++) {
		if (s->c[i].fd >= 0 && s->c[i].deadline_ns < first)
			first = s->c[i].deadline_ns;
		if (s->c[i].fd >= 0 && s->c[i].wait_ns && s->c[i].wait_ns < first)
			first = s->c[i].wait_ns;
	}
	if (first == UINT64_MAX)
		return -1;
	return first <= now ? 0 : (int)((first - now + 999999) / 1000000);
}

/* Build the answer: status line, headers, body (may be NULL). */
static int answer(struct conn *c, const char *status, const char *type, const char *extra,
		  const char *body, size_t body_len, bool head)
{
	char hdr[512];
	int n = snprintf(hdr, sizeof(hdr),
			 "HTTP/1.1 %s\r\nContent-Type: %s\r\nContent-Length: %zu\r\n%sConnection: close\r\n"
			 "\r\n", status, type, body_len, extra ? extra : "");

	if (n < 0 || (size_t)n >= sizeof(hdr))
		return -EINVAL;
	if (head)
		body_len = 0;
	c->out = malloc((size_t)n + body_len);
	if (!c->out)
		return -ENOMEM;
	memcpy(c->out, hdr, (size_t)n);
	if (body_len)
		memcpy(c->out + n, body, body_len);
	c->out_len = (size_t)n + body_len;
	c->out_off = 0;
	return 0;
}

static int answer_text(struct conn *c, const char *status, const char *extra, const char *body)
{
	return answer(c, status, "text/plain; charset=utf-8", extra, body, strlen(body), false);
}

static int answer_page(struct metricsrv *s, struct conn *c, bool head)
{
	size_t cap = FIRST_PAGE;
	int rc;

	for (;;) {
		char *page = malloc(cap);
		struct promtext p;

		if (!page)
			return answer_text(c, "500 Internal Server Error", NULL, "out of memory\n");
		promtext_init(&p, page, cap);
		s->render(s->ctx, &p);
		rc = promtext_error(&p);
		if (!rc)
			rc = answer(c, "200 OK", PROMTEXT_CONTENT_TYPE, NULL, page, promtext_len(&p), head);
		free(page);
		if (rc != -ENOBUFS || cap >= METRICSRV_MAX_PAGE)
			break;
		cap *= 2;
	}
	if (rc)
		return answer_text(c, "500 Internal Server Error", NULL,
				   "the metrics page could not be written\n");
	return 0;
}

/* The end of the header block, if it has arrived. */
static bool request_complete(const struct conn *c)
{
	for (size_t i = 1; i < c->in_len; i++) {
		if (c->in[i] != '\n')
			continue;
		if (c->in[i - 1] == '\n' || (i >= 2 && c->in[i - 1] == '\r' && c->in[i - 2] == '\n'))
			return true;
	}
	return false;
}

int metricsrv_parse(const char *buf, size_t len, bool *ret_head)
{
	const char *eol = memchr(buf, '\n', len), *sp1, *sp2;
	size_t ll, ml, tl, vl;
	bool head;

	*ret_head = false;
	if (!eol)
		return 400;
	ll = (size_t)(eol - buf);
	if (ll && buf[ll - 1] == '\r')
		ll--;
	/* Exactly three fields separated by single spaces (RFC 9112 section 3). */
	sp1 = memchr(buf, ' ', ll);
	sp2 = sp1 ? memchr(sp1 + 1, ' ', ll - (size_t)(sp1 + 1 - buf)) : NULL;
	if (!sp1 || !sp2 || memchr(sp2 + 1, ' ', ll - (size_t)(sp2 + 1 - buf)))
		return 400;
	ml = (size_t)(sp1 - buf);
	tl = (size_t)(sp2 - sp1 - 1);
	vl = ll - (size_t)(sp2 + 1 - buf);
	if (!ml || !tl)
		return 400;
	if (vl != 8 || memcmp(sp2 + 1, "HTTP/1.", 7) || sp2[8] < '0' || sp2[8] > '9')
		return 505;
	head = ml == 4 && !memcmp(buf, "HEAD", 4);
	if (!head && !(ml == 3 && !memcmp(buf, "GET", 3)))
		return 405;
	if (!((tl == 8 && !memcmp(sp1 + 1, "/metrics", 8)) ||
	      (tl > 8 && !memcmp(sp1 + 1, "/metrics?", 9))))
		return 404;
	*ret_head = head;
	return 200;
}

static void respond(struct metricsrv *s, struct conn *c)
{
	bool head;

	switch (metricsrv_parse(c->in, c->in_len, &head)) {
	case 200:
		if (s->want) {
			/* Answered by metricsrv_fresh() or at the wait's end (metricsrv_handle). */
			c->head = head;
			c->wait_ns = mono_ns() + (uint64_t)METRICSRV_WAIT_MS * 1000000ull;
			if (c->wait_ns > c->deadline_ns)
				c->wait_ns = c->deadline_ns; /* answered then, not closed unanswered */
			s->want(s->ctx);
			return;
		}
		answer_page(s, c, head);
		break;
	case 404:
		answer_text(c, "404 Not Found", NULL, "vigild serves /metrics only\n");
		break;
	case 405:
		answer_text(c, "405 Method Not Allowed", "Allow: GET, HEAD\r\n", "GET /metrics only\n");
		break;
	case 505:
		answer_text(c, "505 HTTP Version Not Supported", NULL, "HTTP/1.x only\n");
		break;
	default:
		answer_text(c, "400 Bad Request", NULL, "bad request line\n");
		break;
	}
	s->st.requests_total++;
}

/* Write what the socket takes; done: closed. */
static void conn_write(struct metricsrv *s, struct conn *c)
{
	while (c->out_off < c->out_len) {
		/* write(), not send(): the uplink's allowlist has it in every mode (SIGPIPE is blocked there) */
		ssize_t n = write(c->fd, c->out + c->out_off, c->out_len - c->out_off);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
			return;
		if (n <= 0) {
			s->st.refused_total++;
			conn_close(c);
			return;
		}
		c->out_off += (size_t)n;
	}
	conn_close(c);
}

/* Send the answer built for c, what the socket takes; none could be built: closed. */
static void send_answer(struct metricsrv *s, struct conn *c)
{
	if (!c->out) {
		s->st.refused_total++;
		conn_close(c);
		return;
	}
	conn_write(s, c);
}

/* Render the page for a request that waited for its figures, and send it. */
static void answer_waiting(struct metricsrv *s, struct conn *c)
{
	c->wait_ns = 0;
	answer_page(s, c, c->head);
	s->st.requests_total++;
	send_answer(s, c);
}

static void conn_read(struct metricsrv *s, struct conn *c)
{
	for (;;) {
		ssize_t n = read(c->fd, c->in + c->in_len, sizeof(c->in) - c->in_len);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
			return;
		if (n <= 0) {
			/* closed or reset before the request was complete */
			s->st.refused_total++;
			conn_close(c);
			return;
		}
		c->in_len += (size_t)n;
		if (request_complete(c)) {
			respond(s, c);
			/* Waiting for its figures, or answered already (they were at hand). */
			if (c->wait_ns || c->fd < 0)
				return;
			break;
		}
		if (c->in_len == sizeof(c->in)) {
			answer_text(c, "431 Request Header Fields Too Large", NULL,
				    "the request is larger than 4096 bytes\n");
			s->st.requests_total++;
			break;
		}
	}
	send_answer(s, c); /* none: could not even build an error, give up on this one */
}

static void accept_some(struct metricsrv *s)
{
	for (int k = 0; k < ACCEPT_BATCH; k++) {
		int fd = accept4(s->lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
		struct conn *slot = NULL;

		if (fd < 0)
			return; /* EAGAIN, or a connection already reset: nothing to do */
		for (size_t i = 0; i < METRICSRV_MAX_CONNS && !slot; i++)
			if (s->c[i].fd < 0)
				slot = &s->c[i];
		if (!slot) {
			/*
			 * All taken: the oldest goes.  Slow clients then cannot
			 * keep a scraper out; only a flood faster than the
			 * answers can, and that ends with the flood.
			 */
			slot = &s->c[0];
			for (size_t i = 1; i < METRICSRV_MAX_CONNS; i++)
				if (s->c[i].deadline_ns < slot->deadline_ns)
					slot = &s->c[i];
			s->st.refused_total++;
			conn_close(slot);
		}
		slot->fd = fd;
		slot->deadline_ns = mono_ns() + (uint64_t)METRICSRV_TIMEOUT_MS * 1000000ull;
	}
}

void metricsrv_handle(struct metricsrv *s, const struct pollfd *p, size_t n)
{
	uint64_t now;

	for (size_t k = 1; k < n && k - 1 < s->npolled; k++) {
		struct conn *c = &s->c[s->polled[k - 1]];

		if (c->fd != p[k].fd || !p[k].revents)
			continue;
		if (c->wait_ns) {
			/* gone while its figures were fetched */
			s->st.refused_total++;
			conn_close(c);
		} else if (c->out && (p[k].revents & (POLLOUT | POLLERR | POLLHUP))) {
			conn_write(s, c);
		} else if (!c->out && (p[k].revents & (POLLIN | POLLERR | POLLHUP))) {
			conn_read(s, c);
		}
	}
	s->npolled = 0;
	now = mono_ns();
	for (size_t i = 0; i < METRICSRV_MAX_CONNS; i++) {
		if (s->c[i].fd >= 0 && s->c[i].wait_ns && s->c[i].wait_ns <= now) {
			answer_waiting(s, &s->c[i]); /* the figures there are */
		} else if (s->c[i].fd >= 0 && s->c[i].deadline_ns <= now) {
			s->st.refused_total++;
			conn_close(&s->c[i]);
		}
	}
	if (n && (p[0].revents & POLLIN))
		accept_some(s);
}

void metricsrv_fresh(struct metricsrv *s)
{
	if (!s)
		return;
	for (size_t i = 0; i < METRICSRV_MAX_CONNS; i++)
		if (s->c[i].fd >= 0 && s->c[i].wait_ns)
			answer_waiting(s, &s->c[i]);
}

const struct metricsrv_stats *metricsrv_stats(const struct metricsrv *s)
{
	return &s->st;
}

void metricsrv_free(struct metricsrv *s)
{
	if (!s)
		return;
	for (size_t i = 0; i < METRICSRV_MAX_CONNS; i++)
		conn_close(&s->c[i]);
	close(s->lfd);
	free(s);
}
