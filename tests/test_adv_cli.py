"""``train_gan.py --adv`` end to end: a tiny pretrain run, then adversarial fine-tuning from it."""

import math

import pytest
import torch
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from core.checkpoint import load_checkpoint
from helpers import TINY, run_cli, spawns

pytestmark = pytest.mark.subprocess  # every test here starts the project's scripts or servers

ADV_TINY = [*TINY, "train.epochs=1", "adv.n_critic=2", "adv.critic={name: patchgan, base_channels: 8}"]


@pytest.fixture(scope="module")
@spawns
def pretrained(tmp_path_factory):
    workdir = tmp_path_factory.mktemp("adv")
    # With every detail loss on, so the pretrain phase is shown to train with them too.
    result = run_cli("-m", "train_gan", "--pretrain", "--name", "pre", "--set", *TINY, "train.epochs=1",
                     "train.detail_losses={gradient: 0.1, fft: 0.05, tv: 0.01}", cwd=workdir)
    assert result.returncode == 0, result.stderr
    return workdir


def test_adv_fine_tunes_the_newest_pretrain_run_and_logs_every_curve(pretrained, tmp_path, monkeypatch):
    # A VGG19 file made here, found through the same torch-hub lookup as torchvision's ImageNet one.
    from test_adversarial import _small_vgg_file

    from losses.perceptual import VGG19_FILE

    (tmp_path / "hub" / "checkpoints").mkdir(parents=True)
    _small_vgg_file(tmp_path / "hub" / "checkpoints" / VGG19_FILE)
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    result = run_cli("-m", "train_gan", "--adv", "--name", "gan", "--set", *ADV_TINY, "adv.vgg_download=false",
                     cwd=pretrained)
    assert result.returncode == 0, result.stderr
    assert "starting from experiments/pre/checkpoints/best.pt" in result.stdout
    assert "(pretrain: PSNR" in result.stdout

    folder = pretrained / "experiments" / "gan"
    state = load_checkpoint(folder / "checkpoints" / "step-00000002.pt")
    assert state["phase"] == "adv" and state["init_checkpoint"].endswith("pre/checkpoints/best.pt")
    assert {"critic", "optimizer_g", "optimizer_d", "generator"} <= set(state)
    pretrain = load_checkpoint(pretrained / "experiments" / "pre" / "checkpoints" / "best.pt")
    assert state["model"] == pretrain["model"]
    moved = [not torch.equal(state["generator"][k], pretrain["generator"][k]) for k in pretrain["generator"]]
    assert any(moved)

    (events,) = (folder / "tensorboard").glob("events.out.tfevents.*")
    tags = set(EventAccumulator(str(events)).Reload().Tags()["scalars"])
    expected = {
        "train/critic_loss", "train/wasserstein", "train/gradient_penalty", "train/g_adversarial",
        "train/g_perceptual", "train/g_charbonnier", "train/grad_norm_g", "train/grad_norm_d",
        "val/psnr", "val/ssim", "val/psnr_pretrain", "val/ssim_pretrain",
    }
    assert expected <= tags, expected - tags


def test_adv_without_vgg_weights_stops_at_once_naming_the_file(pretrained, tmp_path, monkeypatch):
    env_home = tmp_path / "empty-torch-home"
    monkeypatch.setenv("TORCH_HOME", str(env_home))
    result = run_cli("-m", "train_gan", "--adv", "--name", "novgg", "--set", *ADV_TINY, "adv.vgg_download=false",
                     cwd=pretrained)
    assert result.returncode == 2
    assert len(result.stderr.strip().splitlines()) == 1, result.stderr
    assert "vgg19-dcbb9e9d.pth" in result.stderr and str(env_home / "hub" / "checkpoints") in result.stderr
    assert not (pretrained / "experiments" / "novgg").exists()
    assert "Traceback" not in result.stderr


@pytest.mark.parametrize("gan_type", ["lsgan", "vanilla", "wgan-clip"])
def test_other_gan_types_train(pretrained, gan_type):
    result = run_cli("-m", "train_gan", "--adv", "--name", gan_type, "--set", *ADV_TINY, f"adv.gan_type={gan_type}",
                     "adv.w_perceptual=0", cwd=pretrained)
    assert result.returncode == 0, result.stderr
    state = load_checkpoint(pretrained / "experiments" / gan_type / "checkpoints" / "step-00000002.pt")
    assert state["config"]["adv"]["gan_type"] == gan_type and state["step"] == 2
    start = load_checkpoint(pretrained / "experiments" / "pre" / "checkpoints" / "best.pt")
    init = start.get("generator_ema") or start["generator"]
    moved = max((state["generator"][k].float() - init[k].float()).abs().max().item() for k in init)
    assert moved > 0  # the generator took adversarial steps
    assert all(torch.isfinite(v).all() for v in state["critic"].values())
    (events,) = (pretrained / "experiments" / gan_type / "tensorboard").glob("events.out.tfevents.*")
    logged = EventAccumulator(str(events)).Reload()
    for tag in ("train/g_adversarial", "train/critic_loss"):
        values = [event.value for event in logged.Scalars(tag)]
        assert values and all(math.isfinite(v) for v in values), tag
    if gan_type == "wgan-clip":
        assert max(v.abs().max().item() for k, v in state["critic"].items()) <= 0.01 + 1e-7


def test_deblurgan_v2_objective_with_feature_matching_and_detail_losses_trains(pretrained):
    pre = EventAccumulator(str(pretrained / "experiments" / "pre" / "tensorboard")).Reload()
    assert {"train/loss_gradient", "train/loss_fft", "train/loss_tv"} <= set(pre.Tags()["scalars"])
    result = run_cli("-m", "train_gan", "--adv", "--name", "v2", "--set", *ADV_TINY, "adv.gan_type=ragan-ls",
                     "adv.w_perceptual=0", "adv.w_feature_matching=1.0", "train.detail_losses={gradient: 0.1}",
                     "adv.critic={name: double_scale, base_channels: 4, n_layers: 2, global_n_layers: 2, "
                     "global_downscale: 2}", cwd=pretrained)
    assert result.returncode == 0, result.stderr
    events = EventAccumulator(str(pretrained / "experiments" / "v2" / "tensorboard")).Reload()
    matching = [event.value for event in events.Scalars("train/g_feature_matching")]
    assert matching and all(value > 0 for value in matching)
    state = load_checkpoint(pretrained / "experiments" / "v2" / "checkpoints" / "step-00000002.pt")
    assert any(key.startswith("global_critic.") for key in state["critic"])


def test_a_critic_too_deep_for_the_crops_is_one_line_before_anything_trains(pretrained):
    # DeblurGAN-v2's double-scale critic as published (global half: 4x smaller, 4 layers) needs crops of about
    # 256 px; on 32 px crops its convolutions run out of pixels.
    result = run_cli("-m", "train_gan", "--adv", "--name", "too-small", "--set", *ADV_TINY, "adv.w_perceptual=0",
                     "adv.critic={name: double_scale, base_channels: 4}", cwd=pretrained)
    assert result.returncode == 2
    line = result.stderr.strip().splitlines()[-1]
    assert "adv.critic 'double_scale' cannot score 32 px crops" in line
    assert "Traceback" not in result.stderr
    assert not (pretrained / "experiments" / "too-small" / "checkpoints").exists()


def test_adv_without_any_pretrain_run_says_what_to_do(tmp_path):
    result = run_cli("-m", "train_gan", "--adv", "--set", *ADV_TINY, cwd=tmp_path)
    assert result.returncode == 2
    assert "no pretrain run found under experiments/" in result.stderr
