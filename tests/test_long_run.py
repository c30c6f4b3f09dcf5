"""The long run: one cosine over a global step, continued exactly where its folder survives and from the shipped
weights where it does not, refusing anything that would silently start another schedule."""

import json
import math
import shutil

import pytest
import torch
import yaml
from PIL import Image

from core.checkpoint import step_checkpoints
from evaluation.curves import benchmark_points, read_scalars
from gan.config import load_config
from gan.long_run import recipe_hash
from helpers import FAST_METRICS, TINY, run_cli
from release.model_card import render

pytestmark = pytest.mark.subprocess  # every test here starts the project's scripts or servers

SCHEDULE = 12  # global steps; TINY's epoch is 2 steps of batch 4, and its 2 epochs make a first stretch of 4
FIRST = 4
WARMUP = 2


def _config(tmp_path, init=None):
    raw = {"experiment": {"name": "long"}, "train": {"schedule_steps": SCHEDULE, "warmup_steps": WARMUP,
                                                      "lr": 1e-3, "lr_min": 1e-5}}
    if init is not None:
        raw["train"]["init"] = str(init)
    path = tmp_path / "long.yaml"
    path.write_text(yaml.safe_dump(raw))
    return path


def _newest(folder):
    return torch.load(step_checkpoints(folder / "checkpoints")[0], weights_only=True)


def _multiplier(global_step, run_step):
    floor = 1e-5 / 1e-3
    cosine = floor + (1 - floor) * 0.5 * (1 + math.cos(math.pi * global_step / SCHEDULE))
    return cosine * min(1.0, (run_step + 1) / WARMUP)


def _shipped_first_stretch(tmp_path, model):
    """(the run folder, the bundled file) of a long run's first stretch of 4 steps, exported as ``model``."""
    assert run_cli("-m", "train_gan", "--pretrain", "--config", str(_config(tmp_path)), "--set", *TINY,
                   cwd=tmp_path).returncode == 0
    run, weights = tmp_path / "experiments" / "long", tmp_path / "weights"
    assert run_cli("-m", "release.bundled", "--checkpoint", str(step_checkpoints(run / "checkpoints")[0]),
                   "--model", model, "--out", str(weights), cwd=tmp_path).returncode == 0
    return run, weights / f"light_unet_{model.replace('-', '_')}.pt"


