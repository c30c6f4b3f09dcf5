"""8-bit inference, taken up per weights file only where it measures as good as float: post-training quantisation of
the project's ONNX export with NNCF, run by OpenVINO.

    pip install -e ".[int8]"
    python -m release.int8 --checkpoint weights/light_unet_pretrain.pt --calibration data/photos-ms/train
    python infer.py --input blurred.png --output restored.png --precision int8

``python -m release.int8`` quantises once per weights file, calibrated on windows of training photos blurred by
motion-v2's degradation (a calibration folder that holds a benchmark photo is refused), then measures the quality
gate on the benchmarks (each benchmark's PSNR within ``--max-psnr-drop`` (0.05) dB of the fp32 export, and its
ColorVideoVDP JOD within ``--max-jod-drop`` (0.01) where cvvdp is installed) and the seconds of a 1280x720 frame
in int8 and in the float precision ``--precision auto`` would take. The model and that record (``int8.json``:
weights, calibration set, library versions, gate, times) are kept in the export's cache folder
(restore/backends.py). ``--precision int8`` runs that model only where the gate passed, the weights match and the
record's OpenVINO is the installed one; else one line says which and what to run. ``--precision auto`` takes int8
only where all of that holds and it measured faster than the float precision.

The layers whose int8 costs quality can be kept in float (``--keep``: the stem and head convolutions and the global
residual's addition by default, the depthwise convolutions besides where asked); the record names what was kept.
"""

from __future__ import annotations

import hashlib
import json
import statistics
import time
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from torch import nn

from core.cpu_features import native_bf16_flags
from core.errors import DataError
from core.images import list_images, open_image, read_image

from .backends import export_folder, weights_sha256

RECORD = "int8.json"
RECORD_VERSION = 1
MAX_PSNR_DROP_DB = 0.05
MAX_JOD_DROP = 0.01
KEEPABLE = ("stem", "head", "residual", "depthwise")
# Kept in float by default: the layers that read or write the image itself. Quantised, the input's and output's
# 8-bit scales are calibrated on the calibration windows' range and clip or coarsen images outside it: a width-4
# LightUNet lost 1.9 dB with them quantised and none with them kept (tests/test_int8.py's networks and data).
DEFAULT_KEEP = ("stem", "head", "residual")
# The precision of what stays float, by the name the record gives it.
FLOAT_DTYPES = {"bf16": torch.bfloat16, "fp32": torch.float32}


def int8_folder(model: nn.Module, directory: Path | None = None, digest: str | None = None) -> Path:
    """Where the int8 model of these weights is kept: beside their ONNX export (``<sha256>-<export version>/int8``);
    ``digest``: their ``weights_sha256`` where the caller has it already."""
    return export_folder(digest or weights_sha256(model), directory) / "int8"


def openvino_version() -> str:
    import openvino

    return openvino.__version__


def read_record(folder: Path) -> dict | None:
    """The record in an ``int8_folder`` (None where there is none); an unreadable one raises ``ValueError`` or
    ``OSError``."""
    try:
        return json.loads((folder / RECORD).read_text())
    except FileNotFoundError:
        return None


def usable_int8(model: nn.Module, directory: Path | None = None) -> tuple[Path | None, dict | None, str]:
    """(the int8 model's .xml, its record, "") where ``--precision int8`` may run it, else (None, record or None,
    one line saying why and what to run)."""
    digest = weights_sha256(model)
    folder = int8_folder(model, directory, digest)
    make = "python -m release.int8 --checkpoint <these weights> --calibration <training photos>"
    try:
        record = read_record(folder)
    except (OSError, ValueError) as error:
        return None, None, f"the int8 record {folder / RECORD} is unreadable ({error}): run {make} again"
    if record is None:
        return None, None, f"no int8 model of these weights has been made and measured on this machine: run {make}"
    if record.get("weights") != digest or record.get("version") != RECORD_VERSION:
        return None, record, f"the int8 model in {folder} was made from other weights or by another version: run {make}"
    if record.get("openvino") != openvino_version():
        return None, record, (f"the int8 model in {folder} was made with OpenVINO {record.get('openvino')}, this is "
                              f"{openvino_version()}: run {make} again")
    if not record["gate"]["passed"]:
        return None, record, f"int8 fails the quality gate for these weights ({gate_summary(record['gate'])}); use " \
                             "--precision bf16 or fp32"
    xml = folder / "model.xml"
    if not xml.is_file() or not (folder / "model.bin").is_file():
        return None, record, f"the int8 model files in {folder} are missing: run {make} again"
    return xml, record, ""


