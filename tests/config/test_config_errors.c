/* test_config_errors.c - every kind of malformed configuration gives exit code 2 and a
 * message naming FILE:LINE (or the command-line argument) and a hint; valid variants load.
 * Runs the real feed_mpi binary: `feed_mpi --check FILE [overrides]`. */
#define _POSIX_C_SOURCE 200809L
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "feed_test.h"

static char dir[512];

typedef struct {
    const char *name;
    const char *ini;       /* file text; NULL = the file does not exist */
    const char *overrides; /* appended to the command line */
    int code;              /* expected exit code */
    const char *expect[3]; /* substrings the output must contain ("@" = the file path) */
} config_case;

#define DATA "[data]\npath = data.h5\n"

static const config_case cases[] = {
    {"unknown_key", DATA "[train]\nepoch = 3\n", "", 2, {"@:4: unknown key 'epoch' in section [train]", "did you mean 'epochs'"}},
    {"unknown_section", DATA "[trian]\nepochs = 3\n", "", 2, {"@:3: unknown section [trian]", "did you mean [train]"}},
    {"unknown_section_no_sugg", DATA "[zzzzzz]\na = 1\n", "", 2, {"@:3: unknown section [zzzzzz]", "--help lists every section"}},
    {"int_type", DATA "[train]\nepochs = ten\n", "", 2, {"@:4: train.epochs = 'ten' is not an integer", "hint: train.epochs"}},
    {"int_junk", DATA "[train]\nepochs = 10x\n", "", 2, {"@:4:", "is not an integer"}},
    {"int_overflow", DATA "[train]\nepochs = 99999999999999999999999\n", "", 2, {"@:4:", "is not an integer"}},
    {"float_type", DATA "[train]\nlr = fast\n", "", 2, {"@:4: train.lr = 'fast' is not a number"}},
    {"float_inf", DATA "[train]\nlr = inf\n", "", 2, {"@:4:", "is not a number"}},
    {"float_nan", DATA "[train]\nmomentum = nan\n", "", 2, {"@:4:", "is not a number"}},
    {"bool_type", DATA "[train]\nnesterov = maybe\n", "", 2, {"@:4:", "is not true or false", "true/false, yes/no"}},
    {"int_range_low", DATA "[train]\nbatch = 0\n", "", 2, {"@:4: train.batch = 0 is out of range [1, 65536]"}},
    {"int_range_negative", DATA "[run]\nseed = -1\n", "", 2, {"@:4: run.seed = -1 is out of range"}},
    {"float_range", DATA "[train]\nmomentum = 1.5\n", "", 2, {"@:4: train.momentum = 1.5 is out of range"}},
    {"enum_suggest", DATA "[model]\narch = resnet21\n", "", 2, {"@:4: model.arch = 'resnet21' is not one of", "did you mean 'resnet20'"}},
    {"enum_no_suggest", DATA "pad_mode = mirror\n", "", 2, {"@:3: data.pad_mode = 'mirror' is not one of: zero, reflect"}},
    {"duplicate_key", DATA "[train]\nlr = 0.1\nlr = 0.2\n", "", 2, {"@:5: duplicate key 'lr' in [train] (first set at line 4)"}},
    {"duplicate_key_other_block", DATA "[train]\nlr = 0.1\n[model]\narch = resnet20\n[train]\nlr = 0.3\n", "", 2, {"@:8: duplicate key 'lr'", "first set at line 4"}},
    {"missing_required", "[data]\npad = 2\n", "", 2, {"@:1: missing required key 'path' in section [data]", "add 'path = ...'"}},
    {"missing_required_no_section", "[train]\nepochs = 2\n", "", 2, {"@: missing required key 'path' in section [data]"}},
    {"missing_file", NULL, "", 2, {"@: cannot read the config file: No such file or directory"}},
    {"empty_file", "", "", 2, {"@: the file has no settings"}},
    {"only_comments", "# nothing\n; here\n\n", "", 2, {"@: the file has no settings"}},
    {"long_line", NULL, "", 2, {"@:3: line is 5000 characters long; the limit is 4095"}},
    {"binary_garbage", NULL, "", 2, {"@:1: line contains", "binary data found"}},
    {"control_char", DATA "[train]\nlr = 0.1\x01\n", "", 2, {"@:4: line contains control character 0x01"}},
    {"key_before_section", "epochs = 3\n" DATA, "", 2, {"@:1: key 'epochs' appears before any [section]"}},
    {"no_equals", DATA "[train]\nepochs 3\n", "", 2, {"@:4: cannot parse 'epochs 3'"}},
    {"unclosed_section", DATA "[train\nepochs = 3\n", "", 2, {"@:3: section header without closing ']'"}},
    {"empty_section", DATA "[]\n", "", 2, {"@:3: empty section name"}},
    {"no_key_name", DATA "[train]\n= 3\n", "", 2, {"@:4: setting without a key name"}},
    {"empty_value", DATA "[train]\nlr =\n", "", 2, {"@:4: train.lr has an empty value"}},
    {"list_bad_item", DATA "[train]\nmilestones = 60,abc\n", "", 2, {"@:4: train.milestones: item 2 'abc' is not an integer"}},
    {"list_empty_item", DATA "[train]\nmilestones = 60,,120\n", "", 2, {"@:4:", "empty item"}},
    {"list_not_increasing", DATA "[train]\nmilestones = 60,50\n", "", 2, {"@:4: train.milestones must increase"}},
    {"data_missing", "[data]\npath = nope.h5\n", "", 2, {"@:2: data.path: cannot read 'nope.h5': No such file"}},
    {"data_is_dir", "[data]\npath = .\n", "", 2, {"@:2: data.path: '.' is not a regular file"}},
    {"wrn_depth", DATA "[model]\narch = wrn\nwrn_depth = 27\n", "", 2, {"@:5: model.wrn_depth = 27: WRN depth must be 6n+4"}},
    {"subset_both", DATA "subset_per_class = 10\nsubset_fraction = 0.5\n", "", 2, {"@:4: data.subset_per_class and data.subset_fraction"}},
    {"name_slash", DATA "[run]\nname = a/b\n", "", 2, {"@:4: run.name must be"}},
    {"pfeed_no_teachers", DATA "[run]\nmode = pfeed\n", "", 2, {"@:4: run.mode = pfeed needs distill.teachers", "teachers = "}},
    {"pfeed_teacher_missing", DATA "[run]\nmode = pfeed\n[distill]\nteachers = data.h5, nope.h5\n", "", 2, {"@:6: distill.teachers: cannot read 'nope.h5'"}},
    {"teachers_twice", DATA "[run]\nmode = pfeed\n[distill]\nteachers = data.h5, ./data.h5\n", "", 2, {"@:6: distill.teachers lists teacher 1 (data.h5) again as teacher 2 (./data.h5: the same file)", "list each teacher checkpoint once"}},
    {"terms_unknown", DATA "[distill]\nterms = kd, fed\n", "", 2, {"@:4: distill.terms: 'fed' is not one of: feed, kd, at, l1, ft", "did you mean 'feed'"}},
    {"terms_twice", DATA "[distill]\nterms = kd, at, kd\n", "", 2, {"@:4: distill.terms lists 'kd' twice", "give each value once"}},
    {"distill_no_terms", DATA "[run]\nmode = distill\n[distill]\nteachers = data.h5\nterms =\n", "", 2, {"@:7: distill.terms is empty", "terms = kd, feed"}},
    {"pfeed_other_terms", DATA "[run]\nmode = pfeed\n[distill]\nteachers = data.h5\nterms = kd\n", "", 2, {"@:7: run.mode = pfeed trains with terms = feed only", "use run.mode = distill"}},
    {"ce_weight_bad", DATA "[distill]\nce_weight = heavy\n", "", 2, {"@:4: distill.ce_weight = 'heavy' is neither auto nor a number >= 0"}},
    {"ce_weight_auto_negative", DATA "[distill]\nterms = kd\n[kd]\nalpha = 2\n", "", 2, {"@:6: distill.ce_weight = auto is 1 - kd.alpha", "set distill.ce_weight"}},
    {"paraphrasers_count", DATA "[run]\nmode = distill\n[distill]\nteachers = data.h5, data.h5\nterms = ft\n[ft]\nparaphrasers = data.h5\n", "", 2, {"@:9: ft.paraphrasers lists 1 file for 2 teachers"}},
    {"moved_key", DATA "[feed]\nteachers = data.h5\n", "", 2, {"@:4: unknown key 'teachers' in section [feed]", "it moved: use [distill] teachers"}},
    {"moved_key_override", DATA, "feed.local_teachers=true", 2, {"unknown key 'local_teachers'", "it moved: use [distill] source = local"}},
    {"override_unknown", DATA, "train.epoch=3", 2, {"command line: 'train.epoch=3': unknown key 'epoch'", "did you mean 'epochs'"}},
    {"override_malformed", DATA, "epochs3", 2, {"command line: 'epochs3': not a section.key=value override"}},
    {"override_range", DATA, "train.batch=-4", 2, {"command line: 'train.batch=-4': train.batch = -4 is out of range"}},
    {"override_twice", DATA, "train.lr=0.1 train.lr=0.2", 2, {"train.lr is overridden twice"}},
    {"override_bad_section", DATA, "trian.lr=0.1", 2, {"unknown section [trian]", "did you mean [train]"}},
    {"override_validated", DATA, "train.milestones=5,4", 2, {"command line: override 1: train.milestones must increase"}},
    {"several_errors", DATA "[train]\nepochs = x\nlr = y\n[model]\narch = z\n", "", 2, {"3 problems", "@:4:", "@:7:"}},
    /* valid variants */
    {"valid_minimal", DATA, "", 0, {"# effective configuration"}},
    {"valid_override_fixes_path", "[data]\npath = nope.h5\n", "data.path=data.h5", 0, {"# effective configuration"}},
    {"valid_crlf_colon_comments", "[data]\r\npath: data.h5\r\n[train]\r\n  epochs = 5 ; inline\r\nnesterov = OFF # too\r\n", "", 0, {"# effective configuration"}},
    {"valid_case_insensitive_enum", DATA "[model]\narch = ResNet20\nshortcut = a\n", "", 0, {"# effective configuration"}},
    {"valid_distill_terms", DATA "[run]\nmode = distill\n[distill]\nteachers = data.h5\nterms = KD, feed\nce_weight = 0.5\n", "", 0, {"terms = kd,feed", "ce_weight = 0.5"}},
};