@pytest.mark.slow  # over 20 s on a 2-core CPU
def test_a_long_run_continues_from_the_shipped_weights_at_their_global_step(tmp_path, bench_folder):
    # The first stretch: 4 of the schedule's 12 steps, shipped as a bundled file.
    run, shipped = _shipped_first_stretch(tmp_path, "long-run")  # where the next stretch continues, shipped or not
    weights = shipped.parent
    record = _newest(run)["long_run"]
    assert record["global_step"] == FIRST and record["schedule_steps"] == SCHEDULE and len(record["stretches"]) == 1
    assert record["recipe"] == recipe_hash(load_config(_config(tmp_path), TINY))
    assert torch.load(shipped, weights_only=True)["long_run"]["global_step"] == FIRST

    # A fresh machine: the folder is gone, the shipped file carries on at global step 4.
    shutil.rmtree(run)
    config = _config(tmp_path, init=shipped)
    second = run_cli("-m", "train_gan", "--pretrain", "--continue-shipped", "--config", str(config), "--set", *TINY,
                     cwd=tmp_path)
    assert second.returncode == 0, second.stderr
    assert f"continuing {shipped} at global step {FIRST} of {SCHEDULE}" in second.stdout
    saved = yaml.safe_load((run / "config.yaml").read_text())  # new pairs from the start step, the split kept
    assert saved["train"]["start_step"] == FIRST and saved["experiment"]["seed"] == 0
    record = _newest(run)["long_run"]
    assert record["global_step"] == SCHEDULE and [s["first_step"] for s in record["stretches"]] == [0, FIRST]
    assert [s["last_step"] for s in record["stretches"]] == [FIRST, SCHEDULE]
    # The rate follows the one long cosine from global step 4, with the fresh optimiser's warm-up; a step logs
    # the rate it took, at the global step it ends on.
    steps, rates = read_scalars(run, ["train/lr"])["train/lr"]
    assert list(steps) == list(range(FIRST + 1, SCHEDULE + 1))
    for step, rate in zip(steps, rates):
        assert math.isclose(rate, 1e-3 * _multiplier(step - 1, step - 1 - FIRST), rel_tol=1e-5), (step, rate)

    # Scores plotted by global step: evaluate.py records the step of each file it scores, and the curve's
    # benchmark panel puts each at its place; a file of no long run is a level line.
    scores = tmp_path / "evaluations" / bench_folder.name
    for weights_file, label in ((shipped, "shipped-stretch"), (step_checkpoints(run / "checkpoints")[0], "newest"),
                                (weights / "light_unet_long_run.pt", "other")):
        if label == "other":  # the same weights without their long-run record
            plain = torch.load(weights_file, weights_only=True)
            del plain["long_run"]
            weights_file = tmp_path / "plain.pt"
            torch.save(plain, weights_file)
        scored = run_cli("-m", "evaluate", "--benchmark", str(bench_folder), "--methods", "model", "--checkpoint",
                         str(weights_file), "--label", label, "--no-lpips", "--tile", "0", *FAST_METRICS,
                         "--out", str(scores), cwd=tmp_path)
        assert scored.returncode == 0, scored.stderr
    assert json.loads((scores / "newest" / "summary.json").read_text())["weights"]["global_step"] == SCHEDULE
    points, levels, blurred = benchmark_points(scores)
    assert [step for step, _ in points] == [FIRST, SCHEDULE] and list(levels) == ["other"]
    assert points[0][1] == levels["other"] and blurred is not None  # the same weights score the same
    curve = tmp_path / "curve.png"
    drawn = run_cli("-m", "evaluation.curves", "--runs", str(run), "--out", str(curve), "--benchmarks", str(scores),
                    cwd=tmp_path)
    assert drawn.returncode == 0 and Image.open(curve).size == (700, 800), drawn.stderr

    # The same machine: the folder survives, so the run is resumed, not restarted (its saved config holds the
    # stretch's own length, so the command passes TINY without the epochs it replaced).
    same = [item for item in TINY if not item.startswith("train.epochs=")]
    again = run_cli("-m", "train_gan", "--pretrain", "--continue-shipped", "--config", str(config), "--set", *same,
                    cwd=tmp_path)
    assert again.returncode == 0 and "resuming experiments/long from" in again.stdout, again.stderr


@pytest.mark.slow  # over 20 s on a 2-core CPU
def test_a_continuation_that_is_not_the_same_long_run_is_one_line(tmp_path):
    run, shipped = _shipped_first_stretch(tmp_path, "pretrain")
    config = _config(tmp_path, init=shipped)
    cases = {
        "recipe": (["train.lr=2e-3"], "was trained with recipe"),  # with the folder there, and without it
        "schedule": ([f"train.schedule_steps={SCHEDULE * 2}"], f"is on a {SCHEDULE}-step schedule"),
        "no schedule": (["train.schedule_steps=0", "train.warmup_steps=0"], "needs a long run's config"),
    }
    before = {p: p.read_bytes() for p in run.rglob("*") if p.is_file()}
    result = run_cli("-m", "train_gan", "--pretrain", "--continue-shipped", "--config", str(config), "--set", *TINY,
                     "train.lr=2e-3", cwd=tmp_path)
    assert result.returncode == 2 and "holds recipe" in result.stderr and len(result.stderr.splitlines()) == 1
    assert {p: p.read_bytes() for p in run.rglob("*") if p.is_file()} == before
    shutil.rmtree(run)
    for extra, message in cases.values():
        result = run_cli("-m", "train_gan", "--pretrain", "--continue-shipped", "--config", str(config), "--set",
                         *TINY, *extra, cwd=tmp_path)
        lines = result.stderr.strip().splitlines()
        assert result.returncode == 2 and len(lines) == 1 and message in lines[0], result.stderr
        assert not run.exists()


