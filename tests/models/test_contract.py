"""The contract every model in MODEL_CONFIGS keeps, checked entry by entry (a family added to the zoo is
covered as soon as it has a default and a "_tiny" config there).

Tiny configs get the whole contract: forward/backward, forward_intermediates agreeing exactly with
forward, declared feature names/channels/strides matching the tensors, ONNX export run in ONNX Runtime,
TorchScript tracing, and the config-dict round trip. Full-size configs get a parameter count checked
against a number computed once and written here, and one forward pass at a small input.

ONNX export uses the TorchScript-based exporter (`dynamo=False`): on this 2-core machine it exports a
tiny Hourglass in under a second where the torch.export-based one takes ~12 s, it needs no onnxscript
at export time, and its graphs have been stable across releases. It is deprecated since torch 2.9 but
present in the pinned 2.13; the models are plain convolutions either way (both exporters were checked to
give the same outputs).
"""

import dataclasses
import json

import numpy as np
import onnxruntime as ort
import pytest
import torch

from distill.errors import ConfigError
from distill.models import FAMILIES, MODEL_CONFIGS, build_model, build_model_from_dict, model_config_dict

TINY = sorted(n for n in MODEL_CONFIGS if n.endswith("_tiny"))
FULL = sorted(n for n in MODEL_CONFIGS if not n.endswith("_tiny"))

# counted once with sum(p.numel() for p in model.parameters()) when each default was chosen
EXPECTED_PARAMS = {
    "hourglass": 12_935_760,   # Newell 4 x 256, 68 points (no bias on convs that feed a BN)
    "convdw": 48_488,
    "mobilenetv2": 50_144,
    "shufflenetv2": 49_736,
}


