"""The benchmark: model size, inference speed and memory, training step time, data throughput. One table, one JSON.

    python bench/run.py                                   # CPU, all but peers and precision (about 15 min, 2 cores)
    python bench/run.py --quick                           # CPU, no 256x256 batch-8 training, fewer repeats
    python bench/run.py --device cuda --json bench/gpu.json
    python bench/run.py --compile                         # also time torch.compile'd inference
    python bench/run.py --sections training-precision     # the training step: defaults, channels_last, amp auto
    python bench/run.py --peers --checkpoint weights/light_unet_pretrain.pt   # every backend beside public peers
    python bench/run.py --sections precision --checkpoint weights/light_unet_pretrain.pt  # bf16 against fp32
    python bench/run.py --sections streamed --checkpoint weights/light_unet_pretrain.pt   # exact large images

Every time is the median of --repeats runs after a warm-up run (CUDA: synchronised). Speed does not depend on the
weights, so without --checkpoint a LightUNet-48 with random weights is timed. "naive" is the network as a plain
PyTorch user runs it: eager, fp32, NCHW, glibc's default allocator; it is timed first, in this process, because
the fast path's allocator setting (core/cpu_allocator.py) cannot be undone. The fast path is what infer.py and
evaluate.py do. Run it on an otherwise idle machine.
"""

from __future__ import annotations

import argparse
import datetime
import json
import resource
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import torch  # noqa: E402
from torch.utils.data import default_collate  # noqa: E402

from bench.data import loader_pairs_per_second  # noqa: E402
from bench.inference import make_model, peak_memory_child  # noqa: E402
from bench.peers import bench_peers  # noqa: E402
from bench.precision import bench_precision  # noqa: E402
from bench.streamed import bench_streamed  # noqa: E402
from bench.timing import median_seconds  # noqa: E402
from core.checkpoint import save_checkpoint  # noqa: E402
from core.cpu_allocator import reuse_freed_memory  # noqa: E402
from core.resources import resource_dir  # noqa: E402
from datasets.photos import embedded_photos  # noqa: E402
from datasets.synthetic import Degradation, SyntheticBlurPairs, synthesize_batch  # noqa: E402
from gan.config import load_config  # noqa: E402
from gan.experiment import Experiment  # noqa: E402
from nets.summary import count_macs, count_parameters  # noqa: E402
from restore.inference import Restorer  # noqa: E402

# The fp32 fast path counts as the same result when no output value moves by more than this. With random weights
# the paths agree within a quarter of an 8-bit level; trained weights have larger activations, and summation order
# in the channels_last convolutions then moves values further: with the shipped pretrain weights at 1280x720 the
# largest difference was 2.1e-3 (0.54 of a level) and 0.195% of 8-bit values changed (python bench/run.py
# --sections inference --checkpoint weights/light_unet_pretrain.pt, 2-core AMD EPYC, AVX-512). One 8-bit level is
# the bound that holds: written 8-bit images differ by at most one level, where a value sits near a rounding step.
TOLERANCE = 1 / 255
SECTIONS = ("model", "inference", "tiled-4k", "streamed", "training-precision", "training", "data", "peers",
            "precision")


class Table:
    def __init__(self):
        self.rows: list[dict] = []

    def add(self, section: str, figure: str, value: float, unit: str, note: str = "") -> None:
        self.rows.append({"section": section, "figure": figure, "value": value, "unit": unit, "note": note})
        print(f"| {section} | {figure} | {value:.4g} {unit} | {note} |", flush=True)


def bench_model(table: Table, model: torch.nn.Module) -> None:
    table.add("model", "parameters", count_parameters(model) / 1e6, "M")
    for height, width in ((256, 256), (720, 1280)):
        table.add("model", f"MACs at {width}x{height}", count_macs(model, height, width) / 1e9, "G")


