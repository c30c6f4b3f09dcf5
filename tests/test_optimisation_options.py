"""The optimisation factors the learning grids compare: the PSNR loss, progressive crops, and their config keys
(which leave every older recipe's hash as its records wrote it)."""

import re

import pytest
import torch

from evaluation.metrics import psnr_per_image
from gan.config import load_config
from gan.crop_schedule import crop_at, random_windows
from gan.errors import ConfigError, ExperimentError
from gan.long_run import recipe_hash
from helpers import ROOT, TINY
from losses import psnr_loss


def test_the_psnr_loss_is_minus_the_mean_psnr_of_the_images():
    torch.manual_seed(0)
    target = torch.rand(3, 3, 16, 16)
    # 8-bit values, so the metric's own rounding changes nothing; each image its own error level.
    target = (target * 255).round() / 255
    noisy = (target + torch.randn_like(target) * torch.tensor([0.01, 0.05, 0.2]).view(3, 1, 1, 1)).clamp(0, 1)
    noisy = (noisy * 255).round() / 255
    expected = -psnr_per_image(noisy, target).mean().item()
    assert psnr_loss(noisy, target).item() == pytest.approx(expected, abs=1e-3)
    # Each image's gradient is scaled by 1 / its MSE: the well-restored image pulls as hard as the bad one.
    prediction = noisy.clone().requires_grad_(True)
    psnr_loss(prediction, target).backward()
    pulls = prediction.grad.flatten(1).norm(dim=1) * (prediction - target).detach().flatten(1).norm(dim=1)
    assert pulls.max() / pulls.min() == pytest.approx(1.0, rel=1e-3)


def test_the_crop_in_force_follows_the_schedule():
    schedule = [[0, 48], [0.25, 64], [0.75, 112]]
    assert [crop_at(schedule, p) for p in (0.0, 0.2, 0.25, 0.5, 0.75, 1.0)] == [48, 48, 64, 64, 112, 112]
    assert crop_at([], 0.5) is None


def test_windows_cut_the_same_place_from_blurred_and_sharp_and_repeat_per_seed():
    sharp = torch.arange(2 * 3 * 40 * 40, dtype=torch.float32).reshape(2, 3, 40, 40)
    blur = sharp + 0.5
    small_blur, small_sharp = random_windows(blur, sharp, 16, seed=7)
    assert small_blur.shape == small_sharp.shape == (2, 3, 16, 16)
    assert torch.equal(small_blur, small_sharp + 0.5)  # one window for both images of a pair
    for index, image in enumerate(small_sharp):  # a contiguous window of its own pair
        top, left = divmod(int(image[0, 0, 0].item()) - index * 3 * 40 * 40, 40)
        assert torch.equal(image, sharp[index, :, top:top + 16, left:left + 16])
    again, _ = random_windows(blur, sharp, 16, seed=7)
    other, _ = random_windows(blur, sharp, 16, seed=8)
    assert torch.equal(again, small_blur) and not torch.equal(other, small_blur)
    assert random_windows(blur, sharp, 40, seed=7)[0] is blur  # the full size: the pair as it is


def test_a_psnr_loss_run_with_progressive_crops_trains_on_the_scheduled_sizes(tmp_path):
    from gan.experiment import plan_experiment
    from gan.pretrain import PretrainTrainer

    config = load_config(None, [*TINY, f"experiment.root={tmp_path}", "experiment.name=progressive",
                                "train.pixel_loss=psnr", "train.crop_schedule=[[0, 16], [0.5, 32]]"])
    trainer = PretrainTrainer(config, plan_experiment(config, "progressive"))
    seen = []
    step = trainer.train_step

    def recording_step(blur, sharp):
        seen.append(blur.shape[-1])
        assert blur.shape == sharp.shape
        logs = step(blur, sharp)
        assert logs["loss"] < 0  # minus a PSNR in dB
        return logs

    trainer.train_step = recording_step
    trainer.fit()
    assert seen == [16, 16, 32, 32]  # 4 steps: the first half at 16 px, the second at the loader's 32


@pytest.mark.parametrize(
    "override, message",
    [
        ("train.pixel_loss=l2", "train.pixel_loss must be one of charbonnier, psnr"),
        ("train.crop_schedule=[[0.1, 16]]", "train.crop_schedule must be [[start, crop], ...]"),
        ("train.crop_schedule=[[0, 16], [0, 24]]", "train.crop_schedule must be [[start, crop], ...]"),
        ("train.crop_schedule=[[0, 16.5]]", "train.crop_schedule must be [[start, crop], ...]"),
        ("train.crop_schedule=[[0, 16, 3]]", "train.crop_schedule must be [[start, crop], ...]"),
        ("train.crop_schedule=[[0, 16], [0.5, 64]]", "crops [64] px are larger than data.crop_size (32 px)"),
    ],
)
def test_bad_settings_are_named(override, message):
    with pytest.raises(ConfigError, match=re.escape(message)):
        load_config(None, [*TINY, override])


def test_the_new_keys_at_their_defaults_leave_the_long_runs_recipe_hash_alone():
    # The hash the long run's checkpoints and shipped files record for configs/long_run.yaml.
    config = ROOT / "configs" / "long_run.yaml"
    long_run = "032d9f77a9fddc44"
    assert recipe_hash(load_config(config)) == long_run
    assert recipe_hash(load_config(config, ["train.pixel_loss=charbonnier", "train.crop_schedule=[]"])) == long_run
    assert recipe_hash(load_config(config, ["train.pixel_loss=psnr"])) != long_run
    assert recipe_hash(load_config(config, ["train.crop_schedule=[[0, 64]]"])) != long_run


def test_a_checkpoint_written_before_the_new_keys_still_resumes_its_run(tmp_path):
    from core.checkpoint import load_checkpoint, save_checkpoint
    from gan.experiment import plan_experiment
    from gan.pretrain import PretrainTrainer
    from gan.resume import plan_resume

    config = load_config(None, [*TINY, f"experiment.root={tmp_path}", "experiment.name=older", "train.epochs=1"])
    PretrainTrainer(config, plan_experiment(config, "older")).fit()
    (checkpoint,) = (tmp_path / "older" / "checkpoints").glob("step-*.pt")
    state = load_checkpoint(checkpoint)
    for key in ("pixel_loss", "crop_schedule"):  # as the code before these keys wrote it
        del state["config"]["train"][key]
    save_checkpoint(state, checkpoint)
    resumed, _, _, path = plan_resume(str(tmp_path / "older"), "pretrain", [], str(tmp_path))
    assert path == checkpoint and resumed.train.pixel_loss == "charbonnier" and resumed.train.crop_schedule == []
    # A recorded value other than the default is still a different run.
    state["config"]["train"]["pixel_loss"] = "psnr"
    save_checkpoint(state, checkpoint)
    with pytest.raises(ExperimentError, match=r"they differ in train.pixel_loss \('psnr' vs 'charbonnier'\)"):
        plan_resume(str(tmp_path / "older"), "pretrain", [], str(tmp_path))
