/* validate.c - checks that involve more than one key, reported at the line of the key
 * that has to change. */
#include <stdio.h>
#include <string.h>

#include "feed/config.h"

/* Report at the key's origin: its line in the file, its override, or the file itself. */
static void error_at(const feed_config *cfg, feed_cfg_errors *errs, int id, const char *hint,
                     const char *msg) {
    int o = cfg->origin[id];
    if (o < 0) {
        char where[64];
        snprintf(where, sizeof where, "command line: override %d", -o);
        feed_cfg_error(errs, where, 0, hint, "%s", msg);
    } else {
        feed_cfg_error(errs, cfg->file, o, hint, "%s", msg);
    }
}

int feed_config_validate(const feed_config *cfg, feed_cfg_errors *errs) {
    int before = errs->count;
    char msg[512];
    const feed_int_list *ms = &cfg->train.milestones;
    int ms_id = feed_cfg_find("train", "milestones");
    for (int i = 1; i < ms->n; i++) {
        if (ms->v[i] <= ms->v[i - 1]) {
            snprintf(msg, sizeof msg, "train.milestones must increase: %d comes after %d", ms->v[i],
                     ms->v[i - 1]);
            error_at(cfg, errs, ms_id, "e.g. milestones = 60,120,160", msg);
            break;
        }
    }
    int spc = feed_cfg_find("data", "subset_per_class"), sf = feed_cfg_find("data", "subset_fraction");
    if (cfg->data.subset_per_class > 0 && cfg->data.subset_fraction < 1.0) {
        error_at(cfg, errs, sf, "set only one of the two",
                 "data.subset_per_class and data.subset_fraction both select a subset");
    }
    (void)spc;
    if (strcmp(feed_cfg_arch_names[cfg->model.arch], "wrn") == 0 && (cfg->model.wrn_depth - 4) % 6 != 0) {
        snprintf(msg, sizeof msg, "model.wrn_depth = %d: WRN depth must be 6n+4", cfg->model.wrn_depth);
        error_at(cfg, errs, feed_cfg_find("model", "wrn_depth"), "e.g. 10, 16, 28 or 40", msg);
    }
    if (cfg->train.warmup_epochs >= cfg->train.epochs && cfg->train.warmup_epochs > 0) {
        snprintf(msg, sizeof msg, "train.warmup_epochs = %d is not shorter than train.epochs = %d",
                 cfg->train.warmup_epochs, cfg->train.epochs);
        error_at(cfg, errs, feed_cfg_find("train", "warmup_epochs"), "warm up over a few epochs only", msg);
    }
    const char *name = cfg->run.name;
    if (!name || !*name || strchr(name, '/')) {
        error_at(cfg, errs, feed_cfg_find("run", "name"), "use letters, digits, '-' and '_'",
                 "run.name must be a non-empty file-name prefix without '/'");
    }
    if (cfg->run.mode == FEED_MODE_PFEED && cfg->feed.teachers.n == 0) {
        error_at(cfg, errs, feed_cfg_find("run", "mode"),
                 "list the teacher checkpoints, e.g. teachers = runs/t/teacher_0.h5, runs/t/teacher_1.h5",
                 "run.mode = pfeed needs feed.teachers");
    }
    const char *resume = cfg->checkpoint.resume;
    if (!resume || !*resume) {
        error_at(cfg, errs, feed_cfg_find("checkpoint", "resume"), "auto, none or a checkpoint path",
                 "checkpoint.resume is empty");
    }
    return errs->count - before;
}
