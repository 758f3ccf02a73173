#!/bin/bash
# fresh_start_refuses.sh FEED_MPI MPIEXEC DATA WORK - a new run must not start in a folder
# holding an earlier run's checkpoints (keep_last pruned by step and deleted the new run's own
# files, then saving the best checkpoint failed): checkpoint.resume=none and a rank count
# whose ranks do not all have checkpoints both end with exit 2 and a message, files untouched;
# so does a resume when every checkpoint is damaged (it must not start over silently).
set -u
feed=$1 mpiexec=$2 data=$3 work=$4
rm -rf "$work" && mkdir -p "$work"
args=(data.path="$data" run.dir="$work/run" data.subset_per_class=20 train.epochs=2 train.milestones=1 run.threads=1)
cfg=$(dirname "$0")/../../jobs/fashion_scratch.ini
fail() { echo "FAIL: $*"; exit 1; }
"$feed" "$cfg" "${args[@]}" > "$work/first.log" 2>&1 || fail "first run: $(tail -3 "$work/first.log")"
before=$(md5sum "$work"/run/*.h5)
"$feed" "$cfg" "${args[@]}" checkpoint.resume=none > "$work/none.log" 2>&1
rc=$?
[ $rc -eq 2 ] || fail "resume=none over old checkpoints exited $rc, expected 2"
grep -q "already holds 2 checkpoint(s) of an earlier run" "$work/none.log" || fail "message: $(cat "$work/none.log")"
grep -q "hint: give the run another run.dir" "$work/none.log" || fail "no hint: $(cat "$work/none.log")"
"$mpiexec" --oversubscribe --bind-to none -np 2 "$feed" "$cfg" "${args[@]}" > "$work/partial.log" 2>&1
rc=$?
[ $rc -ne 0 ] || fail "2 ranks with checkpoints for rank 0 only exited 0"
grep -q "other ranks have no checkpoint to resume from, but .* already holds" "$work/partial.log" || fail "message: $(cat "$work/partial.log")"
[ "$before" = "$(md5sum "$work"/run/*.h5)" ] || fail "the earlier run's files changed"
# every checkpoint damaged: no silent start from epoch 1
for f in "$work"/run/teacher0_e*.h5; do head -c 20000 "$f" > "$f.cut" && mv "$f.cut" "$f"; done
damaged=$(md5sum "$work"/run/*.h5)
"$feed" "$cfg" "${args[@]}" > "$work/damaged.log" 2>&1
rc=$?
[ $rc -eq 2 ] || fail "all checkpoints damaged: exited $rc, expected 2: $(tail -3 "$work/damaged.log")"
grep -q "every checkpoint of teacher0 in .* is damaged (see above): nothing to resume from" "$work/damaged.log" ||
  fail "message: $(cat "$work/damaged.log")"
[ "$damaged" = "$(md5sum "$work"/run/*.h5)" ] || fail "the damaged run's files changed"
echo "PASS: fresh starts over earlier checkpoints refused (resume=none: exit 2; partial ranks: exit $rc); files unchanged; all damaged: exit 2"
