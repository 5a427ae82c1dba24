#!/usr/bin/env python3
"""Turn a weight-only int8 ONNX file back into its f32 form: every DequantizeLinear whose inputs
are all initializers becomes the f32 initializer it computes. The f32 graph computes the same
function as the int8 one (the weights were already rounded); it is the baseline that the int8
form is measured against when the original f32 export is not at hand.

  python tools/fold_dequantize.py models/vit-mnist/model.onnx tools/work/vit-mnist-f32.onnx
"""
import sys

import numpy as np
import onnx
from onnx import numpy_helper


def main(src, dst):
    m = onnx.load(src)
    g = m.graph
    inits = {i.name: i for i in g.initializer}
    keep, folded = [], 0
    for node in g.node:
        if node.op_type == "DequantizeLinear" and all(i in inits for i in node.input if i):
            x = numpy_helper.to_array(inits[node.input[0]]).astype(np.float32)
            scale = numpy_helper.to_array(inits[node.input[1]]).astype(np.float32)
            zero = (numpy_helper.to_array(inits[node.input[2]]).astype(np.float32)
                    if len(node.input) > 2 and node.input[2] else np.zeros_like(scale))
            axis = next((a.i for a in node.attribute if a.name == "axis"), 1)
            if scale.ndim == 1 and x.ndim > 1:
                shape = [1] * x.ndim
                shape[axis] = -1
                scale, zero = scale.reshape(shape), zero.reshape(shape)
            g.initializer.append(numpy_helper.from_array((x - zero) * scale, node.output[0]))
            folded += 1
        else:
            keep.append(node)
    del g.node[:]
    g.node.extend(keep)
    used = {i for n in g.node for i in n.input}
    live = [i for i in g.initializer if i.name in used]
    del g.initializer[:]
    g.initializer.extend(live)
    onnx.checker.check_model(m)
    onnx.save(m, dst)
    print(f"{dst}: {folded} DequantizeLinear folded")


if __name__ == "__main__":
    main(*sys.argv[1:3])
