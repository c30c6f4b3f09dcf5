"""Does OpenVINO restore a folder faster with several asynchronous requests than with one request at a time?

    python bench/openvino_requests.py --size 1280x720 --images 8 --rounds 3

Compiles the bundled pretrain model's ONNX export (the one infer.py caches) for one input shape three ways and
times ``--images`` inferences of each, round-robin over ``--rounds`` rounds (medians):
- latency: what infer.py runs, one request at a time on every thread (``PERFORMANCE_HINT=LATENCY``);
- streams: ``PERFORMANCE_HINT=THROUGHPUT`` with ``--streams`` streams fed by an ``AsyncInferQueue`` (images
  overlap, each on part of the threads);
- batch: one request of a batch of ``--streams`` images.
Prints seconds per image for each, the CPU flags that decide bf16 and the threads used.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np  # noqa: E402
import torch  # noqa: E402

from core.cpu_features import cpu_flags  # noqa: E402
from restore.backends import available, cached_onnx, openvino_settings  # noqa: E402
from restore.inference import default_checkpoint, load_generator, resolve_precision  # noqa: E402


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--size", default="1280x720", help="WIDTHxHEIGHT (default 1280x720)")
    parser.add_argument("--images", type=int, default=8, help="inferences timed per way and round")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--streams", type=int, default=2)
    parser.add_argument("--threads", type=int, default=torch.get_num_threads())
    args = parser.parse_args()
    if not available("openvino"):
        print("error: OpenVINO is not installed (pip install -e '.[openvino]')", file=sys.stderr)
        return 2
    import openvino

    width, height = (int(v) for v in args.size.lower().split("x"))
    dtype = resolve_precision("auto", torch.device("cpu"))  # infer.py's rule: bf16 where the CPU has it natively
    path = cached_onnx(load_generator(default_checkpoint("pretrain"), torch.device("cpu")))
    core = openvino.Core()
    rng = np.random.default_rng(0)
    images = [rng.random((1, 3, height, width), dtype=np.float32) for _ in range(args.streams)]

    def compiled(hint: str, batch: int = 1):
        network = core.read_model(str(path))
        network.reshape({0: [batch, 3, height, width]})
        settings = openvino_settings(dtype, args.threads)  # what infer.py compiles: one request at a time
        if hint == "THROUGHPUT":
            settings.update(PERFORMANCE_HINT="THROUGHPUT", NUM_STREAMS=args.streams)
        return core.compile_model(network, "CPU", settings)

    request = compiled("LATENCY").create_infer_request()
    queue = openvino.AsyncInferQueue(compiled("THROUGHPUT"), args.streams)
    batched = compiled("LATENCY", args.streams).create_infer_request()
    batch = np.concatenate(images)

    def latency() -> None:
        for k in range(args.images):
            request.infer({0: images[k % len(images)]})

    def streams() -> None:
        for k in range(args.images):
            queue.start_async({0: images[k % len(images)]})
        queue.wait_all()

    def batches() -> None:
        for _ in range(max(1, args.images // args.streams)):
            batched.infer({0: batch})

    ways = {"latency (infer.py)": (latency, args.images), f"{args.streams} streams, async": (streams, args.images),
            f"batch of {args.streams}": (batches, max(1, args.images // args.streams) * args.streams)}
    for run, _ in ways.values():  # warm-up: first inferences allocate and tune
        run()
    seconds: dict[str, list[float]] = {name: [] for name in ways}
    for _ in range(args.rounds):
        for name, (run, count) in ways.items():
            start = time.perf_counter()
            run()
            seconds[name].append((time.perf_counter() - start) / count)
    flags = sorted(cpu_flags() & {"avx2", "avx512f", "avx512_bf16", "amx_bf16", "avx512_vnni"})
    print(f"OpenVINO {openvino.__version__}, {str(dtype).removeprefix('torch.')}, {args.threads} threads, "
          f"{width}x{height}, CPU flags: {' '.join(flags) or 'none of avx2/avx512'}; median of {args.rounds} rounds")
    for name, values in seconds.items():
        median = statistics.median(values)
        print(f"{name}: {median:.3f} s per image, {1 / median:.2f} images/s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
