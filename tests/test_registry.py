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
    from datasets.sources import SOURCES

    assert isinstance(SOURCES, Registry) and SOURCES.kind == "data source"
    assert set(SOURCES) == {"embedded", "folder", "gopro", "realblur", "hide", "paired"}


def test_a_registered_data_source_is_a_config_choice_and_trains(monkeypatch):
    """A new source is one registry entry: the config accepts its name, checks what it needs, and builds from it."""
    import torch

    from datasets import build_datasets
    from datasets.sources import SOURCES, PhotoSplit, SharpPhotos
    from gan.config import load_config
    from gan.errors import ConfigError

    def gradients(config, seed, margin):
        ramp = torch.linspace(0, 1, 64)
        photos = [torch.stack([ramp[None, :].expand(64, 64), ramp[:, None].expand(64, 64), 0.5 * torch.ones(64, 64)]),
                  torch.stack([ramp[:, None].expand(64, 64)] * 3)]
        return PhotoSplit(photos.__getitem__, ["horizontal", "vertical"], photos[1:], ["vertical"])

    monkeypatch.setitem(SOURCES, "gradients", SharpPhotos(gradients, needs=("sharp_dir",)))
    with pytest.raises(ConfigError, match="data.source 'gradients' needs data.sharp_dir"):
        load_config(None, ["data.source=gradients"])
    config = load_config(None, ["data.source=gradients", "data.sharp_dir=unused", "data.crop_size=16",
                                "data.val_crop_size=16", "data.degradation.kernel_size=7", "data.leaves=0.5"])
    data = build_datasets(config.data, seed=0)
    assert data.split["train"] == ["horizontal", "vertical"] and data.split["val"] == ["vertical"]
    pair = data.train[(0, 0)]
    assert pair["blur"].shape == pair["sharp"].shape == (3, 16, 16) and pair["kernel"].shape == (7, 7)
    with pytest.raises(ValueError, match="data source 'folder' is registered twice"):
        SOURCES.add("folder", SOURCES["folder"])
