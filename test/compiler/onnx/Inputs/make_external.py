"""Writes a MatMul model whose weight lives in an external data file.

Usage: make_external.py OUT.onnx   (writes OUT.onnx and ext.bin beside it)
"""
import os
import sys

import numpy as np
import onnx
from onnx import TensorProto, helper

out = sys.argv[1]
w = np.arange(32 * 32, dtype=np.float32).reshape(32, 32)
with open(os.path.join(os.path.dirname(out), "ext.bin"), "wb") as f:
    f.write(w.tobytes())
init = onnx.TensorProto()
init.name = "w"
init.data_type = TensorProto.FLOAT
init.dims.extend([32, 32])
init.data_location = TensorProto.EXTERNAL
for k, v in (("location", "ext.bin"), ("offset", "0"), ("length", str(w.nbytes))):
    e = init.external_data.add()
    e.key, e.value = k, v
graph = helper.make_graph(
    [helper.make_node("MatMul", ["x", "w"], ["y"], name="mm")], "g",
    [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["n", 32])],
    [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["n", 32])], [init])
model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 21)])
model.ir_version = 10
with open(out, "wb") as f:
    f.write(model.SerializeToString())
