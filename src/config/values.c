/* values.c - typed parsing of one configuration value and its formatting back to text. */
#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>
#include <sys/stat.h>

#include "feed/check.h"
#include "feed/config_values.h"

static void *field(feed_config *cfg, int id) { return (char *)cfg + feed_cfg_keys[id].offset; }
static const void *cfield(const feed_config *cfg, int id) {
    return (const char *)cfg + feed_cfg_keys[id].offset;
}

static const char *type_name(feed_cfg_type t) {
    switch (t) {
    case FEED_CFG_INT: return "an integer";
    case FEED_CFG_FLOAT: return "a number";
    case FEED_CFG_BOOL: return "true or false";
    case FEED_CFG_STRING: return "a string";
    case FEED_CFG_PATH: return "a file path";
    case FEED_CFG_DIR: return "a folder path";
    case FEED_CFG_ENUM: return "one of the listed values";
    case FEED_CFG_INT_LIST: return "a comma-separated list of integers";
    case FEED_CFG_PATH_LIST: return "a comma-separated list of file paths";
    case FEED_CFG_ENUM_LIST: return "a comma-separated list of the listed values";
    }
    return "?";
}

const char *feed_cfg_type_label(feed_cfg_type t) {
    switch (t) {
    case FEED_CFG_INT: return "int";
    case FEED_CFG_FLOAT: return "float";
    case FEED_CFG_BOOL: return "bool";
    case FEED_CFG_STRING: return "string";
    case FEED_CFG_PATH: return "path";
    case FEED_CFG_DIR: return "dir";
    case FEED_CFG_ENUM: return "enum";
    case FEED_CFG_INT_LIST: return "int list";
    case FEED_CFG_PATH_LIST: return "path list";
    case FEED_CFG_ENUM_LIST: return "list";
    }
    return "?";
}

static bool parse_int(const char *s, long long *out) {
    if (!*s) return false;
    errno = 0;
    char *end;
    long long v = strtoll(s, &end, 10);
    if (errno || *end) return false;
    *out = v;
    return true;
}

static bool parse_float(const char *s, double *out) {
    if (!*s) return false;
    errno = 0;
    char *end;
    double v = strtod(s, &end);
    if (errno == ERANGE && fabs(v) > 1) return false;
    if (*end || !isfinite(v)) return false;
    *out = v;
    return true;
}

static int range_error(const feed_cfg_key *k, double v, feed_cfg_msg *m) {
    if (k->min == 0 && k->max == 0) return 0;
    if (v < k->min || v > k->max) {
        snprintf(m->msg, sizeof m->msg, "%s.%s = %.10g is out of range [%.10g, %.10g]", k->section,
                 k->key, v, k->min, k->max);
        snprintf(m->hint, sizeof m->hint, "%s", k->doc);
        return -1;
    }
    return 0;
}

static int type_error(const feed_cfg_key *k, const char *value, feed_cfg_msg *m) {
    snprintf(m->msg, sizeof m->msg, "%s.%s = '%.200s' is not %s", k->section, k->key, value,
             type_name(k->type));
    snprintf(m->hint, sizeof m->hint, "%s.%s: %s", k->section, k->key, k->doc);
    return -1;
}

static int check_readable_file(const feed_cfg_key *k, const char *path, feed_cfg_msg *m) {
    struct stat st;
    if (stat(path, &st) != 0 || access(path, R_OK) != 0) {
        snprintf(m->msg, sizeof m->msg, "%s.%s: cannot read '%s': %s", k->section, k->key,
                 path, strerror(errno));
        snprintf(m->hint, sizeof m->hint,
                 "relative paths are taken from the current folder; check the spelling");
        return -1;
    }
    if (!S_ISREG(st.st_mode)) {
        snprintf(m->msg, sizeof m->msg, "%s.%s: '%s' is not a regular file", k->section,
                 k->key, path);
        snprintf(m->hint, sizeof m->hint, "%s", k->doc);
        return -1;
    }
    return 0;
}

/* Split "a, b ,c" into trimmed items; empty items are an error. */
static int split_list(const char *value, char ***items_out, int *n_out) {
    int cap = 8, n = 0;
    char **items = feed_xmalloc(sizeof(char *) * cap, "config list");
    const char *p = value;
    for (;;) {
        const char *comma = strchr(p, ',');
        size_t len = comma ? (size_t)(comma - p) : strlen(p);
        while (len && isspace((unsigned char)*p)) p++, len--;
        while (len && isspace((unsigned char)p[len - 1])) len--;
        if (len == 0) {
            for (int i = 0; i < n; i++) free(items[i]);
            free(items);
            return -1;
        }
        if (n == cap) items = feed_xrealloc(items, sizeof(char *) * (cap *= 2), "config list");
        items[n] = feed_xmalloc(len + 1, "config list item");
        memcpy(items[n], p, len);
        items[n][len] = 0;
        n++;
        if (!comma) break;
        p = comma + 1;
    }
    *items_out = items;
    *n_out = n;
    return 0;
}

