"""Short names for an ONNX graph's internal tensors and nodes: smaller files, same computation.

The tracing exporter names tensors after module paths and trace positions
("model.stacks.0.res.1.conv2.weight", "/stacks.0/res.1/Relu_output_0") and ONNX Runtime's quantiser
appends to them ("..._DequantizeLinear_Output"). A runtime needs none of it: for the 1x32 student, names
were 104 KB of a 249 KB int8 file that holds 74 KB of tensors, so int8 could not be much smaller than
float. Compaction renames every internal tensor to a base-36 counter ("_0", "_1", ..., "_a9") and every
node to "n<index>", and drops ``value_info`` (shape annotations a runtime re-infers). The graph's input
and outputs (the public contract: ``image``, ``points``, ``confidence``), its ops, attributes, weights
and metadata are untouched, so outputs are bit-identical.

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


def compact_names(model):
    """Rename internal tensors and nodes of ``model`` (an ``onnx.ModelProto``) in place -> the same model.

    A name keeps its meaning everywhere it occurs (node inputs and outputs, initializers, subgraphs,
    which may refer to outer-scope tensors), so the renaming is a bijection and the graph stays valid.
    """
    import onnx

    graph = model.graph
    inits = {t.name for t in graph.initializer}
    public = {v.name for v in graph.input if v.name not in inits} | {v.name for v in graph.output}
    mapping: dict[str, str] = {}

    def short(name: str) -> str:
        if not name or name in public:  # "" marks an omitted optional input
            return name
        if name not in mapping:
            mapping[name] = "_" + _base36(len(mapping))  # "_" prefix: never equal to a public name
        return mapping[name]

    def rename(g) -> None:
        for t in g.initializer:
            t.name = short(t.name)
        for t in g.sparse_initializer:
            t.values.name = short(t.values.name)
        for v in list(g.input) + list(g.output):
            v.name = short(v.name)
        del g.value_info[:]
        for k, node in enumerate(g.node):
            node.name = f"n{_base36(k)}"
            node.doc_string = ""
            node.input[:] = [short(x) for x in node.input]
            node.output[:] = [short(x) for x in node.output]
            for attr in node.attribute:
                if attr.type == onnx.AttributeProto.GRAPH:
                    rename(attr.g)
                for sub in attr.graphs:
                    rename(sub)

    rename(graph)
    return model


def compact_file(path) -> None:
    """Compact the ONNX file at ``path`` in place (see :func:`compact_names`)."""
    import onnx

    model = onnx.load(str(path))
    onnx.save(compact_names(model), str(path))
