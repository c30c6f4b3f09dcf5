"""Model cards for the bundled weights, written from the records rather than from memory.

Every figure on a card comes from a file: the step, the config and the validation scores from the checkpoint, the
training photos from the run's ``data_split.json``, the training time from its TensorBoard events, and the benchmark
scores from ``evaluate.py``'s ``summary.json`` files. What no file records (the hardware, the exact commands) is
passed in by whoever exports the model and printed as given.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import yaml

from datasets.degradation import flatten_degradation

# Longer silences between two logged steps are time the run was stopped (between stretches of training), not training.
PAUSE_SECONDS = 600.0


# What each adv.gan_type is called on a card (the objective the critic and generator were trained with).
GAN_TYPE_NAMES = {"wgan-gp": "WGAN-GP", "wgan-clip": "weight-clipped WGAN", "lsgan": "least-squares GAN",
                  "vanilla": "non-saturating GAN"}


def adversarial_description(adv: dict) -> str:
    """E.g. "conditional WGAN-GP" for the adv section of a run's config (WGAN-GP where it names none)."""
    gan_type = adv.get("gan_type", "wgan-gp")
    return f"conditional {GAN_TYPE_NAMES.get(gan_type, gan_type)}"


def training_seconds(tensorboard_dir: Path, pause: float = PAUSE_SECONDS) -> float | None:
    """Wall time the run spent training: the sum of the gaps between consecutive TensorBoard events, leaving out
    gaps longer than ``pause`` (the run was stopped and later resumed). None when there are no events."""
    from tensorboard.backend.event_processing.event_file_loader import EventFileLoader

    times = sorted(
        event.wall_time
        for path in sorted(tensorboard_dir.rglob("events.out.tfevents.*"))
        for event in EventFileLoader(str(path)).Load()
        if event.HasField("summary")
    )
    if len(times) < 2:
        return None
    return sum(gap for gap in (b - a for a, b in zip(times, times[1:])) if gap <= pause)


def _duration(seconds: float | None) -> str:
    if seconds is None:
        return "not recorded"
    hours, rest = divmod(round(seconds), 3600)
    return f"{hours} h {rest // 60:02d} min" if hours else f"{rest // 60} min"


def _score_tables(summaries: list[dict[str, Any]]) -> list[str]:
    """evaluate.py's own table (``markdown_table``), one per benchmark the summaries were scored on."""
    from evaluation.tables import markdown_table

    by_benchmark: dict[str, list[dict[str, Any]]] = {}
    for summary in summaries:
        name = summary["dataset"].get("benchmark") or summary["dataset"].get("name", "?")
        by_benchmark.setdefault(name, []).append(summary)
    lines = []
    for name, group in by_benchmark.items():
        lines += [f"**{name}**", "", markdown_table(group), ""]
    return lines


