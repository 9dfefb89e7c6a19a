"""Networks: shape contract on odd sizes, gradients, size of the default configuration."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from napari_nevseg.core.model import (
    ARCHITECTURES,
    ResUNet,
    SegNet,
    UNet,
    build_model,
    count_parameters,
    freeze_batchnorm,
)

# UNet(width=16, depth=4), the default training configuration, computed once and pinned: a change
# means the architecture changed and shipped model files no longer load.
DEFAULT_UNET_PARAMETERS = 1_811_777
DEFAULT_SEGNET_PARAMETERS = 785_281
DEFAULT_RESUNET_PARAMETERS = 1_630_473
DIRECT_RESUNET_PARAMETERS = 1_627_825  # the shipped model: top="direct"
ALL = ["unet", "resunet", "resunet_direct", "segnet"]


def _small(arch: str, norm: str = "batch") -> nn.Module:
    if arch == "unet":
        return UNet(width=4, depth=3, norm=norm)
    if arch == "resunet":
        return ResUNet(channels=(4, 8, 8, 16), norm=norm, head_channels=4, top="refine")
    if arch == "resunet_direct":
        return ResUNet(channels=(4, 8, 8, 16), norm=norm, top="direct")
    return SegNet(channels=(4, 8, 8, 16), bottleneck=16, norm=norm)


@pytest.mark.parametrize("arch", ALL)
@pytest.mark.parametrize("shape", [(1, 3, 37, 53), (2, 3, 64, 48), (1, 3, 16, 17), (2, 3, 5, 9), (2, 3, 1, 1)])
def test_forward_backward_odd_sizes(arch, shape):
    torch.manual_seed(0)
    model = _small(arch).train()
    x = torch.rand(*shape, requires_grad=True)
    out = model(x)
    assert out.shape == (shape[0], 1, shape[2], shape[3])
    assert out.dtype == torch.float32
    out.mean().backward()
    grads = [p.grad for p in model.parameters()]
    assert all(g is not None and torch.isfinite(g).all() for g in grads)
    assert x.grad is not None and x.grad.abs().sum().item() > 0


@pytest.mark.parametrize("arch", ALL)
def test_outputs_are_logits_not_probabilities(arch):
    torch.manual_seed(1)
    model = _small(arch).eval()
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, nn.Conv2d | nn.ConvTranspose2d) and m.out_channels == 1:
                m.bias.fill_(-5.0)  # a head bias far below 0 must give negative outputs
        out = model(torch.rand(1, 3, 32, 32))
    assert out.max().item() < 0.0


@pytest.mark.parametrize(("arch", "norm"), [("unet", "batch"), ("resunet", "instance"), ("resunet_direct", "instance")])
def test_eval_output_is_per_image(arch, norm):
    """In eval mode a batch gives the same result as its images one by one (no cross-talk)."""
    torch.manual_seed(2)
    model = _small(arch, norm).eval()
    x = torch.rand(3, 3, 40, 44)
    with torch.no_grad():
        batched = model(x)
        single = torch.cat([model(x[i : i + 1]) for i in range(3)])
    torch.testing.assert_close(batched, single, rtol=1e-4, atol=1e-5)


def test_default_parameter_counts():
    assert count_parameters(UNet(width=16, depth=4)) == DEFAULT_UNET_PARAMETERS
    assert count_parameters(UNet()) == DEFAULT_UNET_PARAMETERS
    assert count_parameters(SegNet()) == DEFAULT_SEGNET_PARAMETERS
    assert count_parameters(ResUNet(top="refine")) == DEFAULT_RESUNET_PARAMETERS
    assert count_parameters(ResUNet()) == DIRECT_RESUNET_PARAMETERS  # the default: the shipped top


@pytest.mark.parametrize(("top", "allowed"), [("refine", {8, 1}), ("direct", {1})])
def test_resunet_downsamples_before_any_full_resolution_features(top, allowed):
    """The first convolution already strides; at full resolution there is only the head's thin
    map ("refine") or nothing but the logit ("direct")."""
    model = ResUNet(top=top)
    first = next(m for m in model.modules() if isinstance(m, nn.Conv2d))
    assert first.stride == (2, 2)
    sizes: list[tuple[int, int]] = []
    hooks = [m.register_forward_hook(lambda _m, _i, out: sizes.append((out.shape[1], out.shape[-1])))
             for m in model.modules() if isinstance(m, nn.Conv2d | nn.ConvTranspose2d)]
    model.eval()(torch.rand(1, 3, 64, 64))
    for h in hooks:
        h.remove()
    full_res_channels = {c for c, w in sizes if w == 64}
    assert full_res_channels == allowed


def test_resunet_rejects_unknown_top():
    with pytest.raises(ValueError, match="unknown top 'skip'"):
        ResUNet(top="skip")


def test_instance_norm_is_instance_normalisation():
    """``norm="instance"`` (GroupNorm with a group per channel, the faster kernel) computes what
    InstanceNorm2d(affine=True) does, with the same parameter names, so model files carry over."""
    torch.manual_seed(5)
    ours = ResUNet(channels=(4, 8, 16), norm="instance").encoder[0].body[1]
    reference = nn.InstanceNorm2d(4, affine=True)
    with torch.no_grad():
        ours.weight.uniform_(0.5, 2.0)
        ours.bias.uniform_(-1.0, 1.0)
    reference.load_state_dict(ours.state_dict())
    x = torch.randn(3, 4, 9, 13) * 5 + 2
    torch.testing.assert_close(ours(x), reference(x), rtol=1e-4, atol=1e-4)


def test_resunet_instance_norm_is_batch_independent():
    """Training-mode outputs of one image do not depend on the rest of its batch."""
    torch.manual_seed(4)
    model = _small("resunet", "instance").train()
    x = torch.rand(3, 3, 32, 40)
    torch.testing.assert_close(model(x)[:1], model(x[:1]), rtol=1e-4, atol=1e-5)


def test_segnet_has_the_designed_channels():
    model = SegNet()
    convs = [m for m in model.modules() if isinstance(m, nn.Conv2d)]
    assert [c.out_channels for c in convs] == [16, 32, 64, 128, 256, 128, 64, 32, 16, 1]


def test_count_parameters_skips_frozen():
    model = UNet(width=4, depth=2)
    total = count_parameters(model)
    model.head.weight.requires_grad_(False)
    assert count_parameters(model) == total - model.head.weight.numel()


@pytest.mark.parametrize("arch", ALL)
def test_groupnorm_variant(arch):
    model = _small(arch, norm="group").train()
    assert any(isinstance(m, nn.GroupNorm) for m in model.modules())
    assert not any(isinstance(m, nn.BatchNorm2d) for m in model.modules())
    out = model(torch.rand(1, 3, 29, 31))  # batch of one trains with GroupNorm
    assert out.shape == (1, 1, 29, 31)
    out.sum().backward()


def test_unknown_norm_and_bad_sizes():
    with pytest.raises(ValueError, match="unknown norm"):
        UNet(width=4, depth=2, norm="layer")
    with pytest.raises(ValueError, match="at least 1"):
        UNet(width=4, depth=0)


def test_build_model():
    assert set(ARCHITECTURES) == {"unet", "resunet", "segnet"}
    res = build_model("resunet", {"channels": [4, 8, 16], "norm": "instance"})  # JSON lists work
    assert isinstance(res, ResUNet) and res.depth == 2
    unet = build_model("unet", {"width": 4, "depth": 2, "norm": "group"})
    assert isinstance(unet, UNet) and unet.depth == 2
    segnet = build_model("segnet", {"channels": [4, 8], "bottleneck": 8})  # JSON lists work
    assert isinstance(segnet, SegNet) and segnet.depth == 2
    assert isinstance(build_model("unet"), UNet)


def test_build_model_unknown_arch():
    with pytest.raises(ValueError, match="unknown architecture 'resnet'.*resunet.*segnet.*unet"):
        build_model("resnet", {})


def test_build_model_bad_params():
    with pytest.raises(TypeError):
        build_model("unet", {"widht": 4})


def test_freeze_batchnorm_keeps_statistics():
    torch.manual_seed(3)
    model = UNet(width=4, depth=2).train()
    freeze_batchnorm(model)
    bn = next(m for m in model.modules() if isinstance(m, nn.BatchNorm2d))
    before = bn.running_mean.clone()
    model(torch.rand(2, 3, 16, 16) * 5 + 3)
    assert torch.equal(bn.running_mean, before)
    assert model.training  # only the norms are in eval mode
    assert not bn.training
