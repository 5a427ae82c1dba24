#!/usr/bin/env python3
"""Builds the face detector package from MediaPipe's BlazeFace TFLite model.

    pip download mediapipe==0.10.14 --no-deps && unzip mediapipe-0.10.14-*.whl \\
        'mediapipe/modules/face_detection/face_detection_short_range.tflite'
    python3 tools/tflite_detector.py \\
        --tflite mediapipe/modules/face_detection/face_detection_short_range.tflite \\
        --package models/blazeface [--selftest photo.png] [--reference face_detection_short_range.onnx]

The TFLite graph is NHWC. The ONNX graph written keeps it in NCHW, the layout ONNX convolutions
take: the input is NCHW (`[1, 3, 128, 128]`), every 4-D tensor stays NCHW, and a tensor goes
back to NHWC only where the order of its values matters (the reshapes before the outputs).
TensorFlow's `SAME` padding (more at the end when uneven) becomes explicit pads; channel
padding (`PAD` on the last axis) is a Pad on axis 1. The weights are stored in the model as
float16; they stay float16 in the ONNX file, cast to f32 in the graph (the same values, half
the size).

It covers the ops of BlazeFace short range (CONV_2D, DEPTHWISE_CONV_2D, DEQUANTIZE, ADD, RELU,
PAD, MAX_POOL_2D, RESHAPE, CONCATENATION); another op stops it with the op's name. With
--reference, the ONNX written is compared with another conversion through ONNX Runtime on
--image (or a seeded random input). Needs: tflite (the schema's reader), onnx, numpy;
onnxruntime and pillow for --reference and --selftest (tools/requirements.txt).
"""
import argparse
import os
import sys

import numpy as np
import onnx
import tflite
from onnx import TensorProto, helper, numpy_helper

from onnx_writing import finish_model, letterbox, ort_outputs
OP_NAMES = {v: k for k, v in tflite.BuiltinOperator.__dict__.items() if not k.startswith("_")}
NUMPY = {tflite.TensorType.FLOAT32: np.float32, tflite.TensorType.FLOAT16: np.float16,
         tflite.TensorType.INT32: np.int32}
NCHW_FROM_NHWC = [0, 3, 1, 2]
NHWC_FROM_NCHW = [0, 2, 3, 1]


