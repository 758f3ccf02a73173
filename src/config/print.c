/* print.c - `feed_mpi --print-config` (effective configuration as loadable INI) and the key
 * reference of `feed_mpi --help`, both generated from the schema. */
#include <stdio.h>
#include <string.h>

#include "feed/config_values.h"

void feed_config_print(const feed_config *cfg, FILE *out) {
    fprintf(out, "# effective configuration of %s", cfg->file ? cfg->file : "(defaults)");
    fprintf(out, "\n# (a comment names where a value was set; no comment: the default)\n");
    const char *section = "";
    char buf[8192];
    for (int id = 0; id < feed_cfg_num_keys; id++) {
        const feed_cfg_key *k = &feed_cfg_keys[id];
        if (strcmp(k->section, section) != 0) {
            fprintf(out, "\n[%s]\n", k->section);
            section = k->section;
        }
        int o = cfg->origin[id];
        char from[64];
        if (o > 0) snprintf(from, sizeof from, "line %d", o);
        else if (o < 0) snprintf(from, sizeof from, "command line");
        else snprintf(from, sizeof from, "default");
        fprintf(out, "%s = %s", k->key, feed_cfg_format_value(cfg, id, buf, sizeof buf));
        if (o != 0) fprintf(out, "  ; %s", from);
        fputc('\n', out);
    }
}

static void print_choices(const char *const *c, FILE *out) {
    for (int i = 0; c[i]; i++) fprintf(out, "%s%s", i ? "|" : "", c[i]);
}

void feed_config_print_reference(FILE *out) {
    const char *section = "";
    for (int id = 0; id < feed_cfg_num_keys; id++) {
        const feed_cfg_key *k = &feed_cfg_keys[id];
        if (strcmp(k->section, section) != 0) {
            fprintf(out, "\n  [%s]\n", k->section);
            section = k->section;
        }
        fprintf(out, "    %-22s %-9s ", k->key, feed_cfg_type_label(k->type));
        if (k->def) fprintf(out, "default %s", *k->def ? k->def : "(empty)");
        else fprintf(out, "REQUIRED");
        if (k->type == FEED_CFG_ENUM || k->type == FEED_CFG_ENUM_LIST) {
            fprintf(out, "  (");
            print_choices(k->choices, out);
            fprintf(out, ")");
        } else if (k->min != 0 || k->max != 0) {
            fprintf(out, "  [%.10g, %.10g]", k->min, k->max);
        }
        fprintf(out, "\n        %s\n", k->doc);
    }
}
