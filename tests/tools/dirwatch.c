/*
 * dirwatch.c - test tool: name every file that appears in a directory,
 * however briefly, and keep a hard link to it.
 *
 *   dirwatch DIR SHADOW
 *
 * The export tests need the set of spool files vigild wrote, but a file
 * may be pushed and unlinked a few milliseconds after it appears, faster
 * than any polling loop looks.  inotify (inotify(7)) reports each rename
 * into DIR (spool.c writes a temporary and renames it into place: IN_MOVED_TO)
 * and each file created there; for each, dirwatch prints its name on
 * stdout (line-buffered) and links it into SHADOW (which must be on the
 * same filesystem), so that its bytes can still be read after vigild
 * unlinks it.  A file unlinked before the link is made is printed all the
 * same, with "#gone" after its name.  Names starting with '.' (the
 * temporaries) are ignored.  Files already in DIR when it starts are
 * printed first.  Runs until killed.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/inotify.h>
#include <unistd.h>

static int dfd, sfd;

static void seen(const char *name)
{
	if (name[0] == '.')
		return;
	if (linkat(dfd, name, sfd, name, 0) < 0 && errno != EEXIST)
		printf("%s #gone\n", name);
	else
		printf("%s\n", name);
}

int main(int argc, char **argv)
{
	char buf[64 * 1024] __attribute__((aligned(__alignof__(struct inotify_event))));
	struct dirent *de;
	DIR *d;
	int in;

	if (argc != 3) {
		fprintf(stderr, "usage: dirwatch DIR SHADOW\n");
		return 64;
	}
	setvbuf(stdout, NULL, _IOLBF, 0);
	dfd = open(argv[1], O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	sfd = open(argv[2], O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	in = inotify_init1(IN_CLOEXEC);
	if (dfd < 0 || sfd < 0 || in < 0 ||
	    inotify_add_watch(in, argv[1], IN_MOVED_TO | IN_CLOSE_WRITE | IN_ONLYDIR) < 0) {
		fprintf(stderr, "dirwatch: %s, %s: %s\n", argv[1], argv[2], strerror(errno));
		return 1;
	}
	/* After the watch: a file is printed twice rather than missed (the test sorts -u). */
	d = fdopendir(dup(dfd));
	while (d && (de = readdir(d)))
		if (de->d_type == DT_REG)
			seen(de->d_name);
	if (d)
		closedir(d);
	printf("#watching\n");
	for (;;) {
		ssize_t n = read(in, buf, sizeof(buf));

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			fprintf(stderr, "dirwatch: read: %s\n", n < 0 ? strerror(errno) : "EOF");
			return 1;
		}
		for (char *p = buf; p < buf + n;) {
			const struct inotify_event *ev = (const struct inotify_event *)p;

			if (ev->mask & IN_Q_OVERFLOW)
				printf("#overflow\n");
			else if (ev->len)
				seen(ev->name);
			p += sizeof(*ev) + ev->len;
		}
	}
}
