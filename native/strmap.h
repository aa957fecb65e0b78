/* A string-keyed hash map (open addressing) with optional string values: sets of paths, path caches. */
#ifndef BERTH_STRMAP_H
#define BERTH_STRMAP_H
#include <stddef.h>

struct strmap {
  char **keys;
  char **values;
  size_t cap, len;
};

/* The value for key (or "" for a key stored without one); NULL when absent. */
const char *strmap_get(const struct strmap *m, const char *key);
/* Stores copies of key and value (value may be NULL); replaces an existing value. 0, or -1 out of memory. */
int strmap_put(struct strmap *m, const char *key, const char *value);
void strmap_clear(struct strmap *m);

#endif
