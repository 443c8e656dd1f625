/*
 * selector.h - agent selectors: "k=v,k2=v2", which matches an agent whose
 * agent_description has every listed attribute (identifying or
 * non-identifying) with exactly that value.  Keys and values are non-empty,
 * at most SELECTOR_MAX_TEXT bytes, printable ASCII without ',' and '=';
 * at most SELECTOR_MAX_TERMS terms; a key appears once.  The empty selector
 * is refused (write a real attribute to select every agent, e.g. a fleet
 * label).  Used by vigil-cp (assignments, agent filters) and vigilctl.
 * Library-like: 0 or -errno, never logs.
 */
#ifndef VIGIL_SELECTOR_H
#define VIGIL_SELECTOR_H

#include <stdbool.h>
#include <stddef.h>

#include <jansson.h>

#define SELECTOR_MAX_TERMS 16
#define SELECTOR_MAX_TEXT 256

struct selector_term {
	char key[SELECTOR_MAX_TEXT + 1];
	char value[SELECTOR_MAX_TEXT + 1];
};

struct selector {
	size_t n;
	struct selector_term t[SELECTOR_MAX_TERMS];
};

/* Parse text.  0, or -EINVAL with the reason in err ("term 2: empty value"). */
int selector_parse(const char *text, struct selector *ret, char *err, size_t errlen);

/*
 * Whether an agent whose description is description_json (store.h's
 * format; NULL matches nothing) has every term of s.
 */
bool selector_match(const struct selector *s, const char *description_json);

/*
 * The same in two steps, for matching one description against many
 * selectors: selector_description() parses it once (NULL when it is NULL
 * or not a JSON object; the caller json_decref()s the result), and
 * selector_match_json() matches that (NULL matches nothing).
 */
json_t *selector_description(const char *description_json);
bool selector_match_json(const struct selector *s, const json_t *description);

#endif