def render(
    bundle: dict[str, Any],
    *,
    file_name: str,
    digest: str,
    parameters: int,
    run: Path | None,
    summaries: list[dict[str, Any]],
    hardware: str,
    commands: list[str],
    notes: list[str] = (),
) -> str:
    """The card of a bundled model (``bundle`` as written by release.bundled.export) as Markdown."""
    config = bundle.get("config") or {}
    data, train, adv = config.get("data", {}), config.get("train", {}), config.get("adv", {})
    data = flatten_degradation(data)  # one level, as older bundles recorded it
    phase = bundle.get("phase")
    metrics = bundle.get("metrics") or {}
    lines = [
        f"# {file_name}",
        "",
        f"- Network: `{bundle['model'].get('name')}` ("
        + ", ".join(f"{k}={v}" for k, v in bundle["model"].items() if k != "name")
        + f"), {parameters / 1e6:.2f} M parameters, stored as fp16"
        + (" (the EMA of the weights)" if train.get("ema_decay") else ""),
        f"- sha256: `{digest}` (checked by infer.py and evaluate.py before loading; also in SHA256SUMS)",
        f"- Phase: {phase}"
        + (f" ({_pixel_loss(train)})" if phase == "pretrain" else f" ({adversarial_description(adv)} fine-tuning)"),
        f"- Steps: {bundle.get('step')}, batch {train.get('batch_size')}, {data.get('crop_size')} px crops",
        f"- Hardware: {hardware}",
    ]
    if phase == "pretrain" and train.get("init"):
        lines.append(f"- Started from: `{train['init']}` (generator weights only; the steps and time here are this "
                     "run's alone)")
    if run is not None:
        lines.append(f"- Training time: {_duration(training_seconds(run / 'tensorboard'))} "
                     "(from the run's TensorBoard events; pauses between stretches left out)")
        split_path = run / "data_split.json"
        if split_path.is_file():
            split = json.loads(split_path.read_text())
            lines.append(
                f"- Training photos: {len(split['train'])} sharp images from "
                f"`{data.get('sharp_dir') or data.get('root')}`"
                f" (source `{split['source']}`), {len(split['val'])} more held out for validation"
            )
    extent = data.get("blur_extent")
    jpeg = data.get("jpeg_quality")
    lines.append(
        f"- Synthetic blur: kernels {data.get('kernels')}, size {data.get('kernel_size')}"
        + (f", motion extents {extent[0]:g}-{extent[1]:g} px" if extent else "")
        + f", Gaussian read noise sigma {data.get('noise_sigma')} ({data.get('noise_space', 'srgb')}), "
        f"Poisson peak {data.get('poisson_peak')}"
        + (f", JPEG quality {jpeg[0]}-{jpeg[1]} for {data.get('jpeg_probability')} of the pairs" if jpeg else "")
    )
    if phase == "adv":
        lines.append(
            f"- Generator loss: {adv.get('w_charbonnier')} x Charbonnier + {adv.get('w_perceptual')} x VGG19 "
            f"perceptual{_detail_terms(train)} + {adv.get('w_adv')} x adversarial ({adv.get('gan_type')}, "
            f"critic {adv.get('critic')}, {adv.get('n_critic')} critic steps per generator step); started from "
            f"`{adv.get('init')}`"
        )
    if metrics.get("val_psnr") is not None:
        lines.append(
            f"- Validation (held-out training tiles, synthetic blur): PSNR {metrics['val_psnr']:.2f} dB, SSIM "
            f"{metrics['val_ssim']:.4f}; blurred input {metrics['blurry_psnr']:.2f} dB, {metrics['blurry_ssim']:.4f}"
        )
    lines += _long_run_lines(bundle.get("long_run"))
    if notes:
        lines += ["", "## Notes", "", *(f"- {note}" for note in notes)]
    lines += ["", "## Commands", "", "```bash", *commands, "```"]
    if summaries:
        lines += ["", "## Scores (evaluate.py)", "", *_score_tables(summaries),
                  "Scored with: " + "; ".join(f"`python {s['command']}`" for s in summaries)]
    lines += ["", "## Config", "", "```yaml", yaml.safe_dump(config, sort_keys=False).rstrip(), "```", ""]
    return "\n".join(lines)


def _long_run_lines(record: dict | None) -> list[str]:
    """The long run's position and every stretch of it (gan/long_run.py), where the file records one."""
    if not record:
        return []
    lines = ["", "## The long run", "",
             f"Global step {record['global_step']} of a {record['schedule_steps']}-step schedule, recipe "
             f"`{record['recipe']}` (`python train_gan.py --pretrain --continue-shipped` continues it).", "",
             "| stretch | started | device | batch x crop | global steps | steps | hours | recipe |",
             "|---|---|---|---|---|---|---|---|"]
    for index, stretch in enumerate(record.get("stretches", []), 1):
        steps = stretch["last_step"] - stretch["first_step"]
        scale = (f"{stretch['batch_size']} x {stretch['crop_size']} px" if stretch.get("batch_size")
                 else "the config's")  # records written before stretches kept their scale
        lines.append(f"| {index} | {stretch['started']} | {stretch['device']} | {scale} | {stretch['first_step']}-"
                     f"{stretch['last_step']} | {steps} | {stretch['seconds'] / 3600:.2f} | "
                     f"`{stretch.get('recipe') or record['recipe']}` |")  # older records: the file's one recipe
    return lines


def _detail_terms(train: dict) -> str:
    """`` + 0.7 x fft`` for each detail loss of ``train.detail_losses`` (losses/detail.py), in config order."""
    return "".join(f" + {weight:g} x {name}" for name, weight in (train.get("detail_losses") or {}).items())


def _pixel_loss(train: dict) -> str:
    terms = _detail_terms(train)
    return f"Charbonnier{terms} loss" if terms else "Charbonnier loss only"
