#define _GNU_SOURCE
#include "strmap.h"
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

static uint64_t hash(const char *s) { /* FNV-1a */
  uint64_t h = 1469598103934665603ULL;
  for (; *s; s++) h = (h ^ (unsigned char)*s) * 1099511628211ULL;
  return h;
}

static size_t slot(const struct strmap *m, const char *key) {
  size_t i = hash(key) & (m->cap - 1);
  while (m->keys[i] && strcmp(m->keys[i], key) != 0) i = (i + 1) & (m->cap - 1);
  return i;
}

const char *strmap_get(const struct strmap *m, const char *key) {
  if (!m->cap) return NULL;
  size_t i = slot(m, key);
  if (!m->keys[i]) return NULL;
  return m->values[i] ? m->values[i] : "";
}

static int grow(struct strmap *m) {
  struct strmap bigger = { .cap = m->cap ? m->cap * 2 : 64 };
  bigger.keys = calloc(bigger.cap, sizeof(char *));
  bigger.values = calloc(bigger.cap, sizeof(char *));
  if (!bigger.keys || !bigger.values) { free(bigger.keys); free(bigger.values); return -1; }
  for (size_t i = 0; i < m->cap; i++) {
    if (!m->keys[i]) continue;
    size_t j = slot(&bigger, m->keys[i]);
    bigger.keys[j] = m->keys[i];
    bigger.values[j] = m->values[i];
  }
  free(m->keys);
  free(m->values);
  bigger.len = m->len;
  *m = bigger;
  return 0;
}

int strmap_put(struct strmap *m, const char *key, const char *value) {
  if ((m->len + 1) * 4 > m->cap * 3 && grow(m) < 0) return -1;
  size_t i = slot(m, key);
  char *v = value ? strdup(value) : NULL;
  if (value && !v) return -1;
  if (m->keys[i]) {
    free(m->values[i]);
  } else {
    if (!(m->keys[i] = strdup(key))) { free(v); return -1; }
    m->len++;
  }
  m->values[i] = v;
  return 0;
}

void strmap_clear(struct strmap *m) {
  for (size_t i = 0; i < m->cap; i++) {
    free(m->keys[i]);
    free(m->values[i]);
    m->keys[i] = m->values[i] = NULL;
  }
  m->len = 0;
}
