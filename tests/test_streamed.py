"""Exact whole-image results of InstanceNorm networks in row bands (restore/streamed.py)."""

import json
import sys

import numpy as np
import pytest
import torch
from torch import nn

from helpers import ROOT, smooth_photo
from nets import build_network
from restore.inference import Restorer
from restore.streamed import NotStreamable, StreamedNetwork


def _photo(height: int, width: int) -> torch.Tensor:
    return torch.from_numpy(smooth_photo(np.random.default_rng(1), height, width)).permute(2, 0, 1)[None] / 255.0


def _network(name: str = "light_unet", **options) -> nn.Module:
    """A network whose residual is as large as a trained one's (its zero-initialised head made random), with norm
    layers that are not the identity."""
    torch.manual_seed(0)
    model = build_network(name, start_filters=8, **options).eval()
    with torch.no_grad():
        for module in model.modules():
            if isinstance(module, (nn.InstanceNorm2d, nn.BatchNorm2d)) and module.affine:
                module.weight.uniform_(0.5, 1.5)
                module.bias.uniform_(-0.2, 0.2)
        nn.init.normal_(model.head.weight)
        if model.half_input is not None:  # zero-initialised too
            nn.init.normal_(model.half_input[-1].weight, std=0.1)
        # A trained checkpoint's residual has a standard deviation of about 0.015-0.02 on real photos.
        photo = _photo(128, 128)
        model.head.weight.mul_(0.02 / (model(photo) - photo).std())
    return model


@pytest.mark.parametrize("options", [
    {},  # LightUNet as shipped: InstanceNorm, PixelShuffle
    {"upsample": "bilinear"},
    {"upsample": "transpose", "plain_last_decoder_blocks": 2},
    {"branch_relu": False, "levels": 3},
    {"half_input": True},
])
@pytest.mark.parametrize("size", [(200, 300), (45, 131)])
def test_streamed_output_is_the_whole_image_output(options, size, tmp_path):
    model, image = _network(**options), _photo(*size)
    with torch.no_grad():
        whole = model(image)
    # Tiny bands and no memory: every activation goes through a file in many bands.
    streamed = StreamedNetwork(model, band_bytes=4096, memory_bytes=0, folder=tmp_path)(image)
    change = (whole - image).abs().max()
    assert change > 0.02  # the network changes the image, so agreement means something
    assert (streamed - whole).abs().max() <= 1e-4 * change
    assert list(tmp_path.iterdir()) == []  # no activation file left behind


def test_the_plain_unet_streams_too(tmp_path):
    model, image = _network("unet"), _photo(96, 160)
    with torch.no_grad():
        whole = model(image)
    streamed = StreamedNetwork(model, band_bytes=8192, memory_bytes=0, folder=tmp_path)(image)
    assert (streamed - whole).abs().max() <= 1e-4 * (whole - image).abs().max()