static void free_items(char **items, int n) {
    for (int i = 0; i < n; i++) free(items[i]);
    free(items);
}

/* Index of `value` among the key's choices (case-insensitive), or -1 with m filled; `item`
 * says it is one item of a list. */
static int choice_index(const feed_cfg_key *k, const char *value, int item, feed_cfg_msg *m) {
    for (int i = 0; k->choices[i]; i++)
        if (strcasecmp(value, k->choices[i]) == 0) return i;
    char list[512] = "";
    for (int i = 0; k->choices[i]; i++) {
        strncat(list, i ? ", " : "", sizeof list - strlen(list) - 1);
        strncat(list, k->choices[i], sizeof list - strlen(list) - 1);
    }
    snprintf(m->msg, sizeof m->msg, "%s.%s%s'%.200s' is not one of: %s", k->section, k->key, item ? ": " : " = ",
             value, list);
    const char *s = feed_cfg_suggest_choice(k->choices, value);
    if (s) snprintf(m->hint, sizeof m->hint, "did you mean '%s'?", s);
    else snprintf(m->hint, sizeof m->hint, "%s", k->doc);
    return -1;
}

/* Item i of an INT_LIST (an integer in range) or ENUM_LIST (a choice, each at most once) into
 * vals[i]; vals[0..i-1] hold the items before. Returns 0, or -1 with m filled. */
static int parse_list_item(const feed_cfg_key *k, const char *item, int i, int *vals, feed_cfg_msg *m) {
    if (k->type == FEED_CFG_ENUM_LIST) {
        int c = choice_index(k, item, 1, m);
        if (c < 0) return -1;
        for (int j = 0; j < i; j++)
            if (vals[j] == c) {
                snprintf(m->msg, sizeof m->msg, "%s.%s lists '%.100s' twice", k->section, k->key, item);
                snprintf(m->hint, sizeof m->hint, "give each value once");
                return -1;
            }
        vals[i] = c;
        return 0;
    }
    long long v;
    if (!parse_int(item, &v)) {
        snprintf(m->msg, sizeof m->msg, "%s.%s: item %d '%.100s' is not an integer", k->section, k->key, i + 1, item);
        snprintf(m->hint, sizeof m->hint, "%s", k->doc);
        return -1;
    }
    if (range_error(k, (double)v, m)) return -1;
    vals[i] = (int)v;
    return 0;
}

int feed_cfg_set_value(feed_config *cfg, int id, const char *value, feed_cfg_msg *m) {
    const feed_cfg_key *k = &feed_cfg_keys[id];
    m->msg[0] = m->hint[0] = 0;
    void *f = field(cfg, id);
    int optional_path = k->type == FEED_CFG_PATH && k->def && !*k->def;
    if (!*value && (k->type == FEED_CFG_INT_LIST || k->type == FEED_CFG_PATH_LIST || k->type == FEED_CFG_ENUM_LIST ||
                    optional_path)) {
        feed_cfg_free_value(cfg, id); /* an empty list, or no file */
        return 0;
    }
    if (!*value && k->type != FEED_CFG_STRING) {
        snprintf(m->msg, sizeof m->msg, "%s.%s has an empty value", k->section, k->key);
        snprintf(m->hint, sizeof m->hint, "expected %s: %s", type_name(k->type), k->doc);
        return -1;
    }
    switch (k->type) {
    case FEED_CFG_INT: {
        long long v;
        if (!parse_int(value, &v)) return type_error(k, value, m);
        if (range_error(k, (double)v, m)) return -1;
        *(int *)f = (int)v;
        return 0;
    }
    case FEED_CFG_FLOAT: {
        double v;
        if (!parse_float(value, &v)) return type_error(k, value, m);
        if (range_error(k, v, m)) return -1;
        *(double *)f = v;
        return 0;
    }
    case FEED_CFG_BOOL: {
        static const char *yes[] = {"true", "yes", "on", "1"}, *no[] = {"false", "no", "off", "0"};
        for (int i = 0; i < 4; i++) {
            if (strcasecmp(value, yes[i]) == 0) return *(bool *)f = true, 0;
            if (strcasecmp(value, no[i]) == 0) return *(bool *)f = false, 0;
        }
        type_error(k, value, m);
        snprintf(m->hint, sizeof m->hint, "use true/false, yes/no, on/off or 1/0");
        return -1;
    }
    case FEED_CFG_ENUM: {
        int i = choice_index(k, value, 0, m);
        if (i < 0) return -1;
        *(int *)f = i;
        return 0;
    }
    case FEED_CFG_STRING:
    case FEED_CFG_DIR:
    case FEED_CFG_PATH: {
        /* input files are checked once all overrides are in: feed_cfg_check_inputs */
        char **s = f;
        free(*s);
        *s = feed_xstrdup(value);
        return 0;
    }
    case FEED_CFG_INT_LIST:
    case FEED_CFG_ENUM_LIST: {
        char **items;
        int n;
        if (split_list(value, &items, &n)) {
            type_error(k, value, m);
            snprintf(m->hint, sizeof m->hint, "an empty item between commas%s",
                     k->type == FEED_CFG_INT_LIST ? "; e.g. 60,120,160" : "");
            return -1;
        }
        int *vals = feed_xmalloc(sizeof(int) * n, "config list");
        for (int i = 0; i < n; i++)
            if (parse_list_item(k, items[i], i, vals, m) != 0) return free(vals), free_items(items, n), -1;
        free_items(items, n);
        feed_int_list *l = f;
        free(l->v);
        l->v = vals;
        l->n = n;
        return 0;
    }
    case FEED_CFG_PATH_LIST: {
        char **items;
        int n;
        if (split_list(value, &items, &n)) {
            type_error(k, value, m);
            snprintf(m->hint, sizeof m->hint, "an empty item between commas");
            return -1;
        }
        feed_str_list *l = f;
        free_items(l->v, l->n);
        l->v = items;
        l->n = n;
        return 0;
    }
    }
    return -1;
}