@pytest.mark.slow  # over 20 s on a 2-core CPU
def test_a_new_recipe_is_adopted_on_purpose_at_the_shipped_global_step(tmp_path):
    run, shipped = _shipped_first_stretch(tmp_path, "long-run")
    weights = shipped.parent
    config = _config(tmp_path, init=shipped)
    old, new = recipe_hash(load_config(config, TINY)), recipe_hash(load_config(config, [*TINY, "data.leaves=0.5"]))
    assert old != new
    adopt = ["train_gan", "--pretrain", "--continue-shipped", "--adopt-recipe", "--config", str(config), "--set",
             *TINY]

    def refused(*args, message):
        result = run_cli("-m", *args, cwd=tmp_path)
        lines = result.stderr.strip().splitlines()
        assert result.returncode == 2 and len(lines) == 1 and message in lines[0], result.stderr

    # Never by accident: without the flag a new recipe is refused and the flag's name is offered.
    run.rename(run.with_name("long-before"))
    refused("train_gan", "--pretrain", "--continue-shipped", "--config", str(config), "--set", *TINY,
            "data.leaves=0.5", message="--adopt-recipe takes a new recipe up on purpose")
    refused(*adopt, message=f"is recipe {old} already")  # the same recipe is no adoption
    run.mkdir()
    refused(*adopt, "data.leaves=0.5", message="which exists")  # nothing of a folder there is replaced
    assert list(run.iterdir()) == []
    run.rmdir()

    adopted = run_cli("-m", *adopt, "data.leaves=0.5", cwd=tmp_path)
    assert adopted.returncode == 0, adopted.stderr
    assert f"adopting recipe {new} (was {old}): continuing {shipped} at global step {FIRST}" in adopted.stdout
    record = _newest(run)["long_run"]
    assert record["recipe"] == new and record["schedule_steps"] == SCHEDULE and record["global_step"] == SCHEDULE
    assert [(s["first_step"], s["recipe"]) for s in record["stretches"]] == [(0, old), (FIRST, new)]
    # The rate is the same long cosine, picked up at global step 4 with a fresh warm-up.
    steps, rates = read_scalars(run, ["train/lr"])["train/lr"]
    for step, rate in zip(steps, rates):
        assert math.isclose(rate, 1e-3 * _multiplier(step - 1, step - 1 - FIRST), rel_tol=1e-5), (step, rate)
    # From now on the new recipe is the long run's: plain --continue-shipped resumes its folder.
    same = [item for item in TINY if not item.startswith("train.epochs=")]
    again = run_cli("-m", "train_gan", "--pretrain", "--continue-shipped", "--config", str(config), "--set", *same,
                    "data.leaves=0.5", cwd=tmp_path)
    assert again.returncode == 0 and "resuming experiments/long from" in again.stdout, again.stderr
    exported = run_cli("-m", "release.bundled", "--checkpoint", str(step_checkpoints(run / "checkpoints")[0]),
                       "--model", "long-run", "--out", str(weights), cwd=tmp_path)
    assert exported.returncode == 0, exported.stderr
    bundle = torch.load(shipped, weights_only=True)
    card = render(bundle, file_name=shipped.name, digest="0" * 64, parameters=1, run=None, summaries=[],
                  hardware="cpu", commands=[])
    rows = [line for line in card.splitlines() if line.startswith("| ") and line[2].isdigit()]
    assert [row.rsplit("|", 2)[1].strip() for row in rows] == [f"`{old}`", f"`{new}`"], card