class Converter:
    def __init__(self, model):
        self.model = model
        self.graph = model.Subgraphs(0)
        self.nodes, self.initializers = [], []
        self.constants = {}  # tensor index -> numpy array (weights, shapes)
        self.names = {}  # tensor index -> ONNX name of its value, NCHW where 4-D
        self.count = 0

    def tensor(self, index):
        return self.graph.Tensors(index)

    def shape(self, index):
        return [int(v) for v in self.tensor(index).ShapeAsNumpy()]

    def data(self, index):
        """The constant data of a tensor, if its buffer holds any."""
        t = self.tensor(index)
        raw = self.model.Buffers(t.Buffer()).DataAsNumpy()
        if isinstance(raw, int) or raw.size == 0:
            return None
        return np.frombuffer(raw.tobytes(), NUMPY[t.Type()]).reshape(self.shape(index))

    def fresh(self, base):
        self.count += 1
        return f"{base}_{self.count}"

    def const(self, array, base):
        name = self.fresh(base)
        self.initializers.append(numpy_helper.from_array(np.asarray(array), name))
        return name

    def weight(self, array, base):
        """A float weight: float16 kept as stored and cast in the graph."""
        if array.dtype == np.float16:
            stored = self.const(array, base + "_f16")
            return self.emit("Cast", [stored], base, to=TensorProto.FLOAT)
        return self.const(array.astype(np.float32), base)

    def emit(self, op_type, inputs, base, **attrs):
        out = self.fresh(base)
        self.nodes.append(helper.make_node(op_type, inputs, [out], **attrs))
        return out

    def activation(self, value, fused, base):
        if fused == tflite.ActivationFunctionType.RELU:
            return self.emit("Relu", [value], base + "_relu")
        if fused != tflite.ActivationFunctionType.NONE:
            sys.exit(f"{base}: fused activation {fused} is not supported")
        return value

    def same_pads(self, size, kernel, stride):
        """TensorFlow's SAME padding for one axis: (begin, end), the extra one at the end."""
        out = -(-size // stride)
        total = max((out - 1) * stride + kernel - size, 0)
        return total // 2, total - total // 2

    def pads(self, padding, in_hw, kernel_hw, stride_hw):
        if padding == tflite.Padding.VALID:
            return [0, 0, 0, 0]
        (t, b), (l, r) = (self.same_pads(in_hw[i], kernel_hw[i], stride_hw[i]) for i in range(2))
        return [t, l, b, r]

    def convert(self, input_name):
        g = self.graph
        self.names[g.Inputs(0)] = input_name
        for i in range(g.OperatorsLength()):
            op = g.Operators(i)
            code = self.model.OperatorCodes(op.OpcodeIndex())
            name = OP_NAMES[max(code.BuiltinCode(), code.DeprecatedBuiltinCode())]
            handler = getattr(self, "op_" + name.lower(), None)
            if handler is None:
                sys.exit(f"op {name} is not supported")
            ins = [op.Inputs(j) for j in range(op.InputsLength())]
            out = op.Outputs(0)
            handler(op, ins, out, self.tensor(out).Name().decode())

    def value(self, index):
        if index not in self.names:
            sys.exit(f"tensor {self.tensor(index).Name().decode()} has no value yet")
        return self.names[index]

    def op_dequantize(self, op, ins, out, base):
        self.constants[out] = self.data(ins[0])

    def op_conv_2d(self, op, ins, out, base):
        o = tflite.Conv2DOptions()
        o.Init(op.BuiltinOptions().Bytes, op.BuiltinOptions().Pos)
        kernel = self.constants.get(ins[1], self.data(ins[1]))  # [O, H, W, I]
        w = self.weight(np.ascontiguousarray(kernel.transpose(0, 3, 1, 2)), base + "_w")
        b = self.weight(self.constants.get(ins[2], self.data(ins[2])), base + "_b")
        in_hw = self.shape(ins[0])[1:3]
        pads = self.pads(o.Padding(), in_hw, kernel.shape[1:3], (o.StrideH(), o.StrideW()))
        y = self.emit("Conv", [self.value(ins[0]), w, b], base, kernel_shape=list(kernel.shape[1:3]),
                      strides=[o.StrideH(), o.StrideW()], pads=pads)
        self.names[out] = self.activation(y, o.FusedActivationFunction(), base)

    def op_depthwise_conv_2d(self, op, ins, out, base):
        o = tflite.DepthwiseConv2DOptions()
        o.Init(op.BuiltinOptions().Bytes, op.BuiltinOptions().Pos)
        kernel = self.constants.get(ins[1], self.data(ins[1]))  # [1, H, W, C * multiplier]
        channels = self.shape(ins[0])[3]
        w = self.weight(np.ascontiguousarray(kernel.transpose(3, 0, 1, 2)), base + "_w")
        b = self.weight(self.constants.get(ins[2], self.data(ins[2])), base + "_b")
        in_hw = self.shape(ins[0])[1:3]
        pads = self.pads(o.Padding(), in_hw, kernel.shape[1:3], (o.StrideH(), o.StrideW()))
        y = self.emit("Conv", [self.value(ins[0]), w, b], base, kernel_shape=list(kernel.shape[1:3]),
                      strides=[o.StrideH(), o.StrideW()], pads=pads, group=channels)
        self.names[out] = self.activation(y, o.FusedActivationFunction(), base)

    def op_add(self, op, ins, out, base):
        o = tflite.AddOptions()
        o.Init(op.BuiltinOptions().Bytes, op.BuiltinOptions().Pos)
        y = self.emit("Add", [self.value(ins[0]), self.value(ins[1])], base)
        self.names[out] = self.activation(y, o.FusedActivationFunction(), base)

    def op_relu(self, op, ins, out, base):
        self.names[out] = self.emit("Relu", [self.value(ins[0])], base)

    def op_pad(self, op, ins, out, base):
        paddings = self.data(ins[1])  # [4, 2] in NHWC order
        nchw = paddings[NCHW_FROM_NHWC]
        pads = np.concatenate([nchw[:, 0], nchw[:, 1]]).astype(np.int64)
        self.names[out] = self.emit("Pad", [self.value(ins[0]), self.const(pads, base + "_pads")], base,
                                    mode="constant")

    def op_max_pool_2d(self, op, ins, out, base):
        o = tflite.Pool2DOptions()
        o.Init(op.BuiltinOptions().Bytes, op.BuiltinOptions().Pos)
        kernel = (o.FilterHeight(), o.FilterWidth())
        pads = self.pads(o.Padding(), self.shape(ins[0])[1:3], kernel, (o.StrideH(), o.StrideW()))
        y = self.emit("MaxPool", [self.value(ins[0])], base, kernel_shape=list(kernel),
                      strides=[o.StrideH(), o.StrideW()], pads=pads)
        self.names[out] = self.activation(y, o.FusedActivationFunction(), base)

    def op_reshape(self, op, ins, out, base):
        x = self.value(ins[0])
        if len(self.shape(ins[0])) == 4:  # the values' order is NHWC's
            x = self.emit("Transpose", [x], base + "_nhwc", perm=NHWC_FROM_NCHW)
        shape = np.array(self.shape(out), np.int64)
        self.names[out] = self.emit("Reshape", [x, self.const(shape, base + "_shape")], base)

    def op_concatenation(self, op, ins, out, base):
        o = tflite.ConcatenationOptions()
        o.Init(op.BuiltinOptions().Bytes, op.BuiltinOptions().Pos)
        axis = o.Axis()
        rank = len(self.shape(out))
        if rank == 4:
            axis = NHWC_FROM_NCHW.index(axis % 4)
        y = self.emit("Concat", [self.value(i) for i in ins], base, axis=axis)
        self.names[out] = self.activation(y, o.FusedActivationFunction(), base)

    def onnx_model(self):
        g = self.graph
        outputs = []
        for i in range(g.OutputsLength()):
            index = g.Outputs(i)
            name = self.tensor(index).Name().decode()
            self.nodes.append(helper.make_node("Identity", [self.value(index)], [name]))
            outputs.append(helper.make_tensor_value_info(name, TensorProto.FLOAT, self.shape(index)))
        n, h, w, c = self.shape(g.Inputs(0))
        graph = helper.make_graph(
            self.nodes, "blazeface",
            [helper.make_tensor_value_info("input", TensorProto.FLOAT, [n, c, h, w])],
            outputs, self.initializers)
        return finish_model(graph, "tools/tflite_detector.py")


def photo(path, size):
    """A photo letterboxed to `size` (black bars), RGB scaled to -1..1, NCHW."""
    pixels = letterbox(path, size).astype(np.float32) / 127.5 - 1.0
    return pixels.transpose(2, 0, 1)[None].astype(np.float32)


def run(model_bytes, tensor):
    return ort_outputs(model_bytes, {"input": tensor})


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--tflite", required=True)
    parser.add_argument("--package", required=True, help="the package folder: writes its ONNX file there")
    parser.add_argument("--onnx-name", default="face_detection_short_range.onnx")
    parser.add_argument("--selftest", metavar="IMAGE",
                        help="writes selftest/input.npy (this photo letterboxed, as the model takes it) "
                             "and selftest/<output>.npy for each output, from ONNX Runtime")
    parser.add_argument("--reference", help="an ONNX conversion to compare with")
    parser.add_argument("--image", help="the photo of the comparison (default: a seeded random input)")
    args = parser.parse_args()

    model = tflite.Model.GetRootAsModel(open(args.tflite, "rb").read(), 0)
    converter = Converter(model)
    converter.convert("input")
    onnx_model = converter.onnx_model()
    os.makedirs(args.package, exist_ok=True)
    target = os.path.join(args.package, args.onnx_name)
    onnx.save(onnx_model, target)
    print(f"{target}: {len(onnx_model.graph.node)} nodes, {os.path.getsize(target) / 1e6:.2f} MB")
    size = converter.shape(converter.graph.Inputs(0))[1]
    if args.selftest:
        tensor = photo(args.selftest, size)
        ours = run(onnx_model.SerializeToString(), tensor)
        folder = os.path.join(args.package, "selftest")
        os.makedirs(folder, exist_ok=True)
        np.save(os.path.join(folder, "input.npy"), tensor)
        for name, values in ours.items():
            np.save(os.path.join(folder, f"{name}.npy"), values)
    if args.reference:
        tensor = photo(args.image, size) if args.image else \
            np.random.default_rng(7).uniform(-1, 1, (1, 3, size, size)).astype(np.float32)
        ours = run(onnx_model.SerializeToString(), tensor)
        theirs = run(open(args.reference, "rb").read(), tensor)
        worst = 0.0
        for name, values in ours.items():
            diff = float(np.abs(values - theirs[name]).max())
            worst = max(worst, diff)
            print(f"{name}: largest difference from {args.reference} {diff:.3g}")
        if worst > 1e-3:
            sys.exit("the conversions differ")


if __name__ == "__main__":
    main()
