"""Making the int8 model of a weights file and measuring its quality gate (restore/int8.py says how inference uses
it):

    pip install -e ".[int8]"
    python -m release.int8 --checkpoint weights/light_unet_pretrain.pt --calibration data/photos-ms/train

Quantises the weights' ONNX export with NNCF on calibration windows of training photos (a folder holding a benchmark
photo is refused), keeps the stem, head and global residual in float by default (``--keep``), measures each
benchmark's PSNR (and ColorVideoVDP JOD where cvvdp is installed) against the fp32 export and the seconds of a
1280x720 frame in int8 and in the float precision ``--precision auto`` would take, and keeps model and record in
the export's cache folder.
"""

from __future__ import annotations

import argparse
import json
import logging
import shutil
import sys
import tempfile
import time
from pathlib import Path

import torch
from torch import nn

from core.cpu_features import cpu_flags
from core.errors import ConfigError, DataError, ExperimentError
from restore.backends import EXPORT_VERSION, cached_onnx, openvino_runner, openvino_settings, weights_sha256
from restore.int8 import (
    DEFAULT_KEEP,
    FLOAT_DTYPES,
    KEEPABLE,
    MAX_JOD_DROP,
    MAX_PSNR_DROP_DB,
    RECORD,
    RECORD_VERSION,
    benchmark_scores,
    calibration_files,
    calibration_pairs,
    files_sha256,
    float_precision,
    frame_seconds,
    gate_summary,
    gate_verdict,
    int8_folder,
    kept_scope,
)


def make_int8(model: nn.Module, calibration: Path, benchmark_folders: list[Path], windows: int = 200,
              window: int = 192, keep: list[str] = DEFAULT_KEEP, max_psnr_drop: float = MAX_PSNR_DROP_DB,
              max_jod_drop: float = MAX_JOD_DROP, jod: bool = True, repeats: int = 3, threads: int = 2,
              directory: Path | None = None, log=print) -> dict:
    """Quantise ``model``'s export, measure the gate and the times, keep both in the cache; returns the record."""
    import nncf
    import openvino
    from nncf.common.logging.logger import set_log_level

    from datasets.benchmark import Benchmark
    from evaluation.offline_metrics import load_cvvdp

    set_log_level(logging.ERROR)
    benches = [Benchmark.load(folder) for folder in benchmark_folders]
    if not benches:
        raise ConfigError("the quality gate needs at least one benchmark (--benchmarks)")
    files = calibration_files(calibration, benches)
    jod_score, reason = load_cvvdp() if jod else (None, "JOD not asked for (--no-jod)")
    if jod_score is None:
        log(f"note: {reason}; the gate is PSNR alone")
    core = openvino.Core()
    onnx = cached_onnx(model, directory)
    network = core.read_model(str(onnx))
    samples = [blur for blur, _ in calibration_pairs(files, windows, window)]
    start = time.perf_counter()
    quantized = nncf.quantize(network, nncf.Dataset(samples), subset_size=len(samples),
                              ignored_scope=kept_scope(network, list(keep)))
    log(f"quantised in {time.perf_counter() - start:.0f} s on {len(samples)} calibration windows")
    precision = float_precision()
    runs = {"fp32": openvino_runner(network, openvino_settings(torch.float32, threads)),
            "int8": openvino_runner(quantized, openvino_settings(FLOAT_DTYPES[precision], threads))}
    if precision != "fp32":  # the float precision int8 is timed against, where it is not the reference's
        runs[precision] = openvino_runner(network, openvino_settings(FLOAT_DTYPES[precision], threads))
    gate = {}
    for bench in benches:
        reference = benchmark_scores(runs["fp32"], bench, jod_score)
        scores = benchmark_scores(runs["int8"], bench, jod_score)
        gate[bench.folder.name] = {"fp32_psnr": reference["psnr"], "int8_psnr": scores["psnr"],
                                   "psnr_change": scores["psnr"] - reference["psnr"]}
        if "jod" in scores:
            gate[bench.folder.name].update(fp32_jod=reference["jod"], int8_jod=scores["jod"],
                                           jod_change=scores["jod"] - reference["jod"])
    seconds = {"int8": frame_seconds(runs["int8"], repeats), precision: frame_seconds(runs[precision], repeats)}
    record = {
        "version": RECORD_VERSION, "weights": weights_sha256(model), "export": EXPORT_VERSION,
        "calibration": {"folder": str(calibration), "files": len(files), "sha256": files_sha256(files),
                        "windows": len(samples), "window": window, "degradation": "motion-v2", "seed": 0},
        "nncf": nncf.__version__, "openvino": openvino.__version__, "kept_in_float": sorted(keep),
        "float_precision": precision,
        "gate": {"benchmarks": gate, "max_psnr_drop": max_psnr_drop, "max_jod_drop": max_jod_drop,
                 "jod": jod_score is not None, "passed": gate_verdict(gate, max_psnr_drop, max_jod_drop)},
        "seconds_1280x720": seconds, "threads": threads,
        "cpu_flags": sorted(flag for flag in cpu_flags() if flag in ("avx2", "avx512f", "avx512_vnni", "avx_vnni",
                                                                      "avx512_bf16", "amx_bf16", "amx_int8")),
    }
    _keep(quantized, record, int8_folder(model, directory, record["weights"]))
    return record


