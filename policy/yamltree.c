/*
 * yamltree.c - libyaml events into a bounded tree (see yamltree.h).
 *
 * The event API rather than libyaml's document loader: the loader would
 * build alias references and has no depth or size limit, while events let
 * us refuse an alias, an anchor or a tag where it appears and stop at the
 * first node past a limit, before allocating anything for it.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <yaml.h>

#include "yamltree.h"

struct builder {
	const struct yamltree_limits *lim;
	yamltree_error_fn *err;
	void *ctx;
	struct ynode *root;
	struct ynode **stack;	/* open collections, lim->max_depth at most */
	unsigned depth, nodes;
	bool doc_done;
};

__attribute__((format(printf, 4, 5)))
static void report(struct builder *b, unsigned line, unsigned col, const char *fmt, ...)
{
	char msg[256];
	va_list ap;

	if (!b->err)
		return;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	b->err(b->ctx, line, col, msg);
}

static void report_mark(struct builder *b, yaml_mark_t m, const char *msg)
{
	report(b, (unsigned)m.line + 1, (unsigned)m.column + 1, "%s", msg);
}

void yamltree_free(struct ynode *n)
{
	if (!n)
		return;
	for (size_t i = 0; i < n->n_kids; i++)
		yamltree_free(n->kids[i]);
	free(n->kids);
	free(n->str);
	free(n);
}

static int append(struct builder *b, struct ynode *n)
{
	struct ynode *parent = b->depth ? b->stack[b->depth - 1] : NULL;

	if (!parent) {
		/* One document, one root: the parser guarantees it. */
		b->root = n;
		return 0;
	}
	if (parent->n_kids == parent->cap_kids) {
		size_t cap = parent->cap_kids ? parent->cap_kids * 2 : 4;
		struct ynode **k = realloc(parent->kids, cap * sizeof(*k));

		if (!k)
			return -ENOMEM;
		parent->kids = k;
		parent->cap_kids = cap;
	}
	parent->kids[parent->n_kids++] = n;
	return 0;
}

/* A new node at the event's position, or NULL (errno set). */
static struct ynode *node_new(struct builder *b, const yaml_event_t *ev, enum ynode_type type)
{
	struct ynode *n;

	if (b->nodes >= b->lim->max_nodes) {
		report(b, (unsigned)ev->start_mark.line + 1, (unsigned)ev->start_mark.column + 1,
		       "more than %u YAML nodes", b->lim->max_nodes);
		errno = EBADMSG;
		return NULL;
	}
	n = calloc(1, sizeof(*n));
	if (!n) {
		errno = ENOMEM;
		return NULL;
	}
	b->nodes++;
	n->type = type;
	n->line = (unsigned)ev->start_mark.line + 1;
	n->col = (unsigned)ev->start_mark.column + 1;
	if (append(b, n) < 0) {
		free(n);
		errno = ENOMEM;
		return NULL;
	}
	return n;
}

/* Anchors and tags: reported, the node is kept (marked bad for tags). */
static void check_props(struct builder *b, const yaml_event_t *ev, const yaml_char_t *anchor,
			const yaml_char_t *tag, struct ynode *n)
{
	if (anchor)
		report_mark(b, ev->start_mark, "anchors ('&') are not allowed");
	if (tag) {
		report_mark(b, ev->start_mark, "tags ('!') are not allowed");
		n->bad = true;
	}
}

