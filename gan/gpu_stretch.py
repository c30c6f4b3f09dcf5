"""One stretch of the long run on a lent GPU, in one command of at most 9 minutes.

Prepared here with ``python -m gan.gpu_pack`` (the photos and the wheels the GPU image lacks, in ``.gpupack/``),
then, in the repository root on the GPU machine (the pack travels as a carried path):

    python3 -m gan.gpu_stretch --out "$OUT"

It installs the pack's wheels into a private folder (no registry is needed), puts the pack's photos where the long
run's config reads them (``data.sharp_dir``, when that folder is empty), and runs
``train_gan.py --pretrain --continue-shipped`` from the shipped ``weights/light_unet_long_run.pt`` at the global step
it records, at the GPU's scale: batches of 64 crops of 208 px (the largest multiple of 16 whose window, crop plus
the 39 px kernel's margin, fits the photo set's 256 px tiles), blurred on the GPU (``data.blur_on_device``), bf16
autocast, stopped cleanly by ``train.max_minutes``. The recipe's hash leaves the scale out (gan/long_run.py,
``STRETCH_SCALE``), so the stretch continues the same run, and its record names the device, batch and crop.

``--out`` receives what comes back from the machine (a few files, each under 16 MiB): ``weights/`` (the stretch's
newest checkpoint exported as ``light_unet_long_run.pt`` with its SHA256SUMS line, fp16), ``stretch.log`` (every
line the training printed) and ``tensorboard/`` (its event file, at global steps). Back on the CPU machine,
``python -m release.bundled --checkpoint OUT/weights/light_unet_long_run.pt --model long-run`` ships it as the long
run's newest stretch, where the next stretch (CPU or GPU) continues.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
NEEDED = ("kornia", "albumentations")  # the imports the GPU image lacks (gan/gpu_pack.py packs them)


def install_wheels(pack: Path, site: Path) -> bool:
    """Install the pack's wheels into ``site`` where the modules training needs are missing; True if it did."""
    if all(importlib.util.find_spec(name) is not None for name in NEEDED):
        return False
    wheels = sorted((pack / "wheels").glob("*.whl"))
    if not wheels:
        raise SystemExit(f"error: {', '.join(NEEDED)} are not installed and {pack / 'wheels'} holds no wheels: "
                         "build the pack with python -m gan.gpu_pack")
    command = [sys.executable, "-m", "pip", "install", "-q", "--no-index", "--no-deps", "--no-compile",
               "--no-cache-dir", "--upgrade", "--target", str(site), *map(str, wheels)]
    if subprocess.run(command).returncode != 0:
        raise SystemExit(f"error: pip could not install the wheels of {pack / 'wheels'}")
    return True


def place_photos(pack: Path, sharp_dir: Path) -> int:
    """Copy the pack's photos into ``sharp_dir`` when it holds no image; returns how many were copied."""
    if sharp_dir.is_dir() and any(sharp_dir.iterdir()):
        return 0
    photos = sorted((pack / "photos").glob("*.jpg"))
    if not photos:
        raise SystemExit(f"error: {sharp_dir} holds no photos and {pack / 'photos'} none to put there: build the "
                         "pack with python -m gan.gpu_pack")
    sharp_dir.mkdir(parents=True, exist_ok=True)
    for photo in photos:
        shutil.copyfile(photo, sharp_dir / photo.name)
    return len(photos)


def training_command(args: argparse.Namespace) -> list[str]:
    """train_gan.py continuing the long run at this machine's scale, in ``args.work``."""
    settings = [
        f"experiment.root={args.work / 'experiments'}",
        f"train.device={args.device}", f"train.amp='{args.amp}'", f"train.batch_size={args.batch}",
        f"data.crop_size={args.crop}", "data.blur_on_device=true", f"data.num_workers={args.workers}",
        f"data.train_pairs_per_epoch={args.batch * args.validate_every}", f"train.max_minutes={args.minutes}",
        f"train.checkpoint_every={args.validate_every}", "log.progress_every=100", *args.set,
    ]
    return [sys.executable, str(ROOT / "train_gan.py"), "--pretrain", "--continue-shipped", "--config",
            str(args.config), "--set", *settings]


