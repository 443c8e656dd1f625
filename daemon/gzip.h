/*
 * gzip.h - whole-buffer gzip compression and bounded decompression (zlib).
 *
 * Used by the pprof encoder (profiles are gzip'ed protobuf) and by anything
 * that reads profiles back.  Library-like: functions return 0 or -errno, never
 * log, and write their ret_* parameters only on success.
 *
 * Ownership: on success *ret_out is a malloc'd buffer owned by the caller
 * (free() it); it is never NULL, even when *ret_len is 0.
 */
#ifndef VIGIL_GZIP_H
#define VIGIL_GZIP_H

#include <stddef.h>
#include <stdint.h>

/*
 * Compression level used by gzip_compress(): zlib's fastest.  Go's
 * runtime/pprof writes its profiles at gzip.BestSpeed (1) too.  On a
 * 65 KiB profile of this collector it deflates in half level 6's time
 * for 6% more bytes, and the collector compresses every interval.
 */
#define GZIP_LEVEL 1

/*
 * Compress in[0..len) into one gzip member (RFC 1952 header and trailer).
 * Returns 0, -EINVAL (NULL arguments) or -ENOMEM.
 */
int gzip_compress(const uint8_t *in, size_t len, uint8_t **ret_out, size_t *ret_len);

/*
 * Decompress gzip data in[0..len), which may hold several concatenated
 * members (as gzip(1) produces with "cat a.gz b.gz").  Never produces more
 * than max_out bytes: larger output fails with -E2BIG.  Returns 0, -EINVAL
 * (empty, corrupt or truncated input, trailing garbage, bad CRC or length),
 * -E2BIG or -ENOMEM.  Reads nothing outside in[0..len).
 */
int gzip_decompress(const uint8_t *in, size_t len, size_t max_out, uint8_t **ret_out,
		    size_t *ret_len);

/* True if buf starts with the gzip magic bytes 1f 8b. */
static inline int gzip_is_gzip(const uint8_t *buf, size_t len)
{
	return len >= 2 && buf[0] == 0x1f && buf[1] == 0x8b;
}

#endif /* VIGIL_GZIP_H */
