#!/usr/bin/env python3
"""The pipeline a user would write in an afternoon instead of edgevit: OpenCV + onnxruntime +
paho-mqtt, written plainly.

For each frame:
0. A copy of the frame, as a capture makes.
1. YUYV -> RGB (or grey) with cv2.cvtColor.
2. cv2.resize (INTER_LINEAR) to the model's size.
3. Normalise with numpy, NCHW.
4. ONNX Runtime.
5. Softmax and top-5 with numpy.
6. The result as JSON over MQTT, QoS 1, through paho's network thread.

It runs on the same synthetic frame as `edgevit bench --frames` (the scene of
src/bench/frames.rs, in BT.601 YUYV) and with the same thread count: ONNX Runtime's
intra-op threads and OpenCV's threads. It prints one JSON object:
- the stages' medians;
- frames per second;
- CPU time per frame;
- peak RSS and RSS at the end;
- cold start (session creation).
"""
import argparse
import json
import resource
import statistics
import time

import cv2
import numpy as np
import onnxruntime as ort
import paho.mqtt.client as mqtt


def scene_yuyv(width, height):
    """src/bench/frames.rs's scene as YUYV 4:2:2 (chroma of each pixel pair averaged)."""
    x = np.arange(width, dtype=np.float32)[None, :]
    y = np.arange(height, dtype=np.float32)[:, None]
    checker = np.where(((np.arange(width)[None, :] // 40 + np.arange(height)[:, None] // 40) % 2) == 0, 60.0, 0.0)
    ripple = 40.0 * (np.sin(x * 0.05) * np.cos(y * 0.07))
    r = np.clip(x * 0.15 + checker + ripple, 0, 255)
    g = np.clip(y * 0.3 + ripple + 30.0, 0, 255) + 0 * x
    b = np.clip(200.0 - x * 0.1 + checker, 0, 255) + 0 * y
    yy = np.clip(np.rint(16 + 0.257 * r + 0.504 * g + 0.098 * b), 0, 255)
    u = np.clip(np.rint(128 - 0.148 * r - 0.291 * g + 0.439 * b), 0, 255)
    v = np.clip(np.rint(128 + 0.439 * r - 0.368 * g - 0.071 * b), 0, 255)
    u2 = ((u[:, 0::2] + u[:, 1::2]) // 2)
    v2 = ((v[:, 0::2] + v[:, 1::2]) // 2)
    out = np.empty((height, width, 2), np.uint8)
    out[:, :, 0] = yy
    out[:, 0::2, 1] = u2
    out[:, 1::2, 1] = v2
    return out


def status_kb(field):
    """A kB field of /proc/self/status: VmHWM is the peak (ru_maxrss survives exec on Linux, so
    a child reports its parent's peak), VmRSS the present."""
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    return 0


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--onnx", required=True)
    ap.add_argument("--shape", required=True, help="C,H,W of the model input")
    ap.add_argument("--mean", default="0.485,0.456,0.406")
    ap.add_argument("--std", default="0.229,0.224,0.225")
    ap.add_argument("--size", default="1920x1080")
    ap.add_argument("--frames", type=int, default=100)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, default=1883)
    ap.add_argument("--topic", default="python/bench/cam0/result")
    ap.add_argument("--exact-int8", action="store_true",
                    help="ONNX Runtime's saturation-free int8 kernels (session.x64quantprecision), "
                         "as edgevit takes them on CPUs without VNNI")
    args = ap.parse_args()

    c, h, w = (int(v) for v in args.shape.split(","))
    mean = np.array([float(v) for v in args.mean.split(",")], np.float32)
    std = np.array([float(v) for v in args.std.split(",")], np.float32)
    fw, fh = (int(v) for v in args.size.split("x"))
    frame = scene_yuyv(fw, fh)

    cv2.setNumThreads(args.threads)
    t0 = time.perf_counter()
    options = ort.SessionOptions()
    options.intra_op_num_threads = args.threads
    options.inter_op_num_threads = 1
    if args.exact_int8:
        options.add_session_config_entry("session.x64quantprecision", "1")
    session = ort.InferenceSession(args.onnx, options, providers=["CPUExecutionProvider"])
    input_name = session.get_inputs()[0].name
    cold_start_ms = (time.perf_counter() - t0) * 1e3

    client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id="python-bench")
    client.connect(args.host, args.port)
    client.loop_start()

    stages = {k: [] for k in ("convert", "resize", "normalize", "infer", "interpret", "publish")}
    pending = []
    usage0 = resource.getrusage(resource.RUSAGE_SELF)
    start = time.perf_counter()
    for seq in range(args.frames):
        # A capture hands over a new array per frame (cv2.VideoCapture.read() copies out of
        # the driver's buffer), as edgevit's replay source copies its frame: the capture is
        # in the frame rate of both, in the stages of neither.
        captured = frame.copy()
        t = [time.perf_counter()]
        if c == 1:
            pixels = cv2.cvtColor(captured, cv2.COLOR_YUV2GRAY_YUYV)
        else:
            pixels = cv2.cvtColor(captured, cv2.COLOR_YUV2RGB_YUYV)
        t.append(time.perf_counter())
        small = cv2.resize(pixels, (w, h), interpolation=cv2.INTER_LINEAR)
        t.append(time.perf_counter())
        x = small.astype(np.float32) / 255.0
        if c == 1:
            x = ((x - mean[0]) / std[0])[None, None]
        else:
            x = ((x - mean) / std).transpose(2, 0, 1)[None]
        x = np.ascontiguousarray(x, dtype=np.float32)
        t.append(time.perf_counter())
        logits = session.run(None, {input_name: x})[0].reshape(-1)
        t.append(time.perf_counter())
        e = np.exp(logits - logits.max())
        p = e / e.sum()
        top = np.argsort(p)[-5:][::-1]
        t.append(time.perf_counter())
        payload = json.dumps({
            "seq": seq,
            "ts": time.time(),
            "top": [{"index": int(i), "score": float(p[i])} for i in top],
        })
        pending.append(client.publish(args.topic, payload, qos=1))
        t.append(time.perf_counter())
        for name, a, b in zip(stages, t, t[1:]):
            stages[name].append((b - a) * 1e3)
    for info in pending:
        info.wait_for_publish(timeout=30)
    wall = time.perf_counter() - start
    usage1 = resource.getrusage(resource.RUSAGE_SELF)
    client.loop_stop()
    client.disconnect()
    cpu = (usage1.ru_utime - usage0.ru_utime) + (usage1.ru_stime - usage0.ru_stime)
    totals = [sum(v) for v in zip(*stages.values())]
    print(json.dumps({
        "pipeline": "python (OpenCV %s, onnxruntime %s, paho-mqtt)" % (cv2.__version__, ort.__version__),
        "frames": args.frames,
        "threads": args.threads,
        "cold_start_ms": round(cold_start_ms, 3),
        "stages_p50_ms": {k: round(statistics.median(v), 3) for k, v in stages.items()},
        "total_p50_ms": round(statistics.median(totals), 3),
        "fps": round(args.frames / wall, 3),
        "cpu_ms_per_frame": round(cpu * 1e3 / args.frames, 3),
        "peak_rss_mb": round(status_kb("VmHWM") / 1024.0, 3),
        "rss_mb": round(status_kb("VmRSS") / 1024.0, 3),
        "rss_file_mb": round(status_kb("RssFile") / 1024.0, 3),
    }))


if __name__ == "__main__":
    main()
