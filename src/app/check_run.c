/* check_run.c - `feed_mpi --check CONFIG.ini`: everything a run would verify before its first
 * step, without training: the config, the data set (opened and validated), the model built
 * for the data set's images, and for pfeed every teacher checkpoint (opened, CRCs verified,
 * architecture known, trained on this data set's image size and classes) with its final
 * feature map against the student's; then the rank count to launch with. Any problem ends
 * with exit code 2 and the usual what/where/hint message. */
#include <stdio.h>
#include <string.h>

#include "feed/app.h"
#include "feed/check.h"
#include "feed/pfeed.h"
#include "feed/train.h"

/* Final feature map (1, C, H, W) of a network built for one image. */
static void final_map(feed_net *net, int dims[4]) {
    FEED_CHECK(feed_net_tap(net, "final", dims), "this is a bug", "model has no 'final' tap");
}

/* One word of a shell command line, single-quoted when it holds anything but [A-Za-z0-9_./=,:+@%-]
 * (so the printed launch line can be pasted as is). */
static void print_shell_word(const char *w) {
    if (*w && strspn(w, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_./=,:+@%-") == strlen(w)) {
        fputs(w, stdout);
        return;
    }
    putchar('\'');
    for (; *w; w++) {
        if (*w == '\'')
            fputs("'\\''", stdout); /* close the quote, an escaped quote, reopen */
        else
            putchar(*w);
    }
    putchar('\'');
}

void feed_check_run(const feed_config *cfg, int n_overrides, char **overrides) {
    feed_dataset *ds = feed_dataset_open(cfg->data.path);
    printf("data     %s: %s, %d classes, %dx%dx%d images, %lld train / %lld test\n", cfg->data.path,
           ds->name, ds->num_classes, ds->channels, ds->height, ds->width,
           (long long)ds->split[FEED_SPLIT_TRAIN].n, (long long)ds->split[FEED_SPLIT_TEST].n);
    feed_model_spec spec = feed_model_spec_from_config(cfg, ds, 1);
    feed_net *student = feed_model_create(&spec, 0, true);
    char name[64];
    int ds_dims[4];
    final_map(student, ds_dims);
    printf("model    %s, %zu parameters, final map %dx%dx%d\n", feed_model_name(&spec, name, sizeof name),
           feed_net_num_param_scalars(student), ds_dims[1], ds_dims[2], ds_dims[3]);
    int ranks = 1;
    if (cfg->run.mode == FEED_MODE_PFEED) {
        int n = cfg->feed.teachers.n;
        for (int k = 0; k < n; k++) {
            const char *path = cfg->feed.teachers.v[k];
            feed_net *t = feed_pfeed_load_teacher(path, ds, cfg->data.path, 1);
            int td[4];
            final_map(t, td);
            if (td[2] != ds_dims[2] || td[3] != ds_dims[3])
                FEED_INPUT_ERROR("teachers may have other channels than the student, but the same final "
                                 "map height and width",
                                 "teacher %d (%s) has a %dx%d final map, the student %dx%d", k + 1, path,
                                 td[2], td[3], ds_dims[2], ds_dims[3]);
            printf("teacher  %d: %s, final map %dx%dx%d, NTL %d -> %d channels\n", k + 1, path, td[1], td[2],
                   td[3], ds_dims[1], td[1]);
            feed_net_free(t);
        }
        ranks = cfg->feed.local_teachers ? 1 : n + 1;
    }
    feed_net_free(student);
    feed_dataset_close(ds);
    /* the command to launch exactly the run just checked: config file and overrides as given */
    const char *launcher, *note;
    if (cfg->run.mode == FEED_MODE_SCRATCH) {
        launcher = "mpirun -np N feed_mpi";
        note = feed_fmt("N teachers, rank r with seed %d + r", cfg->run.seed);
    } else if (ranks > 1) {
        launcher = feed_fmt("mpirun -np %d feed_mpi", ranks);
        note = "rank 0 = student, rank n = teacher n";
    } else {
        launcher = "feed_mpi";
        note = "teachers in the student's process";
    }
    printf("launch   %s ", launcher);
    print_shell_word(cfg->file);
    for (int i = 0; i < n_overrides; i++) putchar(' '), print_shell_word(overrides[i]);
    printf("   (%s)\n", note);
}
