/* load.c - reading an INI file (libinih underneath) and command-line overrides into a
 * feed_config, with FILE:LINE on every error.
 *
 * libinih does not pass line numbers to its handler, so we feed it our own fgets-style
 * reader that walks the text line by line: it knows the current line for the handler's
 * messages, and it checks what inih would pass over quietly (NUL bytes, over-long lines,
 * lines that are neither a section, a setting nor a comment). */
#include <ctype.h>
#include <errno.h>
#include <ini.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "feed/check.h"
#include "feed/config_values.h"

/* Longest line accepted: long enough for a list of several absolute checkpoint paths. */
#define MAX_LINE 4096
#define MAX_SECTIONS 64

typedef struct {
    const char *file;
    const char *text;
    size_t len, pos;
    int line; /* number of the line last handed to inih */
    feed_config *cfg;
    feed_cfg_errors *errs;
    feed_cfg_load_opts opts;
    int settings; /* key = value lines seen */
    /* section headers seen: name and first line */
    int n_sections;
    char section_name[MAX_SECTIONS][64];
    int section_line[MAX_SECTIONS];
    int first_line[FEED_CFG_MAX_KEYS]; /* line where each key was first given, valid or not */
} ini_reader_ctx;

static int section_known(const char *s) {
    for (int i = 0; i < feed_cfg_num_keys; i++)
        if (strcmp(feed_cfg_keys[i].section, s) == 0) return 1;
    return 0;
}

static void note_section(ini_reader_ctx *c, const char *name, size_t len) {
    if (len >= 64) len = 63;
    char s[64];
    memcpy(s, name, len);
    s[len] = 0;
    for (int i = 0; i < c->n_sections; i++)
        if (strcmp(c->section_name[i], s) == 0) return;
    if (c->n_sections < MAX_SECTIONS) {
        strcpy(c->section_name[c->n_sections], s);
        c->section_line[c->n_sections++] = c->line;
    }
    if (!section_known(s)) {
        const char *sug = feed_cfg_suggest_section(s);
        char hint[256];
        if (sug) snprintf(hint, sizeof hint, "did you mean [%s]? (feed_mpi --help lists every section)", sug);
        else snprintf(hint, sizeof hint, "feed_mpi --help lists every section and key");
        feed_cfg_error(c->errs, c->file, c->line, hint, "unknown section [%s]", s);
    }
}

/* Check one raw line (without its newline). Returns 0 if inih may see it. */
static int check_line(ini_reader_ctx *c, const char *l, size_t n) {
    if (memchr(l, 0, n)) {
        feed_cfg_error(c->errs, c->file, c->line,
                       "is this really an INI text file? (binary data found)",
                       "line contains a NUL byte");
        return -1;
    }
    if (n >= MAX_LINE) {
        feed_cfg_error(c->errs, c->file, c->line, "split long lists over several keys or shorten paths",
                       "line is %zu characters long; the limit is %d", n, MAX_LINE - 1);
        return -1;
    }
    for (size_t i = 0; i < n; i++) {
        unsigned char ch = (unsigned char)l[i];
        if (ch < 0x20 && ch != '\t' && ch != '\r') {
            feed_cfg_error(c->errs, c->file, c->line,
                           "is this really an INI text file? (binary data found)",
                           "line contains control character 0x%02x at column %zu", ch, i + 1);
            return -1;
        }
    }
    size_t i = 0;
    while (i < n && isspace((unsigned char)l[i])) i++;
    if (i == n || l[i] == ';' || l[i] == '#') return 0;
    if (l[i] == '[') {
        const char *close = memchr(l + i, ']', n - i);
        if (!close) {
            feed_cfg_error(c->errs, c->file, c->line, "a section header looks like [train]",
                           "section header without closing ']'");
            return -1;
        }
        const char *name = l + i + 1;
        size_t len = (size_t)(close - name);
        while (len && isspace((unsigned char)*name)) name++, len--;
        while (len && isspace((unsigned char)name[len - 1])) len--;
        if (len == 0) {
            feed_cfg_error(c->errs, c->file, c->line, "a section header looks like [train]",
                           "empty section name");
            return -1;
        }
        note_section(c, name, len);
        return 0;
    }
    const char *eq = memchr(l + i, '=', n - i);
    const char *colon = memchr(l + i, ':', n - i);
    if (!eq && !colon) {
        feed_cfg_error(c->errs, c->file, c->line, "settings look like 'key = value'; comments start with # or ;",
                       "cannot parse '%.*s'", (int)(n - i < 80 ? n - i : 80), l + i);
        return -1;
    }
    const char *sep = eq && (!colon || eq < colon) ? eq : colon;
    const char *k = l + i;
    size_t klen = (size_t)(sep - k);
    while (klen && isspace((unsigned char)k[klen - 1])) klen--;
    if (klen == 0) {
        feed_cfg_error(c->errs, c->file, c->line, "settings look like 'key = value'",
                       "setting without a key name");
        return -1;
    }
    c->settings++;
    return 0;
}

