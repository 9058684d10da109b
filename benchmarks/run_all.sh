#!/usr/bin/env bash
# Re-measure every CPU figure of docs/benchmarks.md, one script after the other, each writing
# NAME.json and NAME.md into one folder (plus all.md, everything together). Run it alone on a quiet
# machine: every script warns when the load average exceeds the cores.
#
#   benchmarks/run_all.sh [OUT]            # default OUT: bench-results/<UTC date-time>
#   PYTHON=.venv/bin/python benchmarks/run_all.sh
set -euo pipefail
cd "$(dirname "$0")/.."
OUT=${1:-bench-results/$(date -u +%Y%m%d-%H%M)}
PY=${PYTHON:-python}
export HF_HUB_OFFLINE=1 TOKENIZERS_PARALLELISM=false
mkdir -p "$OUT"
VIDEOS=(720p:10 720p:30 720p:150 720p:300 1080p:30 1080p:300)
START=$(date +%s)
step() { echo "== $* (at $(( $(date +%s) - START )) s)" | tee -a "$OUT/steps.txt" >&2; }

step "making the test videos (cached; encoding is not measured)"
"$PY" benchmarks/video_decode.py --prepare --videos "${VIDEOS[@]}" > /dev/null
step "tie metric"
"$PY" benchmarks/tie_metric.py --out "$OUT" > "$OUT/tie_metric.txt"
step "LLaVA conversion memory (1.25 GB checkpoint)"
"$PY" benchmarks/convert_llava_memory.py --out "$OUT" > "$OUT/convert_llava_memory.txt"
step "video decode"
"$PY" benchmarks/video_decode.py --videos "${VIDEOS[@]}" --sequential-repeats 1 --max-hold-gb 3 --out "$OUT"
step "judge throughput, tiny model"
"$PY" benchmarks/judge_throughput.py --config tiny --out "$OUT" > "$OUT/judge_throughput_tiny.txt"
step "judge throughput, mid size (the long one)"
"$PY" benchmarks/judge_throughput.py --config mid --out "$OUT" > "$OUT/judge_throughput_mid.txt"
step "one Pref-GRPO group through the server, tiny model"
"$PY" benchmarks/group_rewards.py --config tiny --out "$OUT" > "$OUT/group_rewards_tiny.txt"
step "one Pref-GRPO group through the server, mid size"
"$PY" benchmarks/group_rewards.py --config mid --out "$OUT" > "$OUT/group_rewards_mid.txt"
cat "$OUT"/*.md > "$OUT/all.md.tmp" && mv "$OUT/all.md.tmp" "$OUT/all.md"
step "done: $OUT/all.md"
