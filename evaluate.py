"""Score deblurring methods with stated conventions: PSNR, SSIM, LPIPS, ColorVideoVDP (JOD), FLIP and runtime,
next to the blurred input.

    python evaluate.py --benchmark benchmarks/motion-v1 --methods wiener rl blind-rl --out evaluations/motion-v1
    python evaluate.py --benchmark benchmarks/motion-v1 --methods model --checkpoint RUN/checkpoints/best.pt
    python evaluate.py --data gopro --root GOPRO_Large --methods model --checkpoint best.pt   # official test split
    python evaluate.py --data hide --root HIDE_dataset --methods model    # test-close and test-long rows too
    python evaluate.py --restored my_outputs/ --sharp sharp/ --blurred blurred/ --label my-method
    python evaluate.py --compare evaluations/motion-v1            # one table of every run in there, and paired
                                                                  # per-image differences with 95% intervals
    python evaluate.py --benchmark benchmarks/motion-v1 --methods wiener --metrics flip   # PSNR, SSIM and FLIP only

Each method's run folder gets per_image.csv, summary.json, table.md, psnr_hist.png, on a benchmark breakdown.md
and breakdown.png (per kernel kind and blur extent), and best/worst side-by-side
PNGs (blurred | restored | sharp); every run also scores the blurred input itself (the baseline row).
Methods: wiener and rl (non-blind, given the benchmark's true kernel: the oracle), blind-rl (RL with a fixed
Gaussian guess), cnn-rl (a CNN estimates the Gaussian sigma, then RL), cnn-rl-patches (the same per overlapping
patch, stitched without seams: for blur that varies across the image), model (a checkpoint from train_gan.py,
tiled so any size works).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import sys
from pathlib import Path

from core.registry import Registry
from core.resources import resource_dir
from evaluation.methods import Method
from evaluation.offline_metrics import LOADERS, METRIC_CHOICES
from gan.errors import USER_ERRORS
from restore.tiling_args import add_runtime_arguments, add_tiling_arguments

SIGMA_CNN = resource_dir("weights") / "sigma_cnn.pt"


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    source = parser.add_argument_group("what to score (one of)")
    source.add_argument("--benchmark", type=Path, help="a folder written by python -m datasets.benchmark")
    source.add_argument("--data", choices=("gopro", "hide", "realblur-J", "realblur-R", "paired"),
                        help="a real dataset's test split (gopro, realblur-*) or a paired folder, with --root")
    source.add_argument("--root", type=Path, help="the dataset folder for --data")
    source.add_argument("--restored", type=Path, help="a folder of restorations made elsewhere (with --sharp)")
    source.add_argument("--sharp", type=Path, help="the sharp counterparts of --restored (same relative names)")
    source.add_argument("--blurred", type=Path, help="optional: the blurred inputs of --restored, for the baseline row")
    source.add_argument("--compare", type=Path, nargs="+", metavar="RUN", help="print one table of earlier runs")
    parser.add_argument("--methods", nargs="+", default=["model"], help=f"any of: {', '.join(METHODS)}")
    parser.add_argument("--checkpoint", type=Path, help="model: a train_gan.py checkpoint (default: bundled pretrain)")
    parser.add_argument("--model", choices=("pretrain", "gan"), default="pretrain", help="model: which bundled model")
    parser.add_argument("--label", help="the row name of a single method (default: the method, or the run's name)")
    parser.add_argument("--out", type=Path, help="output folder (default evaluations/<benchmark or data name>)")
    parser.add_argument("--overwrite", action="store_true", help="replace an existing run folder of the same label")
    parser.add_argument("--save-images", action="store_true", help="also write every restoration as PNG")
    parser.add_argument("--wiener-balance", type=float, default=0.01, help="wiener: noise-to-signal (default 0.01)")
    parser.add_argument("--rl-iterations", type=int, default=30, help="rl, blind-rl, cnn-rl: iterations (default 30)")
    parser.add_argument("--blind-sigma", type=float, default=2.0,
                        help="blind-rl: the guessed Gaussian sigma (default 2)")
    parser.add_argument("--sigma-cnn", type=Path, default=SIGMA_CNN,
                        help="cnn-rl: weights (default weights/sigma_cnn.pt)")
    parser.add_argument("--no-lpips", action="store_true", help="skip LPIPS entirely")
    parser.add_argument("--metrics", nargs="+", choices=METRIC_CHOICES, metavar="METRIC",
                        help="what to score, of: psnr ssim lpips cvvdp flip (default: all; PSNR and SSIM always). "
                             "Named here, a metric whose package is missing is an error; by default it is a note")
    parser.add_argument("--device", default="auto", help="model: auto, cpu, cuda[:N] or mps")
    add_tiling_arguments(parser)
    add_runtime_arguments(parser)
    args = parser.parse_args(argv)
    chosen = [bool(args.benchmark), bool(args.data), bool(args.restored), bool(args.compare)]
    if sum(chosen) != 1:
        parser.error("choose exactly one of --benchmark, --data (with --root), --restored (with --sharp), --compare")
    if args.data and not args.root:
        parser.error("--data needs --root")
    if args.restored and not args.sharp:
        parser.error("--restored needs --sharp")
    if args.restored and args.sharp and args.restored.resolve() == args.sharp.resolve():
        parser.error(f"--restored and --sharp are the same folder ({args.sharp}): every image would score as perfect")
    unknown = [m for m in args.methods if m not in METHODS]
    if unknown:
        parser.error(f"unknown method {unknown[0]!r}; choose from {', '.join(METHODS)}")
    if args.label and len(args.methods) > 1 and not args.restored:
        parser.error("--label names a single method; drop it or evaluate one method at a time")
    return args


def _oracle(method):
    """A non-blind method, run per lattice node where the benchmark's blur varies across the image."""
    from baselines import classical

    return lambda blurred, kernel: (classical.per_node(method, blurred, kernel) if kernel.ndim == 4
                                    else method(blurred, kernel))


