import pytest
import torch

from distill.errors import ConfigError
from distill.models import build_model, model_facts
from distill.models.hourglass import Hourglass, HourglassConfig


def tiny(**kw):
    base = dict(input_size=64, num_stacks=2, depth=2, channels=16)
    return Hourglass(HourglassConfig(**{**base, **kw})).eval()


def test_newell_default_flops_match_hand_count():
    """Multiply-adds (MACs) of every convolution of the Newell default (4 stacks x 256, 68 points,
    256x256 input), counted by hand once; biases, BN, ReLU, pooling and upsampling not counted.

    Bottleneck(cin -> cout), mid = cout/2, per output pixel: cin*mid + 9*mid*mid + mid*cout
    (+ cin*cout for the 1x1 skip when cin != cout).
      Bottleneck(64->128) = 4096 + 36864 + 8192 + 8192 = 57,344
      Bottleneck(128->128) = 8192 + 36864 + 8192       = 53,248
      Bottleneck(128->256) = 16384 + 147456 + 32768 + 32768 = 229,376
      Bottleneck(256->256) = 32768 + 147456 + 32768    = 212,992
    Stem: 7x7 conv 3->64 at 128x128: 16384 * 64*3*49 = 154,140,672
          Bottleneck(64->128) at 128x128: 16384 * 57,344 = 939,524,096
          Bottleneck(128->128) at 64x64: 4096 * 53,248 = 218,103,808
          Bottleneck(128->256) at 64x64: 4096 * 229,376 = 939,524,096      stem = 2,251,292,672
    One hourglass, depth 4 on 64x64 (pixels per level: 4096, 1024, 256, 64, 16):
          skip branches at levels 0-3: 4096+1024+256+64 = 5440 px; down and up branches at levels 1-4:
          1360 px each; bottom at 4x4: 16 px; so 8176 px of Bottleneck(256->256).
    Per stack: (8176 + 4096 for the residual after the hourglass) * 212,992 = 2,613,837,824
          + lin 1x1 256->256 at 64x64: 268,435,456 + head 1x1 256->68: 71,303,168 = 2,953,576,448
    Merge after stacks 0-2: 1x1 256->256 + 1x1 68->256 at 64x64 = 268,435,456 + 71,303,168 = 339,738,624
    Total = 2,251,292,672 + 4 * 2,953,576,448 + 3 * 339,738,624 = 15,084,814,336 MACs (15.08 G).

    FlopCounterMode counts 2 FLOPs per multiply-add, so expect 2 * 15.08e9 = 30.17 GFLOPs.
    The model is built on the meta device: the counter sees the shapes without computing anything."""
    hand_macs = 15_084_814_336
    with torch.device("meta"):
        model = build_model("hourglass")
    facts = model_facts(model)
    assert abs(facts["flops"] - 2 * hand_macs) / (2 * hand_macs) < 0.10
    assert facts["gflops"] == pytest.approx(facts["flops"] / 1e9)


@pytest.mark.parametrize("stem_channels, params, gflops", [
    (128, 1_437_000, 0.3925),  # the prototype's synthface teacher: "1.44M params, 0.39 GFLOPs"
    (None, 1_352_744, 0.2764),  # the default stem, half as wide
])
def test_synthface_teacher_size(stem_channels, params, gflops):
    with torch.device("meta"):
        model = build_model("hourglass", num_stacks=2, channels=128, depth=3, input_size=64,
                            stem_channels=stem_channels)
    facts = model_facts(model)
    assert facts["params"] == params
    assert facts["gflops"] == pytest.approx(gflops, abs=1e-4)


