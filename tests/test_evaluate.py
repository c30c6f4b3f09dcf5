"""evaluate.py, the benchmark writer and the baselines: real files, real subprocesses."""

import csv
import json

import numpy as np
import pytest
import torch
from PIL import Image

from baselines.classical import blind_richardson_lucy, richardson_lucy, wiener
from baselines.sigma_cnn import CnnRL, SigmaCNN, load, save, train
from core.errors import DataError
from core.hashing import sha256
from datasets.benchmark import Benchmark
from datasets.blur import synthesize
from datasets.kernels import KernelMix, gaussian_kernel
from evaluation.metrics import psnr_per_image
from helpers import FAST_METRICS, run_cli, smooth_photo


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    to = lambda x: torch.from_numpy(np.ascontiguousarray(x.transpose(2, 0, 1)))[None]  # noqa: E731
    return psnr_per_image(to(a), to(b)).item()


def blurred_pair(kind: str, seed: int = 0, size: int = 64, kernel_size: int = 15):
    rng = np.random.default_rng(seed)
    photo = torch.from_numpy(smooth_photo(rng, size + kernel_size - 1, size + kernel_size - 1)).permute(2, 0, 1) / 255.0
    kernel, _ = KernelMix(kernel_size, {kind: 1.0})(np.random.default_rng(seed + 1))
    blurred, sharp = synthesize(photo[None].float(), kernel[None])
    as_array = lambda t: t[0].permute(1, 2, 0).numpy()  # noqa: E731
    return as_array(blurred), as_array(sharp), kernel.numpy()


@pytest.mark.parametrize("kind", ["trajectory", "linear", "gaussian"])
def test_wiener_and_rl_with_the_true_kernel_beat_the_blurred_input(kind):
    blurred, sharp, kernel = blurred_pair(kind)
    before = psnr(blurred, sharp)
    assert psnr(richardson_lucy(blurred, kernel, iterations=30), sharp) > before + 1.0
    if kind != "linear":  # a box blur's spectral zeros make Wiener ring from the borders: a known weakness
        assert psnr(wiener(blurred, kernel, balance=0.01), sharp) > before + 1.0


def test_blind_rl_with_the_right_gaussian_guess_helps_and_a_wrong_one_hurts():
    rng_photo = np.random.default_rng(3)
    photo = torch.from_numpy(smooth_photo(rng_photo, 84, 84)).permute(2, 0, 1).float()[None] / 255
    blurred, sharp = synthesize(photo, gaussian_kernel(21, 2.0)[None])
    blurred, sharp = blurred[0].permute(1, 2, 0).numpy(), sharp[0].permute(1, 2, 0).numpy()
    assert psnr(blind_richardson_lucy(blurred, sigma=2.0, size=21), sharp) > psnr(blurred, sharp) + 1.0
    assert psnr(blind_richardson_lucy(blurred, sigma=5.0, size=21), sharp) < psnr(blurred, sharp)


def test_sigma_cnn_trains_saves_reloads_and_drives_rl(tmp_path):
    model = SigmaCNN(channels=8, depth=3)
    before = [p.detach().clone() for p in model.parameters()]
    losses = train(model, steps=3, batch=4, crop=24, kernel_size=11, log_every=0)
    assert len(losses) == 3 and all(np.isfinite(losses))
    assert any(not torch.equal(a, b) for a, b in zip(before, model.parameters()))
    save(model, tmp_path / "sigma.pt", {"steps": 3})
    reloaded = load(tmp_path / "sigma.pt")
    image = torch.rand(1, 3, 40, 40)
    assert abs(reloaded(image).item() - model.eval()(image).item()) < 0.05  # fp16 storage
    method = CnnRL(reloaded, kernel_size=11, iterations=5)
    restored = method(image[0].permute(1, 2, 0).numpy())
    assert restored.shape == (40, 40, 3) and 0 < method.last_sigma < reloaded.max_sigma


@pytest.mark.subprocess
def test_the_benchmark_is_seeded_verified_and_never_rewritten(bench_folder, tmp_path):
    bench = Benchmark.load(bench_folder)
    assert len(bench.names) == 6 and bench.meta["version"] == "tiny-v1"
    for name in bench.names:
        kernel = bench.kernel(name)
        assert kernel.shape == (9, 9) and abs(kernel.sum() - 1) < 1e-5
        assert Image.open(bench.path("blur", name)).size == Image.open(bench.path("sharp", name)).size == (32, 32)
    again = run_cli("-m", "datasets.benchmark", "--out", str(tmp_path / "again"), "--photos",
                    str(bench_folder.parent / "photos"), "--tile", "32", "--kernel-size", "9", "--crops-per-photo", "3",
                    "--min-texture", "0", cwd=tmp_path)
    assert again.returncode == 0, again.stderr
    assert json.loads((tmp_path / "again" / "benchmark.json").read_text())["fingerprint"] == bench.meta["fingerprint"]
    refused = run_cli("-m", "datasets.benchmark", "--out", str(bench_folder), "--photos",
                      str(bench_folder.parent / "photos"),
                      cwd=tmp_path)
    assert refused.returncode == 2 and "never rewritten" in refused.stderr
    changed = tmp_path / "changed"
    import shutil

    shutil.copytree(bench_folder, changed)
    Image.new("RGB", (32, 32)).save(changed / "blur" / f"{bench.names[0]}.png")
    with pytest.raises(DataError, match="was changed"):
        Benchmark.load(changed)