static void write_case(const config_case *c, const char *path) {
    if (!strcmp(c->name, "long_line")) {
        char *s = malloc(6000);
        int n = sprintf(s, DATA);
        memset(s + n, 'x', 5000);
        s[n + 5000] = '\n';
        feed_test_write_file(path, s, (size_t)n + 5001);
        free(s);
    } else if (!strcmp(c->name, "binary_garbage")) {
        unsigned char g[512];
        for (int i = 0; i < 512; i++) g[i] = (unsigned char)(i * 131 + 7);
        feed_test_write_file(path, g, sizeof g);
    } else if (c->ini) {
        feed_test_write_file(path, c->ini, strlen(c->ini));
    }
}

static void run_case(const config_case *c) {
    char path[1024], cmd[4096], out[65536];
    snprintf(path, sizeof path, "%s/%s.ini", dir, c->name);
    write_case(c, path);
    /* --check goes on to open the data set (a dummy file here), so valid configs are
     * confirmed with --print-config, which validates the same way and stops there. */
    snprintf(cmd, sizeof cmd, "cd %s && %s %s %s.ini %s", dir, FEED_MPI_BIN,
             c->code == 0 ? "--print-config" : "--check", c->name, c->overrides);
    int code = feed_test_run(cmd, out, sizeof out);
    feed_test_checks++;
    if (code != c->code)
        feed_test_fail(__FILE__, __LINE__, "case %s: exit code %d, expected %d; output:\n%s", c->name,
                       code, c->code, out);
    for (int i = 0; i < 3 && c->expect[i]; i++) {
        char want[512];
        const char *at = strchr(c->expect[i], '@');
        if (at) snprintf(want, sizeof want, "%.*s%s.ini%s", (int)(at - c->expect[i]), c->expect[i], c->name, at + 1);
        else snprintf(want, sizeof want, "%s", c->expect[i]);
        feed_test_checks++;
        if (!strstr(out, want))
            feed_test_fail(__FILE__, __LINE__, "case %s: '%s' not in output:\n%s", c->name, want, out);
    }
    if (c->code != 0) {
        feed_test_checks++;
        if (!strstr(out, "hint:") && !strstr(out, "usage:"))
            feed_test_fail(__FILE__, __LINE__, "case %s: no hint in:\n%s", c->name, out);
    }
}

