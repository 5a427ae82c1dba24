#!/usr/bin/env python3
"""One table from one run: ViT-Tiny and vit-mnist, f32 and int8, tract vs ONNX Runtime, 1 and 2
threads: `edgevit bench` medians and each package's worst self-test difference per backend.

    cargo build --release --features ort
    python3 compare/backends.py [--rounds 2] [--iterations 40] [--library PATH]

The f32 packages are made in a temporary folder from tools/work/ (`bash tools/build_models.sh
vit-mnist vit-tiny` writes those ONNX files; their self-test references come from ONNX
Runtime at `basic`, by tools/make_package.py, so tools/.venv is needed). The int8 packages are
the bundled ones: vit-mnist and vit-tiny-int8 (weight-only int8) and vit-tiny-qdq (static QDQ).
Rounds are interleaved (every model and backend once, then again) so that all see the same
load on a shared machine; the table gives each median's range over the rounds.
"""
import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
EDGEVIT = os.path.join(ROOT, "target/release/edgevit")
PY = os.path.join(ROOT, "tools/.venv/bin/python")


def f32_packages(work):
    """vit-mnist-f32 and vit-tiny-f32 packages from tools/work's f32 ONNX files."""
    out = {}
    mnist = os.path.join(work, "vit-mnist-f32")
    shutil.copytree(os.path.join(ROOT, "models/vit-mnist"), mnist)
    shutil.copyfile(os.path.join(ROOT, "tools/work/vit-mnist-f32.onnx"), os.path.join(mnist, "model.onnx"))
    text = open(os.path.join(mnist, "model.toml")).read()
    # The folded f32 weights are vit-mnist's int8 weights exactly: the same reference holds.
    open(os.path.join(mnist, "model.toml"), "w").write(text.replace('name = "vit-mnist"', 'name = "vit-mnist-f32"'))
    out["vit-mnist-f32"] = mnist
    tiny = os.path.join(work, "vit-tiny-f32")
    subprocess.run([PY, os.path.join(ROOT, "tools/make_package.py"), "--name", "vit-tiny-f32",
                    "--onnx", os.path.join(ROOT, "tools/work/vit-tiny-f32.onnx"), "--out", tiny,
                    "--color", "rgb", "--mean", "0.485", "0.456", "0.406", "--std", "0.229", "0.224", "0.225",
                    "--resize", "center-crop", "--synthetic-image", "--attention",
                    "--description", "vit-tiny f32 (random weights), for benchmarks"],
                   check=True, stdout=subprocess.DEVNULL)
    out["vit-tiny-f32"] = tiny
    return out


def backend_args(backend, library):
    return ["--backend", backend] + (["--library", library] if backend == "ort" else [])


def worst_difference(path, backend, library):
    r = subprocess.run([EDGEVIT, "models", "check", path] + backend_args(backend, library),
                       capture_output=True, text=True)
    m = re.search(r"worst difference ([0-9.eE+-]+)", r.stdout + r.stderr)
    return float(m.group(1)) if m else None


def median(path, backend, threads, iterations, library):
    r = subprocess.run([EDGEVIT, "bench", path, "--threads", str(threads), "--iterations", str(iterations)]
                       + backend_args(backend, library), capture_output=True, text=True, check=True)
    return json.loads(r.stdout.strip().splitlines()[-1])["timing"]["median_ms"]


def span(values):
    lo, hi = min(values), max(values)
    return f"{lo:.3g}" if abs(hi - lo) < 0.005 * hi else f"{lo:.3g}-{hi:.3g}"


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--iterations", type=int, default=40)
    ap.add_argument("--library", default=os.environ.get(
        "ORT_DYLIB_PATH", "/opt/edgevit-test/onnxruntime/libonnxruntime.so.1.31.1"))
    ap.add_argument("--json", help="write every measurement here too")
    args = ap.parse_args()
    work = tempfile.mkdtemp(prefix="edgevit-bench-")
    packages = f32_packages(work)
    packages["vit-mnist (weight-only int8)"] = os.path.join(ROOT, "models/vit-mnist")
    packages["vit-tiny-int8 (weight-only int8)"] = os.path.join(ROOT, "models/vit-tiny-int8")
    packages["vit-tiny-qdq (static QDQ int8)"] = os.path.join(ROOT, "models/vit-tiny-qdq")
    backends = ["tract", "ort"]
    diffs = {(m, b): worst_difference(p, b, args.library) for m, p in packages.items() for b in backends}
    times = {}
    for _ in range(args.rounds):
        for threads in (1, 2):
            for m, p in packages.items():
                for b in backends:
                    times.setdefault((m, threads, b), []).append(
                        median(p, b, threads, args.iterations, args.library))
    print("| model | threads | tract ms | ORT ms | tract / ORT | worst difference from the reference (tract; ORT) |")
    print("|---|---|---|---|---|---|")
    for threads in (1, 2):
        for m in packages:
            t, o = times[(m, threads, "tract")], times[(m, threads, "ort")]
            ratio = sorted(a / b for a, b in zip(t, o))
            d = "; ".join("%.2g" % diffs[(m, b)] if diffs[(m, b)] is not None else "refused" for b in backends)
            print(f"| {m} | {threads} | {span(t)} | {span(o)} | {span(ratio)} | {d if threads == 1 else ''} |")
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"times": {f"{m}|{t}|{b}": v for (m, t, b), v in times.items()},
                       "diffs": {f"{m}|{b}": v for (m, b), v in diffs.items()}}, f, indent=2)
    shutil.rmtree(work)


if __name__ == "__main__":
    sys.exit(main())
