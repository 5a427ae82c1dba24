#!/usr/bin/env python3
"""Minimal reproduction of the tract 0.23.9 QDQ Softmax bug (python binding, optimised).

Three one-op graphs, x [1,4,17,17] -> Softmax(axis=-1) -> y, with Q/DQ pairs
  dq_in: QuantizeLinear -> DequantizeLinear before the Softmax only
  q_out: QuantizeLinear -> DequantizeLinear after the Softmax only
  both : both (what quantize_static QDQ makes when Softmax is quantized)
Prints tract's max abs diff from ONNX Runtime for each. Measured: dq_in 1e-7,
q_out 0, both 1.0 (tract outputs 1.0 everywhere: DequantizeLinear -> Softmax ->
QuantizeLinear is folded into a quantized Softmax that is wrong).

  python tools/tract_softmax_repro.py
"""
import os, tempfile
import numpy as np, onnx, sys
from onnx import helper as h, TensorProto as T, numpy_helper as nh
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import rt
def build(case):
    nodes, inits = [], [nh.from_array(np.array(0.05, np.float32), 's_in'), nh.from_array(np.array(0, np.int8), 'z_in'),
                         nh.from_array(np.array(1/255, np.float32), 's_out'), nh.from_array(np.array(-128, np.int8), 'z_out')]
    cur = 'x'
    if case in ('dq_in', 'both'):
        nodes += [h.make_node('QuantizeLinear', [cur, 's_in', 'z_in'], ['xq']), h.make_node('DequantizeLinear', ['xq', 's_in', 'z_in'], ['xd'])]; cur = 'xd'
    nodes.append(h.make_node('Softmax', [cur], ['sm'], axis=-1)); cur = 'sm'
    if case in ('q_out', 'both'):
        nodes += [h.make_node('QuantizeLinear', [cur, 's_out', 'z_out'], ['yq']), h.make_node('DequantizeLinear', ['yq', 's_out', 'z_out'], ['yd'])]; cur = 'yd'
    nodes.append(h.make_node('Identity', [cur], ['y']))
    g = h.make_graph(nodes, case, [h.make_tensor_value_info('x', T.FLOAT, [1, 4, 17, 17])], [h.make_tensor_value_info('y', T.FLOAT, [1, 4, 17, 17])], inits)
    m = h.make_model(g, opset_imports=[h.make_opsetid('', 17)]); m.ir_version = 8
    p = os.path.join(tempfile.gettempdir(), f'edgevit_softmax_{case}.onnx'); onnx.save(m, p); return p
x = np.random.default_rng(0).standard_normal((1, 4, 17, 17)).astype(np.float32) * 2
for case in ['dq_in', 'q_out', 'both']:
    p = build(case); o = rt.ort_run(p, x)['y']; t = rt.tract_run(p, x)['y']
    print(case, 'max diff', float(np.abs(o - t).max()), 'ort range', o.min(), o.max(), 'tract range', t.min(), t.max())