def _wiener(args: argparse.Namespace, kernel_size: int) -> Method:
    from baselines import classical

    return Method(f"wiener (oracle kernel, balance {args.wiener_balance:g})",
                  _oracle(lambda blurred, kernel: classical.wiener(blurred, kernel, args.wiener_balance)), True)


def _rl(args: argparse.Namespace, kernel_size: int) -> Method:
    from baselines import classical

    return Method(f"rl (oracle kernel, {args.rl_iterations} it)",
                  _oracle(lambda blurred, kernel: classical.richardson_lucy(blurred, kernel, args.rl_iterations)),
                  True)


def _blind_rl(args: argparse.Namespace, kernel_size: int) -> Method:
    from baselines import classical

    return Method(f"blind-rl (Gaussian sigma {args.blind_sigma:g}, {args.rl_iterations} it)",
                  lambda blurred, kernel: classical.blind_richardson_lucy(blurred, args.blind_sigma, kernel_size,
                                                                          args.rl_iterations))


def _sigma_cnn(args: argparse.Namespace):
    from baselines.sigma_cnn import load

    if not args.sigma_cnn.is_file():
        raise FileNotFoundError(f"sigma-CNN weights {args.sigma_cnn} are missing; train them with "
                                f"python -m baselines.sigma_cnn --out {args.sigma_cnn}")
    return load(args.sigma_cnn)


def _cnn_rl(args: argparse.Namespace, kernel_size: int) -> Method:
    from baselines.sigma_cnn import CnnRL

    method = CnnRL(_sigma_cnn(args), kernel_size, args.rl_iterations)
    return Method(f"cnn-rl ({args.rl_iterations} it)", lambda blurred, kernel: method(blurred))


def _cnn_rl_patches(args: argparse.Namespace, kernel_size: int) -> Method:
    from baselines.sigma_cnn import PatchCnnRL

    method = PatchCnnRL(_sigma_cnn(args), kernel_size, args.rl_iterations)
    return Method(f"cnn-rl-patches ({method.patch} px, overlap {method.overlap}, {args.rl_iterations} it)",
                  lambda blurred, kernel: method(blurred))