@pytest.mark.subprocess
def test_evaluate_writes_csv_json_markdown_histogram_and_extremes(bench_folder, checkpoint, tmp_path):
    out = tmp_path / "evals"
    result = run_cli("-m", "evaluate", "--benchmark", str(bench_folder), "--methods", "wiener", "rl", "blind-rl",
                     "model",
                     "--checkpoint", str(checkpoint), "--out", str(out), "--rl-iterations", "5", "--no-lpips",
                     *FAST_METRICS, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    runs = sorted(p.name for p in out.iterdir() if p.is_dir())
    assert runs == ["blind-rl", "model-tiny", "rl", "wiener"]
    for run in runs:
        folder = out / run
        rows = list(csv.DictReader(open(folder / "per_image.csv")))
        assert len(rows) == 6 and {"name", "psnr", "ssim", "seconds", "blurred_psnr"} <= set(rows[0])
        summary = json.loads((folder / "summary.json").read_text())
        assert summary["complete"] and summary["images_scored"] == 6
        assert abs(summary["metrics"]["psnr"] - np.mean([float(r["psnr"]) for r in rows])) < 1e-9
        assert summary["metrics"]["lpips_alex"] is None  # never a made-up value
        assert summary["seconds_per_image_median"] > 0
        assert Image.open(folder / "psnr_hist.png").size[0] > 100
        assert len(list(folder.glob("best_*.png"))) == len(list(folder.glob("worst_*.png"))) == 3
        assert Image.open(next(folder.glob("best_1_*.png"))).size == (32 * 3 + 16, 32)  # blurred | restored | sharp
    oracle = json.loads((out / "rl" / "summary.json").read_text())
    assert oracle["metrics"]["psnr"] > oracle["blurred"]["psnr"] and oracle["weights"] is None
    model = json.loads((out / "model-tiny" / "summary.json").read_text())
    assert model["weights"] == {"path": str(checkpoint), "sha256": sha256(checkpoint)}  # what a model card checks
    table = (out / "table.md").read_text()
    assert table.startswith("| Method | PSNR (dB) | SSIM") and "| Blurred input |" in table and "model tiny" in table


@pytest.mark.subprocess
def test_compare_prints_one_table_and_flags_different_benchmarks(bench_folder, tmp_path):
    out = tmp_path / "evals"
    for method in ("wiener", "rl"):
        result = run_cli("-m", "evaluate", "--benchmark", str(bench_folder), "--methods", method, "--out", str(out),
                         "--rl-iterations", "3", "--no-lpips", *FAST_METRICS, cwd=tmp_path)
        assert result.returncode == 0, result.stderr
    compare = run_cli("-m", "evaluate", "--compare", str(out), cwd=tmp_path)
    assert compare.returncode == 0
    table, _, paired = compare.stdout.partition("Paired per-image differences")
    lines = [line for line in table.splitlines() if line.startswith("| ")]
    assert len(lines) == 1 + 1 + 2 and "WARNING" not in compare.stdout  # header, blurred input, two methods
    rows = [line for line in paired.splitlines() if line.startswith("| rl")]
    assert [row.split(" | ")[2] for row in rows][:2] == ["PSNR (dB)", "SSIM"] and "95% interval" in paired
    summary = json.loads((out / "rl" / "summary.json").read_text())
    summary["dataset"]["fingerprint"] = "something-else"
    (out / "rl" / "summary.json").write_text(json.dumps(summary))
    assert "WARNING: these rows were scored on different image sets" in run_cli(
        "-m", "evaluate", "--compare", str(out / "rl"), str(out / "wiener"), cwd=tmp_path).stdout


@pytest.mark.subprocess
def test_evaluate_refuses_to_overwrite_a_run_and_needs_kernels_for_oracles(bench_folder, paired_tree, tmp_path):
    out = tmp_path / "evals"
    first = run_cli("-m", "evaluate", "--benchmark", str(bench_folder), "--methods", "wiener", "--out", str(out),
                    "--no-lpips", *FAST_METRICS, cwd=tmp_path)
    assert first.returncode == 0
    before = (out / "wiener" / "summary.json").read_bytes()
    second = run_cli("-m", "evaluate", "--benchmark", str(bench_folder), "--methods", "wiener", "--out", str(out),
                     "--no-lpips", *FAST_METRICS, cwd=tmp_path)
    assert second.returncode == 2 and "exists; pass --overwrite" in second.stderr
    assert (out / "wiener" / "summary.json").read_bytes() == before
    folders = run_cli("-m", "evaluate", "--restored", str(bench_folder / "blur"), "--sharp",
                      str(bench_folder / "sharp"),
                      "--methods", "rl", "--out", str(out), "--no-lpips", *FAST_METRICS, cwd=tmp_path)
    assert folders.returncode == 0  # --restored scores files on disk; --methods does not apply
    # An oracle on pairs without true kernels (a paired folder, not a benchmark) is refused before scoring.
    oracle = run_cli("-m", "evaluate", "--data", "paired", "--root", str(paired_tree), "--methods", "rl", "--out",
                     str(tmp_path / "paired"), "--no-lpips", *FAST_METRICS, cwd=tmp_path)
    lines = oracle.stderr.strip().splitlines()
    assert oracle.returncode == 2 and lines[-1].startswith("error: method ") and "needs the true kernels" in lines[-1]
    assert not list((tmp_path / "paired").rglob("summary.json"))


def restored_tree(tmp_path, bench_folder):
    import shutil

    restored = tmp_path / "restored"
    shutil.copytree(bench_folder / "blur", restored)
    return restored


@pytest.mark.subprocess
@pytest.mark.parametrize("break_it, message", [
    (lambda r, s: (r / "extra.png").write_bytes((s / next(iter(sorted(p.name for p in s.iterdir())))).read_bytes()),
     "extra.png has no sharp counterpart"),
    (lambda r, s: next(iter(sorted(r.iterdir()))).unlink(), "has no restored counterpart"),
    (lambda r, s: Image.new("RGB", (30, 32)).save(next(iter(sorted(r.iterdir())))), "sizes differ"),
])
def test_folder_mode_names_missing_counterparts_and_size_mismatches(bench_folder, tmp_path, break_it, message):
    restored = restored_tree(tmp_path, bench_folder)
    break_it(restored, bench_folder / "sharp")
    result = run_cli("-m", "evaluate", "--restored", str(restored), "--sharp", str(bench_folder / "sharp"),
                     "--no-lpips",
                     *FAST_METRICS, "--out", str(tmp_path / "evals"), cwd=tmp_path)
    assert result.returncode == 2 and message in result.stderr and len(result.stderr.strip().splitlines()) == 1
    assert not (tmp_path / "evals").exists()


@pytest.mark.subprocess
def test_an_empty_folder_is_named(tmp_path, bench_folder):
    (tmp_path / "empty").mkdir()
    result = run_cli("-m", "evaluate", "--restored", str(tmp_path / "empty"), "--sharp", str(bench_folder / "sharp"),
                     "--no-lpips", *FAST_METRICS, cwd=tmp_path)
    assert result.returncode == 2 and "restored folder" in result.stderr and "contains no images" in result.stderr


@pytest.mark.subprocess
def test_a_partial_result_is_never_reported_as_complete(bench_folder, tmp_path):
    restored = restored_tree(tmp_path, bench_folder)
    victim = sorted(restored.iterdir())[0]
    nan = victim.with_suffix(".tif")  # a valid header; the pixels decode to NaN, found only when read
    Image.fromarray(np.full((32, 32), np.nan, dtype=np.float32), mode="F").save(nan)
    victim.unlink()
    result = run_cli("-m", "evaluate", "--restored", str(restored), "--sharp", str(bench_folder / "sharp"),
                     "--no-lpips", *FAST_METRICS, "--out", str(tmp_path / "evals"), "--label", "cut", cwd=tmp_path)
    assert result.returncode == 1, result.stderr
    summary = json.loads((tmp_path / "evals" / "cut" / "summary.json").read_text())
    assert not summary["complete"] and summary["images_scored"] == 5 and summary["images_total"] == 6
    assert nan.name in summary["failures"][0] and f"skipped: image {nan} contains non-finite values" in result.stderr
    assert "5 of 6 (INCOMPLETE)" in result.stdout


@pytest.mark.subprocess
def test_a_truncated_png_is_named_before_any_scoring(bench_folder, tmp_path):
    restored = restored_tree(tmp_path, bench_folder)
    victim = sorted(restored.iterdir())[0]
    victim.write_bytes(victim.read_bytes()[:80])
    result = run_cli("-m", "evaluate", "--restored", str(restored), "--sharp", str(bench_folder / "sharp"),
                     "--no-lpips", *FAST_METRICS, "--out", str(tmp_path / "evals"), cwd=tmp_path)
    assert result.returncode == 2 and f"cannot read image {victim}" in result.stderr
    assert not (tmp_path / "evals").exists()
