"""Compact an ONNX graph: short names, no optional annotations. Smaller files, same computation.

The tracing exporter names tensors after module paths and trace positions
("model.stacks.0.res.1.conv2.weight", "/stacks.0/res.1/Relu_output_0") and ONNX Runtime's quantiser
appends to them ("..._DequantizeLinear_Output"). A runtime needs none of it: for the 1x32 student, names
were 104 KB of a 249 KB int8 file that holds 74 KB of tensors, so int8 could not be much smaller than
float. :func:`compact` therefore

    renames every internal tensor to a base-36 counter ("_0", "_1", ..., "_a9");
    clears node names and doc strings (optional in ONNX; runtimes name nodes themselves);
    drops ``value_info`` (shape annotations a runtime re-infers);
    with ``merge_constants``, stores identical constant tensors once (for quantised graphs: the quantiser
    writes a scale and a zero point per tensor, and many are equal; not before quantising, where a
    weight shared by two layers can make ONNX Runtime's quantiser write a name twice);
    drops convolution and pooling attributes that equal the ONNX default (strides, dilations 1, pads 0,
    group 1) and a convolution's kernel_shape (the spec infers it from the weight): ~100 bytes per
    convolution, 2-4 % of a small int8 student.

The graph's input and outputs (the public contract: ``image``, ``points``, ``confidence``), its ops,
weights, every non-default attribute and the metadata are untouched, so outputs are bit-identical.

Cost: Netron shows "_3f" instead of a module path. The original names are a debugging aid that the
checkpoint (which holds the model with its real names) still provides.
"""

from __future__ import annotations

_DIGITS = "0123456789abcdefghijklmnopqrstuvwxyz"


def _base36(i: int) -> str:
    out = ""
    while True:
        i, r = divmod(i, 36)
        out = _DIGITS[r] + out
        if i == 0:
            return out


# attribute -> "holds its default" for the ops in _DEFAULT_ATTRS (ONNX operator spec)
_IS_DEFAULT = {
    "strides": lambda v: all(x == 1 for x in v),
    "dilations": lambda v: all(x == 1 for x in v),
    "pads": lambda v: all(x == 0 for x in v),
    "group": lambda v: v == 1,
    "auto_pad": lambda v: v in (b"NOTSET", "NOTSET"),
}
# op -> attributes that may go when default; kernel_shape only where the spec infers it from the weight
_DEFAULT_ATTRS = {
    "Conv": (*_IS_DEFAULT, "kernel_shape"),
    "QLinearConv": (*_IS_DEFAULT, "kernel_shape"),
    "MaxPool": ("strides", "dilations", "pads", "auto_pad"),
    "AveragePool": ("strides", "dilations", "pads", "auto_pad"),
}


def _drop_default_attributes(node) -> None:
    import onnx

    droppable = _DEFAULT_ATTRS.get(node.op_type, ())
    keep = [a for a in node.attribute
            if a.name not in droppable
            or not (a.name == "kernel_shape" or _IS_DEFAULT[a.name](onnx.helper.get_attribute_value(a)))]
    if len(keep) < len(node.attribute):
        del node.attribute[:]
        node.attribute.extend(keep)


def _merge_identical_initializers(graph) -> None:
    """Point every use of a constant tensor at the first one with the same type, shape and bytes
    (top-level graph; an initializer that is also a graph input can be overridden and one that is a
    graph output must keep its name, so those stay)."""
    from onnx import numpy_helper

    inputs = {v.name for v in graph.input} | {v.name for v in graph.output}
    first: dict[tuple, str] = {}
    alias: dict[str, str] = {}
    for t in graph.initializer:
        if t.name in inputs:
            continue
        key = (t.data_type, tuple(t.dims), t.raw_data or numpy_helper.to_array(t).tobytes())
        alias[t.name] = first.setdefault(key, t.name)
    alias = {a: b for a, b in alias.items() if a != b}
    if not alias:
        return

    def redirect(g) -> None:  # subgraphs may read outer-scope tensors by name
        for node in g.node:
            node.input[:] = [alias.get(x, x) for x in node.input]
            for attr in node.attribute:
                for sub in ([attr.g] if attr.HasField("g") else []) + list(attr.graphs):
                    redirect(sub)

    redirect(graph)
    keep = [t for t in graph.initializer if t.name not in alias]
    del graph.initializer[:]
    graph.initializer.extend(keep)


def compact(model, merge_constants: bool = False, suffix: str = ""):
    """Compact ``model`` (an ``onnx.ModelProto``) in place (module docstring) -> the same model.

    ``suffix`` ends every new tensor name ("_7" + "q" -> "_7q"). Tools that make a name unique by
    appending characters (ONNX Runtime's quantiser turns a shared "_7" into "_70") can then never hit
    another compacted name ("_70" exists; "_7q0" cannot), so graphs handed to such tools get one.

    A tensor name keeps its meaning everywhere it occurs (node inputs and outputs, initializers,
    subgraphs, which may refer to outer-scope tensors), so the renaming is a bijection and the graph
    stays valid.
    """
    import onnx

    graph = model.graph
    if merge_constants:
        _merge_identical_initializers(graph)
    inits = {t.name for t in graph.initializer}
    public = {v.name for v in graph.input if v.name not in inits} | {v.name for v in graph.output}
    mapping: dict[str, str] = {}

    def short(name: str) -> str:
        if not name or name in public:  # "" marks an omitted optional input
            return name
        if name not in mapping:
            mapping[name] = "_" + _base36(len(mapping)) + suffix  # "_" prefix: never a public name
        return mapping[name]

    def rename(g) -> None:
        for t in g.initializer:
            t.name = short(t.name)
        for t in g.sparse_initializer:
            t.values.name = short(t.values.name)
        for v in list(g.input) + list(g.output):
            v.name = short(v.name)
        del g.value_info[:]
        for node in g.node:
            node.name = ""
            node.doc_string = ""
            node.input[:] = [short(x) for x in node.input]
            node.output[:] = [short(x) for x in node.output]
            _drop_default_attributes(node)
            for attr in node.attribute:
                if attr.type == onnx.AttributeProto.GRAPH:
                    rename(attr.g)
                for sub in attr.graphs:
                    rename(sub)

    rename(graph)
    return model


def compact_file(path) -> None:
    """Compact the ONNX file at ``path`` in place (see :func:`compact`)."""
    import onnx

    model = onnx.load(str(path))
    onnx.save(compact(model), str(path))
