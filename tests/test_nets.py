import pytest
import torch
from torch import nn

from speedrun.training.nets import MODELS, build_model, count_parameters


def conv(c_in, c_out, k=3):
    return c_in * c_out * k * k


def test_resnet18_has_the_users_parameter_count():
    assert count_parameters(build_model("resnet18")) == 11_173_962


def test_resnet9_parameter_count_matches_pages_architecture():
    bn = lambda c: 2 * c  # noqa: E731  (weight and bias)
    expected = (
        conv(3, 64) + bn(64)
        + conv(64, 128) + bn(128)
        + 2 * (conv(128, 128) + bn(128))
        + conv(128, 256) + bn(256)
        + conv(256, 512) + bn(512)
        + 2 * (conv(512, 512) + bn(512))
        + 512 * 10  # bias-free classifier
    )
    assert count_parameters(build_model("resnet9")) == expected == 6_573_120


@pytest.mark.parametrize("name", MODELS)
def test_forward_gives_ten_logits_in_channels_last(name):
    model = build_model(name).to(memory_format=torch.channels_last).eval()
    x = torch.randn(4, 3, 32, 32).contiguous(memory_format=torch.channels_last)
    with torch.no_grad():
        out = model(x)
    assert out.shape == (4, 10)
    assert torch.isfinite(out).all()


@pytest.mark.parametrize("name", MODELS)
def test_no_bn_removes_every_batchnorm(name):
    with_bn, without = build_model(name, bn=True), build_model(name, bn=False)
    assert any(isinstance(m, nn.BatchNorm2d) for m in with_bn.modules())
    assert not any(isinstance(m, nn.BatchNorm2d) for m in without.modules())
    assert count_parameters(without) < count_parameters(with_bn)


def test_resnet18_has_no_max_pool_and_a_3x3_stem():
    model = build_model("resnet18")
    assert not any(isinstance(m, nn.MaxPool2d) for m in model.modules())
    stem = model.stem[0]
    assert stem.kernel_size == (3, 3) and stem.stride == (1, 1)


def test_convolutions_use_kaiming_normal_fan_out():
    torch.manual_seed(0)
    conv_layer = build_model("resnet18").layers[-1].conv2  # 512×512×3×3: a large sample
    fan_out = conv_layer.out_channels * 9
    assert conv_layer.weight.std().item() == pytest.approx((2 / fan_out) ** 0.5, rel=0.02)


def test_unknown_model_is_rejected():
    with pytest.raises(ValueError, match="resnet18"):
        build_model("vgg")


@pytest.mark.parametrize("name, bn, count", [("resnet18", True, 11_173_962), ("resnet18", False, 11_164_362),
                                             ("resnet9", True, 6_573_120)])
def test_the_training_loop_builds_the_network_its_configuration_names(name, bn, count):
    # The loop's bookkeeping tests train stand-ins (tests/tinynets.py); this is what they stand in for.
    from speedrun.training import loop
    from speedrun.training.config import TrainConfig

    config = TrainConfig(model=name, bn=bn, device="cpu", amp=False, seed=0).resolve()
    parts = loop.build_parts(config, torch.device("cpu"))
    assert count_parameters(parts.model) == count
    assert next(parts.model.parameters()).is_contiguous(memory_format=torch.channels_last)
