"""Shipped models: fp16 export with a SHA256SUMS line, and the check on load that names a changed file."""

import json

import pytest
import torch

import restore.bundled
from core.checkpoint import SUMS, read_sums, save_checkpoint
from core.hashing import sha256
from gan.errors import ExperimentError
from helpers import ROOT, run_cli
from nets import build_network
from release.model_card import training_seconds
from restore.inference import default_checkpoint, load_generator


@pytest.mark.subprocess
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
    result = run_cli("-m", "release.bundled", "--checkpoint", str(checkpoint), "--model", "pretrain",
                     "--out", str(weights), cwd=ROOT)
    assert result.returncode == 0, result.stderr
    shipped = weights / "light_unet_pretrain.pt"
    assert read_sums(weights) == {"light_unet_pretrain.pt": sha256(shipped)}
    state = torch.load(shipped, weights_only=True)  # plain tensors and numbers: no pickled code
    assert all(t.dtype == torch.float16 for t in state["generator"].values()) and state["step"] == 7
    assert shipped.stat().st_size < checkpoint.stat().st_size / 2  # fp16, and no raw weights beside the EMA

    monkeypatch.setattr(restore.bundled, "WEIGHTS_DIR", weights)  # where bundled_path looks
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
    shipped.unlink()
    with pytest.raises(ExperimentError, match="no trained pretrain model is bundled .* pass --checkpoint"):
        default_checkpoint("pretrain", experiments=tmp_path / "no-runs")


def test_training_time_leaves_out_the_pause_between_sessions(tmp_path):
    from torch.utils.tensorboard import SummaryWriter

    writer = SummaryWriter(str(tmp_path))
    for step, wall_time in enumerate((1000.0, 1010.0, 1020.0, 9000.0, 9012.5)):  # stopped for 2 h after step 2
        writer.add_scalar("train/loss", 1.0 / (step + 1), step, walltime=wall_time)
    writer.close()
    assert training_seconds(tmp_path) == pytest.approx(32.5)
    assert training_seconds(tmp_path / "nothing") is None


@pytest.mark.subprocess
def test_model_card_reports_the_shipped_file_and_only_its_own_scores(tmp_path):
    network = build_network("light_unet", start_filters=4, levels=2)
    config = {"data": {"crop_size": 32, "kernels": {"trajectory": 1.0}, "sharp_dir": "photos"},
              "train": {"batch_size": 2, "ema_decay": 0.0, "init": "weights/light_unet_pretrain.pt",
                        "detail_losses": {"fft": 0.7}}}
    checkpoint = tmp_path / "step-00000003.pt"
    save_checkpoint({"phase": "pretrain", "model": {"name": "light_unet", "start_filters": 4, "levels": 2},
                     "generator": network.state_dict(), "step": 3, "config": config}, checkpoint)
    run = tmp_path / "run"
    run.mkdir()
    (run / "data_split.json").write_text(json.dumps({"source": "folder", "train": ["a.png", "b.png"],
                                                     "val": ["c.png"]}))

    def summary(name: str, weights_sha256: str | None, psnr: float) -> str:
        path = tmp_path / name
        path.write_text(json.dumps({
            "label": "model bundled", "dataset": {"benchmark": "motion-v1"}, "images_scored": 48,
            "images_total": 48, "complete": True,
            "metrics": {"psnr": psnr, "ssim": 0.9, "lpips_alex": None, "lpips_vgg": None},
            "seconds_per_image_median": 0.125,
            "blurred": {"psnr": 30.07, "ssim": 0.836, "lpips_alex": None, "lpips_vgg": None},
            "weights": weights_sha256 and {"path": "weights/light_unet_pretrain.pt", "sha256": weights_sha256},
            "command": "evaluate.py --benchmark b --methods model --label 'model bundled'"}))
        return str(path)

    weights = tmp_path / "weights"
    result = run_cli("-m", "release.bundled", "--checkpoint", str(checkpoint), "--model", "pretrain", "--out",
                     str(weights), cwd=ROOT)
    assert result.returncode == 0, result.stderr
    shipped = sha256(weights / "light_unet_pretrain.pt")
    result = run_cli("-m", "release.bundled", "--model", "pretrain", "--out", str(weights), "--card", "--run", str(run),
                     "--scores", summary("own.json", shipped, 31.25), "--hardware", "a 2-core CPU",
                     "--command", "python train_gan.py --pretrain", cwd=ROOT)
    assert result.returncode == 0, result.stderr
    card = (weights / "light_unet_pretrain.md").read_text()
    assert shipped in card
    assert "Steps: 3, batch 2, 32 px crops" in card and "Hardware: a 2-core CPU" in card
    assert "Phase: pretrain (Charbonnier + 0.7 x fft loss)" in card
    assert "Started from: `weights/light_unet_pretrain.pt`" in card
    assert "2 sharp images from `photos`" in card and "1 more held out" in card
    assert "**motion-v1**" in card and "| model bundled | 31.25 | 0.9000 | n/a | n/a | n/a | n/a | 0.125 | 48 |" in card
    assert "| Blurred input | 30.07 |" in card and "python train_gan.py --pretrain" in card

    # Scores of another file (an older export, a checkpoint) or of no model at all are refused.
    for name, scored in (("older.json", "0" * 64), ("classical.json", None)):
        result = run_cli("-m", "release.bundled", "--model", "pretrain", "--out", str(weights), "--card",
                         "--scores", summary(name, scored, 40.0), cwd=ROOT)
        assert result.returncode == 2 and f"{name} does not score" in result.stderr, result.stderr
    assert "31.25" in (weights / "light_unet_pretrain.md").read_text()  # the refused card did not replace it