static int on_event(struct builder *b, const yaml_event_t *ev)
{
	struct ynode *n;

	switch (ev->type) {
	case YAML_DOCUMENT_START_EVENT:
		if (b->doc_done) {
			report_mark(b, ev->start_mark, "only one YAML document is allowed");
			return -EBADMSG;
		}
		return 0;
	case YAML_DOCUMENT_END_EVENT:
		b->doc_done = true;
		return 0;
	case YAML_ALIAS_EVENT:
		report_mark(b, ev->start_mark, "aliases ('*') are not allowed");
		n = node_new(b, ev, YNODE_SCALAR);
		if (!n)
			return -errno;
		n->bad = true;
		n->plain = true;
		n->str = strdup("");
		return n->str ? 0 : -ENOMEM;
	case YAML_SCALAR_EVENT:
		n = node_new(b, ev, YNODE_SCALAR);
		if (!n)
			return -errno;
		n->plain = ev->data.scalar.style == YAML_PLAIN_SCALAR_STYLE;
		n->len = ev->data.scalar.length;
		n->str = malloc(n->len + 1);
		if (!n->str)
			return -ENOMEM;
		memcpy(n->str, ev->data.scalar.value, n->len);
		n->str[n->len] = '\0';
		check_props(b, ev, ev->data.scalar.anchor, ev->data.scalar.tag, n);
		return 0;
	case YAML_SEQUENCE_START_EVENT:
	case YAML_MAPPING_START_EVENT:
		if (b->depth >= b->lim->max_depth) {
			report(b, (unsigned)ev->start_mark.line + 1,
			       (unsigned)ev->start_mark.column + 1,
			       "nesting deeper than %u levels", b->lim->max_depth);
			return -EBADMSG;
		}
		n = node_new(b, ev, ev->type == YAML_MAPPING_START_EVENT ? YNODE_MAP : YNODE_SEQ);
		if (!n)
			return -errno;
		if (ev->type == YAML_MAPPING_START_EVENT)
			check_props(b, ev, ev->data.mapping_start.anchor, ev->data.mapping_start.tag, n);
		else
			check_props(b, ev, ev->data.sequence_start.anchor,
				    ev->data.sequence_start.tag, n);
		b->stack[b->depth++] = n;
		return 0;
	case YAML_SEQUENCE_END_EVENT:
	case YAML_MAPPING_END_EVENT:
		if (b->depth)
			b->depth--;
		return 0;
	default:
		return 0;
	}
}

/* Where libyaml's reader stopped: it gives a byte offset, not a mark. */
static void offset_pos(const char *buf, size_t len, size_t off, unsigned *line, unsigned *col)
{
	*line = 1;
	*col = 1;
	for (size_t i = 0; i < off && i < len; i++) {
		if (buf[i] == '\n') {
			(*line)++;
			*col = 1;
		} else {
			(*col)++;
		}
	}
}

static int parser_error(struct builder *b, const yaml_parser_t *p, const char *buf, size_t len)
{
	const char *problem = p->problem ? p->problem : "unknown problem";
	unsigned line, col;

	switch (p->error) {
	case YAML_MEMORY_ERROR:
		return -ENOMEM;
	case YAML_READER_ERROR:
		offset_pos(buf, len, p->problem_offset, &line, &col);
		report(b, line, col, "invalid YAML: %s", problem);
		return -EBADMSG;
	default:
		if (p->context)
			report(b, (unsigned)p->problem_mark.line + 1,
			       (unsigned)p->problem_mark.column + 1,
			       "invalid YAML: %s (%s at %u:%u)", problem, p->context,
			       (unsigned)p->context_mark.line + 1,
			       (unsigned)p->context_mark.column + 1);
		else
			report(b, (unsigned)p->problem_mark.line + 1,
			       (unsigned)p->problem_mark.column + 1, "invalid YAML: %s", problem);
		return -EBADMSG;
	}
}

