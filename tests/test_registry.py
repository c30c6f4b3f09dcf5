"""core.registry: every extension point is a Registry filled where its things are defined."""

import pytest

from core.registry import Registry


def test_a_registry_finds_by_name_refuses_twice_and_names_the_choices():
    shapes = Registry("shape", {"square": 4})

    @shapes.register("triangle")
    def triangle():
        return 3

    assert shapes.lookup("triangle") is triangle and list(shapes) == ["square", "triangle"]
    with pytest.raises(ValueError, match="shape 'square' is registered twice"):
        shapes.add("square", 5)
    with pytest.raises(ValueError, match=r"unknown shape 'circle'; choose one of square, triangle"):
        shapes.lookup("circle")


def test_every_extension_point_is_a_registry():
    import evaluate
    from evaluation.offline_metrics import LOADERS
    from losses.adversarial import GAN_TYPES
    from losses.detail import DETAIL_LOSSES
    from nets.blocks import NORM_LAYERS, UPSAMPLING
    from nets.patchgan import CRITIC_NORM_LAYERS
    from nets.registry import NETWORKS

    points = {"network": NETWORKS, "norm": NORM_LAYERS, "upsample": UPSAMPLING, "critic norm": CRITIC_NORM_LAYERS,
              "gan_type": GAN_TYPES, "detail loss": DETAIL_LOSSES, "metric": LOADERS, "method": evaluate.BUILDERS}
    for kind, registry in points.items():
        assert isinstance(registry, Registry) and registry.kind == kind and len(registry) >= 2
    assert {"light_unet", "unet", "patchgan", "double_scale"} <= set(NETWORKS)
    from datasets.kernels import KERNEL_DRAWS, KERNEL_KINDS

    assert isinstance(KERNEL_DRAWS, Registry) and tuple(KERNEL_DRAWS) == KERNEL_KINDS  # configs check names there