def gate_summary(gate: dict) -> str:
    """One phrase per benchmark: its PSNR (and JOD) change against fp32, and the limits."""
    parts = []
    for name, scores in gate["benchmarks"].items():
        part = f"{name} {scores['psnr_change']:+.3f} dB"
        if "jod_change" in scores:
            part += f", JOD {scores['jod_change']:+.4f}"
        parts.append(part)
    limits = f"limits -{gate['max_psnr_drop']:g} dB" + (f", JOD -{gate['max_jod_drop']:g}" if gate["jod"] else "")
    return "; ".join(parts) + f" ({limits})"


def gate_verdict(benchmarks: dict[str, dict[str, float]], max_psnr_drop: float, max_jod_drop: float) -> bool:
    """Every benchmark's PSNR change within ``-max_psnr_drop`` and its JOD change, where measured, within
    ``-max_jod_drop``."""
    return all(scores["psnr_change"] >= -max_psnr_drop and scores.get("jod_change", 0.0) >= -max_jod_drop
               for scores in benchmarks.values())


# -- calibration ----------------------------------------------------------------------------------------------------

def calibration_files(folder: Path, benchmarks: list) -> list[Path]:
    """The calibration photos: every image of ``folder``, none of them a benchmark photo (by the name of a benchmark
    tile's source, or by content: a copy, crop or re-encoding of a benchmark tile or of a pinned benchmark photo,
    compared as datasets/photo_rules.py compares photos)."""
    from datasets.photo_rules import lookalike, thumbnail

    files = list_images(folder, "calibration folder")  # a missing or empty folder is one DataError line
    sources = {item["source"] for bench in benchmarks for item in bench.meta["images"] if "source" in item}
    looks = {}
    for bench in benchmarks:
        for name in bench.names:
            with Image.open(bench.path("sharp", name)) as tile:
                looks[f"{bench.folder.name}/{name}"] = thumbnail(tile)
    looks.update(_pinned_benchmark_photos())
    for path in files:
        if path.stem in sources:
            raise DataError(f"calibration photo {path} has a benchmark photo's name ({path.stem}); calibrate on "
                            "training photos, never benchmark ones")
        with open_image(path) as image:
            twin = lookalike(image, looks)
        if twin is not None:
            raise DataError(f"calibration photo {path} looks like benchmark photo {twin}; calibrate on training "
                            "photos, never benchmark ones")
    return files


def _pinned_benchmark_photos() -> dict[str, np.ndarray]:
    """Thumbnails of the manifest's validation (benchmark) photos whose files are on this machine."""
    from datasets.photo_rules import thumbnail
    from datasets.photo_sources import MANIFEST, source_path

    looks = {}
    for entry in json.loads(MANIFEST.read_text()):
        path = source_path(entry)
        if entry["split"] == "val" and path.is_file():
            with Image.open(path) as image:
                looks[entry["name"]] = thumbnail(image)
    return looks


def files_sha256(files: list[Path]) -> str:
    digest = hashlib.sha256()
    for path in files:
        digest.update(path.name.encode() + b"\0" + hashlib.sha256(path.read_bytes()).digest())
    return digest.hexdigest()


