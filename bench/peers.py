"""LightUNet-48 on every inference backend, side by side with public deblurring networks, timed round-robin in one run.

Round-robin (one image of each entry in turn, ``repeats`` rounds after a warm-up round) makes machine noise hit every
entry alike; each figure is the median of its rounds. Every entry sees the same 1280x720 input, fp32 unless it
says bf16, on the threads torch has; peers run eager with channels_last and the same allocator setting as ours
(core/cpu_allocator.py), which is the fastest torch path for convolutions on a CPU.

"share of peak" compares each network's arithmetic (2 x MACs per image / seconds) with the fp32 matrix-multiply
throughput measured in this run (a 2048x2048 sgemm, the practical peak of this CPU for fp32), so it reads the
same on any machine.
"""

from __future__ import annotations

import statistics
import time
from dataclasses import dataclass
from typing import Callable

import torch

from core.cpu_allocator import reuse_freed_memory
from core.cpu_features import native_bf16_flags
from nets.summary import count_macs, count_parameters
from restore.backends import available
from restore.inference import Restorer

from .peer_nets import PEERS
from .timing import median_seconds


@dataclass
class Entry:
    name: str
    setting: str
    run: Callable[[], object]
    parameters: float
    macs: float
    compared: bool = False  # a LightUNet setting: its output is compared with torch fp32's

    @property
    def key(self) -> str:
        return f"{self.name} | {self.setting}"


def sgemm_flops_per_second(size: int = 2048, repeats: int = 5) -> float:
    a, b = torch.rand(size, size), torch.rand(size, size)
    return 2 * size**3 / median_seconds(lambda: a @ b, repeats, torch.device("cpu"))


def lightunet_entries(model: torch.nn.Module, image: torch.Tensor) -> list[Entry]:
    """One entry per backend and precision that runs here: torch always, the runtimes where installed, bf16 where
    the CPU has it natively."""
    cpu = torch.device("cpu")
    parameters, macs = count_parameters(model), count_macs(model, *image.shape[-2:])
    settings = [("torch", "fp32")]
    bf16 = bool(native_bf16_flags())
    if bf16:
        settings.append(("torch", "bf16"))
    if available("onnxruntime"):
        settings.append(("onnxruntime", "fp32"))
    if available("openvino"):
        settings += [("openvino", "fp32")] + ([("openvino", "bf16")] if bf16 else [])
    entries = []
    for backend, precision in settings:
        restore = Restorer(model, cpu, tile=0, overlap=0, precision=precision, backend=backend)
        entries.append(Entry("LightUNet-48", f"{backend} {precision}", lambda r=restore: r(image[0]), parameters, macs,
                             compared=True))
    return entries + int8_entries(model, image, parameters, macs)


def int8_entries(model: torch.nn.Module, image: torch.Tensor, parameters: float, macs: float) -> list[Entry]:
    """The int8 model ``python -m release.int8`` made for these weights on this machine, timed whether or not it
    passed its quality gate (the setting says which; infer.py runs it only where it passed)."""
    if not available("openvino"):
        return []
    from restore.backends import RuntimeNetwork
    from restore.int8 import FLOAT_DTYPES, int8_folder, read_record

    folder = int8_folder(model)
    record, xml = read_record(folder), folder / "model.xml"
    if record is None or not xml.is_file():
        return []
    runtime = RuntimeNetwork("openvino", model, None, FLOAT_DTYPES[record["float_precision"]], model_path=xml)
    verdict = "passes" if record["gate"]["passed"] else "fails"
    setting = f"openvino int8 ({record['float_precision']} elsewhere; {verdict} the quality gate)"
    return [Entry("LightUNet-48", setting, lambda: runtime(image)[0].clamp(0.0, 1.0), parameters, macs,
                  compared=True)]


def peer_entries(image: torch.Tensor) -> list[Entry]:
    entries = []
    for name, (make, _) in PEERS.items():
        network = make().eval().to(memory_format=torch.channels_last)
        batch = image.contiguous(memory_format=torch.channels_last)

        def run(network=network, batch=batch):
            with torch.no_grad():
                return network(batch)

        entries.append(Entry(name, "torch fp32, channels_last", run, count_parameters(network),
                             count_macs(network, *image.shape[-2:])))
    return entries


def bench_peers(table, model: torch.nn.Module, repeats: int, height: int = 720, width: int = 1280) -> None:
    reuse_freed_memory()  # the fast path's allocator setting, for every entry alike
    image = torch.rand(1, 3, height, width)
    entries = lightunet_entries(model, image) + peer_entries(image)
    # The warm-up round (oneDNN kernels, OpenVINO's compilation, the ONNX export) also gives the outputs compared.
    outputs = {entry.key: entry.run() for entry in entries}
    times: dict[str, list[float]] = {entry.key: [] for entry in entries}
    for _ in range(repeats):
        for entry in entries:
            start = time.perf_counter()
            entry.run()
            times[entry.key].append(time.perf_counter() - start)
    peak = sgemm_flops_per_second()
    medians = {key: statistics.median(values) for key, values in times.items()}
    ours = {key: value for key, value in medians.items() if key.startswith("LightUNet")}
    fastest_key = min(ours, key=ours.get)
    reference = outputs[entries[0].key]  # torch fp32: what the other LightUNet settings are compared with
    table.add("peers", f"fp32 sgemm throughput (2048x2048), {torch.get_num_threads()} threads", peak / 1e9,
              "GFLOP/s", "the practical fp32 peak the shares below are taken of")
    for entry in entries:
        seconds = medians[entry.key]
        note = (f"{medians[fastest_key] / seconds:.2f}x our fastest ({fastest_key.split(' | ')[1]}); "
                f"{entry.parameters / 1e6:.2f} M params, {entry.macs / 1e9:.1f} GMACs, "
                f"{100 * 2 * entry.macs / seconds / peak:.0f}% of fp32 peak")
        if entry.compared and entry is not entries[0]:
            eight_bit = (torch.round(outputs[entry.key] * 255) - torch.round(reference * 255)).abs()
            note += (f"; vs torch fp32: {100 * (eight_bit > 0).float().mean().item():.2f}% of 8-bit values "
                     f"changed, max {eight_bit.max().item():.0f} levels")
        table.add("peers", f"{width}x{height} {entry.key}", seconds, "s", note)