int feed_cfg_check_inputs(const feed_config *cfg, int id, feed_cfg_msg *m) {
    const feed_cfg_key *k = &feed_cfg_keys[id];
    const void *f = cfield(cfg, id);
    m->msg[0] = m->hint[0] = 0;
    if (k->type == FEED_CFG_PATH) {
        const char *s = *(char *const *)f;
        return s ? check_readable_file(k, s, m) : 0;
    }
    if (k->type == FEED_CFG_PATH_LIST) {
        const feed_str_list *l = f;
        for (int i = 0; i < l->n; i++)
            if (check_readable_file(k, l->v[i], m)) return -1;
    }
    return 0;
}

const char *feed_cfg_format_value(const feed_config *cfg, int id, char *buf, size_t cap) {
    const feed_cfg_key *k = &feed_cfg_keys[id];
    const void *f = cfield(cfg, id);
    buf[0] = 0;
    switch (k->type) {
    case FEED_CFG_INT: snprintf(buf, cap, "%d", *(const int *)f); break;
    case FEED_CFG_FLOAT: {
        /* Shortest form that reads back to the same double. */
        double v = *(const double *)f;
        for (int prec = 6; prec <= 17; prec++) {
            snprintf(buf, cap, "%.*g", prec, v);
            if (strtod(buf, NULL) == v) break;
        }
        break;
    }
    case FEED_CFG_BOOL: snprintf(buf, cap, "%s", *(const bool *)f ? "true" : "false"); break;
    case FEED_CFG_ENUM: snprintf(buf, cap, "%s", k->choices[*(const int *)f]); break;
    case FEED_CFG_STRING:
    case FEED_CFG_DIR:
    case FEED_CFG_PATH: {
        const char *s = *(char *const *)f;
        snprintf(buf, cap, "%s", s ? s : "");
        break;
    }
    case FEED_CFG_INT_LIST: {
        const feed_int_list *l = f;
        size_t n = 0;
        for (int i = 0; i < l->n && n < cap; i++)
            n += snprintf(buf + n, cap - n, "%s%d", i ? "," : "", l->v[i]);
        break;
    }
    case FEED_CFG_ENUM_LIST: {
        const feed_int_list *l = f;
        size_t n = 0;
        for (int i = 0; i < l->n && n < cap; i++)
            n += snprintf(buf + n, cap - n, "%s%s", i ? "," : "", k->choices[l->v[i]]);
        break;
    }
    case FEED_CFG_PATH_LIST: {
        const feed_str_list *l = f;
        size_t n = 0;
        for (int i = 0; i < l->n && n < cap; i++)
            n += snprintf(buf + n, cap - n, "%s%s", i ? ", " : "", l->v[i]);
        break;
    }
    }
    return buf;
}

void feed_cfg_free_value(feed_config *cfg, int id) {
    void *f = field(cfg, id);
    switch (feed_cfg_keys[id].type) {
    case FEED_CFG_STRING:
    case FEED_CFG_DIR:
    case FEED_CFG_PATH: free(*(char **)f), *(char **)f = NULL; break;
    case FEED_CFG_INT_LIST:
    case FEED_CFG_ENUM_LIST: free(((feed_int_list *)f)->v), memset(f, 0, sizeof(feed_int_list)); break;
    case FEED_CFG_PATH_LIST: {
        feed_str_list *l = f;
        free_items(l->v, l->n);
        memset(l, 0, sizeof *l);
        break;
    }
    default: break;
    }
}
