"""Perceptual (VGG19 feature) loss, with ImageNet weights that are loaded, never silently replaced."""

from __future__ import annotations

from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from core.errors import MissingWeightsError

from .torchvision_import import import_torchvision

VGG19_FILE = "vgg19-dcbb9e9d.pth"  # torchvision's name for its ImageNet VGG19 checkpoint
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


def vgg19_layer_names() -> list[str]:
    """Names of ``vgg19().features`` by index: conv1_1, relu1_1, conv1_2, relu1_2, pool1, conv2_1, ..."""
    names, block, conv = [], 1, 1
    for item in import_torchvision().models.vgg.cfgs["E"]:
        if item == "M":
            names.append(f"pool{block}")
            block, conv = block + 1, 1
        else:
            names += [f"conv{block}_{conv}", f"relu{block}_{conv}"]
            conv += 1
    return names


def vgg19_cache_path() -> Path:
    """Where torchvision looks for (and downloads) the ImageNet VGG19 file: ``$TORCH_HOME/hub/checkpoints``."""
    return Path(torch.hub.get_dir()) / "checkpoints" / VGG19_FILE


def load_vgg19_state(source: str, allow_download: bool = True) -> dict[str, torch.Tensor] | None:
    """State dict for ``source``: ``imagenet`` (torchvision's cache, downloaded if allowed), a file path, or
    ``random`` (None: keep the random initialisation; only for tests and plumbing, never for a real loss)."""
    if source == "random":
        return None
    if source != "imagenet":
        path = Path(source)
        if not path.is_file():
            raise MissingWeightsError(f"VGG19 weights file {path} does not exist")
    else:
        path = vgg19_cache_path()
        if not path.is_file():
            if not allow_download:
                raise MissingWeightsError(_missing_message(path, "downloads are disabled"))
            url = import_torchvision().models.VGG19_Weights.IMAGENET1K_V1.url
            try:
                path.parent.mkdir(parents=True, exist_ok=True)
                torch.hub.download_url_to_file(url, str(path), progress=False)
            except Exception as error:  # offline machines fail here in several ways (URLError, OSError, ...)
                raise MissingWeightsError(_missing_message(path, f"download failed: {error}")) from None
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:
        raise MissingWeightsError(f"VGG19 weights file {path} cannot be read ({error})") from None


def _missing_message(path: Path, reason: str) -> str:
    return (
        f"ImageNet VGG19 weights for the perceptual loss are missing ({reason}): put torchvision's {VGG19_FILE} at "
        f"{path} (or set TORCH_HOME, or point adv.vgg_weights at the file); adv.vgg_weights=random is for tests only"
    )


class PerceptualLoss(nn.Module):
    """Distance between VGG19 feature maps of prediction and target, averaged over ``layers``.

    Default ``conv3_3`` (pre-activation), DeblurGAN's choice. Inputs are [0, 1] RGB and are ImageNet-normalised
    here. The network is frozen and stays in eval mode whatever mode its parent is put in.
    """

    def __init__(
        self,
        layers: tuple[str, ...] | list[str] = ("conv3_3",),
        criterion: str = "mse",
        weights: str = "imagenet",
        allow_download: bool = True,
    ):
        super().__init__()
        names = vgg19_layer_names()
        unknown = [layer for layer in layers if layer not in names]
        if unknown or not layers:
            raise ValueError(f"unknown VGG19 layer {unknown[:1] or layers}; choose from {', '.join(names)}")
        if criterion not in ("mse", "l1"):
            raise ValueError(f"perceptual criterion must be 'mse' or 'l1', got {criterion!r}")
        self.indices = sorted(names.index(layer) for layer in layers)
        self.distance = F.mse_loss if criterion == "mse" else F.l1_loss
        vgg = import_torchvision().models.vgg
        self.features = vgg.make_layers(vgg.cfgs["E"])[: self.indices[-1] + 1]
        # torchvision's ReLUs are in-place: a stored conv output followed by its ReLU would be overwritten with
        # relu(conv), so ["conv2_2", "conv3_3"] would compare relu2_2. Out-of-place ReLUs keep every stored feature.
        for layer in self.features:
            if isinstance(layer, nn.ReLU):
                layer.inplace = False
        state = load_vgg19_state(weights, allow_download)
        if state is not None:
            # Only the layers used are needed: a full torchvision file and a truncated one both load.
            wanted = {
                key.removeprefix("features."): value
                for key, value in state.items()
                if key.startswith("features.") and int(key.split(".")[1]) <= self.indices[-1]
            }
            try:
                self.features.load_state_dict(wanted)
            except RuntimeError as error:
                raise MissingWeightsError(f"VGG19 weights do not fit VGG19 ({str(error).splitlines()[0]})") from None
        self.features.requires_grad_(False).eval()
        self.register_buffer("mean", torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(IMAGENET_STD).view(1, 3, 1, 1), persistent=False)

    def train(self, mode: bool = True) -> "PerceptualLoss":
        super().train(mode)
        self.features.eval()  # frozen features: no dropout or norm statistics to switch, ever
        return self

    def _features(self, images: torch.Tensor) -> list[torch.Tensor]:
        outputs, x = [], (images - self.mean) / self.std
        for index, layer in enumerate(self.features):
            x = layer(x)
            if index in self.indices:
                outputs.append(x)
        return outputs

    def forward(self, prediction: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        with torch.no_grad():
            target_features = self._features(target)
        prediction_features = self._features(prediction)
        losses = [self.distance(p, t) for p, t in zip(prediction_features, target_features)]
        return torch.stack(losses).mean()
