"""int8 inference: made and gated once per weights by ``python -m release.int8``, run only where the gate passed and
the record matches, taken by ``--precision auto`` only where it measured faster."""

import json
import shutil

import numpy as np
import pytest
import torch
from PIL import Image

from core.checkpoint import load_checkpoint
from helpers import ROOT, run_cli, smooth_photo, spawns
from restore.backends import available

pytestmark = pytest.mark.skipif(not (available("openvino") and available("nncf")),
                                reason="the int8 extra (nncf, openvino) is not installed")
CPU = torch.device("cpu")


def _make(checkpoint, calibration, bench, cache, *extra):
    return run_cli("-m", "release.int8", "--checkpoint", str(checkpoint), "--calibration", str(calibration),
                   "--benchmarks", str(bench), "--windows", "8", "--window", "32", "--no-jod", "--repeats", "1",
                   "--threads", "1", *extra, cwd=ROOT, env={"LIGHTDEBLUR_CACHE": str(cache)})


@pytest.fixture(scope="module")
def calibration(tmp_path_factory):
    folder = tmp_path_factory.mktemp("calibration")
    rng = np.random.default_rng(11)
    for index in range(3):
        Image.fromarray(smooth_photo(rng, 96, 112)).save(folder / f"train{index}.png")
    return folder


@pytest.fixture(scope="module")
@spawns
def made(tmp_path_factory, checkpoint, calibration, bench_folder):
    """The int8 model of the tiny checkpoint, made by the real command into its own cache."""
    cache = tmp_path_factory.mktemp("cache")
    result = _make(checkpoint, calibration, bench_folder, cache)
    assert result.returncode == 0, result.stderr
    (folder,) = cache.glob("*/int8")
    return cache, folder, result


def _restorer(checkpoint, cache, monkeypatch, **options):
    from restore.inference import Restorer, load_generator

    monkeypatch.setenv("LIGHTDEBLUR_CACHE", str(cache))
    return Restorer(load_generator(checkpoint, CPU), CPU, **options)


def test_the_int8_model_is_kept_with_its_gate_and_runs_within_it(made, checkpoint, bench_folder, monkeypatch):
    from core.images import read_image
    from datasets.benchmark import Benchmark
    from evaluation.metrics import psnr_per_image
    from restore.backends import weights_sha256
    from restore.inference import load_generator

    cache, folder, result = made
    record = json.loads((folder / "int8.json").read_text())
    assert record["weights"] == weights_sha256(load_generator(checkpoint, CPU))
    assert record["calibration"]["files"] == 3 and record["calibration"]["windows"] == 8
    scores = record["gate"]["benchmarks"]["tiny-v1"]
    assert scores["psnr_change"] == pytest.approx(scores["int8_psnr"] - scores["fp32_psnr"])
    # A small network quantises well: the gate passes, and the stdout line says so with the numbers.
    assert record["gate"]["passed"] and "int8 passes the quality gate: tiny-v1" in result.stdout
    assert set(record["seconds_1280x720"]) == {"int8", record["float_precision"]}
    assert (folder / "model.xml").is_file() and (folder / "model.bin").is_file()
    # --precision int8 runs that model (on OpenVINO whatever --backend says): inference scores what the gate
    # measured, and the network's output is not the float one.
    int8 = _restorer(checkpoint, cache, monkeypatch, tile=0, precision="int8")
    fp32 = _restorer(checkpoint, cache, monkeypatch, tile=0, precision="fp32")
    assert int8.dtype == torch.int8 and int8.backend == "openvino"
    bench = Benchmark.load(bench_folder)
    scores = {"int8": [], "fp32": []}
    for name in bench.names:
        blur, sharp = read_image(bench.path("blur", name)), read_image(bench.path("sharp", name))
        for label, restorer in (("int8", int8), ("fp32", fp32)):
            scores[label].append(psnr_per_image(restorer(blur)[None], sharp[None]).item())
    assert np.mean(scores["int8"]) == pytest.approx(record["gate"]["benchmarks"]["tiny-v1"]["int8_psnr"], abs=0.02)
    assert np.mean(scores["int8"]) - np.mean(scores["fp32"]) >= -0.05
    assert scores["int8"] != scores["fp32"]


def _edited(made, tmp_path, change):
    """A copy of the made cache whose record ``change`` edits: the states a cache can be found in."""
    cache, folder, _ = made
    copy = tmp_path / "cache"
    shutil.copytree(cache, copy)
    (edited,) = copy.glob("*/int8")
    record = json.loads((edited / "int8.json").read_text())
    change(record)
    (edited / "int8.json").write_text(json.dumps(record))
    return copy


