"""What the converters in tools/ share once their graphs are built: finishing the ONNX model,
running a model in ONNX Runtime, and letterboxing a photo to a square input."""
import numpy as np
import onnx
from onnx import helper

OPSET = 17


def finish_model(graph, producer):
    """The checked ONNX model of `graph` (opset 17, IR version 8)."""
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)],
                              producer_name=f"edgevit {producer}")
    model.ir_version = 8
    onnx.checker.check_model(model)
    return model


def ort_outputs(model, feeds, names=None):
    """Every output (or `names`) of `model` (serialized bytes or a path) for `feeds`, by name."""
    import onnxruntime
    session = onnxruntime.InferenceSession(model, providers=["CPUExecutionProvider"])
    names = names or [o.name for o in session.get_outputs()]
    return dict(zip(names, session.run(names, feeds)))


def letterbox(path, size):
    """A photo scaled to fit `size` x `size` (aspect kept), centred on black, RGB uint8 HWC."""
    from PIL import Image
    picture = Image.open(path).convert("RGB")
    scale = size / max(picture.size)
    resized = picture.resize((max(1, round(picture.width * scale)), max(1, round(picture.height * scale))),
                             Image.BILINEAR)
    canvas = Image.new("RGB", (size, size))
    canvas.paste(resized, ((size - resized.width) // 2, (size - resized.height) // 2))
    return np.asarray(canvas, np.uint8)
