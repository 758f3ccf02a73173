/* metrics.h - what a training run reports.
 *
 * Per rank: one JSON object per epoch appended to <run.dir>/<prefix>_metrics.jsonl
 * (machine-readable; a resumed run first drops the lines of epochs after its checkpoint, so
 * the file always describes one consistent history).
 * Rank 0: one concise line per epoch on stdout summarising all ranks (mean and range), and
 * a live progress line during the epoch when stdout is a terminal (plain lines in batch jobs).
 */
#ifndef FEED_METRICS_H
#define FEED_METRICS_H

#include <mpi.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#define FEED_METRICS_MAX_EXTRA 40

/* The figures of one epoch on one rank. */
typedef struct {
    int64_t epoch; /* 1-based: the epoch just completed */
    int64_t step;  /* optimizer steps taken so far */
    double lr;
    double train_loss, train_error; /* mean over the epoch's samples; error in [0,1] */
    double test_loss, test_error;   /* NAN when not evaluated this epoch */
    double img_per_s;               /* training images per second of this rank */
    double seconds;                 /* wall time of the epoch (training + evaluation) */
    int n_extra;                    /* extra named figures (e.g. per-teacher losses) */
    const char *extra_name[FEED_METRICS_MAX_EXTRA];
    double extra[FEED_METRICS_MAX_EXTRA];
} feed_epoch_metrics;

typedef struct feed_metrics_log feed_metrics_log;

/* Open (create or append) path; with resume_epoch >= 0 first drop lines whose epoch is
 * greater (the run resumed from that epoch's checkpoint). */
feed_metrics_log *feed_metrics_open(const char *path, int64_t resume_epoch);
void feed_metrics_append(feed_metrics_log *log, int rank, const feed_epoch_metrics *m);
/* A line marking a resume or a stop, so both segments of a run are visible. */
void feed_metrics_event(feed_metrics_log *log, int rank, const char *event, int64_t epoch,
                        int64_t step);
void feed_metrics_close(feed_metrics_log *log);

/* --- standard output (rank 0) --- */

/* Collective over comm (the ranks that train together): gathers every rank's figures and
 * the first rank of comm prints one line, starting with "<label>: " when label is not NULL. */
void feed_report_epoch(const feed_epoch_metrics *m, int64_t epochs_total, double eta_seconds, const char *label,
                       MPI_Comm comm);

/* Progress inside an epoch, printed by the rank that prints the epoch lines (rank 0 of the
 * job's comm). On a terminal (world rank 0 only: one live line per job) one status line is
 * redrawn in place, at most 5 times a second; when stdout is a log (a pipe, a file, SLURM's
 * output) a plain line every `log_every_s` seconds (0: none), never a control character.
 * `extra` (may be empty) is appended: e.g. each teacher's wait so far. */
typedef struct {
    bool tty, log;
    double log_every_s;
    double last_print, start;
} feed_progress;
void feed_progress_start(feed_progress *p, int rank, double log_every_s);
/* Whether a line is due after step `step` (0-based) of `steps`: cheap, call it every step and
 * build the line's figures only when it says so. */
bool feed_progress_due(const feed_progress *p, int64_t step, int64_t steps);
/* Prints the line (call when feed_progress_due). */
void feed_progress_update(feed_progress *p, int64_t epoch, int64_t epochs, int64_t step,
                          int64_t steps, double loss, double img_per_s, const char *extra);
void feed_progress_clear(feed_progress *p);

double feed_now_seconds(void);
/* "1h02m", "4m05s", "12s" */
const char *feed_format_duration(double seconds, char *buf, size_t cap);

#endif