/* fgets-style reader handed to inih. Lines that fail check_line reach inih as blank. */
static char *read_line(char *buf, int cap, void *stream) {
    ini_reader_ctx *c = stream;
    if (c->pos >= c->len) return NULL;
    const char *start = c->text + c->pos;
    const char *nl = memchr(start, '\n', c->len - c->pos);
    size_t n = nl ? (size_t)(nl - start) : c->len - c->pos;
    c->pos += n + (nl ? 1 : 0);
    c->line++;
    if (c->line == 1 && n >= 3 && memcmp(start, "\xEF\xBB\xBF", 3) == 0) /* UTF-8 byte-order mark */
        start += 3, n -= 3;
    if (n && start[n - 1] == '\r') n--; /* CRLF files */
    if (check_line(c, start, n) != 0 || n + 2 > (size_t)cap) {
        buf[0] = '\n', buf[1] = 0;
        return buf;
    }
    memcpy(buf, start, n);
    buf[n] = '\n';
    buf[n + 1] = 0;
    return buf;
}

static int on_setting(void *user, const char *section, const char *key, const char *value) {
    ini_reader_ctx *c = user;
    if (!*section) {
        feed_cfg_error(c->errs, c->file, c->line, "put it under its section, e.g. [train] before epochs = 10",
                       "key '%s' appears before any [section]", key);
        return 1;
    }
    if (!section_known(section)) return 1; /* reported once at its header */
    int id = feed_cfg_find(section, key);
    if (id < 0) {
        const char *sug = feed_cfg_suggest_key(section, key), *moved = feed_cfg_moved_key(section, key);
        char hint[256];
        if (moved) snprintf(hint, sizeof hint, "it moved: use %s", moved);
        else if (sug) snprintf(hint, sizeof hint, "did you mean '%s'? (feed_mpi --help lists every key)", sug);
        else snprintf(hint, sizeof hint, "feed_mpi --help lists the keys of [%s]", section);
        feed_cfg_error(c->errs, c->file, c->line, hint, "unknown key '%s' in section [%s]", key, section);
        return 1;
    }
    if (c->first_line[id] > 0) {
        feed_cfg_error(c->errs, c->file, c->line, "remove one of the two lines",
                       "duplicate key '%s' in [%s] (first set at line %d)", key, section,
                       c->first_line[id]);
        return 1;
    }
    c->first_line[id] = c->line;
    /* dir = "/x y": quotes around a whole value are INI habit, not part of the value */
    char unquoted[4096];
    size_t vn = strlen(value);
    if ((value[0] == '"' || value[0] == '\'') && (vn < 2 || value[vn - 1] != value[0])) {
        feed_cfg_error(c->errs, c->file, c->line, "close the quote, or write the value without quotes",
                       "%s.%s = %s: the quote %c is not closed", section, key, value, value[0]);
        return 1;
    }
    if (vn >= 2 && (value[0] == '"' || value[0] == '\'') && value[vn - 1] == value[0] && vn - 2 < sizeof unquoted) {
        memcpy(unquoted, value + 1, vn - 2);
        unquoted[vn - 2] = 0;
        value = unquoted;
    }
    feed_cfg_msg m;
    if (feed_cfg_set_value(c->cfg, id, value, &m) != 0) {
        feed_cfg_error(c->errs, c->file, c->line, m.hint, "%s", m.msg);
        return 1;
    }
    c->cfg->origin[id] = c->line;
    return 1;
}

