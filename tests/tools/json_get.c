/*
 * json_get - read one value out of a JSON document on stdin, for the shell
 * tests (so that they need no jq): prints a string as it is, a number,
 * boolean, null, object or array as compact JSON, and the length of an
 * array or object when the path ends in "#".
 *
 * Usage: json_get PATH < doc.json
 *   PATH  ".", or keys and indexes: ".policies[0].serial", ".agents#"
 * Exit: 0 printed, 1 no such value, 2 usage or input not JSON.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

int main(int argc, char **argv)
{
	json_error_t je;
	json_t *doc, *v;
	const char *p;
	size_t plen;
	int count;

	if (argc != 2 || argv[1][0] != '.') {
		fprintf(stderr, "usage: json_get .key[N].key[#] < doc.json\n");
		return 2;
	}
	doc = json_loadf(stdin, 0, &je);
	if (!doc) {
		fprintf(stderr, "json_get: stdin: %s\n", je.text);
		return 2;
	}
	p = argv[1];
	plen = strlen(p);
	count = plen > 1 && p[plen - 1] == '#';
	v = doc;
	for (size_t i = 1; i < plen - (size_t)count && v;) {
		if (p[i] == '.') {
			i++;
		} else if (p[i] == '[') {
			char *end;
			unsigned long n = strtoul(p + i + 1, &end, 10);

			if (*end != ']')
				return 2;
			v = json_array_get(v, n);
			i = (size_t)(end - p) + 1;
		} else {
			size_t k = strcspn(p + i, ".[#");
			char key[256];

			if (k >= sizeof(key))
				return 2;
			memcpy(key, p + i, k);
			key[k] = '\0';
			v = json_object_get(v, key);
			i += k;
		}
	}
	if (!v)
		return 1;
	if (count) {
		if (json_is_array(v))
			printf("%zu\n", json_array_size(v));
		else if (json_is_object(v))
			printf("%zu\n", json_object_size(v));
		else
			return 1;
	} else if (json_is_string(v)) {
		printf("%s\n", json_string_value(v));
	} else {
		char *s = json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY);

		printf("%s\n", s ? s : "");
		free(s);
	}
	json_decref(doc);
	return 0;
}
