// cxxspin.cc - a C++ workload for the symbolization tests (issue 12):
// built like Debian builds its packages, -O2 without frame pointers, with
// exceptions, so that its functions' symbols are mangled C++ names.
//
//   cxxspin [--seconds N]   spin N seconds (default 30) in
//                           vigil_wl::Spinner<unsigned long>::spin(unsigned long)
//                           and vigil_wl::checksum(std::vector<unsigned char> const&),
//                           throwing and catching an exception now and then.
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

int main(int argc, char **argv)
{
	double seconds = 30, end;
	unsigned long sink = 0, caught = 0;
	vigil_wl::Spinner<unsigned long> s;

	if (argc == 3 && strcmp(argv[1], "--seconds") == 0)
		seconds = atof(argv[2]);
	else if (argc != 1) {
		fprintf(stderr, "usage: cxxspin [--seconds N]\n");
		return 64;
	}
	end = now() + seconds;
	while (now() < end) {
		try {
			sink += s.spin(64);
		} catch (const std::runtime_error &) {
			caught++;
		}
	}
	printf("%lu %lu\n", sink, caught);
	return 0;
}