def _model(args: argparse.Namespace, kernel_size: int) -> Method:
    from core.checkpoint import load_checkpoint
    from core.cpu_allocator import reuse_freed_memory
    from core.device import pick_device
    from core.hashing import sha256
    from core.images import array_to_tensor, tensor_to_array
    from restore.inference import Restorer, default_checkpoint, load_generator

    reuse_freed_memory()  # see core/cpu_allocator.py: large activations reuse pages
    device = pick_device(args.device)
    checkpoint = args.checkpoint or default_checkpoint(args.model)
    state = load_checkpoint(checkpoint)  # read once: the generator and the file's training position
    restore = Restorer(load_generator(checkpoint, device, state), device, args.tile, args.overlap,
                       precision=args.precision, norm_statistics=args.norm_stats, backend=args.backend)
    run = checkpoint.parent.parent.name if checkpoint.parent.name == "checkpoints" else checkpoint.stem
    label = f"model {run}/{checkpoint.name}" if checkpoint.parent.name == "checkpoints" else f"model {run}"
    # Asked-for backends and precisions name the row; the defaults do not, so a run's folder name is the same on
    # every machine (auto precision is bf16 on some CPUs and fp32 on others).
    runtime = [restore.backend] if args.backend != "torch" else []
    runtime += [str(restore.dtype).removeprefix("torch.")] if args.precision != "auto" else []
    label += f" ({', '.join(runtime)})" if runtime else ""
    # Which file was scored, by content: a model card takes only scores of the very file it describes.
    weights = {"path": str(checkpoint), "sha256": sha256(checkpoint)}
    position = state.get("long_run")
    if isinstance(position, dict) and "global_step" in position:
        weights["global_step"] = int(position["global_step"])  # a long run's curve plots its scores by it
    return Method(label, lambda blurred, kernel: tensor_to_array(restore(array_to_tensor(blurred))),
                  device=str(device), weights=weights)


# The registry: --methods names, each with the function that builds it from the command line's settings.
BUILDERS: Registry = Registry("method", {
    "wiener": _wiener, "rl": _rl, "blind-rl": _blind_rl, "cnn-rl": _cnn_rl, "cnn-rl-patches": _cnn_rl_patches,
    "model": _model,
})
METHODS = tuple(BUILDERS)


