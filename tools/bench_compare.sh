#!/usr/bin/env bash
# Latency of the ViT-Tiny packages through edgevit (tract) and ONNX Runtime, interleaved in one
# run so that both see the same machine load. Needs a release build and tools/.venv.
#   cargo build --release && bash tools/bench_compare.sh [ROUNDS] [THREADS...]
set -euo pipefail
cd "$(dirname "$0")/.."
rounds=${1:-3}
shift || true
threads=("${@:-1}")
[ ${#threads[@]} -gt 0 ] || threads=(1)
for t in "${threads[@]}"; do
  for r in $(seq "$rounds"); do
    for m in vit-tiny-f32 vit-tiny-int8; do
      [ -f "models/$m/model.toml" ] || continue
      tract=$(./target/release/edgevit bench "models/$m" --threads "$t" --iterations 30 2>/dev/null |
        python3 -c 'import json,sys; print(json.load(sys.stdin)["timing"]["median_ms"])')
      ort=$(tools/.venv/bin/python tools/bench_ort.py "models/$m/model.onnx" --threads "$t" --runs 30 |
        python3 -c 'import json,sys; print(json.load(sys.stdin)["ort"]["median_ms"])')
      printf '%s threads=%s round=%s tract_median_ms=%.1f ort_median_ms=%.1f tract/ort=%.2f\n' \
        "$m" "$t" "$r" "$tract" "$ort" "$(python3 -c "print($tract/$ort)")"
    done
  done
done