def make_input(model, batch=2, seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(batch, 3, model.input_size, model.input_size, generator=g)


def expected_output_shape(model, batch):
    if model.output_kind == "heatmap":
        return (batch, model.num_points, model.input_size // 4, model.input_size // 4)
    assert model.output_kind == "coords"
    return (batch, model.num_points, 2)


def export_onnx(model, x, path):
    torch.onnx.export(model, (x,), str(path), dynamo=False, opset_version=17,
                      input_names=["image"], output_names=["output"],
                      dynamic_axes={"image": {0: "batch"}, "output": {0: "batch"}})


def test_every_family_has_a_default_and_a_tiny_config():
    for family in FAMILIES:
        assert MODEL_CONFIGS[family].family == family
        assert MODEL_CONFIGS[f"{family}_tiny"].family == family
    assert {cfg.family for cfg in MODEL_CONFIGS.values()} == set(FAMILIES)


@pytest.mark.parametrize("name", TINY)
def test_tiny_forward_backward(name):
    model = build_model(name).train()
    assert sum(p.numel() for p in model.parameters()) < 100_000, "tiny configs keep the suite fast"
    x = make_input(model)
    out = model(x)
    assert tuple(out.shape) == expected_output_shape(model, 2)
    out.square().mean().backward()
    for pname, p in model.named_parameters():
        assert p.grad is not None and torch.isfinite(p.grad).all(), pname
        assert p.grad.abs().sum() > 0, f"{pname}: no gradient reaches it"


@pytest.mark.parametrize("name", TINY)
def test_tiny_intermediates_agree_with_forward(name):
    model = build_model(name).eval()
    x = make_input(model)
    with torch.no_grad():
        out = model(x)
        outputs, features = model.forward_intermediates(x)
    assert torch.equal(outputs[-1], out)
    if model.output_kind == "heatmap":
        assert len(outputs) == model.config.num_stacks
    assert list(features) == model.feature_names()
    channels, strides = model.feature_channels(), model.feature_strides()
    assert list(channels) == model.feature_names() and list(strides) == model.feature_names()
    for fname, f in features.items():
        size = model.input_size // strides[fname]
        assert tuple(f.shape) == (2, channels[fname], size, size), fname


@pytest.mark.parametrize("name", TINY)
def test_tiny_onnx_export_matches_torch(name, tmp_path):
    model = build_model(name).eval()
    path = tmp_path / f"{name}.onnx"
    export_onnx(model, make_input(model, batch=2), path)
    x = make_input(model, batch=3, seed=1)  # another batch size: the batch axis must stay dynamic
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    (got,) = session.run(None, {"image": x.numpy()})
    with torch.no_grad():
        want = model(x).numpy()
    assert got.shape == want.shape
    np.testing.assert_allclose(got, want, atol=1e-4, rtol=0)


@pytest.mark.parametrize("name", TINY)
def test_tiny_torchscript_trace_matches_torch(name):
    model = build_model(name).eval()
    with torch.no_grad():
        traced = torch.jit.trace(model, make_input(model, batch=2), check_trace=False)  # parity is checked below
        x = make_input(model, batch=3, seed=1)
        torch.testing.assert_close(traced(x), model(x), atol=1e-5, rtol=0)


@pytest.mark.parametrize("name", TINY)
def test_tiny_config_dict_round_trip(name):
    model = build_model(name).eval()
    d = json.loads(json.dumps(model_config_dict(model)))  # must survive plain JSON
    assert d["family"] == model.config.family
    rebuilt = build_model_from_dict(d).eval()
    assert rebuilt.config == model.config and type(rebuilt) is type(model)
    rebuilt.load_state_dict(model.state_dict())
    x = make_input(model)
    with torch.no_grad():
        assert torch.equal(rebuilt(x), model(x))


@pytest.mark.parametrize("name", FULL)
def test_full_size_parameter_count(name):
    assert name in EXPECTED_PARAMS, f"new default config '{name}': add its parameter count to EXPECTED_PARAMS"
    model = build_model(name)
    assert sum(p.numel() for p in model.parameters()) == EXPECTED_PARAMS[name]


@pytest.mark.parametrize("name", FULL)
def test_full_size_forward_at_small_input(name):
    model = build_model(name, input_size=64).eval()
    with torch.no_grad():
        out = model(make_input(model, batch=1))
    assert tuple(out.shape) == expected_output_shape(model, 1)
    assert torch.isfinite(out).all()


def test_build_model_overrides():
    model = build_model("convdw", width_mult=2.0, stage_blocks=[1, 1, 1])  # lists, as YAML gives them
    assert model.config.width_mult == 2.0 and model.config.stage_blocks == (1, 1, 1)
    assert MODEL_CONFIGS["convdw"].width_mult == 1.0, "overrides must not touch the shared config"
    cfg = dataclasses.replace(MODEL_CONFIGS["hourglass_tiny"], num_stacks=1)
    assert build_model(cfg).config.num_stacks == 1


@pytest.mark.parametrize("call, words", [
    (lambda: build_model("convdw", widht_mult=2.0), ["widht_mult", "convdw"]),
    (lambda: build_model("resnet50"), ["resnet50"]),
    (lambda: build_model(42), ["42"]),
    (lambda: build_model("hourglass_tiny", family="convdw"), ["family"]),
    (lambda: build_model("hourglass_tiny", depth=5), ["input_size", "depth"]),
    (lambda: build_model("hourglass_tiny", block="dense"), ["block", "dense"]),
    (lambda: build_model("convdw_tiny", input_size=40), ["input_size", "40"]),
    (lambda: build_model("mobilenetv2_tiny", stage_blocks=(1, 1)), ["stage_blocks"]),
    (lambda: build_model_from_dict({"family": "resnet"}), ["resnet"]),
    (lambda: build_model_from_dict({"family": "convdw", "bogus": 1}), ["bogus"]),
    (lambda: build_model_from_dict({"channels": 8}), ["family"]),
    (lambda: build_model("hourglass_tiny", **{"num_stacks:1": None}), ["num_stacks:1", "space after each colon"]),
])
def test_build_model_errors_name_the_field(call, words):
    with pytest.raises(ConfigError) as err:
        call()
    for word in words:
        assert word in str(err.value)