def safe_folder_name(label: str) -> str:
    """The run folder's name below --out for a row label: never empty, '.' or '..', so never outside --out."""
    name = "".join(c if c.isalnum() or c in "-_." else "_" for c in label).strip("_")
    if not name.strip("."):
        from core.errors import DataError

        raise DataError(f"--label {label!r} makes no folder name below --out; use letters, digits, '-', '_' or '.'")
    return name


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    from core.errors import DataError
    from evaluation.scoring import Evaluation, Scorer
    from evaluation.tables import breakdown_table, markdown_table

    try:
        if args.compare:
            from evaluation.scoring import load_runs
            from evaluation.significance import significance_table

            runs = load_runs(args.compare)
            print(markdown_table([summary for _, summary in runs]))
            comparable = {json.dumps(summary["dataset"], sort_keys=True) for _, summary in runs}
            if len(runs) > 1 and len(comparable) == 1 and all((f / "per_image.csv").is_file() for f, _ in runs):
                print("\nPaired per-image differences (a difference is real only where its 95% interval excludes 0):\n")
                print(significance_table(runs))
            return 0
        items, dataset, kernel_size, default_out = collect_items(args)
        out_root = args.out or Path("evaluations") / default_out
        plans = []
        for name in args.methods if not args.restored else ["restored"]:
            if args.restored:
                method = Method(args.label or args.restored.name, None, device="n/a")
            else:
                method = BUILDERS[name](args, kernel_size)
                if args.label:
                    method = dataclasses.replace(method, label=args.label)
            label = method.label
            short = label if args.label or args.restored else (name if name != "model" else label.replace(" ", "-"))
            folder = out_root / safe_folder_name(short)
            if folder.exists() and any(folder.iterdir()) and not args.overwrite:
                raise DataError(f"run folder {folder} exists; pass --overwrite to replace it, or choose --out/--label")
            plans.append((method, folder))
        chosen = set(args.metrics or METRIC_CHOICES)
        optional = tuple(m for m in LOADERS if m in chosen)
        scorer = Scorer(lpips="lpips" in chosen and not args.no_lpips, metrics=optional,
                        required=optional if args.metrics else ())
        for note in scorer.notes:
            print(note, file=sys.stderr)
        summaries = []
        for method, folder in plans:
            label = method.label
            evaluation = Evaluation(label, folder, dataset, device=method.device, save_images=args.save_images,
                                    weights=method.weights)
            summary = evaluation.run(items, method.restore, scorer, method.needs_kernel)
            summaries.append(summary)
            state = ("" if summary["complete"]
                     else f" INCOMPLETE: {summary['images_scored']} of {summary['images_total']}")
            print(f"{label}: {summary['images_scored']} images scored{state} -> {folder}", file=sys.stderr)
    except (*USER_ERRORS, DataError, FileNotFoundError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    except BrokenPipeError:
        raise  # a reader that stopped early: run_in_pipeline ends quietly
    except OSError as error:  # --out under a file, a read-only or full disk
        from core.errors import os_error_line

        print(f"error: {os_error_line(error)}", file=sys.stderr)
        return 2
    print(markdown_table(summaries, with_notes=False))  # the notes went to stderr before scoring began
    for summary in summaries:
        if summary.get("breakdown"):  # per kernel kind and blur extent (benchmarks, whose kernels are known)
            print("\n" + breakdown_table(summary["label"], summary["breakdown"]))
    if len(summaries) > 1:
        (out_root / "table.md").write_text(markdown_table(summaries) + "\n")  # the saved table keeps the notes
    return 0 if all(s["complete"] for s in summaries) else 1


def collect_items(args: argparse.Namespace):
    """(items, dataset description, kernel size for blind methods, default output name)."""
    from datasets.benchmark import Benchmark
    from datasets.build import list_pairs
    from datasets.config import DataConfig
    from datasets.sources import SOURCES
    from evaluation.scoring import benchmark_items, folder_items, pair_items

    if args.benchmark:
        bench = Benchmark.load(args.benchmark)
        dataset = {"benchmark": bench.meta["version"], "fingerprint": bench.meta["fingerprint"]}
        return benchmark_items(bench), dataset, bench.meta["kernel_size"], bench.meta["version"]
    if args.restored:
        items = folder_items(args.restored, args.sharp, args.blurred)
        return items, {"sharp": str(args.sharp)}, 21, args.sharp.name
    source, _, variant = args.data.partition("-")
    config = DataConfig(source=source, root=str(args.root), realblur_variant=variant or "J")
    pairs, problems = list_pairs(config, "test" if SOURCES[source].test_split else "train")
    if problems:
        from core.errors import DataError

        raise DataError(problems[0] + (f" (and {len(problems) - 1} more)" if len(problems) > 1 else ""))
    return pair_items(pairs, args.root.expanduser()), {"data": args.data, "root": str(args.root)}, 21, args.data


def run_in_pipeline() -> int:
    """main(), where a reader that stops early (``| head``) ends the output quietly instead of with a traceback,
    and so does Ctrl-C (exit 130)."""
    try:
        code = main()
        sys.stdout.flush()
        return code
    except BrokenPipeError:
        # Point stdout at devnull, so the interpreter's own flush at exit does not fail a second time.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 1  # as Python's documentation does for EPIPE
    except KeyboardInterrupt:
        print("interrupted: the run being scored has no complete summary.json; score it again with --overwrite",
              file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(run_in_pipeline())
