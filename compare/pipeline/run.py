#!/usr/bin/env python3
"""edgevit against the Python pipeline a user would otherwise write, in one run:
- the same models: vit-mnist, ViT-Tiny (weight-only int8 and static QDQ), the real DINOv2
  ViT-S/14 from ../shared in f32 and quantized here to the bundled static QDQ form
  (`tools/quantize.py --form qdq-constb-pc-sym`, calibrated on ../shared's 7 photographs);
- the same synthetic 1920x1080 YUYV frames;
- the same thread counts;
- every pipeline publishing to the same local Mosquitto, QoS 1.

Pipelines:
- edgevit on tract, one instance;
- edgevit on tract, 2 single-threaded instances (`--workers 2`);
- edgevit on ONNX Runtime, one instance;
- edgevit on ONNX Runtime, 2 single-threaded instances;
- compare/pipeline/python_pipeline.py: OpenCV + onnxruntime + paho-mqtt.
Each pipeline runs --repeat times (default 3), the pipelines taken in turn round after round, so
that a slow spell of a shared machine falls on all of them; each figure is the run of median frame
rate. Prints a Markdown table of frames per second and the ratios, and writes every figure as JSON.

Not run in CI. Needs:
- a release build with ONNX Runtime: `cargo build --release --features ort`;
- the Python venv: `python3 -m venv compare/pipeline/.venv &&
  compare/pipeline/.venv/bin/pip install -r compare/pipeline/requirements.txt`
  (its onnxruntime wheel's library is the one edgevit's `ort` backend loads, so both run the
  same ONNX Runtime);
- mosquitto on the PATH;
- ../shared for DINOv2.

    compare/pipeline/.venv/bin/python compare/pipeline/run.py [--frames N] [--threads 1 2] [--repeat N]
        [--models vit-mnist ...] [--json out.json]

The DINOv2 model is a saliency model (its output is a 224x224 map): run.py flattens that map
to [1, 50176] so that both pipelines treat it as scores (softmax and top-5 over it). The figures
are speed figures only.
"""
import argparse
import glob
import json
import os
import platform
import shutil
import socket
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
EDGEVIT = os.path.join(ROOT, "target/release/edgevit")
VENV_PY = os.path.join(HERE, ".venv/bin/python")


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_broker(work):
    port = free_port()
    conf = os.path.join(work, "mosquitto.conf")
    with open(conf, "w") as f:
        f.write(f"listener {port} 127.0.0.1\nallow_anonymous true\npersistence false\n")
    broker = subprocess.Popen(["mosquitto", "-c", conf], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 10
    while time.time() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return broker, port
        except OSError:
            time.sleep(0.05)
    broker.kill()
    sys.exit("mosquitto did not start")


def ort_library():
    found = glob.glob(os.path.join(HERE, ".venv/lib/python*/site-packages/onnxruntime/capi/libonnxruntime.so*"))
    if not found:
        sys.exit("no onnxruntime in compare/pipeline/.venv: pip install -r compare/pipeline/requirements.txt")
    return found[0]


def dinov2_package(work, shared):
    """../shared's DINOv2 ViT-S/14 with its map flattened to [1, 50176], as a package."""
    import onnx
    from onnx import helper, TensorProto
    src = os.path.join(shared, "reference/dinov2-s-focus/vit_s_focus.onnx")
    model = onnx.load(src)
    out = model.graph.output[0]
    shape = helper.make_tensor("flat_shape", TensorProto.INT64, [2], [1, -1])
    model.graph.initializer.append(shape)
    model.graph.node.append(helper.make_node("Reshape", [out.name, "flat_shape"], ["scores"]))
    model.graph.output.remove(out)
    model.graph.output.append(helper.make_tensor_value_info("scores", TensorProto.FLOAT, [1, 224 * 224]))
    pkg = os.path.join(work, "dinov2-s")
    os.makedirs(pkg)
    onnx.save(model, os.path.join(pkg, "model.onnx"))
    write_dinov2_manifest(pkg)
    return pkg


def dinov2_qdq_package(work, shared, f32_package):
    """The flattened DINOv2 in the bundled static QDQ form, calibrated on ../shared's photographs."""
    sys.path.insert(0, os.path.join(ROOT, "tools"))
    sys.path.insert(0, os.path.join(ROOT, "compare"))
    from ort_settings import shared_photos
    from quantize import quantize_static
    pkg = os.path.join(work, "dinov2-s-qdq")
    os.makedirs(pkg)
    quantize_static(os.path.join(f32_package, "model.onnx"), os.path.join(pkg, "model.onnx"),
                    "qdq-constb-pc-sym", shared_photos(shared))
    write_dinov2_manifest(pkg)
    return pkg


def write_dinov2_manifest(pkg):
    with open(os.path.join(pkg, "model.toml"), "w") as f:
        f.write('name = "dinov2-s-focus"\ntask = "classify"\nonnx = "model.onnx"\n'
                '[input]\nname = "input_image"\nshape = [1, 3, 224, 224]\ncolor = "rgb"\n'
                'scale = 255.0\nmean = [0.485, 0.456, 0.406]\nstd = [0.229, 0.224, 0.225]\n'
                'resize = "stretch"\n[outputs]\nlogits = "scores"\n')


def edgevit(pkg, frames, threads, sink, backend="tract", workers=1, library=None):
    cmd = [EDGEVIT, "bench", "--model", pkg, "--frames", str(frames), "--size", "1920x1080",
           "--format", "yuyv", "--threads", str(threads), "--workers", str(workers),
           "--backend", backend, "--sink", sink]
    if library:
        cmd += ["--library", library]
    r = subprocess.run(cmd, capture_output=True, text=True)
    if r.returncode != 0:
        sys.exit(f"{' '.join(cmd)}\n{r.stderr}")
    return json.loads(r.stdout.strip().splitlines()[-1])


def without_vnni():
    """An x86-64 CPU without VNNI: there edgevit's `int8_precision = "auto"` takes ONNX
    Runtime's saturation-free int8 kernels, and the Python pipeline is given the same ones, so
    that both compute the same arithmetic (the fast ones get the QDQ ViT-Tiny's logits 0.24
    wrong on such a CPU)."""
    if platform.machine() not in ("x86_64", "AMD64"):
        return False
    with open("/proc/cpuinfo") as f:
        flags = next((l.split(":", 1)[1].split() for l in f if l.startswith("flags")), [])
    return not ({"avx512_vnni", "avx_vnni"} & set(flags))


def python(pkg_onnx, shape, mean, std, frames, threads, port):
    cmd = [VENV_PY, os.path.join(HERE, "python_pipeline.py"), "--onnx", pkg_onnx, "--shape", shape,
           "--mean", mean, "--std", std, "--frames", str(frames), "--threads", str(threads),
           "--port", str(port)]
    if without_vnni():
        cmd.append("--exact-int8")
    r = subprocess.run(cmd, capture_output=True, text=True)
    if r.returncode != 0:
        sys.exit(f"{' '.join(cmd)}\n{r.stderr}")
    return json.loads(r.stdout.strip().splitlines()[-1])


def fps(run):
    """End-to-end frames per second of one run, edgevit's or Python's."""
    return run.get("pipelined_fps", run.get("fps"))


def spread(run):
    """The median frame rate, with the lowest and highest of the runs when there were several."""
    runs = run.get("fps_runs", [])
    if len(runs) < 2:
        return f"{fps(run):.1f}"
    return f"{fps(run):.1f} ({min(runs):.1f}-{max(runs):.1f})"


def median_run(runs):
    """The run of median frames per second (the lower middle one of an even count), whole, so
    that its per-stage figures belong to the frame rate shown."""
    return sorted(runs, key=fps)[(len(runs) - 1) // 2]


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--frames", type=int, help="frames per run (default: 400 for vit-mnist, 60 for ViT-Tiny, 30 for either DINOv2)")
    ap.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    ap.add_argument("--shared", default=os.environ.get("EDGEVIT_SHARED_DIR", os.path.join(ROOT, "../shared")))
    models = ["vit-mnist", "vit-tiny-int8", "vit-tiny-qdq", "dinov2-s", "dinov2-s-qdq"]
    ap.add_argument("--models", nargs="+", choices=models, default=models)
    ap.add_argument("--repeat", type=int, default=3,
                    help="runs of each pipeline, taken in turn; each cell is the run of median fps (default 3)")
    ap.add_argument("--json", help="write every figure here")
    args = ap.parse_args()
    if args.repeat < 1:
        ap.error("--repeat must be at least 1")
    for need in (EDGEVIT, VENV_PY):
        if not os.path.exists(need):
            sys.exit(f"missing {need}: see this script's --help")
    if not shutil.which("mosquitto"):
        sys.exit("mosquitto is not on the PATH")
    work = tempfile.mkdtemp(prefix="edgevit-compare-")
    broker, port = start_broker(work)
    library = ort_library()
    sink = os.path.join(work, "sink.toml")
    with open(sink, "w") as f:
        f.write(f'[sink]\nkind = "mqtt"\nhost = "127.0.0.1"\nport = {port}\ndevice = "bench"\n'
                f'stats_interval_s = 0\n[sink.spool]\npath = "{work}/spool"\n')
    imagenet = ("0.485,0.456,0.406", "0.229,0.224,0.225")
    models = {
        "vit-mnist": (os.path.join(ROOT, "models/vit-mnist"), "1,28,28", ("0.1307", "0.3081")),
        "vit-tiny-int8": (os.path.join(ROOT, "models/vit-tiny-int8"), "3,224,224", imagenet),
        "vit-tiny-qdq": (os.path.join(ROOT, "models/vit-tiny-qdq"), "3,224,224", imagenet),
    }
    if {"dinov2-s", "dinov2-s-qdq"} & set(args.models):
        models["dinov2-s"] = (dinov2_package(work, args.shared), "3,224,224", imagenet)
    if "dinov2-s-qdq" in args.models:
        models["dinov2-s-qdq"] = (dinov2_qdq_package(work, args.shared, models["dinov2-s"][0]), "3,224,224", imagenet)
    results = []
    try:
        for threads in args.threads:
            for name in args.models:
                pkg, shape, (mean, std) = models[name]
                frames = args.frames or {"vit-mnist": 400, "dinov2-s": 30, "dinov2-s-qdq": 30}.get(name, 60)
                pipelines = {
                    "python": lambda: python(os.path.join(pkg, "model.onnx"), shape, mean, std, frames, threads, port),
                    "edgevit_tract": lambda: edgevit(pkg, frames, threads, sink),
                    "edgevit_ort": lambda: edgevit(pkg, frames, threads, sink, "ort", library=library),
                }
                if threads > 1:
                    pipelines["edgevit_tract_workers"] = lambda: edgevit(pkg, frames, 1, sink, workers=threads)
                    pipelines["edgevit_ort_workers"] = lambda: edgevit(pkg, frames, 1, sink, "ort", workers=threads, library=library)
                # Taken in turn, round after round, so that a slow spell of a shared machine
                # falls on every pipeline rather than on one.
                runs = {key: [] for key in pipelines}
                for _ in range(args.repeat):
                    for key, measure in pipelines.items():
                        runs[key].append(measure())
                row = {"model": name, "threads": threads, "frames": frames, "repeat": args.repeat}
                for key, measured in runs.items():
                    row[key] = median_run(measured)
                    row[key]["fps_runs"] = [fps(m) for m in measured]
                results.append(row)
                print(json.dumps(row), file=sys.stderr, flush=True)
    finally:
        broker.terminate()
        broker.wait()
    with open("/proc/cpuinfo") as f:
        cpu = next((l.split(":", 1)[1].strip() for l in f if l.startswith("model name")), "?")
    print(f"Machine: {cpu}, {os.cpu_count()} cores; ONNX Runtime's exact int8 kernels: "
          f"{'yes (no VNNI)' if without_vnni() else 'no'}")
    print(f"Each pipeline ran {args.repeat} time(s), the pipelines in turn; a cell is the median "
          "frame rate (lowest-highest), and the per-stage rows below are that median run's.")
    print()
    print("| model | threads | Python (OpenCV + ORT + paho) fps | edgevit tract | tract, N workers x 1 thread | edgevit ORT | ORT, N workers x 1 thread | edgevit ORT / Python | best edgevit / Python |")
    print("|---|---|---|---|---|---|---|---|---|")
    for r in results:
        py = fps(r["python"])
        keys = ("edgevit_tract", "edgevit_tract_workers", "edgevit_ort", "edgevit_ort_workers")
        cells = [fps(r[k]) if k in r else None for k in keys]
        best = max(v for v in cells if v)
        shown = " | ".join(spread(r[k]) if k in r else "-" for k in keys)
        print(f"| {r['model']} | {r['threads']} | {spread(r['python'])} | {shown} | {cells[2] / py:.2f} | {best / py:.2f} |")
    print()
    print("| model | threads | pipeline | convert | resize | normalize | infer | interpret | publish | outside inference | CPU ms/frame | peak RSS MB | RSS at the end MB | of it file pages MB | cold start ms |")
    print("|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|")
    for r in results:
        p = r["python"]
        s = p["stages_p50_ms"]
        outside = 1 - s["infer"] / max(p["total_p50_ms"], 1e-9)
        print(f"| {r['model']} | {r['threads']} | Python | {s['convert']} | {s['resize']} | {s['normalize']} | {s['infer']} | {s['interpret']} | {s['publish']} | {outside:.1%} | {p['cpu_ms_per_frame']} | {p['peak_rss_mb']} | {p['rss_mb']} | {p['rss_file_mb']} | {p['cold_start_ms']} |")
        for key, label in (("edgevit_tract", "edgevit tract"), ("edgevit_ort", "edgevit ORT")):
            e = r[key]
            st = {x["stage"]: x["p50_ms"] for x in e["stages"]}
            print(f"| {r['model']} | {r['threads']} | {label} | {st['convert']} | {st['resize']} | {st['normalize']} | {st['infer']} | {st['interpret']} | {st['publish']} | {e['outside_inference']:.1%} | {e['cpu_ms_per_frame']} | {e['peak_rss_mb']} | {e['rss_mb']} | {e['rss_file_mb']} | {e['cold_start_ms']} |")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(results, f, indent=2)
    shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