def _tiny_checkpoint(path, phase="pretrain", name="light_unet", poison=None):
    torch.manual_seed(1)
    options = {"name": name, "start_filters": 4, "levels": 2}
    network = build_network(**options)
    weights = network.state_dict()
    if poison is not None:
        next(iter(weights.values()))[0] = poison
    save_checkpoint({"phase": phase, "model": options, "generator": weights, "step": 3}, path)
    return path


@pytest.mark.subprocess
@pytest.mark.parametrize("case, message", [
    ("nan", "weight stem.weight is not finite (inf or nan)"),
    ("fp16-overflow", "weight stem.weight is not finite in fp16"),
    ("other-network", "holds network 'unet', not a light_unet"),
    ("gan-as-pretrain", "is a 'adv' checkpoint; --model pretrain ships a 'pretrain' one"),
    ("bad-sums", "SHA256SUMS line 2 is not '<sha256>  <file name>'"),
])
def test_release_refuses_before_touching_the_shipped_files(tmp_path, case, message):
    weights = tmp_path / "weights"
    good = _tiny_checkpoint(tmp_path / "good.pt")
    assert run_cli("-m", "release.bundled", "--checkpoint", str(good), "--model", "pretrain", "--out", str(weights),
                   cwd=ROOT).returncode == 0
    shipped, sums = weights / "light_unet_pretrain.pt", weights / SUMS
    assert shipped.stat().st_mode & 0o044 and sums.stat().st_mode & 0o044  # readable by all, not mkstemp's 0600
    if case == "bad-sums":
        sums.write_text(sums.read_text() + "not a sum line\n")
    bad = {"nan": lambda p: _tiny_checkpoint(p, poison=float("nan")),
           "fp16-overflow": lambda p: _tiny_checkpoint(p, poison=1e6),  # finite in fp32, inf once shipped
           "other-network": lambda p: _tiny_checkpoint(p, name="unet"),
           "gan-as-pretrain": lambda p: _tiny_checkpoint(p, phase="adv"),
           "bad-sums": lambda p: _tiny_checkpoint(p)}[case](tmp_path / "bad.pt")
    if case == "bad-sums":  # another checkpoint, so the weights would change if anything were written
        state = torch.load(bad, weights_only=True)
        state["generator"] = {k: v + 1 if v.is_floating_point() else v for k, v in state["generator"].items()}
        save_checkpoint(state, bad)
    before = {path.name: (path.read_bytes(), path.stat().st_mode) for path in weights.iterdir()}
    result = run_cli("-m", "release.bundled", "--checkpoint", str(bad), "--model", "pretrain", "--out", str(weights),
                     cwd=ROOT)
    lines = result.stderr.strip().splitlines()
    assert result.returncode == 2 and len(lines) == 1 and message in lines[0], result.stderr
    assert {path.name: (path.read_bytes(), path.stat().st_mode) for path in weights.iterdir()} == before


@pytest.mark.subprocess
def test_a_reshipped_file_keeps_its_permissions(tmp_path):
    weights = tmp_path / "weights"
    good = _tiny_checkpoint(tmp_path / "good.pt")
    args = ["-m", "release.bundled", "--checkpoint", str(good), "--model", "pretrain", "--out", str(weights)]
    assert run_cli(*args, cwd=ROOT).returncode == 0
    shipped = weights / "light_unet_pretrain.pt"
    shipped.chmod(0o640)
    (weights / SUMS).chmod(0o604)
    assert run_cli(*args, cwd=ROOT).returncode == 0
    assert shipped.stat().st_mode & 0o777 == 0o640 and (weights / SUMS).stat().st_mode & 0o777 == 0o604
