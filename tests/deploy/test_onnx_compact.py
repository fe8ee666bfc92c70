"""Compacting an ONNX graph (names, annotations, default attributes): same outputs, public names kept,
smaller file."""

import numpy as np
import onnx
import onnxruntime as ort
from onnx import TensorProto, helper, numpy_helper

from distill.deploy.onnx_compact import compact

LONG = "model.stacks.0.residual_blocks.1.conv2"


def _graph_with_subgraph() -> onnx.ModelProto:
    """image (2, 3) -> points = (image * w + b) if sum(image) > 0 else (image * w); the branches read
    outer-scope tensors, so a renaming that forgot subgraphs would break them."""
    w = numpy_helper.from_array(np.arange(6, dtype=np.float32).reshape(2, 3), f"{LONG}.weight")
    b = numpy_helper.from_array(np.ones((2, 3), np.float32), f"{LONG}.bias")
    then_g = helper.make_graph([helper.make_node("Add", [f"/{LONG}/Mul_output_0", f"{LONG}.bias"], ["then_out"],
                                                 name=f"/{LONG}/then_Add")],
                               "then", [], [helper.make_tensor_value_info("then_out", TensorProto.FLOAT, [2, 3])])
    else_g = helper.make_graph([helper.make_node("Identity", [f"/{LONG}/Mul_output_0"], ["else_out"])],
                               "else", [], [helper.make_tensor_value_info("else_out", TensorProto.FLOAT, [2, 3])])
    nodes = [helper.make_node("Mul", ["image", f"{LONG}.weight"], [f"/{LONG}/Mul_output_0"], name=f"/{LONG}/Mul"),
             helper.make_node("ReduceSum", ["image"], [f"/{LONG}/ReduceSum_output_0"], keepdims=0),
             helper.make_node("Greater", [f"/{LONG}/ReduceSum_output_0", "zero"], [f"/{LONG}/Greater_output_0"]),
             helper.make_node("If", [f"/{LONG}/Greater_output_0"], ["points"], then_branch=then_g, else_branch=else_g)]
    graph = helper.make_graph(nodes, "g", [helper.make_tensor_value_info("image", TensorProto.FLOAT, [2, 3])],
                              [helper.make_tensor_value_info("points", TensorProto.FLOAT, [2, 3])],
                              initializer=[w, b, numpy_helper.from_array(np.zeros((), np.float32), "zero")])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)])
    model.ir_version = 9
    return onnx.shape_inference.infer_shapes(model)  # adds value_info, which compaction drops


def _run(model: onnx.ModelProto, x: np.ndarray) -> np.ndarray:
    session = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    return session.run(["points"], {"image": x})[0]


def test_compaction_keeps_outputs_and_public_names_and_shrinks_the_file():
    model = _graph_with_subgraph()
    before = model.ByteSize()
    xs = [np.full((2, 3), v, np.float32) for v in (1.0, -1.0)]  # both If branches
    expected = [_run(model, x) for x in xs]

    compact(model)
    onnx.checker.check_model(model, full_check=True)
    for x, want in zip(xs, expected):
        np.testing.assert_array_equal(_run(model, x), want)
    assert [v.name for v in model.graph.input] == ["image"] and [v.name for v in model.graph.output] == ["points"]
    names = [t.name for t in model.graph.initializer] + [o for n in model.graph.node for o in n.output if o != "points"]
    assert all(len(name) <= 3 for name in names), names
    assert not any(n.name for n in model.graph.node)
    assert len(model.graph.value_info) == 0
    assert model.ByteSize() < before / 2


def test_exported_models_carry_short_names(tmp_path):
    from distill.checkpoint import model_info, save_model_checkpoint
    from distill.data import SCHEMAS
    from distill.deploy.export import export
    from distill.models import build_model

    model = build_model("convdw", width_mult=0.25, input_size=32).eval()
    ckpt = tmp_path / "m.ckpt"
    save_model_checkpoint(ckpt, model, model_info(model, SCHEMAS["ibug68"], recipe_name="t"))
    path = export(ckpt, "onnx", tmp_path / "m.onnx", log=lambda *a: None).path
    graph = onnx.load(str(path)).graph
    assert not any("." in t.name or "/" in t.name for t in graph.initializer)
    assert not any("/" in n.name for n in graph.node)


