/* test_lr_schedule.c - multistep and cosine schedules equal torch.optim.lr_scheduler's values
 * (fixture optim.h5, /lr/...), to the last bit; warm-up; milestones listed twice. */
#include "feed/lr_schedule.h"
#include "feed_test.h"
#include "fixture_read.h"

#include <stdio.h>
#include <stdlib.h>

/* Every epoch's value equal to PyTorch's (exact, with a 1e-14 relative fallback reported). */
static void expect_matches_torch(hid_t f, const char *name, const feed_lr_schedule *s) {
    char ds[64];
    size_t epochs;
    snprintf(ds, sizeof ds, "lr/%s/values", name);
    double *want = fixture_doubles(f, ds, &epochs);
    int exact = 0;
    for (size_t e = 0; e < epochs; e++) {
        double got = feed_lr_at_epoch(s, (int)e);
        exact += got == want[e];
        EXPECT(fabs(got - want[e]) <= 1e-14 * fabs(want[e]) + 1e-300);
    }
    printf("  lr/%-10s %zu epochs, %d bit-identical to torch\n", name, epochs, exact);
    free(want);
}

static void check_torch_schedules(void) {
    hid_t f = fixture_open("optim.h5");
    const int milestones[] = {60, 120, 160};
    feed_lr_schedule multistep = feed_lr_multistep(0.1, milestones, 3, 0.2);
    expect_matches_torch(f, "multistep", &multistep);
    feed_lr_schedule cosine = feed_lr_cosine(0.1, 200, 0.0);
    expect_matches_torch(f, "cosine", &cosine);
    feed_lr_schedule cosine_min = feed_lr_cosine(0.1, 50, 1e-3);
    expect_matches_torch(f, "cosine_min", &cosine_min); /* 120 epochs: past T_max and back up */
    fixture_close(f);
}

static void check_closed_forms(void) {
    const int milestones[] = {0, 3, 3};
    feed_lr_schedule s = feed_lr_multistep(1.0, milestones, 3, 0.5);
    EXPECT_NEAR_REL(feed_lr_at_epoch(&s, 0), 0.5, 1e-15);   /* milestone 0 applies at once */
    EXPECT_NEAR_REL(feed_lr_at_epoch(&s, 2), 0.5, 1e-15);
    EXPECT_NEAR_REL(feed_lr_at_epoch(&s, 3), 0.125, 1e-15); /* listed twice: gamma^2 */
    EXPECT_NEAR_REL(feed_lr_at_epoch(&s, 100), 0.125, 1e-15);

    feed_lr_schedule c = feed_lr_cosine(0.1, 10, 0.0);
    EXPECT_NEAR_REL(feed_lr_at_epoch(&c, 5), 0.05, 1e-12);
    EXPECT(fabs(feed_lr_at_epoch(&c, 10)) < 1e-15);

    /* warm-up: linear over the first 4 steps of the run, then the epoch's value */
    c.warmup_steps = 4;
    EXPECT_NEAR_REL(feed_lr_at_step(&c, 0, 0), 0.025, 1e-15);
    EXPECT_NEAR_REL(feed_lr_at_step(&c, 0, 2), 0.075, 1e-15);
    EXPECT(feed_lr_at_step(&c, 0, 4) == 0.1);
    EXPECT(feed_lr_at_step(&c, 3, 40) == feed_lr_at_epoch(&c, 3));
}

int main(void) {
    check_torch_schedules();
    check_closed_forms();
    return feed_test_finish("test_lr_schedule");
}
