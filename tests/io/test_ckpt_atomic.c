/* test_ckpt_atomic.c - a writer SIGKILLed at random moments never leaves a partial checkpoint
 * under the final name: after every kill the file opens, verifies, and holds one whole
 * version (the old or the new one, all tensors alike). Left-over .tmp files are replaced by
 * the next write. The random moments are reproducible: FEED_TEST_SEED=<n> repeats a run. */
#include "ckpt_test_util.h"
#include "feed_test.h"

#include "feed/check.h"

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

enum { N_TENSORS = 12, TENSOR_FLOATS = 256 * 1024, ROUNDS = 40 }; /* a 12 MB checkpoint */

static double now_seconds(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec * 1e-9;
}

/* Version v: epoch = v and every value of every tensor = v. */
static void write_version(const char *path, int64_t v) {
    feed_ckpt_meta meta = sample_meta;
    meta.epoch = v;
    meta.step = v * 100;
    float *values = feed_xmalloc(TENSOR_FLOATS * sizeof(float), "test tensor");
    for (int i = 0; i < TENSOR_FLOATS; i++) values[i] = (float)v;
    feed_ckpt_writer *w = feed_ckpt_begin(path, &meta);
    for (int t = 0; t < N_TENSORS; t++)
        feed_ckpt_put(w, "model", feed_fmt("layer%d.weight", t), (feed_ckpt_shape){FEED_CKPT_F32, 2, {512, 512}}, values);
    feed_ckpt_put_i64(w, "train", "version", v);
    feed_ckpt_commit(w);
    free(values);
}

/* Opens path and returns its version after checking every tensor carries it (-1 if not). */
static int64_t read_version(const char *path) {
    feed_ckpt_error err;
    feed_ckpt *c = feed_ckpt_try_open(path, &err);
    if (!c) {
        feed_test_fail(__FILE__, __LINE__, "after a kill: %s", err.message);
        return -1;
    }
    int64_t v = feed_ckpt_get_meta(c)->epoch;
    int mixed = feed_ckpt_read_i64(c, "train", "version") != v;
    float *values = feed_xmalloc(TENSOR_FLOATS * sizeof(float), "test tensor");
    for (int t = 0; t < N_TENSORS && !mixed; t++) {
        feed_ckpt_read(c, "model", feed_fmt("layer%d.weight", t), (feed_ckpt_shape){FEED_CKPT_F32, 2, {512, 512}},
                       values);
        for (int i = 0; i < TENSOR_FLOATS; i++)
            if (values[i] != (float)v) mixed = 1;
    }
    free(values);
    feed_ckpt_close(c);
    if (mixed) feed_test_fail(__FILE__, __LINE__, "%s mixes versions (epoch %lld)", path, (long long)v);
    return mixed ? -1 : v;
}

typedef struct {
    const char *path, *tmp;
    int64_t version;
    int kept_old, got_new, tmp_left;
} atomic_state;

/* One writer of version+1, SIGKILLed after delay_us (or left to finish when delay_us < 0). */
static void one_round(atomic_state *s, long delay_us) {
    fflush(stdout);
    pid_t pid = fork();
    if (pid < 0) {
        perror("fork");
        exit(1);
    }
    if (pid == 0) {
        write_version(s->path, s->version + 1);
        _exit(0);
    }
    if (delay_us >= 0) {
        nanosleep(&(struct timespec){delay_us / 1000000, (long)(delay_us % 1000000) * 1000}, NULL);
        kill(pid, SIGKILL);
    }
    int status;
    waitpid(pid, &status, 0);
    if (file_exists(s->tmp)) s->tmp_left++;
    int64_t v = read_version(s->path);
    EXPECT(v == s->version || v == s->version + 1);
    if (v == s->version) s->kept_old++;
    if (v == s->version + 1) s->got_new++;
    if (v > 0) s->version = v;
}

int main(void) {
    char *dir = test_scratch_dir("atomic");
    char *path = feed_xstrdup(feed_fmt("%s/run_e0001_s00000100.h5", dir));
    char *tmp = feed_ckpt_tmp_path(path);

    double t0 = now_seconds();
    write_version(path, 1);
    double write_time = now_seconds() - t0;
    EXPECT_INT_EQ(read_version(path), 1);

    const char *seed_env = getenv("FEED_TEST_SEED");
    unsigned seed = seed_env ? (unsigned)strtoul(seed_env, NULL, 10) : 12345u;
    srand(seed);
    printf("test_ckpt_atomic: one write takes %.1f ms; %d rounds, FEED_TEST_SEED=%u\n", write_time * 1e3, ROUNDS, seed);

    atomic_state s = {.path = path, .tmp = tmp, .version = 1};
    for (int round = 0; round < ROUNDS; round++) {
        /* kill somewhere in [0, 1.2 x a write's duration], so some writes finish */
        one_round(&s, (long)(write_time * 1.2e6 * rand() / (double)RAND_MAX));
    }
    /* A loaded machine can shift every random kill to one side of the rename; make sure
     * both outcomes were seen (killed at once: old kept; not killed: new complete), so the
     * random rounds above are known to have straddled the rename's possible moments. */
    for (int extra = 0; extra < 20 && (s.kept_old == 0 || s.tmp_left == 0); extra++) one_round(&s, 0);
    if (s.got_new == 0) one_round(&s, -1);
    int64_t version = s.version;
    printf("test_ckpt_atomic: old version kept %d times, new one complete %d times, .tmp left %d times\n",
           s.kept_old, s.got_new, s.tmp_left);
    EXPECT(s.kept_old > 0);
    EXPECT(s.got_new > 0);
    EXPECT(s.tmp_left > 0);

    /* a normal write after all that replaces any .tmp and succeeds */
    write_version(path, version + 1);
    EXPECT(!file_exists(tmp));
    EXPECT_INT_EQ(read_version(path), version + 1);

    free(tmp);
    free(path);
    test_remove_dir(dir);
    free(dir);
    return feed_test_finish("test_ckpt_atomic");
}