def test_default_attributes_go_and_the_others_stay():
    """A Conv spelled out with every default (strides, dilations 1, pads 0, group 1, its kernel_shape)
    and a strided, padded MaxPool: the defaults go, the rest stays, the outputs do not move."""
    rng = np.random.default_rng(0)
    w = numpy_helper.from_array(rng.normal(size=(4, 2, 3, 3)).astype(np.float32), "w")
    nodes = [helper.make_node("Conv", ["image", "w"], ["c"], kernel_shape=[3, 3], strides=[1, 1], dilations=[1, 1],
                              pads=[0, 0, 0, 0], group=1),
             helper.make_node("MaxPool", ["c"], ["points"], kernel_shape=[2, 2], strides=[2, 2], pads=[1, 1, 1, 1])]
    graph = helper.make_graph(nodes, "g", [helper.make_tensor_value_info("image", TensorProto.FLOAT, [1, 2, 8, 8])],
                              [helper.make_tensor_value_info("points", TensorProto.FLOAT, None)], initializer=[w])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)])
    model.ir_version = 9
    x = rng.normal(size=(1, 2, 8, 8)).astype(np.float32)
    want = _run(model, x)

    compact(model)
    conv, pool = model.graph.node
    assert not conv.attribute
    assert {a.name: list(a.ints) for a in pool.attribute} == {"kernel_shape": [2, 2], "strides": [2, 2],
                                                              "pads": [1, 1, 1, 1]}
    np.testing.assert_array_equal(_run(model, x), want)


def test_identical_constants_are_stored_once():
    """Two equal weights (one read inside an If branch, from the outer scope) become one initializer;
    a third equal one that is also a graph output keeps its name."""
    ones = np.ones((2, 3), np.float32)
    inits = [numpy_helper.from_array(ones, "a"), numpy_helper.from_array(ones.copy(), "b"),
             numpy_helper.from_array(np.zeros((), np.float32), "zero"), numpy_helper.from_array(ones.copy(), "c")]
    then_g = helper.make_graph([helper.make_node("Mul", ["image", "b"], ["t"])], "then", [],
                               [helper.make_tensor_value_info("t", TensorProto.FLOAT, [2, 3])])
    else_g = helper.make_graph([helper.make_node("Sub", ["image", "b"], ["e"])], "else", [],
                               [helper.make_tensor_value_info("e", TensorProto.FLOAT, [2, 3])])
    nodes = [helper.make_node("ReduceSum", ["image"], ["s"], keepdims=0),
             helper.make_node("Greater", ["s", "zero"], ["g"]),
             helper.make_node("If", ["g"], ["branch"], then_branch=then_g, else_branch=else_g),
             helper.make_node("Add", ["branch", "a"], ["points"])]
    graph = helper.make_graph(nodes, "g", [helper.make_tensor_value_info("image", TensorProto.FLOAT, [2, 3])],
                              [helper.make_tensor_value_info("points", TensorProto.FLOAT, [2, 3]),
                               helper.make_tensor_value_info("c", TensorProto.FLOAT, [2, 3])], initializer=inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)])
    model.ir_version = 9
    xs = [np.full((2, 3), v, np.float32) for v in (2.0, -2.0)]
    expected = [_run(model, x) for x in xs]

    compact(model, merge_constants=True)
    onnx.checker.check_model(model, full_check=True)
    assert len(model.graph.initializer) == 3  # a + b merged; zero; the output c
    assert "c" in [t.name for t in model.graph.initializer]
    for x, want in zip(xs, expected):
        np.testing.assert_array_equal(_run(model, x), want)
