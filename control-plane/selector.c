/*
 * selector.c - agent selectors ("k=v,k2=v2"), parsed once and matched
 * against an agent's description as the store keeps it (store.h's JSON).
 * Used by vigil-cp (assignments, the admin API's agent filter) and
 * vigilctl; library-like: never logs.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "selector.h"

/* Printable ASCII but the two separators. */
static bool selector_char_ok(char c)
{
	return c >= 0x20 && c < 0x7f && c != ',' && c != '=';
}

static int selector_text(const char *p, size_t n, char *out, size_t term, const char *what, char *err,
			 size_t errlen)
{
	if (n == 0) {
		snprintf(err, errlen, "term %zu: empty %s", term, what);
		return -EINVAL;
	}
	if (n > SELECTOR_MAX_TEXT) {
		snprintf(err, errlen, "term %zu: %s longer than %d bytes", term, what, SELECTOR_MAX_TEXT);
		return -EINVAL;
	}
	for (size_t i = 0; i < n; i++) {
		if (p[i] == '=') {
			snprintf(err, errlen, "term %zu: %s has a second '='", term, what);
			return -EINVAL;
		}
		if (!selector_char_ok(p[i])) {
			snprintf(err, errlen, "term %zu: %s has a character that is not printable ASCII (byte %zu)",
				 term, what, i + 1);
			return -EINVAL;
		}
	}
	memcpy(out, p, n);
	out[n] = '\0';
	return 0;
}

int selector_parse(const char *text, struct selector *ret, char *err, size_t errlen)
{
	struct selector s;
	const char *p = text;
	int r;

	if (err && errlen)
		err[0] = '\0';
	if (!text || !*text) {
		snprintf(err, errlen, "empty selector: name at least one attribute (k=v)");
		return -EINVAL;
	}
	s.n = 0;
	for (;;) {
		const char *end = strchr(p, ',');
		const char *eq;
		size_t len = end ? (size_t)(end - p) : strlen(p);
		size_t term = s.n + 1;

		if (s.n == SELECTOR_MAX_TERMS) {
			snprintf(err, errlen, "more than %d terms", SELECTOR_MAX_TERMS);
			return -EINVAL;
		}
		eq = memchr(p, '=', len);
		if (!eq) {
			snprintf(err, errlen, "term %zu: no '=' (want key=value)", term);
			return -EINVAL;
		}
		r = selector_text(p, (size_t)(eq - p), s.t[s.n].key, term, "key", err, errlen);
		if (r)
			return r;
		r = selector_text(eq + 1, len - (size_t)(eq - p) - 1, s.t[s.n].value, term, "value", err, errlen);
		if (r)
			return r;
		for (size_t i = 0; i < s.n; i++) {
			if (strcmp(s.t[i].key, s.t[s.n].key) == 0) {
				snprintf(err, errlen, "term %zu: key %s appears twice", term, s.t[s.n].key);
				return -EINVAL;
			}
		}
		s.n++;
		if (!end)
			break;
		p = end + 1;
	}
	memcpy(ret, &s, sizeof(s));
	return 0;
}

static bool selector_has(const json_t *attrs, const struct selector_term *t)
{
	const json_t *v = json_is_object(attrs) ? json_object_get(attrs, t->key) : NULL;

	return json_is_string(v) && strcmp(json_string_value(v), t->value) == 0;
}

json_t *selector_description(const char *description_json)
{
	json_t *d = description_json ? json_loads(description_json, JSON_REJECT_DUPLICATES, NULL) : NULL;

	if (!json_is_object(d)) {
		json_decref(d);
		return NULL;
	}
	return d;
}

bool selector_match_json(const struct selector *s, const json_t *description)
{
	const json_t *id, *nonid;
	bool match = true;

	if (!s || !description || s->n == 0)
		return false;
	id = json_object_get(description, "identifying");
	nonid = json_object_get(description, "non_identifying");
	for (size_t i = 0; i < s->n && match; i++)
		match = selector_has(id, &s->t[i]) || selector_has(nonid, &s->t[i]);
	return match;
}

bool selector_match(const struct selector *s, const char *description_json)
{
	json_t *d;
	bool match;

	if (!s || s->n == 0)
		return false;
	d = selector_description(description_json);
	match = selector_match_json(s, d);
	json_decref(d);
	return match;
}
