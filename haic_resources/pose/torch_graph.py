"""ONNX pose/detector files made runnable under PyTorch (onnx2torch) in batches of any size.

Two real exports need a clean-up first, measured on `../shared/models`:
- RTMPose-t (torch exporter, opset 17) shares weights through ``Identity`` nodes of initializers,
  so onnx2torch finds no initializer for a Conv's weight or bias (``KeyError: 'onnx::Conv_452'``),
  and writes ``Clip`` with an empty optional bound, which onnx2torch reads as a dynamic bound.
  Fix: each such Identity becomes an initializer of its own name; an empty bound becomes ±inf.
- YOLOX (official export) reshapes its heads to ``[1, 85, -1]``: a batch of N frames would come
  out as one frame of N × 3549 anchors. Fix: the leading 1 becomes 0 ("keep the input's batch").
The cleaned graph computes the same function (tests compare it with ONNX Runtime on the file).
"""

from __future__ import annotations

import os
from typing import Any

import numpy as np


def torch_ready_graph(model: Any) -> Any:
    """`model` (an onnx.ModelProto, changed in place and returned) with the three fixes above."""
    from onnx import TensorProto, numpy_helper

    graph = model.graph
    initializers = {i.name: i for i in graph.initializer}
    kept = []
    for node in graph.node:
        if node.op_type == "Identity" and node.input[0] in initializers:
            copy = TensorProto()
            copy.CopyFrom(initializers[node.input[0]])
            copy.name = node.output[0]
            graph.initializer.append(copy)
            initializers[copy.name] = copy
            continue
        if node.op_type == "Clip":
            while len(node.input) > 1 and node.input[-1] == "":
                node.input.pop()
            for k, bound in ((1, -np.inf), (2, np.inf)):
                if k < len(node.input) and node.input[k] == "":
                    name = f"{node.name}_bound{k}"
                    graph.initializer.append(numpy_helper.from_array(np.array(bound, dtype=np.float32), name))
                    node.input[k] = name
        if node.op_type == "Reshape" and node.input[1] in initializers:
            shape = numpy_helper.to_array(initializers[node.input[1]]).copy()
            if shape.ndim == 1 and len(shape) > 1 and shape[0] == 1 and int((shape == -1).sum()) == 1:
                shape[0] = 0
                name = node.input[1] + "_any_batch"
                graph.initializer.append(numpy_helper.from_array(shape, name))
                node.input[1] = name
        kept.append(node)
    del graph.node[:]
    graph.node.extend(kept)
    return model


def load_torch_model(path: str | os.PathLike, device: str, half: bool = False) -> Any:
    """The ONNX file at `path` as an eval-mode torch module on `device` (fp16 when `half`)."""
    import onnx
    import onnx2torch

    module = onnx2torch.convert(torch_ready_graph(onnx.load(str(path)))).eval().to(device)
    return module.half() if half else module
