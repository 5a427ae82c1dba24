#!/usr/bin/env python3
"""Latency of an ONNX file in ONNX Runtime (and optionally tract), random input.

Median (and min/mean) milliseconds of --runs runs after --warmup runs, batch as in
the model (edgevit exports batch 1), CPUExecutionProvider with intra_op_num_threads
= --threads (default 1), sequential execution. Prints one JSON object.

--level picks ORT's graph optimisation level (default "all", ORT's own default;
"basic" keeps int8 DequantizeLinear->MatMul unfused, see rt.py).
--tract also times tract (python binding, optimised, single-threaded) on the same
input in the same process.

  python tools/bench_ort.py models/vit-tiny-f32/model.onnx --tract
  python tools/bench_ort.py models/vit-tiny-int8/model.onnx --threads 2 --runs 50
"""
import argparse
import json
import os
import platform
import statistics
import sys

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import rt  # noqa: E402


def stats(ts):
    return {"median_ms": round(statistics.median(ts), 3), "min_ms": round(min(ts), 3),
            "mean_ms": round(statistics.fmean(ts), 3)}


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("onnx")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--runs", type=int, default=30)
    ap.add_argument("--warmup", type=int, default=5)
    ap.add_argument("--level", default="all", choices=rt.ORT_LEVELS)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--tract", action="store_true", help="also time tract on the same input")
    args = ap.parse_args()

    import onnxruntime as ort
    sess = rt.ort_session(args.onnx, threads=args.threads, level=args.level)
    inp = sess.get_inputs()[0]
    shape = [d if isinstance(d, int) and d > 0 else 1 for d in inp.shape]
    x = np.random.default_rng(args.seed).standard_normal(shape).astype(np.float32)
    _, ts = rt.median_ms(lambda: sess.run(None, {inp.name: x}), runs=args.runs, warmup=args.warmup)
    out = {"onnx": args.onnx, "bytes": os.path.getsize(args.onnx), "input": [inp.name, shape],
           "onnxruntime": ort.__version__, "intra_op_num_threads": args.threads,
           "graph_optimization_level": args.level, "runs": args.runs, "warmup": args.warmup,
           "ort": stats(ts), "cpu": platform.processor() or platform.machine(),
           "cores": os.cpu_count()}
    if args.tract:
        import tract
        r = rt.tract_runnable(args.onnx, shape)
        _, tt = rt.median_ms(lambda: r.run([x]), runs=args.runs, warmup=args.warmup)
        out["tract_version"] = tract.version()
        out["tract"] = stats(tt)
    print(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