def _keep(quantized, record: dict, folder: Path) -> None:
    """Write the model and its record into a staging folder, then put it in ``folder``'s place: a reader sees the
    old pair or the new one, never half of each."""
    import openvino

    folder.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(dir=folder.parent, prefix=".int8-"))
    try:
        openvino.save_model(quantized, str(staging / "model.xml"), compress_to_fp16=False)
        (staging / RECORD).write_text(json.dumps(record, indent=2) + "\n")
        if folder.exists():
            old = Path(tempfile.mkdtemp(dir=folder.parent, prefix=".int8-old-"))
            folder.rename(old / "int8")
            shutil.rmtree(old, ignore_errors=True)
        staging.rename(folder)
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0].replace("\n", " "))
    parser.add_argument("--checkpoint", type=Path, required=True, help="a checkpoint or bundled weights file")
    parser.add_argument("--calibration", type=Path, required=True,
                        help="a folder of training photos (never benchmark photos), e.g. data/photos-ms/train")
    parser.add_argument("--benchmarks", type=Path, nargs="+",
                        default=[Path("benchmarks/motion-v1"), Path("benchmarks/motion-v2")])
    parser.add_argument("--windows", type=int, default=200, help="calibration windows (default 200)")
    parser.add_argument("--window", type=int, default=192, help="their side in pixels (default 192)")
    parser.add_argument("--keep", nargs="*", default=list(DEFAULT_KEEP), choices=KEEPABLE,
                        help=f"parts kept in float (default: {' '.join(DEFAULT_KEEP)}; --keep alone: none)")
    parser.add_argument("--max-psnr-drop", type=float, default=MAX_PSNR_DROP_DB)
    parser.add_argument("--max-jod-drop", type=float, default=MAX_JOD_DROP)
    parser.add_argument("--no-jod", action="store_true", help="gate on PSNR alone (ColorVideoVDP is slow)")
    parser.add_argument("--repeats", type=int, default=3, help="timed 1280x720 frames per precision (median)")
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args(argv)
    for name in ("windows", "window", "repeats", "threads"):
        if getattr(args, name) < 1:
            parser.error(f"--{name} must be >= 1, got {getattr(args, name)}")
    if args.max_psnr_drop < 0 or args.max_jod_drop < 0:
        parser.error("--max-psnr-drop and --max-jod-drop must be >= 0")
    try:
        import nncf  # noqa: F401
        import openvino  # noqa: F401
    except ImportError as error:
        print(f"error: {error.name} is not installed: pip install -e '.[int8]'", file=sys.stderr)
        return 2
    from restore.inference import load_generator

    torch.set_num_threads(args.threads)
    try:
        model = load_generator(args.checkpoint, torch.device("cpu"))
        record = make_int8(model, args.calibration, args.benchmarks, args.windows, args.window, args.keep,
                           args.max_psnr_drop, args.max_jod_drop, not args.no_jod, args.repeats, args.threads,
                           log=lambda line: print(line, file=sys.stderr))
    except (ConfigError, DataError, ExperimentError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    gate = record["gate"]
    seconds = ", ".join(f"{name} {value:.3f} s" for name, value in record["seconds_1280x720"].items())
    print(f"int8 {'passes' if gate['passed'] else 'fails'} the quality gate: {gate_summary(gate)}")
    print(f"1280x720 on {args.threads} threads: {seconds}; kept in {int8_folder(model, digest=record['weights'])}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
