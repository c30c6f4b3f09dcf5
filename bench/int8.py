"""8-bit inference of the shipped LightUNet by measurement: post-training quantisation of the project's ONNX export
with NNCF, run by OpenVINO, beside fp32 and bf16 of the same export.

    pip install -e ".[int8]"
    python bench/int8.py --checkpoint weights/light_unet_pretrain.pt
    python bench/int8.py --checkpoint weights/light_unet_pretrain.pt --accuracy-control   # slow: ranks every layer

Calibration and the accuracy-control validation use windows of the training photo tiles (``--photos``, default
data/photos-ms/train) blurred by motion-v2's degradation, never benchmark photos. Variants: NNCF's defaults
(performance preset), the mixed preset with the stem, the head, the global residual's addition and the depthwise
convolutions kept in higher precision, and (``--accuracy-control``) ``nncf.quantize_with_accuracy_control``, which
returns layers to higher precision until PSNR on held-out training windows is within ``--max-drop`` dB of fp32.
For each: PSNR on the benchmarks against fp32 (the quality gate: within 0.05 dB), and the seconds of a 1280x720
frame (median of --repeats, 2 threads).
"""

from __future__ import annotations

import argparse
import logging
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import torch  # noqa: E402

from core.cpu_features import cpu_flags  # noqa: E402
from core.errors import DataError  # noqa: E402
from datasets.benchmark import Benchmark  # noqa: E402
from restore.backends import cached_onnx, openvino_runner, openvino_settings  # noqa: E402
from restore.inference import load_generator  # noqa: E402
from restore.int8 import (  # noqa: E402
    FLOAT_DTYPES,
    KEEPABLE,
    MAX_PSNR_DROP_DB,
    benchmark_scores,
    calibration_files,
    calibration_pairs,
    frame_seconds,
    kept_scope,
    psnr,
)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--checkpoint", default="weights/light_unet_pretrain.pt")
    parser.add_argument("--photos", type=Path, default=Path("data/photos-ms/train"))
    parser.add_argument("--benchmarks", type=Path, nargs="+",
                        default=[Path("benchmarks/motion-v1"), Path("benchmarks/motion-v2")])
    parser.add_argument("--calibration", type=int, default=60, help="calibration windows (default 60)")
    parser.add_argument("--accuracy-control", action="store_true")
    parser.add_argument("--max-drop", type=float, default=MAX_PSNR_DROP_DB)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    try:
        import nncf
        import openvino
        from nncf.common.logging.logger import set_log_level
    except ImportError as error:
        raise SystemExit(f"error: {error.name} is not installed: pip install -e '.[int8]'") from None
    set_log_level(logging.ERROR)  # NNCF reports its progress on stdout, where the table goes

    core = openvino.Core()
    model = core.read_model(str(cached_onnx(load_generator(Path(args.checkpoint), torch.device("cpu")))))
    benches = [Benchmark.load(path) for path in args.benchmarks]
    try:
        pairs = calibration_pairs(calibration_files(args.photos, benches), args.calibration + 24, 192)
    except DataError as error:
        raise SystemExit(f"error: {error}") from None
    calibration = nncf.Dataset([blur for blur, _ in pairs[: args.calibration]])
    kept = kept_scope(model, list(KEEPABLE))
    variants = {"int8, NNCF defaults": lambda: nncf.quantize(model, calibration, subset_size=args.calibration),
                "int8, mixed; stem, head, residual add, depthwise kept": lambda: nncf.quantize(
                    model, calibration, preset=nncf.QuantizationPreset.MIXED, ignored_scope=kept,
                    subset_size=args.calibration)}
    if args.accuracy_control:
        validation = nncf.Dataset(pairs[args.calibration :], lambda item: item[0])

        def validate(compiled, items) -> float:
            return statistics.mean(psnr(compiled(blur)[0], sharp) for blur, sharp in items)

        variants[f"int8, accuracy control (max drop {args.max_drop} dB)"] = lambda: nncf.quantize_with_accuracy_control(
            model, calibration, validation, validate, max_drop=args.max_drop, drop_type=nncf.DropType.ABSOLUTE,
            preset=nncf.QuantizationPreset.MIXED, subset_size=args.calibration)

    flags = sorted(flag for flag in cpu_flags() if flag in ("avx2", "avx512f", "avx512_vnni", "avx512_bf16",
                                                            "amx_bf16", "amx_int8"))
    print(f"CPU flags: {' '.join(flags)}; OpenVINO {openvino.__version__}, NNCF {nncf.__version__}; 2 threads\n")
    print("| model | precision | " + " | ".join(f"{b.folder.name} PSNR (vs fp32)" for b in benches) + " | 1280x720 s |")
    print("|---|---|" + "---|" * len(benches) + "---|")
    reference = {}
    rows = [("export", "fp32", model), ("export", "bf16", model)]
    for label, quantize in variants.items():
        start = time.perf_counter()
        quantized = quantize()
        print(f"({label}: quantised in {time.perf_counter() - start:.0f} s)", file=sys.stderr)
        rows += [(label, "fp32", quantized), (label, "bf16", quantized)]
    for label, hint, network in rows:
        run = openvino_runner(network, openvino_settings(FLOAT_DTYPES[hint], threads=2))
        cells = []
        for bench in benches:
            value = benchmark_scores(run, bench, None)["psnr"]
            reference.setdefault(bench.folder.name, value)
            cells.append(f"{value:.3f} ({value - reference[bench.folder.name]:+.3f})")
        print(f"| {label} | {hint} | " + " | ".join(cells) + f" | {frame_seconds(run, args.repeats):.3f} |", flush=True)


if __name__ == "__main__":
    main()