int main(void) {
    snprintf(dir, sizeof dir, "%s", "cfgtest_XXXXXX");
    if (!mkdtemp(dir)) return 1;
    char data[600];
    snprintf(data, sizeof data, "%s/data.h5", dir);
    feed_test_write_file(data, "x", 1);
    int n_error_cases = 0;
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        run_case(&cases[i]);
        n_error_cases += cases[i].code != 0;
    }
    printf("%d malformed-config cases\n", n_error_cases);
    EXPECT(n_error_cases >= 30);

    /* Command-line level errors. */
    char out[8192], cmd[2048];
    snprintf(cmd, sizeof cmd, "%s --chek x.ini", FEED_MPI_BIN);
    EXPECT_INT_EQ(feed_test_run(cmd, out, sizeof out), 2);
    EXPECT_STR_CONTAINS(out, "unknown option '--chek'");
    EXPECT_STR_CONTAINS(out, "did you mean '--check'");
    snprintf(cmd, sizeof cmd, "%s", FEED_MPI_BIN);
    EXPECT_INT_EQ(feed_test_run(cmd, out, sizeof out), 2);
    EXPECT_STR_CONTAINS(out, "no config file given");
    snprintf(cmd, sizeof cmd, "cd %s && %s --check .", dir, FEED_MPI_BIN);
    EXPECT_INT_EQ(feed_test_run(cmd, out, sizeof out), 2);
    EXPECT_STR_CONTAINS(out, ".: cannot read the config file");

    /* A 5,000-character path (longer than PATH_MAX: each component is fine) is named whole. */
    {
        static char long_path[5200], long_cmd[11000], long_out[16384];
        size_t n = (size_t)snprintf(long_path, sizeof long_path, "/tmp");
        while (n < 5000) n += (size_t)snprintf(long_path + n, sizeof long_path - n, "/%0200d", 7);
        snprintf(long_path + n, sizeof long_path - n, "/teacher.h5");
        snprintf(long_cmd, sizeof long_cmd, "%s eval --data %s %s", FEED_MPI_BIN, long_path, long_path);
        EXPECT_INT_EQ(feed_test_run(long_cmd, long_out, sizeof long_out), 2);
        EXPECT_STR_CONTAINS(long_out, long_path);
    }

    /* --help lists every mode and key with its type and default. */
    snprintf(cmd, sizeof cmd, "%s --help", FEED_MPI_BIN);
    EXPECT_INT_EQ(feed_test_run(cmd, out, sizeof out), 0);
    EXPECT_STR_CONTAINS(out, "scratch");
    EXPECT_STR_CONTAINS(out, "milestones             int list  default 60,120,160");
    EXPECT_STR_CONTAINS(out, "path                   path      REQUIRED");
    EXPECT_STR_CONTAINS(out, "(resnet20|resnet32|resnet44|resnet56|resnet110|wrn|resnext29|resnet18|resnet34)");

    /* --version names feed_mpi and every library. */
    snprintf(cmd, sizeof cmd, "%s --version", FEED_MPI_BIN);
    EXPECT_INT_EQ(feed_test_run(cmd, out, sizeof out), 0);
    EXPECT_STR_CONTAINS(out, "feed_mpi 0.");
    EXPECT_STR_CONTAINS(out, "oneDNN   2.");
    EXPECT_STR_CONTAINS(out, "HDF5     1.");
    EXPECT_STR_CONTAINS(out, "MPI      ");
    EXPECT_STR_CONTAINS(out, "OpenBLAS ");

    /* --print-config: defaults, file values, overrides, and the output loads back the same. */
    snprintf(cmd, sizeof cmd, "cd %s && %s --print-config valid_minimal.ini train.epochs=7 model.arch=resnet20 > printed.ini",
             dir, FEED_MPI_BIN);
    EXPECT_INT_EQ(feed_test_run(cmd, out, sizeof out), 0);
    snprintf(cmd, sizeof cmd, "cd %s && cat printed.ini", dir);
    feed_test_run(cmd, out, sizeof out);
    EXPECT_STR_CONTAINS(out, "\nepochs = 7  ; command line\n");
    EXPECT_STR_CONTAINS(out, "\narch = resnet20  ; command line\n");
    EXPECT_STR_CONTAINS(out, "\npath = data.h5  ; line 2\n");
    EXPECT_STR_CONTAINS(out, "\nlr = 0.1\n");
    EXPECT_STR_CONTAINS(out, "\nweight_decay = 0.0005\n");
    snprintf(cmd, sizeof cmd,
             "cd %s && %s --print-config printed.ini | grep -v '^#' | sed 's/  ;.*//' > again.ini && "
             "grep -v '^#' printed.ini | sed 's/  ;.*//' | diff - again.ini",
             dir, FEED_MPI_BIN);
    EXPECT_INT_EQ(feed_test_run(cmd, out, sizeof out), 0);

    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    if (!getenv("FEED_KEEP_TEST_FILES")) system(cmd);
    return feed_test_finish("test_config_errors");
}
