"""bf16 against fp32 on the benchmarks: what ``--precision auto`` may cost where the CPU has native bf16.

For each benchmark image, the torch fast path restores it in fp32 and in bf16 autocast (and OpenVINO's bf16 where
installed). Reported: the benchmark PSNR of each, the mean PSNR change bf16 - fp32 (the rule in
restore/inference.py allows 0.05 dB), and the PSNR of the bf16 output measured against the fp32 output (how far
bf16 moves the restoration, whatever the truth).
"""

from __future__ import annotations

from pathlib import Path

import torch

from core.cpu_features import native_bf16_flags
from core.images import read_image
from datasets.benchmark import Benchmark
from evaluation.metrics import psnr_per_image
from restore.backends import available
from restore.inference import Restorer

BF16_LOSS_ALLOWED_DB = 0.05


def bench_precision(table, model: torch.nn.Module, folders: list[Path]) -> None:
    flags = native_bf16_flags()
    if not flags:
        table.add("precision", "bf16 against fp32", 0, "-", "skipped: this CPU has no native bf16 (auto keeps fp32)")
        return
    cpu = torch.device("cpu")
    variants = {"torch bf16": Restorer(model, cpu, tile=0, precision="bf16")}
    if available("openvino"):
        variants["openvino bf16"] = Restorer(model, cpu, tile=0, precision="bf16", backend="openvino")
    fp32 = Restorer(model, cpu, tile=0, precision="fp32")
    for folder in folders:
        if not (folder / "benchmark.json").is_file():
            table.add("precision", f"{folder}", 0, "-", "skipped: no benchmark there (python -m datasets.benchmark)")
            continue
        benchmark = Benchmark.load(folder)
        scores = {"fp32": [], **{name: [] for name in variants}}
        agreement = {name: [] for name in variants}
        for name in benchmark.names:
            blurred = read_image(benchmark.path("blur", name))
            sharp = read_image(benchmark.path("sharp", name))[None]
            reference = fp32(blurred)[None]
            scores["fp32"].append(psnr_per_image(reference, sharp).item())
            for variant, restore in variants.items():
                restored = restore(blurred)[None]
                scores[variant].append(psnr_per_image(restored, sharp).item())
                agreement[variant].append(psnr_per_image(restored, reference).item())
        mean = {key: sum(values) / len(values) for key, values in scores.items()}
        table.add("precision", f"{benchmark.folder.name} fp32 PSNR", mean["fp32"], "dB",
                  f"{len(benchmark.names)} images, torch fast path")
        for variant in variants:
            change = mean[variant] - mean["fp32"]
            within = "within" if change >= -BF16_LOSS_ALLOWED_DB else "NOT within"
            table.add("precision", f"{benchmark.folder.name} {variant} PSNR change", change, "dB",
                      f"{within} the {BF16_LOSS_ALLOWED_DB} dB allowed; output vs fp32 output: "
                      f"{sum(agreement[variant]) / len(agreement[variant]):.1f} dB PSNR ({', '.join(flags)})")