def bench_inference(table: Table, model: torch.nn.Module, device: torch.device, args) -> None:
    height, width = 720, 1280
    megapixels, size = height * width / 1e6, f"{width}x{height}"
    image = torch.rand(3, height, width)
    reduced = "bf16" if device.type == "cpu" else "fp16"
    naive_key, fast_key = "naive fp32 (eager, NCHW)", "fast fp32 (reused memory, channels_last)"
    seconds, outputs = {}, {}

    kernel_time = {}

    def measure(name: str, restore: Restorer) -> None:
        before = resource.getrusage(resource.RUSAGE_SELF)
        seconds[name] = median_seconds(lambda: restore(image), args.repeats, device)
        after = resource.getrusage(resource.RUSAGE_SELF)
        runs = args.repeats + 1  # the warm-up too
        kernel_time[name] = ((after.ru_minflt - before.ru_minflt) / runs, (after.ru_stime - before.ru_stime) / runs)
        outputs[name] = restore(image)

    measure(naive_key, Restorer(model, device, 0, 0, 1, "fp32", channels_last=False))
    if device.type == "cpu":
        reuse_freed_memory()  # after the naive path: glibc's setting cannot be undone in this process
    measure(fast_key, Restorer(model, device, 0, 0, 1, "fp32", channels_last=True))
    measure(f"fast {reduced} autocast", Restorer(model, device, 0, 0, 1, reduced, channels_last=True))
    if args.compile:
        measure("fast fp32 + torch.compile", Restorer(model, device, 0, 0, 1, "fp32", channels_last=True, compile=True))
    differences = {name: (output - outputs[naive_key]).abs().max().item() for name, output in outputs.items()}
    eight_bit = {name: torch.round(output * 255) for name, output in outputs.items()}
    for name, value in seconds.items():
        changed = (eight_bit[name] != eight_bit[naive_key]).float().mean().item()
        table.add("inference", f"{size} {name}", value, "s",
                  f"{megapixels / value:.3f} MP/s, {seconds[naive_key] / value:.2f}x naive, "
                  f"max |diff| {differences[name]:.1e}, 8-bit values changed {100 * changed:.3f}%, "
                  f"{kernel_time[name][0]:,.0f} minor page faults and {kernel_time[name][1]:.2f} s system time "
                  "per run")
    speedup = seconds[naive_key] / seconds[fast_key]
    met = speedup >= 3 and differences[fast_key] <= TOLERANCE
    table.add("inference", "fast fp32 speed-up over naive", speedup, "x",
              f"target >= 3x with max |diff| <= {TOLERANCE:.1e} (one 8-bit level): {'met' if met else 'NOT met'}")


def bench_tiled_4k(table: Table, args) -> None:
    options = argparse.Namespace(device=args.device, checkpoint=args.checkpoint, tile=512, overlap=64, tile_batch=None,
                                 channels_last=None, reuse_memory=True)
    peak, seconds = peak_memory_child(options, "fp32")
    table.add("inference", "3840x2160 tiled (512/64, default tile batch) fp32 fast path", seconds, "s",
              "one run, fresh process")
    what = "peak CUDA allocation" if args.device.startswith("cuda") else "peak resident set size"
    table.add("inference", "3840x2160 tiled peak memory", peak, "GiB",
              f"{what}; target <= 2 GiB: {'met' if peak <= 2 else 'NOT met'}")


def trainer_config(phase: str, batch: int, crop: int, device: str, init: str | None = None, extra=()):
    overrides = [
        "model.start_filters=48", "data.source=embedded", f"data.crop_size={crop}", f"train.batch_size={batch}",
        f"data.train_pairs_per_epoch={batch}", "data.val_crop_size=64", "data.val_crops_per_photo=1",
        f"train.device={device}", "log.lpips=false",
    ]
    if phase == "adv":
        # Random VGG weights cost the same time as ImageNet's, which cannot be downloaded everywhere.
        overrides += [f"adv.init={init}", "adv.vgg_weights=random", "adv.vgg_download=false"]
    overrides += list(extra)
    name = "adv" if phase == "adv" else "pretrain"
    return load_config(resource_dir("configs") / f"{name}.yaml",
                       overrides)


