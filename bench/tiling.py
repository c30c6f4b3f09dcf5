"""How close is tiled inference to whole-image inference, and at what cost? On real photos.

    python bench/tiling.py                                   # the bundled model, scikit-image's photos
    python bench/tiling.py --photos /usr/share/backgrounds/mate/nature --downscale 2 --random channel
    python bench/tiling.py --checkpoints a.pt b.pt --photos ~/Pictures --tiles 256 512 --overlaps 32 64 128

Prints ||tiled - whole||^2 / ||whole - input||^2, the share of what the model changes that tiling gets wrong,
for InstanceNorm tiles normalised with the whole image's statistics ("image") and with their own ("tile"), and
the seconds of each tiled run (the whole image is the reference). ``--random channel`` adds a random channel-norm
LightUNet-48 (no statistics across pixels) with a trained model's residual size.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import torch  # noqa: E402

from core.cpu_allocator import reuse_freed_memory  # noqa: E402
from core.images import list_images, read_image  # noqa: E402
from datasets.photos import TRAIN_PHOTOS, VAL_PHOTOS, embedded_photo  # noqa: E402
from nets import build_network  # noqa: E402
from restore.bundled import bundled_path  # noqa: E402
from restore.inference import Restorer, load_generator  # noqa: E402


def photos(folder: str | None, downscale: int = 1) -> list[tuple[str, torch.Tensor]]:
    if folder:
        loaded = [(p.name, read_image(p)) for p in list_images(folder)]
        if downscale > 1:  # area averaging: also removes JPEG blocking from large photos
            pool = torch.nn.functional.avg_pool2d
            loaded = [(name, pool(image[None], downscale)[0]) for name, image in loaded]
        return loaded
    names = [n for n in TRAIN_PHOTOS + VAL_PHOTOS if n not in ("camera", "brick", "grass", "gravel")]
    return [(name, embedded_photo(name)) for name in names]


@torch.no_grad()
def agreements(model: torch.nn.Module, images: list[tuple[str, torch.Tensor]], settings: list[tuple[int, int]],
               modes: list[str]):
    """For each (tile, overlap, norm statistics): the median over the images of the share of the model's change
    that tiling gets wrong, ||tiled - whole||^2 / ||whole - input||^2, and the median seconds of the tiled run.
    Images that fit in one tile are left out of that setting (they are not tiled)."""
    device = torch.device("cpu")
    restorers = {(t, o, m): Restorer(model, device, t, o, norm_statistics=m) for t, o in settings for m in modes}
    errors: dict = {key: [] for key in restorers}
    seconds: dict = {key: [] for key in restorers}
    whole_restorer = Restorer(model, device, 0)
    for _, image in images:
        whole = whole_restorer(image)
        change = (whole - image).pow(2).sum()
        for (tile, overlap, mode), restore in restorers.items():
            if max(image.shape[-2:]) > tile:
                start = time.perf_counter()
                tiled = restore(image)
                seconds[(tile, overlap, mode)].append(time.perf_counter() - start)
                errors[(tile, overlap, mode)].append(((tiled - whole).pow(2).sum() / change).item())
    return {key: (statistics.median(errors[key]), statistics.median(seconds[key])) if errors[key] else None
            for key in restorers}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--checkpoints", nargs="+", default=[],
                        help="checkpoint or bundled weights files (default: the bundled pretrain model)")
    parser.add_argument("--random", nargs="*", default=[], metavar="NORM",
                        help="also random LightUNet-48s with these norms, residual scaled to a trained model's size")
    parser.add_argument("--photos", help="folder of photos (default: scikit-image's colour photos)")
    parser.add_argument("--downscale", type=int, default=1, help="shrink --photos by this factor first")
    parser.add_argument("--limit", type=int, default=0, help="use only the first N photos")
    parser.add_argument("--tiles", nargs="+", type=int, default=[256, 512])
    parser.add_argument("--overlaps", nargs="+", type=int, default=[32, 64])
    parser.add_argument("--modes", nargs="+", choices=("image", "tile"), default=["tile", "image"])
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    torch.set_grad_enabled(False)
    torch.set_num_threads(args.threads)
    reuse_freed_memory()
    images = photos(args.photos, args.downscale)[: args.limit or None]
    checkpoints = args.checkpoints or [str(bundled_path("pretrain"))]
    models = {path: load_generator(Path(path), torch.device("cpu")) for path in checkpoints}
    for norm in args.random:
        models[f"random LightUNet-48, {norm} norm"] = random_model(norm, images[0][1])
    print(f"{len(images)} photos: {', '.join(f'{n} {i.shape[-1]}x{i.shape[-2]}' for n, i in images)}; "
          f"{torch.get_num_threads()} threads")
    print("||tiled - whole||^2 / ||whole - input||^2 (median over the photos; 0 = identical) and median seconds")
    settings = [(t, o) for t in args.tiles for o in args.overlaps]
    print("| model | norm statistics | " + " | ".join(f"tile {t} / overlap {o}" for t, o in settings) + " |")
    print("|---|---|" + "---|" * len(settings))
    for name, model in models.items():
        results = agreements(model, images, settings, args.modes)
        for mode in args.modes:
            cells = ["n/a" if results[(t, o, mode)] is None else
                     f"{100 * results[(t, o, mode)][0]:.3f}% ({results[(t, o, mode)][1]:.1f} s)" for t, o in settings]
            print(f"| {name} | {mode} | {' | '.join(cells)} |", flush=True)


def random_model(norm: str, image: torch.Tensor) -> torch.nn.Module:
    """A random LightUNet-48 whose residual has the standard deviation of a trained one's (about 0.02)."""
    torch.manual_seed(0)
    model = build_network("light_unet", start_filters=48, norm=norm).eval()
    torch.nn.init.normal_(model.head.weight)
    model.head.weight.mul_(0.02 / (model(image[None]) - image[None]).std())
    return model


if __name__ == "__main__":
    main()