def calibration_pairs(files: list[Path], count: int, size: int, seed: int = 0) -> list[tuple[np.ndarray, np.ndarray]]:
    """``count`` seeded (blurred, sharp) 1 x 3 x size x size windows of the photos, blurred by motion-v2's
    degradation (what the network sees at inference). Photos too small for a window and its blur are passed over."""
    from datasets.presets import preset_degradation

    degradation = preset_degradation("motion-v2")
    rng, pairs = np.random.default_rng(seed), []
    side = size + degradation.margin
    photos = [photo for photo in map(read_image, files) if min(photo.shape[-2:]) >= side]
    if not photos:
        raise DataError(f"no calibration photo is large enough for a {size} px window and its blur ({side} px); "
                        "lower --window")
    for _ in range(count):
        photo = photos[int(rng.integers(len(photos)))]
        top, left = (int(rng.integers(extent - side + 1)) for extent in photo.shape[-2:])
        pair = degradation(photo[:, top: top + side, left: left + side], rng)
        blur, sharp = (np.ascontiguousarray(pair[key][None].numpy(), dtype=np.float32) for key in ("blur", "sharp"))
        pairs.append((blur, sharp))
    return pairs


def kept_scope(model, keep: list[str]):
    """NNCF's ignored scope for the ``--keep`` parts of an OpenVINO model of the export."""
    import nncf

    ops = model.get_ordered_ops()
    convs = [op.get_friendly_name() for op in ops if op.get_type_name() == "Convolution"]
    adds = [op.get_friendly_name() for op in ops if op.get_type_name() == "Add"]
    names = ([convs[0]] if "stem" in keep else []) + ([convs[-1]] if "head" in keep else []) + (
        [adds[-1]] if "residual" in keep else [])
    types = ["GroupConvolution"] if "depthwise" in keep else []
    return nncf.IgnoredScope(names=names, types=types, validate=False) if names or types else None


# -- measuring ------------------------------------------------------------------------------------------------------

def float_precision() -> str:
    """The precision of what stays float in the int8 model: bf16 where the CPU has it natively (what auto takes),
    else fp32 (a key of FLOAT_DTYPES)."""
    return "bf16" if native_bf16_flags() else "fp32"


def psnr(output: np.ndarray, sharp: np.ndarray) -> float:
    """PSNR in dB of 8-bit-rounded images, as evaluate.py scores."""
    error = (np.round(np.clip(output, 0, 1) * 255) - np.round(np.clip(sharp, 0, 1) * 255)) / 255
    return float(10 * np.log10(1.0 / max(float(np.mean(error**2)), 1e-12)))


def benchmark_scores(run, bench, jod) -> dict[str, float]:
    """Mean PSNR (and JOD where ``jod`` is a score function) of ``run`` over a benchmark's images, whole."""
    psnrs, jods = [], []
    for name in bench.names:
        blur = read_image(bench.path("blur", name))[None].numpy()
        sharp = read_image(bench.path("sharp", name))[None].numpy()
        output = np.clip(run(blur), 0, 1)
        psnrs.append(psnr(output, sharp))
        if jod is not None:
            jods.append(jod(output[0].transpose(1, 2, 0), sharp[0].transpose(1, 2, 0)))
    return {"psnr": statistics.mean(psnrs), **({"jod": statistics.mean(jods)} if jods else {})}


def frame_seconds(run, repeats: int) -> float:
    """Median seconds of a 1280x720 frame (after one untimed run)."""
    frame = np.random.default_rng(0).random((1, 3, 720, 1280), dtype=np.float32)
    run(frame)
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        run(frame)
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def faster_int8(model: nn.Module, float_dtype: torch.dtype, directory: Path | None = None) -> tuple[Path, dict] | None:
    """``--precision auto``: this machine's int8 model of these weights (.xml, record) where it is usable and measured
    faster than the float precision auto would otherwise run (in the same record, on this machine), else None."""
    xml, record, _ = usable_int8(model, directory)
    if xml is None:
        return None
    seconds = record["seconds_1280x720"]
    other = seconds.get("bf16" if float_dtype == torch.bfloat16 else "fp32")
    return (xml, record) if other is not None and seconds["int8"] < other else None
