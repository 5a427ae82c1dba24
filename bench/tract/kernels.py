#!/usr/bin/env python3
"""tract with edgevit's kernels against tract alone and against ONNX Runtime, in one run
(issue 34): the time of one inference (`edgevit bench` medians; ONNX Runtime's from Python on
the same ONNX files), 1 and 2 threads, and each package's worst self-test difference.

Models:
- ViT-Tiny f32 (`models/vit-tiny-int8` with its weights folded back to f32 by
  tools/fold_dequantize.py: the same function; random weights),
- ViT-Tiny weight-only int8 and static QDQ (`models/vit-tiny-int8`, `models/vit-tiny-qdq`),
- vit-mnist (`models/vit-mnist`),
- DINOv2 ViT-S/14 from ../shared (f32; its map flattened, as compare/pipeline makes it), and
  with --dinov2-qdq its static QDQ form quantized here (compare/pipeline's, calibrated on
  ../shared's photographs).
Each round runs every model, form and engine once, in turn, so that a slow spell of a shared
machine falls on all; each figure is the median of the rounds' medians.

Not run in CI. Needs an edgevit build (`cargo build`: the dev build optimises tract and the
kernels as release does) and the venv of compare/pipeline (onnxruntime, onnx, numpy):

    compare/pipeline/.venv/bin/python bench/tract/kernels.py [--edgevit target/debug/edgevit]
        [--rounds 3] [--iterations 20] [--threads 1 2] [--dinov2-qdq] [--json out.json]
"""
import argparse
import json
import os
import platform
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

import numpy as np
import onnxruntime as ort

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.join(ROOT, "compare/pipeline"))


def cpu_name():
    for line in open("/proc/cpuinfo"):
        if line.startswith("model name"):
            name = line.split(":", 1)[1].strip()
            flags = open("/proc/cpuinfo").read()
            has = [f for f in ("avx2", "fma", "avx512f", "avx512_vnni", "avx_vnni") if f" {f}" in flags]
            return f"{name} ({', '.join(has)})"
    return platform.processor()


def packages(work, shared, dinov2_qdq):
    out = {}
    tiny = os.path.join(work, "vit-tiny-f32")
    shutil.copytree(os.path.join(ROOT, "models/vit-tiny-int8"), tiny)
    subprocess.run([sys.executable, os.path.join(ROOT, "tools/fold_dequantize.py"),
                    os.path.join(ROOT, "models/vit-tiny-int8/model.onnx"), os.path.join(tiny, "model.onnx")],
                   check=True, stdout=subprocess.DEVNULL)
    out["vit-tiny-f32"] = tiny
    for name in ("vit-tiny-int8", "vit-tiny-qdq", "vit-mnist"):
        out[name] = os.path.join(ROOT, "models", name)
    from run import dinov2_package, dinov2_qdq_package
    out["dinov2-s"] = dinov2_package(work, shared)
    if dinov2_qdq:
        out["dinov2-s-qdq"] = dinov2_qdq_package(work, shared, out["dinov2-s"])
    return out


def backend_file(work, kernels, threads):
    path = os.path.join(work, f"backend-{kernels}-{threads}.toml")
    with open(path, "w") as f:
        f.write(f'[backend]\nkind = "tract"\nthreads = {threads}\nkernels = "{kernels}"\n')
    return path


def edgevit_ms(edgevit, pkg, config, iterations):
    r = subprocess.run([edgevit, "bench", pkg, "--backend-config", config, "--iterations", str(iterations)],
                       capture_output=True, text=True)
    if r.returncode != 0:
        sys.exit(f"edgevit bench {pkg}: {r.stderr}")
    return json.loads(r.stdout.strip().splitlines()[-1])["timing"]["median_ms"]


def worst_difference(edgevit, pkg, config):
    r = subprocess.run([edgevit, "models", "check", pkg, "--backend-config", config],
                       capture_output=True, text=True)
    m = re.search(r"worst difference ([0-9.eE+-]+)", r.stdout + r.stderr)
    return float(m.group(1)) if m else None


def ort_ms(pkg, threads, iterations):
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    session = ort.InferenceSession(os.path.join(pkg, "model.onnx"), options, providers=["CPUExecutionProvider"])
    first = session.get_inputs()[0]
    shape = [d if isinstance(d, int) else 1 for d in first.shape]
    feed = {first.name: np.random.default_rng(0).standard_normal(shape).astype(np.float32)}
    for _ in range(5):
        session.run(None, feed)
    times = []
    for _ in range(iterations):
        start = time.perf_counter()
        session.run(None, feed)
        times.append((time.perf_counter() - start) * 1e3)
    return statistics.median(times)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--edgevit", default=os.path.join(ROOT, "target/debug/edgevit"))
    parser.add_argument("--shared", default=os.environ.get("EDGEVIT_SHARED_DIR", os.path.join(ROOT, "../shared")))
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--iterations", type=int, default=20)
    parser.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--models", nargs="+")
    parser.add_argument("--dinov2-qdq", action="store_true")
    parser.add_argument("--json")
    args = parser.parse_args()
    work = tempfile.mkdtemp(prefix="edgevit-kernels-")
    try:
        pkgs = packages(work, args.shared, args.dinov2_qdq)
        if args.models:
            pkgs = {k: v for k, v in pkgs.items() if k in args.models}
        engines = ["tract", "edgevit", "ort"]
        samples = {(m, t, e): [] for m in pkgs for t in args.threads for e in engines}
        for r in range(args.rounds):
            for m, pkg in pkgs.items():
                for t in args.threads:
                    for e in engines:
                        ms = (ort_ms(pkg, t, args.iterations) if e == "ort"
                              else edgevit_ms(args.edgevit, pkg, backend_file(work, e, t), args.iterations))
                        samples[(m, t, e)].append(ms)
                        print(f"round {r + 1}: {m} {t} thread(s) {e}: {ms:.2f} ms", file=sys.stderr)
        diffs = {(m, e): worst_difference(args.edgevit, pkg, backend_file(work, e, 1))
                 for m, pkg in pkgs.items() for e in ("tract", "edgevit")}
        print(f"CPU: {cpu_name()}; {args.rounds} rounds of {args.iterations} inferences; edgevit: {args.edgevit}\n")
        print("| model | threads | tract alone (ms) | tract + edgevit's kernels (ms) | gain | ONNX Runtime (ms) | tract+kernels / ORT | self-test worst difference (alone / kernels) |")
        print("|---|---|---|---|---|---|---|---|")
        rows = []
        for m in pkgs:
            for t in args.threads:
                alone, ours, onnx = (statistics.median(samples[(m, t, e)]) for e in engines)
                d = diffs[(m, "tract")], diffs[(m, "edgevit")]
                shown = " / ".join("-" if x is None else f"{x:.2e}" for x in d)
                print(f"| {m} | {t} | {alone:.2f} | {ours:.2f} | {alone / ours:.2f}x | {onnx:.2f} | {ours / onnx:.2f} | {shown} |")
                rows.append({"model": m, "threads": t, "tract_ms": alone, "kernels_ms": ours, "ort_ms": onnx,
                             "worst_difference": {"tract": d[0], "kernels": d[1]},
                             "samples": {e: samples[(m, t, e)] for e in engines}})
        if args.json:
            with open(args.json, "w") as f:
                json.dump({"cpu": cpu_name(), "onnxruntime": ort.__version__, "rows": rows}, f, indent=1)
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