def bench_training(table: Table, settings: list[tuple[int, int]], args) -> None:
    from gan.adversarial import AdversarialTrainer
    from gan.pretrain import PretrainTrainer
    from gan.trainer import NullWriter

    with tempfile.TemporaryDirectory() as folder:
        for batch, crop in settings:
            pretrain = PretrainTrainer(trainer_config("pretrain", batch, crop, args.device), Experiment(Path(folder)))
            init = Path(folder) / "pretrain.pt"
            save_checkpoint(pretrain.state(), init)
            adv = AdversarialTrainer(trainer_config("adv", batch, crop, args.device, str(init)),
                                     Experiment(Path(folder)))
            for name, trainer in (("pretrain", pretrain), ("adversarial (n_critic 5)", adv)):
                trainer.writer = NullWriter()
                trainer.generator.train()
                blur = torch.rand(batch, 3, crop, crop, device=trainer.device)
                sharp = torch.rand(batch, 3, crop, crop, device=trainer.device)
                def step(trainer=trainer, blur=blur, sharp=sharp):
                    return trainer.train_step(blur, sharp)

                value = median_seconds(step, args.train_repeats, trainer.device)
                table.add("training", f"{name} step, batch {batch}, {crop}x{crop}", value, "s",
                          f"{batch * crop * crop / value / 1e6:.2f} MP/s")


def bench_training_precision(table: Table, args, batch: int = 8, crop: int = 128) -> None:
    """One LightUNet-48 pretrain step three ways, timed round-robin in this run so machine noise hits all alike:
    the engine's defaults (fp32, NCHW), channels_last, and channels_last with train.amp=auto (bf16 where the CPU
    has it natively and it measured faster when the trainer started, gan/precision.py)."""
    from core.cpu_features import native_bf16_flags
    from gan.pretrain import PretrainTrainer
    from gan.trainer import NullWriter

    variants = {"fp32 NCHW (the defaults)": ["train.amp='off'", "train.channels_last=false"],
                "fp32 channels_last": ["train.amp='off'", "train.channels_last=true"],
                "channels_last, amp auto": ["train.amp=auto", "train.channels_last=true"]}
    blur, sharp = torch.rand(batch, 3, crop, crop), torch.rand(batch, 3, crop, crop)
    with tempfile.TemporaryDirectory() as folder:
        trainers = {}
        for name, overrides in variants.items():
            config = trainer_config("pretrain", batch, crop, args.device, extra=overrides)
            trainer = trainers[name] = PretrainTrainer(config, Experiment(Path(folder) / str(len(trainers))))
            trainer.writer = NullWriter()
            trainer.generator.train()
            trainer.train_step(blur, sharp)  # warm-up
        times = {name: [] for name in trainers}
        for _ in range(args.train_repeats):
            for name, trainer in trainers.items():
                start = time.perf_counter()
                trainer.train_step(blur, sharp)
                if trainer.device.type == "cuda":
                    torch.cuda.synchronize()
                times[name].append(time.perf_counter() - start)
    medians = {name: statistics.median(values) for name, values in times.items()}
    for name, value in medians.items():
        note = f"{batch * crop * crop / value / 1e6:.2f} MP/s"
        if name.endswith("auto"):
            note += f"; chose {trainers[name].precision.name}: {trainers[name].precision.reason}"
        table.add("training", f"pretrain step, batch {batch}, {crop}x{crop}, {name}", value, "s", note)
    speedup = medians["fp32 NCHW (the defaults)"] / medians["channels_last, amp auto"]
    flags = ", ".join(native_bf16_flags()) or "no native bf16 flags"
    table.add("training", "step speed-up of channels_last + amp auto over the defaults", speedup, "x",
              f"target >= 1.5x: {'met' if speedup >= 1.5 else 'NOT met'} ({flags})")