def run_logged(command: list[str], env: dict, log: Path) -> int:
    """Run ``command``, echoing every line it prints and keeping them in ``log``."""
    with log.open("w") as kept, subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                                 text=True, bufsize=1) as process:
        for line in process.stdout:
            sys.stdout.write(line)
            kept.write(line)
        return process.wait()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m gan.gpu_stretch", description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=os.environ.get("OUT"), help="what comes back (default $OUT)")
    parser.add_argument("--pack", type=Path, default=Path(".gpupack"), help="the pack (default .gpupack)")
    parser.add_argument("--work", type=Path, default=Path("/tmp/lightdeblur-gpu-stretch"),
                        help="the run folder and installed wheels (default /tmp/lightdeblur-gpu-stretch)")
    parser.add_argument("--config", type=Path, default=ROOT / "configs" / "long_run.yaml")
    parser.add_argument("--minutes", type=float, default=7.0, help="training time before the clean stop (default 7)")
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--crop", type=int, default=208, help="crop side (default 208: with the kernel's margin, "
                        "the largest that fits the 256 px photo tiles)")
    parser.add_argument("--workers", type=int, default=max(1, min(12, (os.cpu_count() or 2) - 2)))
    parser.add_argument("--device", default="cuda")
    parser.add_argument("--amp", default="bf16")
    parser.add_argument("--validate-every", type=int, default=1000, help="steps between validations (default 1000)")
    parser.add_argument("--set", nargs="+", action="extend", default=[], metavar="SECTION.KEY=VALUE",
                        help="more train_gan.py overrides (keys outside the recipe, e.g. train.init)")
    args = parser.parse_args(argv)
    if args.out is None:
        parser.error("--out is required where $OUT is not set")
    args.out, args.work, args.pack = args.out.resolve(), args.work.resolve(), args.pack.resolve()
    import yaml  # PyYAML: in the GPU image and in the core install

    config = yaml.safe_load(args.config.read_text())
    args.out.mkdir(parents=True, exist_ok=True)
    site = args.work / "site"
    env = {**os.environ, "PYTHONUNBUFFERED": "1", "NO_ALBUMENTATIONS_UPDATE": "1"}
    paths = [str(ROOT)] + ([str(site)] if install_wheels(args.pack, site) else [])
    env["PYTHONPATH"] = os.pathsep.join(paths + [env["PYTHONPATH"]] if env.get("PYTHONPATH") else paths)
    sharp_dir = config["data"].get("sharp_dir") if config["data"].get("source") == "folder" else None
    copied = place_photos(args.pack, Path(sharp_dir)) if sharp_dir else 0
    if copied:
        print(f"{copied} pack photos put in {config['data']['sharp_dir']}", flush=True)
    code = run_logged(training_command(args), env, args.out / "stretch.log")
    from core.checkpoint import step_checkpoints  # torch: in the GPU image, and loaded only now

    run = args.work / "experiments" / config["experiment"]["name"]
    found = step_checkpoints(run / "checkpoints")
    checkpoint = found[0] if found else None  # the newest
    if checkpoint is None:
        print(f"error: the stretch saved no checkpoint (train_gan.py exit code {code}); see {args.out / 'stretch.log'}",
              file=sys.stderr)
        return code or 1
    export = [sys.executable, "-m", "release.bundled", "--checkpoint", str(checkpoint), "--model", "long-run",
              "--out", str(args.out / "weights")]
    if subprocess.run(export, env=env, cwd=ROOT).returncode != 0:
        return 1
    events = sorted((run / "tensorboard").glob("events.*"))
    if events:
        (args.out / "tensorboard").mkdir(exist_ok=True)
        shutil.copyfile(events[-1], args.out / "tensorboard" / events[-1].name)
    print(json.dumps({"checkpoint": str(checkpoint), "train_gan_exit": code, "out": str(args.out)}))
    return 0 if code in (0, 130) else code


if __name__ == "__main__":
    sys.exit(main())
