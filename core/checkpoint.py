"""Checkpoint files: written so they are never half-written, read so that a bad file says what is wrong with it
and which good one is there instead, and the weights and network options they hold (restore.generator rebuilds
the network). Training (gan.checkpoint) adds the rolling set of step files and the weight checks around saving."""

from __future__ import annotations

import io
import os
import pickle
import re
import shutil
import stat
import tempfile
from pathlib import Path
from typing import Any

import torch

from .errors import CorruptCheckpoint, ExperimentError
from .hashing import sha256

FORMAT_VERSION = 1
STEP_NAME = re.compile(r"step-(\d+)\.pt")


def step_checkpoint_name(step: int) -> str:
    return f"step-{step:08d}.pt"


def step_checkpoints(folder: Path) -> list[Path]:
    """The rolling ``step-NNNNNNNN.pt`` checkpoints in ``folder``, newest (highest step) first."""
    if not folder.is_dir():
        return []
    found = [(int(m.group(1)), p) for p in folder.iterdir() if (m := STEP_NAME.fullmatch(p.name))]
    return [path for _, path in sorted(found, reverse=True)]


def save_checkpoint(state: dict[str, Any], path: Path, *copies: Path) -> None:
    """Write ``state`` to ``path`` (and to each of ``copies``, serialised once): to a temporary file in the same
    folder, fsync, then rename over the target, so a crash at any moment leaves either the old complete file or
    the new complete file, never a truncated one. A full disk or an unwritable folder is an ``ExperimentError``
    that leaves every existing file as it was."""
    # Serialised in memory first: torch's own file writer turns a full disk into an opaque RuntimeError,
    # a plain write raises the OSError (ENOSPC, EFBIG, EACCES) that names the cause.
    buffer = io.BytesIO()
    torch.save({"format_version": FORMAT_VERSION, **state}, buffer)
    for target in (path, *copies):
        _write_atomically(buffer.getbuffer(), target)


def _write_atomically(data: memoryview, path: Path) -> None:
    temporary = None
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        _check_free_space(path.parent)
        handle, temporary = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
        with os.fdopen(handle, "wb") as file:
            file.write(data)
            file.flush()
            os.fsync(file.fileno())
        os.chmod(temporary, file_mode(path))
        os.replace(temporary, path)
        temporary = None
        _fsync_folder(path.parent)  # the rename itself survives a power cut
    except OSError as error:
        raise ExperimentError(
            f"cannot write checkpoint {path}: {error.strerror or error}; the checkpoints already there are untouched"
        ) from None
    finally:
        if temporary is not None:
            Path(temporary).unlink(missing_ok=True)


def file_mode(path: Path) -> int:
    """The permissions a rewritten ``path`` keeps: its own where it exists, else what ``open()`` would give a new
    file under the process's umask (mkstemp's temporaries are 0600, which a shipped file must not become)."""
    try:
        return stat.S_IMODE(os.stat(path).st_mode)
    except OSError:
        umask = os.umask(0)
        os.umask(umask)
        return 0o666 & ~umask


def _check_free_space(folder: Path) -> None:
    """Refuse before writing when the disk cannot hold another checkpoint the size of the largest one there."""
    existing = [p for p in folder.glob("*.pt") if p.is_file()]
    if not existing:
        return
    needed = max(p.stat().st_size for p in existing)
    free = shutil.disk_usage(folder).free
    if free < needed * 1.1:
        raise OSError(0, f"no space left: about {needed / 2**20:.0f} MiB needed, {free / 2**20:.0f} MiB free")


def _fsync_folder(folder: Path) -> None:
    if os.name == "posix":
        descriptor = os.open(folder, os.O_RDONLY)
        try:
            os.fsync(descriptor)
        finally:
            os.close(descriptor)


SUMS = "SHA256SUMS"
SUM_LINE = re.compile(r"([0-9a-fA-F]{64}) [ *](\S.*)")


def read_sums(folder: Path) -> dict[str, str]:
    """``SHA256SUMS`` as {file name: sha256}; an ``ExperimentError`` naming the line where one is not
    ``<64 hex digits>  <name>`` (sha256sum's format), so a damaged list is never half-read or rewritten."""
    path = folder / SUMS
    if not path.is_file():
        return {}
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as error:
        raise ExperimentError(f"cannot read {path}: {error}") from None
    sums = {}
    for number, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        found = SUM_LINE.fullmatch(line.strip())
        if found is None:
            raise ExperimentError(f"{path} line {number} is not '<sha256>  <file name>': {line[:80]!r}")
        sums[found.group(2)] = found.group(1).lower()
    return sums


def verify(path: Path) -> str:
    """The file's sha256 must be the one ``SHA256SUMS`` beside it lists; returns it."""
    expected = read_sums(path.parent).get(path.name)
    if expected is None:
        raise ExperimentError(f"bundled model {path} has no line in {path.parent / SUMS}; re-export it with "
                              "python -m release.bundled")
    actual = sha256(path)
    if actual != expected:
        raise ExperimentError(
            f"bundled model {path} does not match its sha256 in {path.parent / SUMS} ({actual[:12]}... instead of "
            f"{expected[:12]}...): the file is truncated, a Git LFS pointer or was changed; restore it with "
            f"git checkout -- {path}"
        )
    return actual