@pytest.mark.parametrize("input_size, depth", [(32, 1), (64, 2), (64, 4), (128, 3)])
def test_heatmaps_are_a_quarter_of_the_input(input_size, depth):
    model = tiny(input_size=input_size, depth=depth, num_stacks=1)
    with torch.no_grad():
        out = model(torch.zeros(1, 3, input_size, input_size))
    assert tuple(out.shape) == (1, 68, input_size // 4, input_size // 4)


def test_level_taps_halve_per_level_and_end_at_heatmap_resolution():
    model = tiny(depth=3)
    _, features = model.forward_intermediates(torch.randn(1, 3, 64, 64))
    for i in range(2):
        for d in range(3):
            assert tuple(features[f"stack{i}.level{d}"].shape) == (1, 16, 16 >> d, 16 >> d)
            assert model.feature_strides()[f"stack{i}.level{d}"] == 4 << d
        assert tuple(features[f"stack{i}.out"].shape) == (1, 16, 16, 16)


def test_intermediate_supervision_feeds_each_stack_into_the_next():
    torch.manual_seed(0)
    model = tiny()
    x = torch.randn(2, 3, 64, 64)
    with torch.no_grad():
        first, last = model.forward_intermediates(x)[0]
        model.stacks[0].merge_heatmaps.weight.zero_()  # cut the heatmap path of the merge
        first2, last2 = model.forward_intermediates(x)[0]
    assert torch.equal(first, first2)
    assert not torch.allclose(last, last2), "stack 1 must read stack 0's heatmaps"
    assert model.stacks[-1].merge_features is None and model.stacks[-1].merge_heatmaps is None


def test_stem_is_prunable_and_taps_keep_their_names():
    wide, narrow = tiny(channels=32, stem_channels=32), tiny(channels=32, stem_channels=8)
    assert narrow.stem.conv.out_channels == 4 and narrow.stem.res2.conv3.out_channels == 8
    assert model_facts(narrow)["flops"] < model_facts(wide)["flops"]
    assert narrow.feature_channels() == wide.feature_channels()
    assert tiny(channels=32).config.stem_width() == 16  # None: half the hourglass width, as Newell's stem


def test_basic_blocks_and_more_blocks_per_level():
    bottleneck, basic = tiny(), tiny(block="basic")
    assert sum(p.numel() for p in basic.parameters()) > sum(p.numel() for p in bottleneck.parameters())
    deeper = tiny(blocks_per_level=2)
    assert len(deeper.stacks[0].hourglass.skip[0]) == 2
    x = torch.randn(1, 3, 64, 64)
    for model in (basic, deeper):
        with torch.no_grad():
            assert model(x).shape == (1, 68, 16, 16)


def test_depthwise_blocks_are_separable_and_cheaper():
    bottleneck, dw = tiny(channels=32), tiny(channels=32, block="depthwise")
    block = dw.stacks[0].hourglass.skip[0][0]
    assert block.conv1.groups == 32 and block.conv1.kernel_size == (3, 3) and block.conv2.kernel_size == (1, 1)
    assert model_facts(dw)["flops"] < 0.7 * model_facts(bottleneck)["flops"]
    assert dw.feature_channels() == bottleneck.feature_channels()
    with torch.no_grad():
        assert dw(torch.randn(1, 3, 64, 64)).shape == (1, 68, 16, 16)


def test_lean_stem_and_no_head_block():
    newell, lean = tiny(channels=32), tiny(channels=32, stem_kernel=3, head_blocks=0)
    assert newell.stem.conv.kernel_size == (7, 7) and lean.stem.conv.kernel_size == (3, 3)
    assert len(newell.stacks[0].res) == 1 and len(lean.stacks[0].res) == 0
    assert model_facts(lean)["flops"] < model_facts(newell)["flops"]
    assert lean.feature_names() == newell.feature_names()
    x = torch.randn(1, 3, 64, 64)
    with torch.no_grad():
        outputs, taps = lean.forward_intermediates(x)
    assert outputs[-1].shape == (1, 68, 16, 16) and torch.equal(outputs[-1], lean(x))
    # the head residuals follow blocks_per_level unless head_blocks says otherwise (older checkpoints)
    assert len(tiny(blocks_per_level=2).stacks[0].res) == 2


@pytest.mark.parametrize("kw, word", [
    (dict(input_size=64, depth=5), "input_size"),
    (dict(input_size=66, depth=1), "input_size"),
    (dict(num_stacks=0), "num_stacks"),
    (dict(channels=-4), "channels"),
    (dict(stem_channels=1), "stem_channels"),
    (dict(block="dense"), "block"),
    (dict(stem_kernel=4), "stem_kernel"),
    (dict(head_blocks=-1), "head_blocks"),
])
def test_bad_config_raises_config_error(kw, word):
    with pytest.raises(ConfigError, match=word):
        tiny(**kw)
