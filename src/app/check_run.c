/* check_run.c - `feed_mpi --check CONFIG.ini`: everything a run would verify before its first
 * step, without training: the config, the data set (opened and validated), the model built
 * for the data set's images, what the mode adds (its check in the mode table: for distill
 * every teacher checkpoint - opened, CRCs verified, architecture known, trained on this data
 * set - against the student for every term); then the rank count to launch with. Any problem
 * ends with exit code 2 and the usual what/where/hint message. */
#include <stdio.h>
#include <string.h>

#include "feed/app.h"
#include "feed/check.h"
#include "feed/engine.h"
#include "feed/run_lock.h"
#include "feed/modes.h"
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
    char lock_why[1200];
    if (feed_run_lock_probe(feed_cfg_job_folder(cfg), lock_why, sizeof lock_why) != 0)
        FEED_INPUT_ERROR(cfg->run.mode == FEED_MODE_CACHE ? "give this job another cache.dir, or wait for the other to end"
                                                          : "give this run another run.dir, or wait for the other run to end",
                         "%s", lock_why);
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
    feed_net_free(student);
    bool bf16 = cfg->run.precision == FEED_PRECISION_BF16 || cfg->train.precision == FEED_PRECISION_BF16;
    const char *fallback = bf16 && !feed_engine_bf16_supported()
                               ? feed_fmt(": no bf16 kernels on this CPU (oneDNN ISA %s), all in fp32", feed_engine_isa())
                               : "";
    printf("precision inference networks %s, students %s%s\n", feed_precision_name(cfg->run.precision),
           feed_precision_name(cfg->train.precision), fallback);
    const feed_mode_info *mode = &feed_modes[cfg->run.mode];
    if (mode->check) mode->check(cfg, ds, &spec);
    feed_dataset_close(ds);
    /* the command to launch exactly the run just checked: config file and overrides as given */
    char why[256];
    int ranks = mode->ranks(cfg, why, sizeof why);
    if (ranks == 0)
        printf("launch   mpirun -np N feed_mpi ");
    else if (ranks < 0)
        printf("launch   mpirun -np %d*N feed_mpi ", -ranks);
    else if (ranks == 1)
        printf("launch   feed_mpi ");
    else
        printf("launch   mpirun -np %d feed_mpi ", ranks);
    print_shell_word(cfg->file);
    for (int i = 0; i < n_overrides; i++) putchar(' '), print_shell_word(overrides[i]);
    printf("   (%s)\n", ranks == 1 ? why : mode->layout);
}
