import pytest
import torch

from distill.errors import ConfigError
from distill.models import build_model, model_facts
from distill.models.mobile import InvertedResidual, ShuffleUnit, channel_shuffle
from distill.models.regressor import scale_width

REGRESSORS = ["convdw", "mobilenetv2", "shufflenetv2"]


def test_default_convdw_fits_200_kb_for_68_points():
    model = build_model("convdw")
    facts = model_facts(model)
    assert model.num_points == 68 and model.input_size == 64
    assert facts["params"] <= 51_200
    assert facts["bytes"] <= 200 * 1024  # parameters and BN running statistics, fp32


@pytest.mark.parametrize("name", REGRESSORS)
def test_untrained_regressor_predicts_the_crop_centre(name):
    torch.manual_seed(0)
    model = build_model(name).eval()
    with torch.no_grad():
        u = model(torch.randn(4, 3, 64, 64))
    assert u.shape == (4, 68, 2)
    assert (u - 0.5).abs().max() < 0.05


@pytest.mark.parametrize("name", ["mobilenetv2", "shufflenetv2"])
def test_mobile_regressors_are_about_the_convdw_size(name):
    convdw = model_facts(build_model("convdw"))["params"]
    assert 0.8 * convdw <= model_facts(build_model(name))["params"] <= 1.25 * convdw


@pytest.mark.parametrize("name", REGRESSORS)
def test_width_mult_widens_every_stage(name):
    narrow, wide = build_model(name), build_model(name, width_mult=2.0)
    for tap, c in narrow.feature_channels().items():
        assert wide.feature_channels()[tap] == 2 * c
    assert sum(p.numel() for p in wide.parameters()) > 2 * sum(p.numel() for p in narrow.parameters())


def test_scale_width_rounds_to_multiples_of_8():
    assert [scale_width(c, m) for c, m in [(16, 1.0), (32, 0.5), (24, 0.75), (16, 0.25), (128, 1.3)]] == \
        [16, 16, 16, 8, 168]


def test_channel_shuffle_interleaves_the_halves():
    x = torch.arange(8.0).view(1, 8, 1, 1).expand(2, 8, 3, 3)
    assert channel_shuffle(x)[0, :, 0, 0].tolist() == [0, 4, 1, 5, 2, 6, 3, 7]


def test_shuffle_unit_passes_the_first_half_through():
    unit = ShuffleUnit(16, 16, stride=1).eval()
    x = torch.randn(1, 16, 4, 4)
    with torch.no_grad():
        y = unit(x)
    assert torch.equal(y[:, 0::2], x[:, :8])  # after the shuffle the kept half sits on even channels


def test_inverted_residual_shortcut_only_when_shapes_match():
    block = InvertedResidual(16, 16, stride=1, expansion=3).eval()
    with torch.no_grad():
        block.body[-1][1].weight.zero_()  # last BN -> the body outputs 0 (bias starts at 0)
        x = torch.randn(1, 16, 4, 4)
        assert torch.equal(block(x), x)
    assert not InvertedResidual(16, 16, stride=2, expansion=3).shortcut
    assert not InvertedResidual(16, 24, stride=1, expansion=3).shortcut


def test_regressor_learns_a_position():
    """A bright square's centre is learnable through global pooling: the loss must fall well below
    the constant-prediction loss within a few steps."""
    torch.manual_seed(0)
    model = build_model("convdw_tiny", num_points=1, input_size=32).train()
    n, size = 32, 32
    x = torch.zeros(n, 3, size, size)
    centres = torch.randint(4, size - 4, (n, 2))
    for i, (cx, cy) in enumerate(centres.tolist()):
        x[i, :, cy - 3:cy + 3, cx - 3:cx + 3] = 1.0
    # pixels cx-3 .. cx+2 are lit, so the centre is x = cx - 0.5 and u = (x + 0.5) / S = cx / S
    target = (centres.float() / size).view(n, 1, 2)
    baseline = (target - target.mean(0)).square().mean()
    opt = torch.optim.Adam(model.parameters(), lr=1e-2)
    for _ in range(40):
        loss = (model(x) - target).square().mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
    assert loss.item() < 0.3 * baseline.item()


@pytest.mark.parametrize("kw, word", [
    (dict(width_mult=0), "width_mult"),
    (dict(stage_blocks=(1, 0, 1)), "stage_blocks"),
    (dict(stage_channels=(8, 16)), "stage_channels"),
    (dict(input_size=40), "input_size"),
    (dict(num_points=0), "num_points"),
])
@pytest.mark.parametrize("name", REGRESSORS)
def test_bad_config_raises_config_error(name, kw, word):
    with pytest.raises(ConfigError, match=word):
        build_model(name, **kw)
