#!/bin/bash
# bench_vs_torch.sh - feed_bench against tools/torch_bench.py, alternating, on this machine.
#
#   tools/bench_vs_torch.sh [--rounds N] [--build DIR] [--threads T] [--teachers N]
#                           [--model M] [--batch B] [--precision fp32|bf16] [WHAT...]
#
# WHAT is any of train, forward, pfeed-step, kd-step, at-step, ft-step, l1-step (default:
# train forward pfeed-step). The *-steps are a distillation method's student step with
# --teachers N given teacher outputs (default 5); both programs get --teachers N for them.
# Each round runs, for each WHAT, feed_bench then PyTorch (channels_last, the faster PyTorch
# layout here) one after the other, so both see the same machine state; rounds repeat that to
# expose drift. The default model is ResNet-56, 100 classes, batch 128, 32x32. Prints every
# measurement line of both programs, then per WHAT the median img/s of each and their ratio:
#   summary <what> feed_img_per_s=<x> torch_cl_img_per_s=<y> ratio=<x/y> feed_rss_mb=<a> torch_rss_mb=<b> rounds=<n>
# --precision bf16: feed_bench --precision bf16 against PyTorch under torch.autocast("cpu",
# dtype=torch.bfloat16), and feed_bench in fp32 in the same rounds; the summary adds
#   feed_fp32_img_per_s=<z> vs_fp32=<x/z>.
# Targets the README states: train >= 1.3x, forward >= 1.4x, every *-step with 5 teachers
# >= 1.3x, peak RSS no larger than PyTorch's. Run it on an otherwise idle machine; the script
# only reports figures and never fails on them.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
rounds=3 build="$here/../build" threads=2 teachers=5 model=resnet56 batch=128 precision=fp32 whats=()
while [ $# -gt 0 ]; do
  case "$1" in
    --rounds) rounds=$2; shift 2 ;;
    --build) build=$2; shift 2 ;;
    --threads) threads=$2; shift 2 ;;
    --teachers) teachers=$2; shift 2 ;;
    --model) model=$2; shift 2 ;;
    --batch) batch=$2; shift 2 ;;
    --precision) precision=$2; shift 2 ;;
    train|forward|pfeed-step|kd-step|at-step|ft-step|l1-step) whats+=("$1"); shift ;;
    -h|--help) sed -n '2,21p' "$0"; exit 0 ;;
    *) echo "bench_vs_torch.sh: error: unknown argument '$1'" >&2
       echo "  hint: tools/bench_vs_torch.sh --help" >&2; exit 2 ;;
  esac
done
[ ${#whats[@]} -gt 0 ] || whats=(train forward pfeed-step)
bench="$build/feed_bench"
[ -x "$bench" ] || { echo "bench_vs_torch.sh: error: $bench not found; hint: ./tools/setup.sh build" >&2; exit 2; }
export OMP_NUM_THREADS=$threads
common=(--model "$model" --classes 100 --batch "$batch" --threads "$threads" --steps 10 --warmup 3)
log=$(mktemp)
trap 'rm -f "$log"' EXIT
for ((r = 1; r <= rounds; r++)); do
  for what in "${whats[@]}"; do
    extra=()
    case "$what" in *-step) extra=(--teachers "$teachers") ;; esac
    "$bench" "${common[@]}" --precision "$precision" "$what" "${extra[@]}" 2>/dev/null | grep " model=" \
      | sed 's/^/feed  /' | tee -a "$log"
    if [ "$precision" != fp32 ]; then
      "$bench" "${common[@]}" "$what" "${extra[@]}" 2>/dev/null | grep " model=" | sed 's/^/feed32 /' | tee -a "$log"
    fi
    /usr/bin/python3 "$here/torch_bench.py" "${common[@]}" --precision "$precision" --layout channels_last "$what" "${extra[@]}" \
      | grep " model=" | sed 's/^/torch /' | tee -a "$log"
  done
done
# median img/s and max RSS per (program, what)
for what in "${whats[@]}"; do
  awk -v what="$what" '
    function field(k,   i) { for (i = 1; i <= NF; i++) if (index($i, k "=") == 1) return substr($i, length(k) + 2); return "" }
    $2 == what { p = $1; n[p]++; v[p, n[p]] = field("img_per_s") + 0; r = field("peak_rss_mb") + 0; if (r > rss[p]) rss[p] = r }
    function median(p,   i, j, t, m) {
      m = n[p]; for (i = 1; i <= m; i++) for (j = i + 1; j <= m; j++) if (v[p, j] < v[p, i]) { t = v[p, i]; v[p, i] = v[p, j]; v[p, j] = t }
      return m % 2 ? v[p, (m + 1) / 2] : (v[p, m / 2] + v[p, m / 2 + 1]) / 2 }
    END { if (n["feed"] && n["torch"]) { f = median("feed"); t = median("torch")
          printf "summary %s feed_img_per_s=%.1f torch_cl_img_per_s=%.1f ratio=%.2f feed_rss_mb=%d torch_rss_mb=%d rounds=%d", what, f, t, f / t, rss["feed"], rss["torch"], n["feed"]
          if (n["feed32"]) { z = median("feed32"); printf " feed_fp32_img_per_s=%.1f vs_fp32=%.2f", z, f / z }
          printf "\n" } }' "$log"
done
