"""Shipped models: fp16 export with a SHA256SUMS line, and the check on load that names a changed file."""

import pytest
import torch

import gan.inference
from conftest import run_cli, ROOT
from datasets.photo_sets import sha256
from gan.bundled import SUMS, read_sums
from gan.checkpoint import save_checkpoint
from gan.errors import ExperimentError
from gan.inference import default_checkpoint, load_generator
from nets import build_network


def test_export_is_fp16_checked_on_load_and_a_changed_file_is_named(tmp_path, monkeypatch):
    torch.manual_seed(0)
    network = build_network("light_unet", start_filters=4, levels=2)
    for parameter in network.parameters():
        parameter.data.normal_(0.0, 0.2)
    ema = {name: tensor + 0.01 for name, tensor in network.state_dict().items()}  # what should ship
    checkpoint = tmp_path / "step-00000007.pt"
    save_checkpoint({"phase": "pretrain", "model": {"name": "light_unet", "start_filters": 4, "levels": 2},
                     "generator": network.state_dict(), "generator_ema": ema, "step": 7}, checkpoint)
    weights = tmp_path / "weights"
    result = run_cli("-m", "gan.bundled", "--checkpoint", str(checkpoint), "--model", "pretrain",
                     "--out", str(weights), cwd=ROOT)
    assert result.returncode == 0, result.stderr
    shipped = weights / "light_unet_pretrain.pt"
    assert read_sums(weights) == {"light_unet_pretrain.pt": sha256(shipped)}
    state = torch.load(shipped, weights_only=True)  # plain tensors and numbers: no pickled code
    assert all(t.dtype == torch.float16 for t in state["generator"].values()) and state["step"] == 7
    assert shipped.stat().st_size < checkpoint.stat().st_size / 2  # fp16, and no raw weights beside the EMA

    monkeypatch.setattr(gan.inference, "WEIGHTS_DIR", weights)
    model = load_generator(default_checkpoint("pretrain"), torch.device("cpu"))
    reference = build_network("light_unet", start_filters=4, levels=2).eval()
    reference.load_state_dict(ema)
    image = torch.rand(1, 3, 32, 48)
    with torch.no_grad():
        assert (model(image) - reference(image)).abs().max() < 1e-2  # fp16 rounding of the weights only

    data = bytearray(shipped.read_bytes())
    data[len(data) // 2] ^= 0xFF
    shipped.write_bytes(bytes(data))
    with pytest.raises(ExperimentError, match="light_unet_pretrain.pt does not match its sha256 in .*SHA256SUMS"):
        default_checkpoint("pretrain")
    (weights / SUMS).write_text("")
    with pytest.raises(ExperimentError, match="has no line in"):
        default_checkpoint("pretrain")
