/*
 * tcp_listen.c - test tool: listen on 127.0.0.1 and count who connects.
 *
 *   tcp_listen SECONDS
 *
 * Prints "port N" at once (a free port the kernel chose), then accepts
 * connections for SECONDS and prints "connections N" before exiting 0.
 * The sandbox test points a confined process at it: a connection that
 * arrives means the confinement let it through.
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

static long now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1000L + ts.tv_nsec / 1000000L;
}

int main(int argc, char **argv)
{
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	socklen_t alen = sizeof(a);
	long end;
	int fd, n = 0;

	if (argc != 2 || atoi(argv[1]) <= 0) {
		fprintf(stderr, "usage: tcp_listen SECONDS\n");
		return 64;
	}
	fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0 || bind(fd, (struct sockaddr *)&a, sizeof(a)) < 0 || listen(fd, 16) < 0 ||
	    getsockname(fd, (struct sockaddr *)&a, &alen) < 0) {
		perror("tcp_listen");
		return 71;
	}
	printf("port %u\n", ntohs(a.sin_port));
	fflush(stdout);
	end = now_ms() + atoi(argv[1]) * 1000L;
	while (now_ms() < end) {
		struct pollfd p = { .fd = fd, .events = POLLIN };

		if (poll(&p, 1, (int)(end - now_ms())) > 0) {
			int c = accept(fd, NULL, NULL);

			if (c >= 0) {
				n++;
				close(c);
			}
		}
	}
	printf("connections %d\n", n);
	return 0;
}