static void set_defaults(feed_config *cfg) {
    memset(cfg, 0, sizeof *cfg);
    for (int id = 0; id < feed_cfg_num_keys; id++) {
        const feed_cfg_key *k = &feed_cfg_keys[id];
        if (!k->def) continue;
        if (!*k->def && (k->type == FEED_CFG_PATH_LIST || k->type == FEED_CFG_INT_LIST || k->type == FEED_CFG_ENUM_LIST ||
                         k->type == FEED_CFG_PATH))
            continue; /* empty: no list, no file */
        feed_cfg_msg m;
        if (feed_cfg_set_value(cfg, id, k->def, &m) != 0)
            FEED_FAIL("fix the default in src/config/schema.c", "bad default for %s.%s: %s",
                      k->section, k->key, m.msg);
    }
}

/* "section.key=value" */
static void apply_override(feed_config *cfg, int argi, const char *arg, feed_cfg_load_opts opts,
                           feed_cfg_errors *errs) {
    char where[160];
    snprintf(where, sizeof where, "command line: '%.120s'", arg);
    const char *eq = strchr(arg, '=');
    const char *dot = strchr(arg, '.');
    if (!eq || !dot || dot > eq) {
        feed_cfg_error(errs, where, 0, "overrides look like train.epochs=10 (after the INI file name)",
                       "not a section.key=value override");
        return;
    }
    char section[64], key[64];
    size_t slen = (size_t)(dot - arg), klen = (size_t)(eq - dot - 1);
    if (slen == 0 || slen >= sizeof section || klen == 0 || klen >= sizeof key) {
        feed_cfg_error(errs, where, 0, "overrides look like train.epochs=10", "malformed override");
        return;
    }
    memcpy(section, arg, slen), section[slen] = 0;
    memcpy(key, dot + 1, klen), key[klen] = 0;
    if (!section_known(section)) {
        const char *sug = feed_cfg_suggest_section(section);
        char hint[200];
        snprintf(hint, sizeof hint, sug ? "did you mean [%s]?" : "feed_mpi --help lists every section", sug);
        feed_cfg_error(errs, where, 0, hint, "unknown section [%s]", section);
        return;
    }
    int id = feed_cfg_find(section, key);
    if (id < 0) {
        const char *sug = feed_cfg_suggest_key(section, key), *moved = feed_cfg_moved_key(section, key);
        char hint[200];
        if (moved) snprintf(hint, sizeof hint, "it moved: use %s", moved);
        else snprintf(hint, sizeof hint, sug ? "did you mean '%s'?" : "feed_mpi --help lists every key", sug);
        feed_cfg_error(errs, where, 0, hint, "unknown key '%s' in section [%s]", key, section);
        return;
    }
    if (cfg->origin[id] < 0) {
        feed_cfg_error(errs, where, 0, "give each override once",
                       "%s.%s is overridden twice on the command line", section, key);
        return;
    }
    feed_cfg_msg m;
    if (feed_cfg_set_value(cfg, id, eq + 1, &m) != 0) {
        feed_cfg_error(errs, where, 0, m.hint, "%s", m.msg);
        return;
    }
    cfg->origin[id] = -(argi + 1);
}

static int section_header_line(const ini_reader_ctx *c, const char *section) {
    for (int i = 0; i < c->n_sections; i++)
        if (strcmp(c->section_name[i], section) == 0) return c->section_line[i];
    return 0;
}

int feed_config_validate(const feed_config *cfg, feed_cfg_errors *errs);

