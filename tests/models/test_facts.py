import pytest
import torch
from torch import nn

from distill.models import build_model, model_facts


def test_conv_flops_are_twice_the_multiply_adds():
    conv = nn.Conv2d(3, 8, 3, padding=1)
    facts = model_facts(conv, input_size=10)
    assert facts["flops"] == 2 * (8 * 3 * 9) * 10 * 10
    assert facts["gflops"] == pytest.approx(facts["flops"] / 1e9)
    assert facts["params"] == 8 * 3 * 9 + 8
    assert facts["bytes"] == 4 * facts["params"]


def test_bytes_count_bn_running_statistics_but_not_the_batch_counter():
    model = nn.Sequential(nn.Conv2d(3, 4, 1, bias=False), nn.BatchNorm2d(4))
    facts = model_facts(model, input_size=4)
    assert facts["params"] == 12 + 8
    assert facts["bytes"] == 4 * (12 + 8 + 8)  # + running mean and variance, not num_batches_tracked


def test_flops_are_per_image_and_follow_the_input_size():
    model = build_model("hourglass_tiny")  # fully convolutional: cost proportional to the pixels
    one = model_facts(model)  # input size from the model (64)
    assert model_facts(model, batch=3)["flops"] == one["flops"]
    assert model_facts(model, input_size=128)["flops"] == 4 * one["flops"]


def test_facts_leave_the_model_untouched():
    model = build_model("hourglass_tiny").train()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    model_facts(model)
    assert model.training
    for k, v in model.state_dict().items():
        assert torch.equal(v, before[k]), k


def test_meta_device_gives_the_same_count():
    cpu = model_facts(build_model("hourglass_tiny"))
    with torch.device("meta"):
        meta = model_facts(build_model("hourglass_tiny"))
    assert meta == cpu
