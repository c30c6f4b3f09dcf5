"""A folder run with and without overlapped reading and writing (core/pipeline.py), round-robin in one process.

    python bench/folder.py --photos /usr/share/backgrounds/mate/nature --size 1280x720 --count 6 --repeats 3

Writes ``--count`` photos resized to ``--size`` as PNG into a temporary folder, restores the folder with
``infer.py``'s own load / run / save steps (restore/jobs.py) in sequence and overlapped, and prints the median
seconds and images per second of each (the bundled pretrain model, ``--precision auto``, the machine's threads).
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from PIL import Image  # noqa: E402

from core.cpu_allocator import reuse_freed_memory  # noqa: E402
from core.device import pick_device  # noqa: E402
from core.errors import RESTORE_ERRORS  # noqa: E402
from core.images import list_images  # noqa: E402
from core.pipeline import run_overlapped  # noqa: E402
from restore.inference import Restorer, default_checkpoint, load_generator, plan_jobs  # noqa: E402
from restore.jobs import load_job, run_job, save_job  # noqa: E402


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--photos", type=Path, required=True, help="a folder of photos to resize and restore")
    parser.add_argument("--size", default="1280x720", help="WIDTHxHEIGHT (default 1280x720)")
    parser.add_argument("--count", type=int, default=6)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--device", default="cpu")
    args = parser.parse_args()
    width, height = (int(v) for v in args.size.lower().split("x"))
    reuse_freed_memory()
    device = pick_device(args.device)
    restore = Restorer(load_generator(default_checkpoint("pretrain"), device), device, None, 64, None, "auto")
    with tempfile.TemporaryDirectory() as folder:
        inputs = Path(folder) / "in"
        inputs.mkdir()
        for index, path in enumerate(list_images(args.photos)[: args.count]):
            Image.open(path).convert("RGB").resize((width, height)).save(inputs / f"{index}.png")

        def jobs(name: str):
            shutil.rmtree(Path(folder) / name, ignore_errors=True)
            return plan_jobs(inputs, Path(folder) / name)

        def sequential() -> None:
            for job in jobs("sequential"):
                loaded = load_job(job)
                save_job(job, loaded, run_job(job, loaded, restore))

        def overlapped() -> None:
            run_overlapped(jobs("overlapped"), load_job, lambda job, loaded: run_job(job, loaded, restore),
                           lambda job, loaded, restored: save_job(job, loaded, restored),
                           RESTORE_ERRORS, lambda job, error: print(f"failed: {error}"), lambda job: None)

        sequential()  # warm-up
        seconds = {"sequential": [], "overlapped": []}
        for _ in range(args.repeats):
            for name, run in (("sequential", sequential), ("overlapped", overlapped)):
                start = time.perf_counter()
                run()
                seconds[name].append(time.perf_counter() - start)
    count = len(list_images(args.photos)[: args.count])
    for name, values in seconds.items():
        median = statistics.median(values)
        print(f"{name}: {median:.2f} s for {count} images at {width}x{height}, {count / median:.2f} images/s "
              f"(median of {args.repeats}; {restore.last_backend}, {str(restore.dtype).removeprefix('torch.')})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
