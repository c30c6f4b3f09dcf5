"""How close is tiled inference to whole-image inference? PSNR between the two outputs on real photos.

    python bench/tiling.py --checkpoints experiments/RUN/checkpoints/best.pt
    python bench/tiling.py --checkpoints a.pt b.pt --photos ~/Pictures --tiles 256 512 --overlaps 32 64 128
    python bench/tiling.py --checkpoints a.pt --photos /usr/share/backgrounds/mate/nature --downscale 2

Both outputs are rounded to 8 bits, as written to disk. Without --photos it uses scikit-image's bundled colour
photos (451x300 to 741x500), which only tile at tile sizes below their size. Give checkpoints trained the same way
with different ``model.norm`` to see what image-wide statistics (InstanceNorm) cost against a per-pixel norm.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import torch  # noqa: E402

from datasets.images import list_images, read_image  # noqa: E402
from datasets.photos import TRAIN_PHOTOS, VAL_PHOTOS, embedded_photo  # noqa: E402
from gan.inference import load_generator  # noqa: E402
from gan.metrics import psnr_per_image  # noqa: E402
from gan.tiling import tiled_apply  # noqa: E402


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
def agreements(model: torch.nn.Module, images: list[tuple[str, torch.Tensor]], settings: list[tuple[int, int]]):
    """Mean PSNR (dB) between tiled and whole-image outputs for each (tile, overlap); images that fit in one tile
    are left out of that setting (they are not tiled)."""
    scores: dict[tuple[int, int], list[float]] = {setting: [] for setting in settings}
    for _, image in images:
        whole = model(image[None]).clamp(0, 1)
        for tile, overlap in settings:
            if max(image.shape[-2:]) > tile:
                tiled = tiled_apply(model, image[None], tile, overlap).clamp(0, 1)
                scores[(tile, overlap)].append(psnr_per_image(tiled, whole).item())
    return {k: sum(v) / len(v) if v else float("nan") for k, v in scores.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--checkpoints", nargs="+", required=True)
    parser.add_argument("--photos", help="folder of photos (default: scikit-image's colour photos)")
    parser.add_argument("--downscale", type=int, default=1, help="shrink --photos by this factor first")
    parser.add_argument("--tiles", nargs="+", type=int, default=[128, 256])
    parser.add_argument("--overlaps", nargs="+", type=int, default=[32, 64])
    args = parser.parse_args()
    torch.set_grad_enabled(False)
    images = photos(args.photos, args.downscale)
    models = {path: load_generator(Path(path), torch.device("cpu")) for path in args.checkpoints}
    print(f"{len(images)} photos: {', '.join(f'{n} {i.shape[-1]}x{i.shape[-2]}' for n, i in images)}")
    print("PSNR (dB) between tiled and whole-image outputs, 8-bit; higher is closer (inf = identical)")
    header = " | ".join(f"tile {t} / overlap {o}" for t in args.tiles for o in args.overlaps)
    print(f"| model | {header} |")
    print("|---|" + "---|" * (len(args.tiles) * len(args.overlaps)))
    settings = [(t, o) for t in args.tiles for o in args.overlaps]
    for name, model in models.items():
        cells = [f"{score:.2f}" for score in agreements(model, images, settings).values()]
        print(f"| {name} | {' | '.join(cells)} |", flush=True)


if __name__ == "__main__":
    main()