def test_an_interrupted_run_leaves_no_file_and_counts_its_progress(tmp_path):
    model, image = _network(), _photo(64, 96)
    calls = []

    def progress(done, total):
        calls.append((done, total))
        if done == total // 2:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        StreamedNetwork(model, band_bytes=4096, memory_bytes=0, folder=tmp_path)(image, progress)
    assert [done for done, _ in calls] == list(range(1, calls[0][1] // 2 + 1))
    assert list(tmp_path.iterdir()) == []


class _Reflecting(nn.Module):
    """A network with an operation the executor does not know (reflection padding inside its residual)."""

    size_multiple, min_size = 1, 1

    def __init__(self):
        super().__init__()
        self.norm = nn.InstanceNorm2d(3, affine=True)
        self.conv = nn.Conv2d(3, 3, 3, padding=1, padding_mode="reflect")

    def residual(self, x):
        return self.conv(self.norm(x))

    def add_residual(self, x, residual):
        return x + residual

    def forward(self, x):
        return self.add_residual(x, self.residual(x))


def test_an_unknown_operation_is_refused_and_the_restorer_takes_the_tiled_passes():
    with pytest.raises(NotStreamable, match="cannot be streamed"):
        StreamedNetwork(_Reflecting())
    restore = Restorer(_Reflecting(), torch.device("cpu"), tile=32, overlap=8, precision="fp32")
    assert restore.streamed is None
    restore(torch.rand(3, 40, 50))
    assert not restore.last_streamed


def test_the_restorer_streams_an_image_larger_than_a_tile_on_the_cpu():
    model, image = _network(), _photo(150, 230)
    cpu = torch.device("cpu")
    whole = Restorer(model, cpu, tile=0, precision="fp32")(image[0])
    streamed = Restorer(model, cpu, tile=64, overlap=16, precision="fp32")
    passes = Restorer(model, cpu, tile=64, overlap=16, precision="fp32", stream=False)
    result = streamed(image[0])
    # The whole-image path normalises channels_last tensors with another kernel (summation order differs): the
    # disagreement is measured against the energy of the model's change, as docs/inference.md does for tiles.
    change = (whole - image[0]).pow(2).sum()
    assert streamed.last_streamed and (result - whole).pow(2).sum() < 1e-8 * change
    by_passes = passes(image[0])  # exact statistics, but each small tile still sees only its own surroundings
    assert not passes.last_streamed
    assert (result - whole).pow(2).sum() < (by_passes - whole).pow(2).sum() / 1000
    own = Restorer(model, cpu, tile=64, overlap=16, precision="fp32", norm_statistics="tile")
    own(image[0])
    assert not own.last_streamed  # each tile's own statistics: one tiled pass, no streaming


MEASURE = """
import json, resource, sys, torch
sys.path.insert(0, sys.argv[1])
from nets import build_network
from restore.streamed import StreamedNetwork
torch.manual_seed(0)
model = build_network("light_unet", start_filters=16).eval()
side = int(sys.argv[3])
image = torch.rand(1, 3, side, side)
with torch.no_grad():
    if sys.argv[2] == "whole":
        model(image)
    elif sys.argv[2] == "streamed":
        StreamedNetwork(model, band_bytes=2**20, memory_bytes=2**20)(image)
print(json.dumps(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**10))
"""


@pytest.mark.subprocess
@pytest.mark.slow
def test_streaming_bounds_the_peak_memory_of_a_large_image():
    import subprocess

    peak = {}
    for how, side in (("none", 1536), ("whole", 1536), ("streamed", 768), ("streamed", 1536)):
        result = subprocess.run([sys.executable, "-c", MEASURE, str(ROOT), how, str(side)], capture_output=True,
                                text=True, timeout=600, env={"OMP_NUM_THREADS": "1", "PATH": ""})
        assert result.returncode == 0, result.stderr
        peak[how, side] = json.loads(result.stdout)  # MiB, the interpreter and torch included
    # The whole image holds every activation at once; streaming holds bands of about a MiB, so four times the
    # pixels hardly move its peak.
    # Measured above what the process holds before running anything (the interpreter, torch, the model), which
    # differs between installs.
    base = peak["none", 1536]
    assert peak["streamed", 1536] - base < (peak["whole", 1536] - base) / 2, peak
    assert peak["streamed", 1536] < 1.5 * peak["streamed", 768], peak


def test_bf16_streams_through_files_like_the_whole_image_in_bf16(tmp_path):
    """bf16: operations under autocast, outputs stored in bf16 (files hold them as 16-bit words)."""
    model, image = _network(), _photo(70, 110)
    with torch.no_grad():
        exact = model(image)
        with torch.autocast("cpu", dtype=torch.bfloat16):
            whole = model(image).float()
    streamed = StreamedNetwork(model, band_bytes=4096, memory_bytes=0, folder=tmp_path, dtype=torch.bfloat16)(image)
    assert streamed.dtype == torch.float32
    # Both round to bf16 along the way; neither is further from the fp32 result than a few bf16 steps.
    whole_error, streamed_error = (whole - exact).abs().max(), (streamed - exact).abs().max()
    assert 0 < streamed_error < 3 * whole_error + 1e-3, (streamed_error, whole_error)
    assert list(tmp_path.iterdir()) == []
