/* fuzz_config.c - libFuzzer target: the INI configuration reader.
 *
 * Input: INI text, optionally followed by "\0\0" and command-line overrides separated by
 * single NUL bytes ("train.epochs=3\0run.seed=2"). It goes through feed_config_load_text,
 * the function `feed_mpi CONFIG.ini [overrides]` reaches through feed_config_load_file, with
 * input paths checked as rank 0 does. A configuration that loads must also round-trip: its
 * --print-config text loads back without errors and prints the same (otherwise abort).
 */
#define _POSIX_C_SOURCE 200809L
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "feed/config.h"
#include "fuzz_common.h"

#define MAX_OVERRIDES 16

static char *print_config(const feed_config *cfg) {
    char *text = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&text, &len);
    if (!f) abort();
    feed_config_print(cfg, f);
    if (fclose(f) != 0) abort();
    return text;
}

/* --print-config output loads back into the same configuration. */
static void check_round_trip(const feed_config *cfg) {
    char *printed = print_config(cfg);
    feed_config again;
    feed_cfg_errors errs = {0};
    feed_cfg_load_opts opts = {.check_paths = false};
    int n = feed_config_load_text(&again, "printed.ini", printed, strlen(printed), 0, NULL, opts, &errs);
    char *reprinted = n == 0 ? print_config(&again) : NULL;
    if (n != 0 || strcmp(printed, reprinted) != 0) {
        fprintf(stderr, "fuzz_config: --print-config does not round-trip (%d errors)\n%s\n--- printed:\n%s\n"
                        "--- printed again:\n%s\n", n, errs.text ? errs.text : "", printed, reprinted ? reprinted : "");
        abort();
    }
    free(printed);
    free(reprinted);
    feed_config_free(&again);
    feed_cfg_errors_free(&errs);
}

typedef struct {
    const char *text;
    size_t len;
    int n_overrides;
    char **overrides;
} load_args;

static void load(void *arg) {
    const load_args *a = arg;
    feed_config cfg;
    feed_cfg_errors errs = {0};
    feed_cfg_load_opts opts = {.check_paths = true};
    int n = feed_config_load_text(&cfg, "fuzz.ini", a->text, a->len, a->n_overrides, a->overrides, opts, &errs);
    if (n == 0) check_round_trip(&cfg);
    else if (!errs.text || errs.count != n) abort(); /* every counted error has its text */
    feed_config_free(&cfg);
    feed_cfg_errors_free(&errs);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    fuzz_init();
    size_t text_len = size;
    for (size_t i = 0; i + 1 < size; i++)
        if (data[i] == 0 && data[i + 1] == 0) {
            text_len = i;
            break;
        }
    /* overrides: NUL-terminated copies of the pieces after the separator */
    char *tail = NULL, *ov[MAX_OVERRIDES];
    int n_ov = 0;
    if (text_len + 2 <= size) {
        size_t tail_len = size - text_len - 2;
        tail = malloc(tail_len + 1);
        memcpy(tail, data + text_len + 2, tail_len);
        tail[tail_len] = 0;
        for (char *p = tail; p < tail + tail_len && n_ov < MAX_OVERRIDES; p += strlen(p) + 1) ov[n_ov++] = p;
    }
    load_args a = {(const char *)data, text_len, n_ov, ov};
    int code = fuzz_catch(load, &a);
    /* The loader reports problems through its error list; it may end the job only on a bug
     * (a bad schema default) or out of memory - neither is an input's fault. */
    if (code != 0) {
        fprintf(stderr, "fuzz_config: the config loader ended the job (exit code %d)\n", code);
        abort();
    }
    free(tail);
    return 0;
}
