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

import numpy as np  # noqa: E402
import torch  # noqa: E402

from core.cpu_features import cpu_flags  # noqa: E402
from core.images import list_images, read_image  # noqa: E402
from datasets.benchmark import Benchmark  # noqa: E402
from datasets.presets import preset_degradation  # noqa: E402
from restore.backends import cached_onnx  # noqa: E402
from restore.inference import load_generator  # noqa: E402

GATE_DB = 0.05


def training_windows(folder: Path, count: int, crop: int, seed: int = 0) -> list[tuple[np.ndarray, np.ndarray]]:
    """(blurred, sharp) 1 x 3 x crop x crop windows of the training photos, blurred by motion-v2's degradation."""
    degradation = preset_degradation("motion-v2")
    files = list_images(folder)
    if not files:
        raise SystemExit(f"error: no training photos in {folder} (python -m datasets.photo_sets --out {folder})")
    rng, windows = np.random.default_rng(seed), []
    size = crop + degradation.margin
    for _ in range(count):
        photo = read_image(files[int(rng.integers(len(files)))])
        top, left = (int(rng.integers(side - size + 1)) for side in photo.shape[-2:])
        pair = degradation(photo[:, top : top + size, left : left + size], rng)
        windows.append((pair["blur"][None].numpy(), pair["sharp"][None].numpy()))
    return windows


def psnr(output: np.ndarray, sharp: np.ndarray) -> float:
    return float(-10 * np.log10(np.mean((np.clip(output, 0, 1) - sharp) ** 2)))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--checkpoint", default="weights/light_unet_pretrain.pt")
    parser.add_argument("--photos", type=Path, default=Path("data/photos-ms/train"))
    parser.add_argument("--benchmarks", type=Path, nargs="+",
                        default=[Path("benchmarks/motion-v1"), Path("benchmarks/motion-v2")])
    parser.add_argument("--calibration", type=int, default=60, help="calibration windows (default 60)")
    parser.add_argument("--accuracy-control", action="store_true")
    parser.add_argument("--max-drop", type=float, default=GATE_DB)
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
    windows = training_windows(args.photos, args.calibration + 24, 192)
    calibration = nncf.Dataset(windows[: args.calibration], lambda item: item[0])
    ops = model.get_ordered_ops()
    convs = [op.get_friendly_name() for op in ops if op.get_type_name() == "Convolution"]
    adds = [op.get_friendly_name() for op in ops if op.get_type_name() == "Add"]
    kept = nncf.IgnoredScope(names=[convs[0], convs[-1], adds[-1]], types=["GroupConvolution"], validate=False)
    variants = {"int8, NNCF defaults": lambda: nncf.quantize(model, calibration, subset_size=args.calibration),
                "int8, mixed; stem, head, residual add, depthwise kept": lambda: nncf.quantize(
                    model, calibration, preset=nncf.QuantizationPreset.MIXED, ignored_scope=kept,
                    subset_size=args.calibration)}
    if args.accuracy_control:
        validation = nncf.Dataset(windows[args.calibration :], lambda item: item[0])

        def validate(compiled, items) -> float:
            return statistics.mean(psnr(compiled(blur)[0], sharp) for blur, sharp in items)

        variants[f"int8, accuracy control (max drop {args.max_drop} dB)"] = lambda: nncf.quantize_with_accuracy_control(
            model, calibration, validation, validate, max_drop=args.max_drop, drop_type=nncf.DropType.ABSOLUTE,
            preset=nncf.QuantizationPreset.MIXED, subset_size=args.calibration)

    settings = lambda hint: {"INFERENCE_PRECISION_HINT": hint, "INFERENCE_NUM_THREADS": 2,  # noqa: E731
                             "PERFORMANCE_HINT": "LATENCY"}
    benches = {path.name: Benchmark.load(path) for path in args.benchmarks}
    inputs = {name: [(read_image(b.path("blur", n))[None].numpy(), read_image(b.path("sharp", n))[None].numpy())
                     for n in b.names] for name, b in benches.items()}
    frame = np.random.default_rng(0).random((1, 3, 720, 1280), dtype=np.float32)
    flags = sorted(flag for flag in cpu_flags() if flag in ("avx2", "avx512f", "avx512_vnni", "avx512_bf16",
                                                            "amx_bf16", "amx_int8"))
    print(f"CPU flags: {' '.join(flags)}; OpenVINO {openvino.__version__}, NNCF {nncf.__version__}; 2 threads\n")
    print("| model | precision | " + " | ".join(f"{name} PSNR (vs fp32)" for name in inputs) + " | 1280x720 s |")
    print("|---|---|" + "---|" * len(inputs) + "---|")
    reference = {}
    rows = [("export", "f32", model), ("export", "bf16", model)]
    for label, quantize in variants.items():
        start = time.perf_counter()
        quantized = quantize()
        print(f"({label}: quantised in {time.perf_counter() - start:.0f} s)", file=sys.stderr)
        rows += [(label, "f32", quantized), (label, "bf16", quantized)]
    for label, hint, network in rows:
        compiled = core.compile_model(network, "CPU", settings(hint))
        cells = []
        for name, items in inputs.items():
            value = statistics.mean(psnr(compiled(blur)[0], sharp) for blur, sharp in items)
            reference.setdefault(name, value)
            cells.append(f"{value:.3f} ({value - reference[name]:+.3f})")
        compiled(frame)
        seconds = []
        for _ in range(args.repeats):
            start = time.perf_counter()
            compiled(frame)
            seconds.append(time.perf_counter() - start)
        print(f"| {label} | {hint} | " + " | ".join(cells) + f" | {statistics.median(seconds):.3f} |", flush=True)


if __name__ == "__main__":
    main()
