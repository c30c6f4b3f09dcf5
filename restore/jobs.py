"""The three steps of restoring one planned job: load (decode the input, and its sharp counterpart for a
comparison panel), run (the network's pass) and save (write as the input was stored), so a folder run can overlap
them (core/pipeline.py)."""

from __future__ import annotations

import sys
from pathlib import Path

from core.image_io import ImageInfo, read_image_for_inference, write_image_like
from core.images import side_by_side

from .inference import Job, sharp_counterpart


def load_job(job: Job, compare: bool = False, sharp_root: Path | None = None):
    """One input (and, for --compare --sharp, its sharp counterpart), decoded as stored (on the reading thread)."""
    image, info = read_image_for_inference(job.source)
    sharp = None
    if compare and sharp_root is not None:
        sharp_path = sharp_counterpart(sharp_root, job.relative)
        if sharp_path is not None:
            sharp = read_image_for_inference(sharp_path)[0]
        else:
            print(f"note: no sharp counterpart of {job.relative} in {sharp_root}; comparison without it",
                  file=sys.stderr)
    return image, info, sharp


def run_job(job: Job, loaded, restore):
    """The network's pass over one decoded input (on the main thread)."""
    restored = restore(loaded[0])
    if restore.last_backend != restore.backend:
        print(f"note: {job.source} ran in torch, not {restore.backend}: the exact InstanceNorm result of an image "
              "larger than a tile is computed in torch (--norm-stats tile keeps the runtime)", file=sys.stderr)
    return restored


def save_job(job: Job, loaded, restored, compare: bool = False) -> None:
    """The result (and its --compare panel) written as the input was stored (on the writing thread)."""
    image, info, sharp = loaded
    for note in write_image_like(restored, info, job.target):
        print(f"note: {note}", file=sys.stderr)
    if not compare:
        return
    panels, labels = [image, restored], ["blurred", "restored"]
    if sharp is not None:
        panels.append(sharp)
        labels.append("sharp")
    write_image_like(side_by_side(panels, labels=labels), ImageInfo(gray=False, bits=8, alpha=None), job.compare)
