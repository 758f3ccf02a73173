/* test_config_api.c - the config layer through its C API: schema defaults, typed values,
 * origins, and the --print-config output loading back to identical values. */
#define _POSIX_C_SOURCE 200809L
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "feed/config.h"
#include "feed_test.h"

static int load(feed_config *cfg, const char *text, int n_ov, char **ov, feed_cfg_errors *errs) {
    feed_cfg_load_opts opts = {.check_paths = false};
    return feed_config_load_text(cfg, "t.ini", text, strlen(text), n_ov, ov, opts, errs);
}

int main(void) {
    feed_cfg_errors errs = {0};
    feed_config cfg;

    /* Defaults come from the schema. */
    EXPECT_INT_EQ(load(&cfg, "[data]\npath = d.h5\n", 0, NULL, &errs), 0);
    EXPECT_INT_EQ(cfg.train.epochs, 200);
    EXPECT_INT_EQ(cfg.train.batch, 128);
    EXPECT_NEAR_REL(cfg.train.lr, 0.1, 0);
    EXPECT_NEAR_REL(cfg.train.weight_decay, 5e-4, 0);
    EXPECT(cfg.train.nesterov);
    EXPECT_INT_EQ(cfg.train.milestones.n, 3);
    EXPECT_INT_EQ(cfg.train.milestones.v[2], 160);
    EXPECT_INT_EQ(cfg.model.shortcut, 1);
    EXPECT(strcmp(feed_cfg_arch_names[cfg.model.arch], "resnet56") == 0);
    EXPECT(strcmp(cfg.data.path, "d.h5") == 0);
    EXPECT_INT_EQ(cfg.origin[feed_cfg_find("data", "path")], 2);
    EXPECT_INT_EQ(cfg.origin[feed_cfg_find("train", "epochs")], 0);
    feed_config_free(&cfg);

    /* Every schema default parses and every enum default is one of its choices. */
    for (int i = 0; i < feed_cfg_num_keys; i++) {
        const feed_cfg_key *k = &feed_cfg_keys[i];
        EXPECT(k->doc && *k->doc);
        if (k->type == FEED_CFG_ENUM) EXPECT(k->choices && k->choices[0]);
        for (int j = 0; j < i; j++)
            EXPECT(strcmp(k->section, feed_cfg_keys[j].section) || strcmp(k->key, feed_cfg_keys[j].key));
    }

    /* File values and overrides, overrides win; origins recorded. */
    char *ov[] = {"train.epochs=7", "model.arch=wrn", "model.wrn_depth=16", "data.flip=no"};
    const char *text = "[data]\npath = d.h5\n[train]\nepochs = 3\nlr = 0.05\nmilestones = 2, 5,9\n"
                       "label_smoothing = 0.1\n[checkpoint]\nresume = none\n";
    EXPECT_INT_EQ(load(&cfg, text, 4, ov, &errs), 0);
    EXPECT_INT_EQ(cfg.train.epochs, 7);
    EXPECT_INT_EQ(cfg.origin[feed_cfg_find("train", "epochs")], -1);
    EXPECT_NEAR_REL(cfg.train.lr, 0.05, 0);
    EXPECT_INT_EQ(cfg.train.milestones.n, 3);
    EXPECT_INT_EQ(cfg.train.milestones.v[1], 5);
    EXPECT_INT_EQ(cfg.model.wrn_depth, 16);
    EXPECT(!cfg.data.flip);
    EXPECT(strcmp(cfg.checkpoint.resume, "none") == 0);
    EXPECT(strstr(cfg.ini_text, "lr = 0.05") != NULL);
    EXPECT(strstr(cfg.overrides, "model.arch=wrn\n") != NULL);

    /* Round trip: printed config loads back to the same value for every key. */
    char *printed = NULL;
    size_t plen = 0;
    FILE *f = open_memstream(&printed, &plen);
    feed_config_print(&cfg, f);
    fclose(f);
    feed_config back;
    EXPECT_INT_EQ(load(&back, printed, 0, NULL, &errs), 0);
    for (int i = 0; i < feed_cfg_num_keys; i++) {
        char a[4096], b[4096];
        feed_cfg_format_value(&cfg, i, a, sizeof a);
        feed_cfg_format_value(&back, i, b, sizeof b);
        feed_test_checks++;
        if (strcmp(a, b))
            feed_test_fail(__FILE__, __LINE__, "%s.%s: '%s' printed, '%s' read back",
                           feed_cfg_keys[i].section, feed_cfg_keys[i].key, a, b);
    }
    /* Floats print in the shortest form that reads back exactly. */
    feed_config_free(&back);
    free(printed);
    feed_config_free(&cfg);
    EXPECT_INT_EQ(load(&cfg, "[data]\npath=d\n[train]\nlr = 0.1234567890123\n", 0, NULL, &errs), 0);
    char buf[64];
    EXPECT(strcmp(feed_cfg_format_value(&cfg, feed_cfg_find("train", "lr"), buf, sizeof buf),
                  "0.1234567890123") == 0);
    feed_config_free(&cfg);

    /* A UTF-8 byte-order mark (Windows editors) and quotes around whole values are read as
       INI habit: the folder is /x y, not "/x y" with its quotes; a lone quote stays. */
    EXPECT_INT_EQ(load(&cfg, "\xEF\xBB\xBF[run]\ndir = \"/x y\"  ; where\nname = 'a b'\n[data]\npath = d\"\n",
                       0, NULL, &errs), 0);
    EXPECT(strcmp(cfg.run.dir, "/x y") == 0);
    EXPECT(strcmp(cfg.run.name, "a b") == 0);
    EXPECT(strcmp(cfg.data.path, "d\"") == 0);
    feed_config_free(&cfg);

    /* Suggestions: near misses only. */
    EXPECT(strcmp(feed_cfg_suggest_key("train", "learning_rate") ? "x" : "none", "none") == 0);
    EXPECT(strcmp(feed_cfg_suggest_key("train", "wieght_decay"), "weight_decay") == 0);
    EXPECT(strcmp(feed_cfg_suggest_section("chekpoint"), "checkpoint") == 0);
    EXPECT_INT_EQ(feed_edit_distance("kitten", "sitting"), 3);

    EXPECT_INT_EQ(errs.count, 0);
    feed_cfg_errors_free(&errs);
    return feed_test_finish("test_config_api");
}
