/*
 * pprof.h - build, encode, decode and validate pprof CPU profiles.
 *
 * The collector feeds a struct pprof_builder with mappings, locations and
 * samples for one interval, then pprof_encode() turns it into a gzip'ed
 * protobuf (proto/profile.proto) that `go tool pprof` reads.  Identical
 * strings, mappings, functions, locations, stacks, label sets and samples
 * are stored once (hash tables), so feeding the same stack again only adds
 * to its values.
 *
 * Conventions: library-like, never logs.  Functions return 0 or -errno;
 * functions returning an id return 0 with errno set on failure; pprof_new()
 * returns NULL with errno set.  All strings passed in are copied: callers
 * may free them as soon as the call returns.
 *
 * A builder is not thread-safe; use one per thread.
 */
#ifndef VIGIL_PPROF_H
#define VIGIL_PPROF_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "profile.pb-c.h"

/* Longer strings (symbol names, paths, label values) are truncated to this
 * many bytes, at a UTF-8 character boundary. */
#define PPROF_MAX_STRING 16384
/* Most frames and labels one sample may have; more fails with -E2BIG. */
#define PPROF_MAX_FRAMES 1024
#define PPROF_MAX_LABELS 64
/* pprof_decode() refuses to inflate or parse more than this. */
#define PPROF_MAX_DECODED (256u << 20)

struct pprof_builder;

/*
 * One label of a sample: a string label if str != NULL, else numeric.
 * The format cannot tell "" from "no string" nor 0 from "no number": a
 * label with str "" or with num 0 and no num_unit is encoded but dropped by
 * Go's reader (so give pid 0 a num_unit, or expect it to vanish there).
 */
struct pprof_label {
	const char *key;      /* required, non-empty */
	const char *str;      /* NULL => numeric label */
	int64_t num;          /* used when str == NULL */
	const char *num_unit; /* numeric labels only; may be NULL */
};

/*
 * A new, empty profile.  Its sample types are fixed: samples/count and
 * cpu/nanoseconds; period_type is cpu/nanoseconds and period is period_ns
 * (> 0).  time_nanos is the wall-clock start of the profile (ns since the
 * epoch).  Returns NULL with errno EINVAL or ENOMEM.  Free with pprof_free().
 */
struct pprof_builder *pprof_new(int64_t period_ns, int64_t time_nanos);

/* Frees the builder and everything it owns.  Accepts NULL. */
void pprof_free(struct pprof_builder *b);

/*
 * The id (> 0) of the mapping [start, limit) of filename at file_offset
 * with the given build-id (hex string; NULL or "" if unknown; filename NULL
 * means "").  Mappings equal in start, limit, file_offset, filename and
 * build_id share one id; has_functions is true if any call said so (set it
 * when every location of the mapping is symbolized).  Returns 0 with errno
 * EINVAL or ENOMEM on failure.
 */
uint64_t pprof_mapping(struct pprof_builder *b, uint64_t start, uint64_t limit,
		       uint64_t file_offset, const char *filename, const char *build_id,
		       bool has_functions);

/*
 * The id (> 0) of the location at address in mapping mapping_id (0 = no
 * mapping, e.g. kernel frames; otherwise an id from pprof_mapping()).
 * function is the symbol name; NULL or "" means unsymbolized: the location
 * gets no line, and pprof shows its address.  Locations equal in
 * (mapping_id, address, function) share one id; functions are shared by
 * name.  Returns 0 with errno EINVAL (unknown mapping_id) or ENOMEM.
 */
uint64_t pprof_location(struct pprof_builder *b, uint64_t mapping_id, uint64_t address,
			const char *function);

/*
 * Add count samples worth cpu_ns nanoseconds of CPU time on the stack
 * location_ids[0..n) (leaf first; ids from pprof_location()) with the given
 * labels.  A sample with the same stack and the same set of labels (in any
 * order) as an earlier one adds to its values instead of adding a sample.
 * Returns 0, -EINVAL (unknown location id, NULL or empty label key,
 * negative values), -E2BIG (n > PPROF_MAX_FRAMES, n_labels >
 * PPROF_MAX_LABELS), -EOVERFLOW (values would overflow) or -ENOMEM.
 */
int pprof_sample(struct pprof_builder *b, const uint64_t *location_ids, size_t n,
		 const struct pprof_label *labels, size_t n_labels, int64_t count,
		 int64_t cpu_ns);

/* Append a free-text comment (shown by `pprof -comments`).  0 or -errno. */
int pprof_comment(struct pprof_builder *b, const char *text);

/*
 * Encode the profile as gzip'ed protobuf with the given duration.  The
 * builder is unchanged and may be added to and encoded again.  On success
 * *ret_buf is malloc'd and owned by the caller.  Returns 0 or -ENOMEM.
 */
int pprof_encode(const struct pprof_builder *b, int64_t duration_nanos, uint8_t **ret_buf,
		 size_t *ret_len);

/* Number of distinct samples added so far. */
size_t pprof_sample_count(const struct pprof_builder *b);

/*
 * Parse a profile, gzip'ed or raw protobuf (detected by the gzip magic).
 * At most PPROF_MAX_DECODED bytes are inflated or parsed: beyond that
 * -E2BIG.  Returns 0, -EINVAL (corrupt, truncated or not a profile), -E2BIG
 * or -ENOMEM.  This only parses: call pprof_validate() before trusting ids
 * and indices.  Free *ret with
 * perftools__profiles__profile__free_unpacked(p, NULL).
 */
int pprof_decode(const uint8_t *buf, size_t len, Perftools__Profiles__Profile **ret);

/*
 * Check the invariants pprof readers rely on: string_table[0] is "";
 * mapping, location and function ids are non-zero and unique; every
 * referenced id exists; every sample has one value per sample type; every
 * string index is within the string table.  Returns 0 or -EINVAL.
 */
int pprof_validate(const Perftools__Profiles__Profile *p);

#endif /* VIGIL_PPROF_H */