int yamltree_parse(const char *buf, size_t len, const struct yamltree_limits *lim,
		   yamltree_error_fn *err, void *ctx, struct ynode **ret)
{
	struct builder b = { .lim = lim, .err = err, .ctx = ctx };
	yaml_parser_t parser;
	yaml_event_t ev;
	bool done = false;
	int r = 0;

	if (!buf || !lim || lim->max_depth == 0 || !ret)
		return -EINVAL;
	b.stack = calloc(lim->max_depth, sizeof(*b.stack));
	if (!b.stack)
		return -ENOMEM;
	if (!yaml_parser_initialize(&parser)) {
		free(b.stack);
		return -ENOMEM;
	}
	yaml_parser_set_input_string(&parser, (const unsigned char *)buf, len);
	while (!done) {
		if (!yaml_parser_parse(&parser, &ev)) {
			r = parser_error(&b, &parser, buf, len);
			break;
		}
		done = ev.type == YAML_STREAM_END_EVENT;
		r = on_event(&b, &ev);
		yaml_event_delete(&ev);
		if (r < 0)
			break;
	}
	yaml_parser_delete(&parser);
	free(b.stack);
	if (r < 0) {
		yamltree_free(b.root);
		return r;
	}
	*ret = b.root;
	return 0;
}

static bool all_of(const char *s, const char *end, const char *chars)
{
	if (s == end)
		return false;
	for (; s < end; s++)
		if (!*s || !strchr(chars, *s))
			return false;
	return true;
}

static bool is_float(const char *s, const char *end)
{
	const char *d;

	if (s < end && (*s == '-' || *s == '+'))
		s++;
	if (end - s == 4 && (!memcmp(s, ".inf", 4) || !memcmp(s, ".Inf", 4) || !memcmp(s, ".INF", 4)))
		return true;
	d = s;
	while (s < end && *s >= '0' && *s <= '9')
		s++;
	bool int_digits = s > d;
	if (s < end && *s == '.') {
		const char *f = ++s;

		while (s < end && *s >= '0' && *s <= '9')
			s++;
		if (!int_digits && s == f)
			return false;
	} else if (!int_digits) {
		return false;
	}
	if (s < end && (*s == 'e' || *s == 'E')) {
		s++;
		if (s < end && (*s == '-' || *s == '+'))
			s++;
		if (!all_of(s, end, "0123456789"))
			return false;
		s = end;
	}
	return s == end;
}

enum yscalar_kind yamltree_kind(const struct ynode *n)
{
	const char *s = n->str, *end = n->str + n->len;
	static const char *const nulls[] = { "", "~", "null", "Null", "NULL" };
	static const char *const bools[] = { "true", "True", "TRUE", "false", "False", "FALSE" };

	if (!n->plain)
		return YSCALAR_STRING;
	for (size_t i = 0; i < sizeof(nulls) / sizeof(*nulls); i++)
		if (n->len == strlen(nulls[i]) && !memcmp(s, nulls[i], n->len))
			return YSCALAR_NULL;
	for (size_t i = 0; i < sizeof(bools) / sizeof(*bools); i++)
		if (n->len == strlen(bools[i]) && !memcmp(s, bools[i], n->len))
			return YSCALAR_BOOL;
	if (n->len > 2 && s[0] == '0' && s[1] == 'o' && all_of(s + 2, end, "01234567"))
		return YSCALAR_INT;
	if (n->len > 2 && s[0] == '0' && s[1] == 'x' &&
	    all_of(s + 2, end, "0123456789abcdefABCDEF"))
		return YSCALAR_INT;
	if (all_of(s + (n->len && (*s == '-' || *s == '+')), end, "0123456789"))
		return YSCALAR_INT;
	if (is_float(s, end))
		return YSCALAR_FLOAT;
	if (n->len == 4 && (!memcmp(s, ".nan", 4) || !memcmp(s, ".NaN", 4) || !memcmp(s, ".NAN", 4)))
		return YSCALAR_FLOAT;
	return YSCALAR_STRING;
}

struct ynode *yamltree_get(const struct ynode *n, const char *key)
{
	size_t klen = strlen(key);

	if (!n || n->type != YNODE_MAP)
		return NULL;
	for (size_t i = 0; i + 1 < n->n_kids; i += 2) {
		const struct ynode *k = n->kids[i];

		if (k->type == YNODE_SCALAR && k->len == klen && !memcmp(k->str, key, klen))
			return n->kids[i + 1];
	}
	return NULL;
}
