/* validate.c - checks that involve more than one key, reported at the line of the key
 * that has to change. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "feed/check.h"
#include "feed/config.h"
#include "feed/net.h"

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

/* distill.ce_weight: "auto" or a number >= 0; returns 0 and *w, or -1. */
static int parse_ce_weight(const char *text, double *w) {
    if (!text) return -1;
    if (strcmp(text, "auto") == 0) {
        *w = -1;
        return 0;
    }
    char *end;
    double v = strtod(text, &end);
    if (end == text || *end || !isfinite(v) || v < 0) return -1;
    *w = v;
    return 0;
}

const char *feed_cfg_job_folder(const feed_config *cfg) {
    return cfg->run.mode == FEED_MODE_CACHE ? cfg->cache.dir : cfg->run.dir;
}

const feed_int_list *feed_cfg_terms(const feed_config *cfg) {
    return cfg->run.mode == FEED_MODE_SFEED ? &cfg->sfeed.terms : &cfg->distill.terms;
}

bool feed_cfg_has_term(const feed_config *cfg, int id) {
    const feed_int_list *terms = feed_cfg_terms(cfg);
    for (int i = 0; i < terms->n; i++)
        if (terms->v[i] == id) return true;
    return false;
}

double feed_cfg_ce_weight(const feed_config *cfg) {
    double w = 1;
    if (parse_ce_weight(cfg->distill.ce_weight, &w) != 0) return 1; /* validated before use */
    if (w >= 0) return w;
    return feed_cfg_has_term(cfg, FEED_TERM_KD) ? 1.0 - cfg->kd.alpha : 1.0;
}

static void validate_distill(const feed_config *cfg, feed_cfg_errors *errs) {
    char msg[512];
    double w;
    if (parse_ce_weight(cfg->distill.ce_weight, &w) != 0) {
        snprintf(msg, sizeof msg, "distill.ce_weight = '%.100s' is neither auto nor a number >= 0",
                 cfg->distill.ce_weight ? cfg->distill.ce_weight : "");
        error_at(cfg, errs, feed_cfg_find("distill", "ce_weight"), "e.g. ce_weight = auto, 1 or 0.1", msg);
    } else if (w < 0 && feed_cfg_has_term(cfg, FEED_TERM_KD) && cfg->kd.alpha > 1) {
        snprintf(msg, sizeof msg, "distill.ce_weight = auto is 1 - kd.alpha, negative for kd.alpha = %g",
                 cfg->kd.alpha);
        error_at(cfg, errs, feed_cfg_find("kd", "alpha"), "set distill.ce_weight to a number >= 0", msg);
    }
    if (cfg->distill.source == FEED_SOURCE_CACHE && cfg->run.mode != FEED_MODE_DISTILL &&
        cfg->run.mode != FEED_MODE_PFEED) {
        snprintf(msg, sizeof msg, "distill.source = cache is for run.mode = distill or pfeed, not %s",
                 feed_cfg_mode_names[cfg->run.mode]);
        error_at(cfg, errs, feed_cfg_find("distill", "source"), "use distill.source = mpi or local", msg);
    }
    if (cfg->run.mode != FEED_MODE_DISTILL && cfg->run.mode != FEED_MODE_PFEED && cfg->run.mode != FEED_MODE_CACHE)
        return;
    const char *mode = feed_cfg_mode_names[cfg->run.mode];
    if (cfg->distill.teachers.n == 0) {
        snprintf(msg, sizeof msg, "run.mode = %s needs distill.teachers", mode);
        error_at(cfg, errs, feed_cfg_find("run", "mode"),
                 "list the teacher checkpoints, e.g. teachers = runs/t/teacher_0.h5, runs/t/teacher_1.h5", msg);
    }
    /* The same file twice (by name, or two names of one file) would weigh double and hold a
       rank for nothing: surely a copy-paste slip. */
    const feed_str_list *t = &cfg->distill.teachers;
    for (int i = 0; i < t->n; i++)
        for (int j = i + 1; j < t->n; j++) {
            struct stat a, b;
            bool same = strcmp(t->v[i], t->v[j]) == 0 ||
                        (stat(t->v[i], &a) == 0 && stat(t->v[j], &b) == 0 && a.st_dev == b.st_dev && a.st_ino == b.st_ino);
            if (!same) continue;
            snprintf(msg, sizeof msg, "distill.teachers lists teacher %d (%.200s) again as teacher %d%s", i + 1, t->v[i],
                     j + 1, strcmp(t->v[i], t->v[j]) ? feed_fmt(" (%.200s: the same file)", t->v[j]) : "");
            error_at(cfg, errs, feed_cfg_find("distill", "teachers"), "list each teacher checkpoint once", msg);
        }
    int terms = feed_cfg_find("distill", "terms");
    if (cfg->distill.terms.n == 0)
        error_at(cfg, errs, terms, "e.g. terms = feed, or terms = kd, feed", "distill.terms is empty");
    if (cfg->run.mode == FEED_MODE_PFEED && (cfg->distill.terms.n != 1 || cfg->distill.terms.v[0] != FEED_TERM_FEED))
        error_at(cfg, errs, terms, "use run.mode = distill for other terms (pfeed is distill with terms = feed)",
                 "run.mode = pfeed trains with terms = feed only");
    const feed_str_list *para = &cfg->ft.paraphrasers;
    if (para->n > 0 && para->n != cfg->distill.teachers.n) {
        snprintf(msg, sizeof msg, "ft.paraphrasers lists %d file%s for %d teachers", para->n, para->n > 1 ? "s" : "",
                 cfg->distill.teachers.n);
        error_at(cfg, errs, feed_cfg_find("ft", "paraphrasers"),
                 "one paraphraser per teacher, in the order of distill.teachers (or none: trained in run.dir)", msg);
    }
}

