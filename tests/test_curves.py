"""evaluation.curves' benchmark panel: which evaluations become points at a global step and which level lines."""

import json

from evaluation.curves import benchmark_points, main


def _summary(folder, label, psnr, path, complete=True, **weights):
    (folder / label).mkdir(parents=True)
    summary = {"label": label, "complete": complete, "metrics": {"psnr": psnr}, "blurred": {"psnr": 20.0},
               "weights": {"path": path, "sha256": "0" * 64, **weights}}
    (folder / label / "summary.json").write_text(json.dumps(summary))


def test_points_come_from_the_recorded_global_step_or_the_checkpoints_name(tmp_path):
    _summary(tmp_path, "late", 21.0, "weights/light_unet_long_run.pt", global_step=9000)
    _summary(tmp_path, "early", 20.5, "experiments/long-run/checkpoints/step-00002068.pt")
    _summary(tmp_path, "shipped", 20.9, "weights/light_unet_pretrain.pt")
    _summary(tmp_path, "broken", 30.0, "experiments/long-run/checkpoints/step-00005000.pt", complete=False)
    points, levels, blurred = benchmark_points(tmp_path)
    assert points == [(2068, 20.5), (9000, 21.0)] and levels == {"shipped": 20.9} and blurred == 20.0


def test_a_missing_or_empty_evaluations_folder_is_one_line(tmp_path, capsys):
    run = tmp_path / "run"
    (run / "tensorboard").mkdir(parents=True)
    assert main(["--runs", str(run), "--out", str(tmp_path / "c.png"), "--benchmarks", str(tmp_path / "no")]) == 2
    assert capsys.readouterr().err.strip() == f"error: {tmp_path / 'no'} does not exist: is it a folder of evaluations?"
    (tmp_path / "empty").mkdir()
    assert main(["--runs", str(run), "--out", str(tmp_path / "c.png"), "--benchmarks", str(tmp_path / "empty")]) == 2
    assert "empty holds no complete evaluation with PSNR" in capsys.readouterr().err
    assert not (tmp_path / "c.png").exists()
