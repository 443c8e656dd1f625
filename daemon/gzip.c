/*
 * gzip.c - whole-buffer gzip compression and bounded decompression.
 *
 * A thin layer over zlib that handles what every caller would otherwise get
 * wrong: zlib counts in 32-bit uInt, so buffers are fed in chunks; output
 * grows geometrically but never past the caller's limit, so a small hostile
 * input cannot expand into gigabytes; truncated input is an error rather
 * than a silently short result.  Runs in whichever process links it and
 * needs no privilege.
 */
#define ZLIB_CONST
#include <errno.h>
#include <limits.h>
#include <stdlib.h>
#include <zlib.h>

#include "gzip.h"

/* windowBits for deflateInit2/inflateInit2: 32 KiB window, gzip wrapper. */
#define GZIP_WBITS (15 + 16)

static uInt clamp_uint(size_t n)
{
	return n > UINT_MAX ? UINT_MAX : (uInt)n;
}

int gzip_compress(const uint8_t *in, size_t len, uint8_t **ret_out, size_t *ret_len)
{
	z_stream zs = {0};
	uint8_t *out, *tmp;
	size_t cap, out_len = 0, left = len;
	int zret, err;

	if ((!in && len) || !ret_out || !ret_len)
		return -EINVAL;
	if (deflateInit2(&zs, GZIP_LEVEL, Z_DEFLATED, GZIP_WBITS, 8, Z_DEFAULT_STRATEGY) != Z_OK)
		return -ENOMEM;

	/* deflateBound() is tight enough that the loop below rarely grows. */
	cap = deflateBound(&zs, len);
	if (cap < 64)
		cap = 64;
	out = malloc(cap);
	if (!out) {
		deflateEnd(&zs);
		return -ENOMEM;
	}
	zs.next_in = in;
	for (;;) {
		uInt give_out;

		if (zs.avail_in == 0 && left) {
			zs.avail_in = clamp_uint(left);
			left -= zs.avail_in;
		}
		if (out_len == cap) {
			if (cap > SIZE_MAX / 2) {
				err = -ENOMEM;
				goto fail;
			}
			tmp = realloc(out, cap * 2);
			if (!tmp) {
				err = -ENOMEM;
				goto fail;
			}
			out = tmp;
			cap *= 2;
		}
		give_out = clamp_uint(cap - out_len);
		zs.next_out = out + out_len;
		zs.avail_out = give_out;
		zret = deflate(&zs, left ? Z_NO_FLUSH : Z_FINISH);
		out_len += give_out - zs.avail_out;
		if (zret == Z_STREAM_END)
			break;
		if (zret != Z_OK && zret != Z_BUF_ERROR) {
			err = -ENOMEM;
			goto fail;
		}
	}
	deflateEnd(&zs);
	*ret_out = out;
	*ret_len = out_len;
	return 0;
fail:
	deflateEnd(&zs);
	free(out);
	return err;
}

int gzip_decompress(const uint8_t *in, size_t len, size_t max_out, uint8_t **ret_out,
		    size_t *ret_len)
{
	z_stream zs = {0};
	uint8_t *out = NULL, *tmp;
	size_t cap, out_len = 0, left = len;
	/* The buffer may hold one byte more than allowed: that byte proves E2BIG. */
	size_t hard_cap = max_out == SIZE_MAX ? SIZE_MAX : max_out + 1;
	int zret, err;

	if (!in || !len || !ret_out || !ret_len)
		return -EINVAL;
	if (!gzip_is_gzip(in, len))
		return -EINVAL;
	if (inflateInit2(&zs, GZIP_WBITS) != Z_OK)
		return -ENOMEM;

	/* Profiles compress about 4:1; start there and double. */
	cap = len > SIZE_MAX / 4 ? SIZE_MAX : len * 4;
	if (cap < 4096)
		cap = 4096;
	if (cap > hard_cap)
		cap = hard_cap;
	out = malloc(cap);
	if (!out) {
		err = -ENOMEM;
		goto fail;
	}
	zs.next_in = in;
	for (;;) {
		uInt give_out;

		if (zs.avail_in == 0 && left) {
			zs.avail_in = clamp_uint(left);
			left -= zs.avail_in;
		}
		if (out_len == cap) {
			size_t ncap;

			if (cap >= hard_cap) {
				err = -E2BIG;
				goto fail;
			}
			ncap = cap > hard_cap / 2 ? hard_cap : cap * 2;
			tmp = realloc(out, ncap);
			if (!tmp) {
				err = -ENOMEM;
				goto fail;
			}
			out = tmp;
			cap = ncap;
		}
		give_out = clamp_uint(cap - out_len);
		zs.next_out = out + out_len;
		zs.avail_out = give_out;
		zret = inflate(&zs, Z_NO_FLUSH);
		out_len += give_out - zs.avail_out;
		if (out_len > max_out) {
			err = -E2BIG;
			goto fail;
		}
		switch (zret) {
		case Z_STREAM_END:
			if (!left && !zs.avail_in)
				goto done;
			/* Another member follows; garbage fails in inflate(). */
			if (inflateReset(&zs) != Z_OK) {
				err = -EINVAL;
				goto fail;
			}
			break;
		case Z_OK:
			break;
		case Z_BUF_ERROR:
			/* No progress: either the output is full (grow) or input ran out. */
			if (!left && !zs.avail_in) {
				err = -EINVAL;
				goto fail;
			}
			break;
		case Z_MEM_ERROR:
			err = -ENOMEM;
			goto fail;
		default: /* Z_DATA_ERROR, Z_NEED_DICT, Z_STREAM_ERROR */
			err = -EINVAL;
			goto fail;
		}
	}
done:
	inflateEnd(&zs);
	if (cap > out_len + 4096) {
		tmp = realloc(out, out_len ? out_len : 1);
		if (tmp)
			out = tmp;
	}
	*ret_out = out;
	*ret_len = out_len;
	return 0;
fail:
	inflateEnd(&zs);
	free(out);
	return err;
}
