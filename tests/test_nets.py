import pytest
import torch

from nets import LightUNet, UNet, build_network, network_names
from nets.blocks import NORMS, UPSAMPLERS, InstanceNorm2d, cat_channels, pad_to_multiple
from nets.summary import count_macs, count_parameters


def test_light_unet_has_the_reported_6_75m_parameters():
    parameters = count_parameters(LightUNet(start_filters=48))
    assert abs(parameters - 6.75e6) / 6.75e6 < 0.03, parameters


def test_unet_reference_is_about_30m_parameters():
    parameters = count_parameters(UNet())
    assert 28e6 < parameters < 33e6, parameters


def test_light_unet_costs_far_fewer_macs_than_the_reference():
    light = count_macs(LightUNet(start_filters=48), 64, 64)
    reference = count_macs(UNet(), 64, 64)
    assert 0 < light < reference / 4


@pytest.mark.parametrize("name", ["light_unet", "unet"])
def test_untrained_network_is_exactly_the_identity(name):
    torch.manual_seed(0)
    model = build_network(name, start_filters=8).eval()
    x = torch.rand(2, 3, 48, 40)
    assert torch.equal(model(x), x)


@pytest.mark.parametrize("shape", [(1, 3, 67, 101), (2, 3, 16, 16), (1, 3, 5, 9), (1, 3, 1, 1)])
def test_any_input_size_keeps_its_shape(shape):
    model = LightUNet(start_filters=4)
    torch.nn.init.normal_(model.head.weight)  # a non-identity network, so the crop-back really is exercised
    x = torch.rand(*shape)
    y = model(x)
    assert y.shape == x.shape
    assert torch.isfinite(y).all()


@pytest.mark.parametrize("name", ["light_unet", "unet"])
@pytest.mark.parametrize("norm", NORMS)
@pytest.mark.parametrize("upsample", UPSAMPLERS)
def test_every_norm_and_upsampler_builds_trains_and_runs(name, norm, upsample):
    model = build_network(name, start_filters=4, norm=norm, upsample=upsample, plain_last_decoder_blocks=1)
    torch.nn.init.normal_(model.head.weight, std=0.1)
    x = torch.rand(2, 3, 33, 35)
    y = model(x)
    y.mean().backward()
    assert y.shape == x.shape
    assert all(p.grad is not None for p in model.parameters())


def test_plain_last_decoder_blocks_removes_norms_only_at_the_output_end():
    def norm_count(module):
        return sum(isinstance(m, torch.nn.InstanceNorm2d) for m in module.modules())

    model = LightUNet(start_filters=4, plain_last_decoder_blocks=2)
    assert [norm_count(d) for d in model.decoders] == [3, 3, 0, 0]
    assert all(norm_count(e) == 3 for e in model.encoders)


def test_half_input_starts_as_the_file_without_it_and_then_learns(checkpoint):
    from gan.checkpoint import load_init_weights
    from gan.errors import ExperimentError
    from restore.inference import load_generator

    without = load_generator(checkpoint, torch.device("cpu"))
    grown = build_network("light_unet", start_filters=4, half_input=True)
    load_init_weights(grown, checkpoint, "light_unet")  # the file has no half_input: it starts at zero
    x = torch.rand(1, 3, 40, 56)
    with torch.no_grad():
        assert (without(x) - x).abs().max() > 1e-3  # the file's network changes the image
        assert torch.equal(grown.eval()(x), without(x))
    # Its zero 1x1 conv gets a gradient at once, so the new view of the input is learnt, and then it counts.
    grown.train()(x).square().mean().backward()
    assert grown.half_input[-1].weight.grad.abs().max() > 0
    with torch.no_grad():
        torch.nn.init.normal_(grown.half_input[-1].weight, std=0.1)
        assert (grown.eval()(x) - without(x)).abs().max() > 1e-4
    # Only zero-initialised additions may be missing from a file: a network of another width is still refused.
    with pytest.raises(ExperimentError, match="is not a generator of the configured network"):
        load_init_weights(build_network("light_unet", start_filters=8, half_input=True), checkpoint, "light_unet")
    assert count_parameters(grown) - count_parameters(without) == 3 * 4 * 9 + 4 + 4 * 4 + 4


def test_registry_rejects_unknown_names_and_options():
    assert {"light_unet", "unet"} <= set(network_names())
    with pytest.raises(ValueError, match="unknown network 'nope'"):
        build_network("nope")
    with pytest.raises(ValueError, match="no option 'width'"):
        build_network("light_unet", width=3)
    with pytest.raises(ValueError, match="unknown norm 'layer'"):
        build_network("light_unet", norm="layer")


def test_padding_reflects_and_reaches_the_multiple():
    x = torch.arange(12.0).reshape(1, 1, 3, 4)
    padded, size = pad_to_multiple(x, 8)
    assert padded.shape[-2:] == (8, 8) and size == (3, 4)
    assert torch.equal(padded[..., :3, :4], x)
    assert padded[0, 0, 0, 4] == x[0, 0, 0, 2]  # reflection, not zeros
    assert pad_to_multiple(torch.rand(1, 3, 16, 48), 16, minimum=32)[0].shape[-2:] == (32, 48)


@pytest.mark.subprocess
def test_summary_cli_prints_params_and_gmacs():
    import subprocess
    import sys

    out = subprocess.run(
        [sys.executable, "-m", "nets", "light_unet"], capture_output=True, text=True, check=True
    ).stdout
    assert "6,755,331" in out and "7.63" in out


def test_channels_last_gives_the_contiguous_result_and_keeps_its_layout():
    """The fast CPU path: InstanceNorm and the decoder's concatenation take channels_last without an NCHW copy,
    and the network computes the same function (up to summation order) in either layout, per image of a batch."""
    torch.manual_seed(0)
    model = build_network("light_unet", start_filters=8, levels=2).eval()
    for parameter in model.parameters():  # away from the identity init, so every layer matters
        parameter.data.normal_(0.0, 0.3)
    images = torch.rand(3, 3, 40, 56)
    with torch.no_grad():
        reference = model(images)
        fast_model = model.to(memory_format=torch.channels_last)
        fast = fast_model(images.contiguous(memory_format=torch.channels_last))
    assert fast.is_contiguous(memory_format=torch.channels_last) and not fast.is_contiguous()
    assert (fast - reference).abs().max() < 1e-4 * reference.abs().max()
    norm = InstanceNorm2d(8, affine=True)
    features = torch.randn(2, 8, 9, 11).contiguous(memory_format=torch.channels_last)
    assert torch.allclose(norm(features), torch.nn.functional.instance_norm(features.contiguous(), weight=norm.weight,
                                                                              bias=norm.bias), atol=1e-5)
    joined = cat_channels([features, features * 2])
    assert joined.is_contiguous(memory_format=torch.channels_last)
    assert torch.equal(joined, torch.cat([features, features * 2], dim=1))