def bench_data(table: Table, device: torch.device, args) -> None:
    for workers in args.workers:
        for on_device in (False, True):
            rate = loader_pairs_per_second(256, 21, workers, blur_on_device=on_device)
            table.add("data", f"loader pairs/s, 256x256, batch 8, {workers} workers"
                      f"{', blur left to the device' if on_device else ''}", rate, "pairs/s", "mixed kernels + noise")
    photos = embedded_photos("train")
    degradation = Degradation(21, {"trajectory": 1.0}, noise_sigma=0.01, poisson_peak=1000.0)
    dataset = SyntheticBlurPairs(photos, len(photos), 256, 8, degradation, blur_on_device=True)
    batch = default_collate([dataset[i] for i in range(8)])
    value = median_seconds(lambda: synthesize_batch(batch, device), args.repeats, device)
    table.add("data", f"blur of a batch of 8 at 256x256 on {device.type} (data.blur_on_device)", value * 1000, "ms",
              f"{8 / value:.0f} pairs/s")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--checkpoint", help="time these weights (default: a random LightUNet-48)")
    parser.add_argument("--repeats", type=int, default=5, help="timed inference runs per figure")
    parser.add_argument("--train-repeats", type=int, default=3, help="timed training steps per figure")
    parser.add_argument("--compile", action="store_true", help="also time torch.compile'd inference")
    parser.add_argument("--quick", action="store_true", help="CPU-sized training only, 3 inference repeats")
    parser.add_argument("--workers", type=int, nargs="+", default=[0, 2], help="data-loader workers to time")
    parser.add_argument("--json", type=Path, help="also write the figures here")
    parser.add_argument("--sections", nargs="+", choices=SECTIONS, default=None,
                        help="what to time (default: everything but peers, precision and streamed)")
    parser.add_argument("--peers", action="store_true",
                        help="only LightUNet on every backend beside DeblurGAN-v2, NAFNet, MIMO-UNet, DeblurGAN "
                        "(bench/peers.py)")
    parser.add_argument("--benchmarks", type=Path, nargs="+",
                        default=[Path("benchmarks/motion-v1"), Path("benchmarks/motion-v2")],
                        help="precision: the benchmark folders to compare bf16 with fp32 on")
    args = parser.parse_args()
    if args.sections is None:
        args.sections = ["peers"] if args.peers else [s for s in SECTIONS if s not in ("peers", "precision",
                                                                                         "streamed")]
    if args.quick:
        args.repeats = min(args.repeats, 3)
    device = torch.device(args.device)
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else f"CPU, {torch.get_num_threads()} threads"
    print(f"device: {name}; torch {torch.__version__}; medians of {args.repeats} (inference), "
          f"{args.train_repeats} (training) runs after a warm-up\n")
    print("| section | figure | value | note |\n|---|---|---|---|")
    table = Table()
    sections = set(args.sections)
    if sections & {"model", "inference", "peers", "precision"}:
        model = make_model(args.checkpoint, device)
        if "model" in sections:
            bench_model(table, model)
        if "inference" in sections:
            bench_inference(table, model, device, args)
    if "tiled-4k" in sections:
        bench_tiled_4k(table, args)
    if "streamed" in sections:
        bench_streamed(table, args)
    if "training-precision" in sections:
        bench_training_precision(table, args)
    if "training" in sections:
        settings = [(4, 96)] if args.quick else [(4, 96), (8, 256)]
        if device.type == "cuda":
            settings = [(8, 256)]
        bench_training(table, settings, args)
    if "data" in sections:
        bench_data(table, device, args)
    if "peers" in sections:
        bench_peers(table, model, args.repeats)
    if "precision" in sections:
        bench_precision(table, model, args.benchmarks)
    if args.json:
        record = {"device": name, "torch": torch.__version__, "date": datetime.date.today().isoformat(),
                  "argv": sys.argv[1:], "rows": table.rows}
        args.json.write_text(json.dumps(record, indent=1))


if __name__ == "__main__":
    main()