def load_checkpoint(path: str | Path, map_location: str | torch.device = "cpu") -> dict[str, Any]:
    """The checkpoint's state; an ``ExperimentError`` for a missing, truncated, corrupt or foreign file, naming
    the newest good checkpoint beside it when there is one. A file that a ``SHA256SUMS`` beside it lists (the
    bundled weights, under any path that leads to them) must match its sum, however it was named."""
    path = Path(path)
    resolved = path.resolve()
    if resolved.is_file() and resolved.name in read_sums(resolved.parent):
        verify(resolved)
    try:
        return _load(path, map_location)
    except CorruptCheckpoint as error:
        previous = previous_good_checkpoint(path)
        if previous is None:
            raise
        raise CorruptCheckpoint(f"{error}; the previous good checkpoint is {previous}", previous) from None


def load_weights_only(path: Path, what: str = "checkpoint", map_location: str | torch.device = "cpu") -> Any:
    """``torch.load`` of data only (tensors and plain containers): loading a file must not be able to run code.
    A ``CorruptCheckpoint`` naming the file otherwise. torch's own message for a file holding other Python
    objects advises retrying with ``weights_only=False``, which for an untrusted file is the unsafe advice, so
    it is not passed on."""
    try:
        return torch.load(path, map_location=map_location, weights_only=True)
    except Exception as error:  # torch raises several unrelated types for truncated or foreign files
        message = str(error).strip()
        if isinstance(error, pickle.UnpicklingError) and "Unsupported global" in message:
            raise CorruptCheckpoint(f"{what} {path} holds Python objects other than tensors and plain containers; "
                                    "such files are never loaded, since unpickling them could run code") from None
        if "WeightsUnpickler error:" in message:  # the cause only: the text around it is the unsafe advice
            message = message.split("WeightsUnpickler error:", 1)[1].strip()
        reason = message.splitlines()[0] if message else type(error).__name__
        raise CorruptCheckpoint(f"{what} {path} is corrupt or truncated ({reason})") from None


def _load(path: Path, map_location: str | torch.device = "cpu") -> dict[str, Any]:
    if path.is_dir():
        raise ExperimentError(f"checkpoint {path} is a folder; name a checkpoint file in it (a run's checkpoints are "
                              "in <run>/checkpoints/, e.g. best.pt)")
    if not path.is_file():
        raise ExperimentError(f"checkpoint {path} does not exist" if not path.exists() else
                              f"checkpoint {path} is not a regular file")
    state = load_weights_only(path, "checkpoint", map_location)
    if not isinstance(state, dict) or "generator" not in state or "model" not in state:
        raise CorruptCheckpoint(f"checkpoint {path} is not a checkpoint of this project (no generator/model entries)")
    return state


def previous_good_checkpoint(path: Path) -> Path | None:
    """The newest other checkpoint in ``path``'s folder that loads, older than ``path`` if it is a step file."""
    match = STEP_NAME.fullmatch(path.name)
    candidates = step_checkpoints(path.parent)
    if match:
        candidates = [p for p in candidates if int(STEP_NAME.fullmatch(p.name).group(1)) < int(match.group(1))]
    candidates += [p for p in (path.parent / "best.pt",) if p.is_file()]
    for candidate in candidates:
        if candidate != path:
            try:
                _load(candidate)
                return candidate
            except ExperimentError:
                continue
    return None


def generator_weights(state: dict[str, Any], path: str | Path = "checkpoint") -> dict[str, torch.Tensor]:
    """The weights to deblur with: the EMA of the generator when the run kept one (validation scored those)."""
    weights = state.get("generator_ema") or state.get("generator")
    if not isinstance(weights, dict) or not all(isinstance(t, torch.Tensor) for t in weights.values()):
        raise ExperimentError(f"checkpoint {path} holds no generator weights (a mapping of tensors)")
    return weights


def network_options(state: dict[str, Any], path: str | Path = "checkpoint") -> dict[str, Any]:
    """The checkpoint's ``model`` section: a mapping with the network's registered ``name``."""
    options = state.get("model")
    if not isinstance(options, dict) or not isinstance(options.get("name"), str):
        raise ExperimentError(f"checkpoint {path} does not name its network (its 'model' is {str(options)[:60]!r}, "
                              "not a mapping with a name)")
    return dict(options)


def first_non_finite_weight(module: torch.nn.Module) -> str:
    """The name of the first parameter or buffer holding inf or nan ("" when all are finite)."""
    for name, tensor in [*module.named_parameters(), *module.named_buffers()]:
        if tensor.is_floating_point() and not bool(torch.isfinite(tensor).all()):
            return name
    return ""


def best_checkpoints_newest_first(root: str | Path) -> list[Path]:
    """Every run's ``checkpoints/best.pt`` under ``root``, the most recently written first."""
    return sorted(Path(root).glob("*/checkpoints/best.pt"), key=lambda p: p.stat().st_mtime, reverse=True)
