// cxxspin.cc - a C++ workload for the symbolization tests (issue 12):
// built like Debian builds its packages, -O2 without frame pointers, with
// exceptions, so that its functions' symbols are mangled C++ names.
//
//   cxxspin [--seconds N] [--threads T]
//       spin N seconds (default 30) in
//       vigil_wl::Spinner<unsigned long>::spin(unsigned long) and
//       vigil_wl::checksum(std::vector<unsigned char> const&), throwing and
//       catching an exception now and then; with --threads, T more threads
//       (named cxxspin-worker, stacks of glibc's making) do the same in
//       vigil_wl::worker as the main thread does in main.
//   At exit it prints "SINK CAUGHT", then the CPU time each kind of thread
//   got: "cxxspin: main S s CPU, workers S s CPU" (the workers' summed),
//   for tests whose sample counts depend on what a loaded host gave it.
#include <pthread.h>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <stdexcept>
#include <vector>

namespace vigil_wl {

// noinline: the symbols must stay functions of their own at -O2.
__attribute__((noinline)) unsigned long checksum(const std::vector<unsigned char> &v)
{
	unsigned long h = 1469598103934665603ul;

	for (unsigned char c : v)
		h = (h ^ c) * 1099511628211ul;
	return h;
}

template <typename T> class Spinner {
	unsigned long rounds_done = 0;

public:
	__attribute__((noinline)) T spin(T rounds)
	{
		std::vector<unsigned char> buf(4096, 7);
		T acc = 0;

		for (T i = 0; i < rounds; i++) {
			/* work of its own, a third of checksum's */
			for (size_t j = 0; j < 1024; j++)
				buf[j] = (unsigned char)(buf[j] * 31 + i + j);
			acc += checksum(buf);
			if (++rounds_done % 4096 == 0)
				throw std::runtime_error("now and then");
		}
		return acc;
	}
};

template class Spinner<unsigned long>;

} // namespace vigil_wl

static double now()
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

struct run {
	double end;
	unsigned long sink, caught;
	double cpu; // this thread's CPU time, in seconds, when it stopped
};

static void spin_until(struct run *r)
{
	vigil_wl::Spinner<unsigned long> s;

	while (now() < r->end) {
		try {
			r->sink += s.spin(64);
		} catch (const std::runtime_error &) {
			r->caught++;
		}
	}
	struct timespec ts;

	clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
	r->cpu = ts.tv_sec + ts.tv_nsec / 1e9;
}

namespace vigil_wl {

__attribute__((noinline)) void *worker(void *arg)
{
	spin_until(static_cast<struct run *>(arg));
	return nullptr;
}

} // namespace vigil_wl

int main(int argc, char **argv)
{
	double seconds = 30;
	long threads = 0;
	pthread_t tid[16];
	struct run runs[17] = {};

	for (int i = 1; i < argc; i++) {
		if (i + 1 < argc && strcmp(argv[i], "--seconds") == 0)
			seconds = atof(argv[++i]);
		else if (i + 1 < argc && strcmp(argv[i], "--threads") == 0)
			threads = atol(argv[++i]);
		else
			threads = -1;
	}
	if (threads < 0 || threads > 16) {
		fprintf(stderr, "usage: cxxspin [--seconds N] [--threads T (0-16)]\n");
		return 64;
	}
	for (long t = 0; t <= threads; t++)
		runs[t].end = now() + seconds;
	for (long t = 0; t < threads; t++) {
		if (pthread_create(&tid[t], nullptr, vigil_wl::worker, &runs[t + 1]) != 0) {
			fprintf(stderr, "cxxspin: pthread_create failed\n");
			return 71;
		}
		pthread_setname_np(tid[t], "cxxspin-worker");
	}
	spin_until(&runs[0]);
	for (long t = 0; t < threads; t++)
		pthread_join(tid[t], nullptr);
	unsigned long sink = 0, caught = 0;
	double workers = 0;
	for (long t = 0; t <= threads; t++) {
		sink += runs[t].sink;
		caught += runs[t].caught;
		if (t > 0)
			workers += runs[t].cpu;
	}
	printf("%lu %lu\n", sink, caught);
	printf("cxxspin: main %.3f s CPU, workers %.3f s CPU\n", runs[0].cpu, workers);
	return 0;
}