@pytest.mark.parametrize(
    "change, message",
    [
        (lambda r: r["gate"].update(passed=False), "int8 fails the quality gate for these weights (tiny-v1 "),
        (lambda r: r.update(openvino="2020.1"), "was made with OpenVINO 2020.1, this is"),
        (lambda r: r.update(weights="0" * 64), "was made from other weights or by another version"),
    ],
)
def test_int8_is_refused_in_one_line_where_the_record_does_not_allow_it(made, checkpoint, tmp_path, change, message):
    cache = _edited(made, tmp_path, change)
    photo = tmp_path / "in.png"
    Image.fromarray(smooth_photo(np.random.default_rng(0), 48, 64)).save(photo)
    result = run_cli("infer.py", "--input", str(photo), "--output", str(tmp_path / "out.png"), "--checkpoint",
                     str(checkpoint), "--precision", "int8", cwd=ROOT, env={"LIGHTDEBLUR_CACHE": str(cache)})
    lines = result.stderr.strip().splitlines()
    assert result.returncode == 2 and len(lines) == 1 and message in lines[0], result.stderr
    assert not (tmp_path / "out.png").exists()


def test_weights_never_quantised_here_name_the_command(checkpoint, tmp_path, monkeypatch):
    from core.errors import ConfigError

    with pytest.raises(ConfigError, match="no int8 model of these weights has been made and measured on this "
                                          "machine: run python -m release.int8"):
        _restorer(checkpoint, tmp_path / "empty-cache", monkeypatch, precision="int8")
    with pytest.raises(ConfigError, match="int8 runs on the openvino backend, not onnxruntime"):
        _restorer(checkpoint, tmp_path / "empty-cache", monkeypatch, precision="int8", backend="onnxruntime")


@pytest.mark.parametrize("int8_faster", [True, False])
def test_auto_takes_int8_only_where_it_passed_and_measured_faster(made, checkpoint, tmp_path, monkeypatch,
                                                                 int8_faster):
    def timed(record):
        other = record["float_precision"]
        record["seconds_1280x720"] = {"int8": 1.0 if int8_faster else 3.0, other: 2.0}

    cache = _edited(made, tmp_path, timed)
    auto = _restorer(checkpoint, cache, monkeypatch, tile=0, precision="auto", backend="openvino")
    assert (auto.dtype == torch.int8) == int8_faster
    # With the default torch backend auto never looks for int8.
    assert _restorer(checkpoint, cache, monkeypatch, tile=0, precision="auto").dtype != torch.int8


def test_exact_tiles_are_refused_rather_than_run_in_another_precision(made, checkpoint, monkeypatch):
    from core.errors import ConfigError

    cache, _, _ = made
    restorer = _restorer(checkpoint, cache, monkeypatch, tile=32, overlap=8, precision="int8", backend="openvino")
    with pytest.raises(ConfigError, match="int8 runs whole images and independently normalised tiles only"):
        restorer(torch.rand(3, 48, 64))
    tiles = _restorer(checkpoint, cache, monkeypatch, tile=32, overlap=8, precision="int8", backend="openvino",
                      norm_statistics="tile")
    assert tiles(torch.rand(3, 48, 64)).shape == (3, 48, 64)


def test_a_calibration_folder_that_is_empty_or_holds_a_benchmark_photo_is_refused(checkpoint, calibration,
                                                                                  bench_folder, tmp_path):
    empty = tmp_path / "empty"
    empty.mkdir()
    result = _make(checkpoint, empty, bench_folder, tmp_path / "cache")
    assert result.returncode == 2 and f"calibration folder {empty} contains no images" in result.stderr
    mixed = tmp_path / "mixed"
    shutil.copytree(calibration, mixed)
    name = json.loads((bench_folder / "benchmark.json").read_text())["images"][0]["name"]
    # A benchmark tile, re-encoded as a JPEG under another name: found by its content.
    Image.open(bench_folder / "sharp" / f"{name}.png").save(mixed / "holiday.jpg", quality=90)
    result = _make(checkpoint, mixed, bench_folder, tmp_path / "cache")
    lines = result.stderr.strip().splitlines()
    assert result.returncode == 2 and len(lines) == 1, result.stderr
    assert f"calibration photo {mixed / 'holiday.jpg'} looks like benchmark photo tiny-v1/{name}" in lines[0]
    assert not (tmp_path / "cache").exists() or not list((tmp_path / "cache").glob("*/int8"))
    assert load_checkpoint(checkpoint)  # the weights file is untouched and still loads


def test_the_peers_bench_times_the_int8_model_and_says_whether_it_passed(made, checkpoint, tmp_path, monkeypatch):
    from bench.peers import int8_entries
    from restore.inference import load_generator

    model = load_generator(checkpoint, CPU)
    image = torch.rand(1, 3, 48, 64)
    monkeypatch.setenv("LIGHTDEBLUR_CACHE", str(tmp_path / "none"))
    assert int8_entries(model, image, 0, 0) == []  # nothing made for these weights here: no row
    for cache, verdict in ((made[0], "passes"), (_edited(made, tmp_path, lambda r: r["gate"].update(passed=False)),
                                                 "fails")):
        monkeypatch.setenv("LIGHTDEBLUR_CACHE", str(cache))
        (entry,) = int8_entries(model, image, 0, 0)
        assert entry.setting.endswith(f"{verdict} the quality gate)") and entry.compared
        assert entry.run().shape == (3, 48, 64)