/* Data-parallel replicas: train.replicas for scratch, distill.student_ranks for a distill,
 * pfeed or sfeed student (sfeed: every generation); each splits train.batch evenly. */
static void validate_replicas(const feed_config *cfg, feed_cfg_errors *errs) {
    char msg[512];
    bool distill = cfg->run.mode == FEED_MODE_DISTILL || cfg->run.mode == FEED_MODE_PFEED;
    int P = 1, key = -1;
    if (cfg->train.replicas > 1) {
        key = feed_cfg_find("train", "replicas");
        P = cfg->train.replicas;
        if (cfg->run.mode != FEED_MODE_SCRATCH) {
            snprintf(msg, sizeof msg, "train.replicas = %d is for run.mode = scratch, not %s", P,
                     feed_cfg_mode_names[cfg->run.mode]);
            error_at(cfg, errs, key, distill ? "a distillation student takes distill.student_ranks" : "remove it", msg);
            return;
        }
    }
    if (cfg->distill.student_ranks > 1) {
        key = feed_cfg_find("distill", "student_ranks");
        P = cfg->distill.student_ranks;
        if (!distill && cfg->run.mode != FEED_MODE_SFEED) {
            snprintf(msg, sizeof msg, "distill.student_ranks = %d is for run.mode = distill, pfeed or sfeed, not %s", P,
                     feed_cfg_mode_names[cfg->run.mode]);
            error_at(cfg, errs, key,
                     cfg->run.mode == FEED_MODE_SCRATCH ? "scratch takes train.replicas" : "remove it", msg);
            return;
        }
        if (distill && cfg->distill.source == FEED_SOURCE_LOCAL) {
            error_at(cfg, errs, key, "use distill.source = mpi (teacher ranks) or cache",
                     "distill.source = local runs the teachers inside one student process; replicas need "
                     "their teachers on ranks or in caches");
            return;
        }
    }
    if (P > 1 && (cfg->train.sync_bn || cfg->distill.sync_bn) && cfg->train.precision == FEED_PRECISION_BF16)
        error_at(cfg, errs, feed_cfg_find("train", "precision"),
                 "set train.precision = fp32, or turn synchronised BN off (each replica's own batch statistics)",
                 "synchronised batch norm runs in fp32 only, not with train.precision = bf16");
    if (P > 1 && cfg->train.batch % P != 0) {
        snprintf(msg, sizeof msg, "train.batch = %d does not split into %d replicas", cfg->train.batch, P);
        error_at(cfg, errs, key, feed_fmt("make train.batch a multiple of %d, e.g. %d", P, cfg->train.batch / P * P + P),
                 msg);
    }
}

static void validate_sfeed(const feed_config *cfg, feed_cfg_errors *errs) {
    if (cfg->run.mode != FEED_MODE_SFEED) return;
    char msg[512];
    int terms = feed_cfg_find("sfeed", "terms");
    if (cfg->sfeed.terms.n == 0)
        error_at(cfg, errs, terms, "e.g. terms = feed (sFEED) or terms = kd (BAN)", "sfeed.terms is empty");
    for (int i = 0; i < cfg->sfeed.terms.n; i++)
        if (cfg->sfeed.terms.v[i] == FEED_TERM_FT)
            error_at(cfg, errs, terms, "use feed, kd, at or l1",
                     "sfeed.terms = ft: FT trains a paraphraser on a fixed teacher, and a generation's teacher "
                     "is the one before, still training or just finished");
    if (cfg->sfeed.lag_epochs > 0 && cfg->sfeed.lag_epochs >= cfg->train.epochs) {
        snprintf(msg, sizeof msg, "sfeed.lag_epochs = %d is not shorter than train.epochs = %d", cfg->sfeed.lag_epochs,
                 cfg->train.epochs);
        error_at(cfg, errs, feed_cfg_find("sfeed", "lag_epochs"),
                 "0 runs the generations one after the other; a lag of a quarter of the epochs overlaps them", msg);
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
    validate_distill(cfg, errs);
    validate_replicas(cfg, errs);
    validate_sfeed(cfg, errs);
    const char *resume = cfg->checkpoint.resume;
    if (!resume || !*resume) {
        error_at(cfg, errs, feed_cfg_find("checkpoint", "resume"), "auto, none or a checkpoint path",
                 "checkpoint.resume is empty");
    }
    return errs->count - before;
}
