"""Train the deblurring generator: ``--pretrain`` (Charbonnier baseline) or ``--adv`` (conditional WGAN-GP).

    python train_gan.py --pretrain                                 # embedded photos, configs/pretrain.yaml
    python train_gan.py --adv                                      # fine-tune the newest pretrain run
    python train_gan.py --pretrain --config configs/research.yaml  # the 150-epoch GPU recipe
    python train_gan.py --pretrain --set train.epochs=2 model.start_filters=32
    python train_gan.py --pretrain --resume experiments/pretrain-pretrain-20261121-100847  # continue a run
    python train_gan.py --adv --resume                             # continue the newest adversarial run
    python train_gan.py --pretrain --continue-shipped              # the long run: resume it, or continue the
                                                                   # shipped weights where its folder is gone
    python train_gan.py --pretrain --continue-shipped --adopt-recipe --config NEW.yaml  # the long run's new recipe
    torchrun --nproc_per_node 4 train_gan.py --pretrain --config configs/research.yaml  # 4 GPUs (DDP)

SIGINT (Ctrl-C) or SIGTERM stops a run after the current step with a checkpoint saved; a second one exits at once.
"""

from __future__ import annotations

import argparse
import functools
import sys
from pathlib import Path

from core.resources import resource_dir
from gan.errors import USER_ERRORS, Interrupted

CONFIGS = resource_dir("configs")
DEFAULT_CONFIGS = {"pretrain": CONFIGS / "pretrain.yaml", "adv": CONFIGS / "adv.yaml"}
LONG_RUN_CONFIG = CONFIGS / "long_run.yaml"


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    phase = parser.add_mutually_exclusive_group(required=True)
    phase.add_argument("--pretrain", action="store_true", help="phase 1: generator alone, Charbonnier loss")
    phase.add_argument("--adv", action="store_true", help="phase 2: conditional WGAN-GP fine-tuning of a pretrain run")
    parser.add_argument("--config", type=Path, help="YAML experiment config (default: configs/<phase>.yaml)")
    parser.add_argument("--set", nargs="+", action="extend", default=[], metavar="SECTION.KEY=VALUE",
                        help="override config keys (may be repeated; later values win)")
    parser.add_argument("--name", help="experiment folder name under experiment.root (default: <config>-<time>)")
    parser.add_argument("--overwrite", action="store_true", help="replace an existing experiment folder")
    parser.add_argument(
        "--resume",
        nargs="?",
        const="",
        metavar="RUN",
        help="continue a run exactly where it stopped: its experiment folder or a checkpoint file in it "
        "(default: the folder named by --name, else the newest run of this phase)",
    )
    parser.add_argument("--continue-shipped", action="store_true",
                        help="continue the long run (default config: configs/long_run.yaml): resume its folder "
                        "exactly, or start the next stretch from the shipped weights at their global step")
    parser.add_argument("--adopt-recipe", action="store_true",
                        help="with --continue-shipped: the config is a new recipe for the long run, taken up from "
                        "the shipped weights at their global step on the same schedule (its run folder moved aside)")
    args = parser.parse_args(argv)
    if args.adopt_recipe and not args.continue_shipped:
        parser.error("--adopt-recipe changes the long run's recipe: it goes with --continue-shipped")
    if args.continue_shipped and (args.adv or args.resume is not None or args.overwrite or args.name):
        parser.error("--continue-shipped continues the pretrain long run its config names; it takes neither --adv, "
                     "--resume, --overwrite nor --name")
    if args.resume is not None and (args.config or args.overwrite):
        parser.error("--resume continues a run with its own config.yaml; it takes neither --config nor --overwrite")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    # Imported after argument parsing so --help answers at once.
    from gan.adversarial import AdversarialTrainer
    from gan.config import load_config
    from gan.distributed import init_distributed, shutdown
    from gan.experiment import plan_shared_experiment
    from gan.long_run import continuation
    from gan.pretrain import PretrainTrainer
    from gan.resume import plan_resume

    phase = "adv" if args.adv else "pretrain"
    trainer_class = AdversarialTrainer if args.adv else PretrainTrainer
    config_path = args.config or (LONG_RUN_CONFIG if args.continue_shipped else DEFAULT_CONFIGS[phase])
    try:
        world = init_distributed(load_config(config_path if args.resume is None else None, args.set).train.device)
        say = functools.partial(print, flush=True) if world.is_main else (lambda *_: None)  # rank 0 speaks for all
        stretch = None
        if args.continue_shipped:
            folder, stretch = continuation(load_config(config_path, args.set), say, adopt=args.adopt_recipe)
            args.resume = str(folder) if folder is not None else None
        if args.resume is not None:
            root = load_config(config_path, args.set).experiment.root
            target = args.resume or (str(Path(root) / args.name) if args.name else "")
            config, experiment, state, checkpoint = plan_resume(target, phase, args.set, root)
            trainer = trainer_class(config, experiment)
            experiment.check_same_data(trainer.data_split)
            trainer.restore(state, checkpoint)
            del state
            say(f"resuming {experiment.folder} from {checkpoint} (step {trainer.step}/{trainer.total_steps})")
        else:
            overrides = args.set + ([f"experiment.name={args.name}"] if args.name else [])
            config = stretch or load_config(config_path, overrides)
            experiment = plan_shared_experiment(config, f"{phase}-{config_path.stem}", args.overwrite, world)
            trainer = trainer_class(config, experiment)  # validates everything before anything is written
            say(f"experiment folder: {experiment.folder}")
        if trainer.lpips_unavailable:
            say(trainer.lpips_unavailable)
        if args.adv:
            say(f"starting from {trainer.init_path}")
        config = trainer.config  # as the phase resolved it (--adv: the pretrain run's network)
        batch = f"batch {config.train.batch_size}"
        if world.enabled:
            batch += f" per process x {world.world_size} processes = {config.train.batch_size * world.world_size}"
        say(
            f"{config.model['name']} on {trainer.device}; {trainer.total_steps} steps, {batch}, "
            f"{config.data.crop_size}px crops; validation: {len(trainer.val_set)} fixed pairs"
        )
        if world.is_main:
            # After every check and before the first write (fit): a refused command writes nothing, and a
            # second train_gan.py on this folder stops here instead of interleaving checkpoints.
            experiment.lock()
        scores = trainer.fit()
    except Interrupted as stop:
        if world.is_main:
            print(f"{stop}\ncontinue with: {launcher(world)} --{phase} --resume {experiment.folder}", file=sys.stderr)
        return stop.exit_code
    except USER_ERRORS as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    finally:
        shutdown()
    if not world.is_main:
        return 0
    gain = scores.psnr - trainer.blurry_scores.psnr
    print(
        f"Validation PSNR: blurry input {trainer.blurry_scores.psnr:.2f} dB -> restored {scores.psnr:.2f} dB "
        f"({gain:+.2f} dB); SSIM {trainer.blurry_scores.ssim:.4f} -> {scores.ssim:.4f}"
    )
    print(f"checkpoints: {experiment.checkpoints}  (best: {trainer.best_psnr:.2f} dB)")
    return 0


def launcher(world) -> str:
    if world.enabled:
        return f"torchrun --nproc_per_node {world.world_size} train_gan.py"
    return "python train_gan.py"


if __name__ == "__main__":
    try:
        sys.exit(main())
    except KeyboardInterrupt:  # during set-up: training itself stops gracefully with a checkpoint (gan/interrupt.py)
        print("interrupted during set-up; no checkpoint was written", file=sys.stderr)
        sys.exit(130)
