"""Models shipped in weights/: compact fp16 files, each listed with its sha256 in weights/SHA256SUMS.

    python -m release.bundled --checkpoint experiments/RUN/checkpoints/step-00005500.pt --model pretrain

writes ``weights/light_unet_pretrain.pt`` (the generator's weights, EMA when trained with one, as fp16: no
optimiser, no pickled code, loadable with ``torch.load(weights_only=True)``) and its line in ``SHA256SUMS``
(``sha256sum -c SHA256SUMS`` checks them by hand). ``infer.py`` and ``evaluate.py`` check the sum before loading a
bundled model, so a truncated download, a Git LFS pointer or a file edited by hand is named instead of used.

    python -m release.bundled --model pretrain --card --run experiments/RUN \
        --scores evaluations/motion-v1/X/summary.json --hardware "..." --command "python train_gan.py ..." --note "..."

writes its model card ``weights/light_unet_pretrain.md`` (release/model_card.py), once evaluate.py has scored the
bundled file itself (``--methods model --model pretrain``): scores of any other file, by sha256, are refused.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path
from typing import Any

import torch

from core.checkpoint import (
    SUMS,
    file_mode,
    generator_weights,
    load_checkpoint,
    read_sums,
    save_checkpoint,
    verify,
)
from core.errors import ExperimentError
from core.hashing import sha256
from nets import build_network
from restore.bundled import BUNDLED_MODELS, FORMAT, WEIGHTS_DIR
from restore.generator import generator_from_checkpoint

from .model_card import render

# What release writes: the bundled models, and the long run's newest stretch (where the next stretch continues on a
# fresh machine; gan/long_run.py), which infer.py and the demo do not offer until it is shipped as the pretrain model.
SLOTS = {**BUNDLED_MODELS, "long-run": "light_unet_long_run.pt"}
# The phase each slot holds, as train_gan.py's checkpoints name it.
PHASES = {"pretrain": "pretrain", "gan": "adv", "long-run": "pretrain"}
NETWORK = "light_unet"  # the bundled files' names say LightUNet, and every reader builds one from them


def compact_state(state: dict[str, Any], model: str, source: str) -> dict[str, Any]:
    """The bundled form of checkpoint ``state`` (generator only, fp16), once it is known to be what slot ``model``
    holds: a LightUNet of that phase whose weights load into the network it names and stay finite in fp16.
    Anything else is an ``ExperimentError`` before a file is touched."""
    options = state.get("model") if isinstance(state, dict) else None
    if not isinstance(options, dict) or options.get("name") != NETWORK:
        name = options.get("name") if isinstance(options, dict) else options
        raise ExperimentError(f"{source} holds network {name!r}, not a {NETWORK}: the bundled files are LightUNets")
    if state.get("phase") != PHASES[model]:
        raise ExperimentError(f"{source} is a {state.get('phase')!r} checkpoint; --model {model} ships a "
                              f"{PHASES[model]!r} one")
    if not isinstance(state.get("generator"), dict):
        raise ExperimentError(f"{source} has no generator weights")
    generator_from_checkpoint(state, source)  # the architecture: every weight loads, none is missing
    weights = {name: tensor.half() if tensor.is_floating_point() else tensor
               for name, tensor in generator_weights(state).items()}
    broken = [name for name, tensor in weights.items() if tensor.is_floating_point() and
              not bool(torch.isfinite(tensor).all())]
    if broken:
        raise ExperimentError(f"{source}: weight {broken[0]} is not finite in fp16 ({len(broken)} tensors are not); "
                              "nothing was shipped")
    return {
        "format": FORMAT,
        "phase": state.get("phase"),
        "model": dict(options),
        "generator": weights,
        "step": state.get("step"),
        "source_checkpoint": source,
        "metrics": state.get("metrics"),
        "config": state.get("config"),  # plain values: what the model card reports
        "long_run": state.get("long_run"),  # where on the long schedule these weights are (gan/long_run.py)
    }


def export(state: dict[str, Any], target: Path, source: str, model: str) -> str:
    """Write the generator of checkpoint ``state`` as fp16 to ``target`` and its line in SHA256SUMS; returns the
    sha256. Everything is checked (the checkpoint, the existing SUMS file) before either file is replaced, and
    each is replaced whole, keeping its permissions."""
    compact = compact_state(state, model, source)
    sums = read_sums(target.parent)  # a malformed list fails here, before the weights change
    sums_path = target.parent / SUMS
    staged, staged_sums = (path.with_name(f".{path.name}.staged") for path in (target, sums_path))
    try:
        save_checkpoint(compact, staged)
        digest = sha256(staged)
        sums[target.name] = digest
        staged_sums.write_text("".join(f"{d}  {n}\n" for n, d in sorted(sums.items())))
        os.chmod(staged, file_mode(target))
        os.chmod(staged_sums, file_mode(sums_path))
        os.replace(staged, target)  # both files are complete on disk before either is replaced
        os.replace(staged_sums, sums_path)
    finally:
        staged.unlink(missing_ok=True)
        staged_sums.unlink(missing_ok=True)
    return digest


def write_card(model: str, folder: Path, run: Path | None, scores: list[Path], hardware: str,
               commands: list[str], notes: list[str] = ()) -> Path:
    """Write ``light_unet_<model>.md`` beside the bundled file, from its records (release/model_card.py)."""

    path = folder / SLOTS[model]
    digest = verify(path)
    bundle = load_checkpoint(path)
    summaries = []
    for score in scores:
        summary = json.loads(score.read_text())
        scored = (summary.get("weights") or {}).get("sha256")
        if scored != digest:
            raise ExperimentError(f"{score} does not score {path} as it is now (scored: {scored or 'no model file'}); "
                                  f"run evaluate.py --methods model --model {model}")
        summaries.append(summary)
    parameters = sum(t.numel() for t in build_network(**bundle["model"]).state_dict().values()
                     if t.is_floating_point())
    card = path.with_suffix(".md")
    card.write_text(render(bundle, file_name=path.name, digest=digest, parameters=parameters, run=run,
                           summaries=summaries, hardware=hardware, commands=commands,
                           notes=notes))
    return card


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--checkpoint", type=Path, help="a train_gan.py checkpoint to export")
    parser.add_argument("--model", choices=sorted(SLOTS), required=True,
                        help="pretrain or gan (the bundled models), or long-run (the long run's newest stretch)")
    parser.add_argument("--out", type=Path, default=WEIGHTS_DIR, help="folder (default: weights/)")
    card_options = parser.add_argument_group("model card (written for the bundled file, after evaluate.py has scored "
                                             "it)")
    card_options.add_argument("--card", action="store_true", help="write weights/light_unet_<model>.md")
    card_options.add_argument("--run", type=Path, help="the experiment folder it was trained in (data split, time)")
    card_options.add_argument("--scores", type=Path, nargs="*", default=[], help="evaluate.py summary.json files")
    card_options.add_argument("--hardware", default="not stated", help="what it was trained on")
    card_options.add_argument("--command", action="append", default=[], dest="commands", help="a command, in order")
    card_options.add_argument("--note", action="append", default=[], dest="notes", help="a limitation or remark")
    args = parser.parse_args(argv)
    if args.checkpoint is None and not args.card:
        parser.error("give --checkpoint (export), --card (model card), or both")
    try:
        if args.checkpoint is not None:
            state = load_checkpoint(args.checkpoint)
            args.out.mkdir(parents=True, exist_ok=True)
            target = args.out / SLOTS[args.model]
            digest = export(state, target, str(args.checkpoint), args.model)
            size = target.stat().st_size / 2**20
            print(f"wrote {target} ({size:.1f} MiB, fp16, step {state.get('step')}), sha256 {digest}")
        if args.card:
            card = write_card(args.model, args.out, args.run, args.scores, args.hardware, args.commands, args.notes)
            print(f"wrote {card}")
    except (ExperimentError, OSError, KeyError, ValueError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