int feed_config_load_text(feed_config *cfg, const char *file, const char *text, size_t len,
                          int n_overrides, char *const overrides[], feed_cfg_load_opts opts,
                          feed_cfg_errors *errs) {
    int before = errs->count;
    set_defaults(cfg);
    cfg->file = feed_xstrdup(file);
    cfg->ini_text = feed_xmalloc(len + 1, "config text");
    memcpy(cfg->ini_text, text, len);
    cfg->ini_text[len] = 0;

    ini_reader_ctx *c = feed_xcalloc(1, sizeof *c, "ini reader");
    c->file = file, c->text = text, c->len = len, c->cfg = cfg, c->errs = errs, c->opts = opts;
    /* libinih 55 reads these at run time: no multi-line values (an indented line would
     * otherwise silently join the previous value), a heap line buffer of MAX_LINE. */
    ini_allow_multiline = 0;
    ini_use_stack = 0;
    ini_allow_realloc = 1;
    ini_max_line = MAX_LINE + 2;
    ini_initial_alloc = MAX_LINE + 2;
    ini_inline_comment_prefixes = ";#";
    int rc = ini_parse_stream(read_line, c, on_setting, c);
    if (rc == -2)
        feed_cfg_error(errs, file, 0, NULL, "out of memory while parsing");
    else if (rc > 0 && errs->count == before)
        feed_cfg_error(errs, file, rc, "settings look like 'key = value'", "cannot parse this line");
    if (c->settings == 0 && errs->count == before)
        feed_cfg_error(errs, file, 0, "start from jobs/fashion_scratch.ini or see feed_mpi --help",
                       "the file has no settings (it is empty or only comments)");

    size_t olen = 1;
    for (int i = 0; i < n_overrides; i++) olen += strlen(overrides[i]) + 1;
    cfg->overrides = feed_xcalloc(1, olen, "overrides");
    for (int i = 0; i < n_overrides; i++) {
        strcat(cfg->overrides, overrides[i]);
        strcat(cfg->overrides, "\n");
        apply_override(cfg, i, overrides[i], opts, errs);
    }

    for (int id = 0; id < feed_cfg_num_keys; id++) {
        const feed_cfg_key *k = &feed_cfg_keys[id];
        if (k->def || cfg->origin[id] != 0) continue;
        int hl = section_header_line(c, k->section);
        char hint[200];
        snprintf(hint, sizeof hint, "add '%s = ...' under [%s] (%s)", k->key, k->section, k->doc);
        feed_cfg_error(errs, file, hl, hint, "missing required key '%s' in section [%s]", k->key,
                       k->section);
    }
    free(c);
    for (int id = 0; opts.check_paths && id < feed_cfg_num_keys; id++) {
        feed_cfg_msg m;
        if (feed_cfg_check_inputs(cfg, id, &m) == 0) continue;
        int o = cfg->origin[id];
        if (o < 0) feed_cfg_error(errs, "command line", 0, m.hint, "%s (override %d)", m.msg, -o);
        else feed_cfg_error(errs, file, o, m.hint, "%s", m.msg);
    }
    if (errs->count == before) feed_config_validate(cfg, errs);
    return errs->count - before;
}

int feed_config_load_file(feed_config *cfg, const char *file, int n_overrides,
                          char *const overrides[], feed_cfg_load_opts opts, feed_cfg_errors *errs) {
    FILE *f = fopen(file, "rb");
    if (!f) {
        memset(cfg, 0, sizeof *cfg);
        feed_cfg_error(errs, file, 0, "check the path; example configs are in jobs/",
                       "cannot read the config file: %s", strerror(errno));
        return 1;
    }
    size_t cap = 4096, len = 0;
    char *text = feed_xmalloc(cap, "config file");
    size_t got;
    while ((got = fread(text + len, 1, cap - len, f)) > 0) {
        len += got;
        if (len == cap) text = feed_xrealloc(text, cap *= 2, "config file");
    }
    int read_error = ferror(f);
    fclose(f);
    if (read_error) {
        free(text);
        memset(cfg, 0, sizeof *cfg);
        feed_cfg_error(errs, file, 0, "is it a folder or an unreadable device?",
                       "cannot read the config file");
        return 1;
    }
    int n = feed_config_load_text(cfg, file, text, len, n_overrides, overrides, opts, errs);
    free(text);
    return n;
}

void feed_config_free(feed_config *cfg) {
    for (int id = 0; id < feed_cfg_num_keys; id++) feed_cfg_free_value(cfg, id);
    free(cfg->file);
    free(cfg->ini_text);
    free(cfg->overrides);
    memset(cfg, 0, sizeof *cfg);
}
