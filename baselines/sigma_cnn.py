"""CNN + RL (the Gaussian-deconvolution seed): a small CNN estimates the Gaussian blur sigma, then Richardson-Lucy
deconvolves with that kernel.

    python -m baselines.sigma_cnn --out weights/sigma_cnn.pt            # train (minutes on a CPU)

Training pairs are the embedded training photos blurred in linear light by Gaussians with sigma ~ |N(0, 5)|
truncated to [0, kernel_size / 4] (the seed's distribution, as the data pipeline draws it), with read noise
U(0, 0.01). The loss is L1 on sigma.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
import torch
from torch import nn

from core.images import array_to_tensor
from datasets.blur import synthesize
from datasets.kernels import gaussian_kernel, gaussian_sigmas
from datasets.photos import embedded_photos

from .classical import richardson_lucy


class SigmaCNN(nn.Module):
    """Strided 3x3 convs, global average pooling, and a bounded output: the blur sigma in pixels.

    Fully convolutional until the pooling, so it takes images of any size (trained on crops)."""

    def __init__(self, channels: int = 32, depth: int = 5, max_sigma: float = 6.0):
        super().__init__()
        layers: list[nn.Module] = [nn.Conv2d(3, channels, 3, padding=1), nn.ReLU(inplace=True)]
        for index in range(depth - 1):
            stride = 2 if index % 2 == 0 else 1
            layers += [nn.Conv2d(channels, channels, 3, stride=stride, padding=1), nn.ReLU(inplace=True)]
        self.features = nn.Sequential(*layers)
        self.head = nn.Linear(channels, 1)
        self.max_sigma = max_sigma

    def forward(self, blurred: torch.Tensor) -> torch.Tensor:
        # Centre the input so the network looks at structure, not brightness.
        pooled = self.features(blurred - blurred.mean(dim=(-2, -1), keepdim=True)).mean(dim=(-2, -1))
        return torch.sigmoid(self.head(pooled)).squeeze(-1) * self.max_sigma


def training_batch(photos: list[torch.Tensor], rng: np.random.Generator, batch: int, crop: int, kernel_size: int):
    size = crop + kernel_size - 1
    windows = []
    for _ in range(batch):
        photo = photos[int(rng.integers(len(photos)))]
        top = int(rng.integers(photo.shape[1] - size + 1))
        left = int(rng.integers(photo.shape[2] - size + 1))
        windows.append(photo[:, top : top + size, left : left + size])
    sigmas = gaussian_sigmas(rng, batch, kernel_size / 4)  # as the data pipeline draws Gaussian blurs
    kernels = torch.stack([gaussian_kernel(kernel_size, s) for s in sigmas])
    generator = torch.Generator().manual_seed(int(rng.integers(2**62)))
    blurred, _ = synthesize(torch.stack(windows), kernels, noise_sigma=torch.from_numpy(rng.uniform(0, 0.01, batch)),
                            generator=generator)
    return blurred, torch.from_numpy(sigmas).float()


def train(model: SigmaCNN, steps: int, batch: int = 16, crop: int = 48, kernel_size: int = 21, lr: float = 1e-3,
          seed: int = 0, log_every: int = 100) -> list[float]:
    """Adam with cosine decay; returns the loss of every step."""
    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    photos = embedded_photos("train")
    optimizer = torch.optim.Adam(model.parameters(), lr=lr)
    scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=steps)
    losses = []
    for step in range(1, steps + 1):
        blurred, sigmas = training_batch(photos, rng, batch, crop, kernel_size)
        loss = (model(blurred) - sigmas).abs().mean()
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        scheduler.step()
        losses.append(loss.item())
        if log_every and step % log_every == 0:
            print(f"step {step}/{steps}  L1(sigma) {np.mean(losses[-log_every:]):.3f} px", flush=True)
    return losses


def save(model: SigmaCNN, path: Path, info: dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    options = {"channels": model.head.in_features, "depth": len(model.features) // 2, "max_sigma": model.max_sigma}
    # fp16 halves the file; the estimate does not change measurably (the sigma head is a sigmoid).
    state = {k: v.half() for k, v in model.state_dict().items()}
    tmp = path.with_suffix(path.suffix + ".tmp")
    torch.save({"options": options, "state_dict": state, "info": info}, tmp)
    tmp.replace(path)


def load(path: Path) -> SigmaCNN:
    """The sigma CNN saved by this module; an ExperimentError naming the file for anything else."""
    from core.checkpoint import load_weights_only
    from core.errors import ExperimentError

    state = load_weights_only(path, "sigma-CNN weights")
    if not isinstance(state, dict) or not isinstance(state.get("options"), dict) or "state_dict" not in state:
        raise ExperimentError(f"sigma-CNN weights {path} are not a file of python -m baselines.sigma_cnn "
                              "(no options/state_dict entries)")
    try:
        model = SigmaCNN(**state["options"])
        model.load_state_dict({k: v.float() for k, v in state["state_dict"].items()})
    except (TypeError, RuntimeError, AttributeError) as error:
        raise ExperimentError(f"sigma-CNN weights {path} do not fit the sigma CNN: "
                              f"{str(error).splitlines()[0]}") from None
    return model.eval()


class CnnRL:
    """The CNN + RL method: sigma from the CNN, then Richardson-Lucy with that Gaussian."""

    def __init__(self, model: SigmaCNN, kernel_size: int = 21, iterations: int = 30):
        self.model, self.kernel_size, self.iterations = model, kernel_size, iterations
        self.last_sigma = float("nan")

    @torch.no_grad()
    def __call__(self, blurred: np.ndarray) -> np.ndarray:
        self.last_sigma = float(self.model(array_to_tensor(blurred)[None]))
        return richardson_lucy(blurred, gaussian_kernel(self.kernel_size, self.last_sigma).numpy(), self.iterations)


class PatchCnnRL(CnnRL):
    """CNN + RL + stitching for blur that varies across the image: a sigma estimated per overlapping patch, RL per
    patch (on the patch plus a kernel-sized margin of real pixels), the patches blended with tent weights that fall
    to zero at their borders, so there is no seam. ``last_sigmas`` holds the estimates of the last image."""

    def __init__(self, model: SigmaCNN, kernel_size: int = 21, iterations: int = 30, patch: int = 64,
                 overlap: int = 32):
        super().__init__(model, kernel_size, iterations)
        if not 0 <= overlap < patch:
            raise ValueError(f"need 0 <= overlap < patch, got {overlap} and {patch}")
        self.patch, self.overlap = patch, overlap
        self.last_sigmas: list[float] = []

    def starts(self, length: int) -> list[int]:
        if length <= self.patch:
            return [0]
        step = self.patch - self.overlap
        starts = list(range(0, length - self.patch, step))
        return starts + [length - self.patch]

    @torch.no_grad()
    def __call__(self, blurred: np.ndarray) -> np.ndarray:
        height, width = blurred.shape[:2]
        margin = self.kernel_size // 2
        output = np.zeros(blurred.shape, dtype=np.float64)
        total = np.zeros((height, width, 1), dtype=np.float64)
        self.last_sigmas = []
        for top in self.starts(height):
            for left in self.starts(width):
                bottom, right = min(top + self.patch, height), min(left + self.patch, width)
                sigma = float(self.model(array_to_tensor(np.ascontiguousarray(blurred[top:bottom, left:right]))[None]))
                self.last_sigmas.append(sigma)
                t0, l0 = max(0, top - margin), max(0, left - margin)
                window = blurred[t0 : min(height, bottom + margin), l0 : min(width, right + margin)]
                kernel = gaussian_kernel(self.kernel_size, sigma).numpy()
                restored = richardson_lucy(window, kernel, self.iterations)
                restored = restored[top - t0 : bottom - t0, left - l0 : right - l0]
                weight = np.outer(_tent(bottom - top), _tent(right - left))[..., None]
                output[top:bottom, left:right] += weight * restored
                total[top:bottom, left:right] += weight
        return (output / total).astype(np.float32)


def _tent(length: int) -> np.ndarray:
    """Weights rising from near zero at both ends to 1 in the middle (never exactly zero, so every pixel counts)."""
    position = (np.arange(length) + 0.5) / length
    return np.minimum(position, 1 - position) * 2


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m baselines.sigma_cnn",
                                     description="Train the sigma-estimating CNN.")
    parser.add_argument("--out", type=Path, required=True, help="where to write the weights (.pt)")
    parser.add_argument("--steps", type=int, default=2000)
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--crop", type=int, default=48)
    parser.add_argument("--kernel-size", type=int, default=21)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--overwrite", action="store_true")
    args = parser.parse_args(argv)
    if args.out.exists() and not args.overwrite:
        print(f"error: {args.out} exists; pass --overwrite to replace it", file=sys.stderr)
        return 2
    if args.steps < 1 or args.batch < 1 or args.crop < 8 or args.kernel_size < 3 or args.kernel_size % 2 == 0:
        print("error: need --steps >= 1, --batch >= 1, --crop >= 8 and an odd --kernel-size >= 3", file=sys.stderr)
        return 2
    model = SigmaCNN()
    start = time.monotonic()
    losses = train(model, args.steps, args.batch, args.crop, args.kernel_size, seed=args.seed)
    minutes = (time.monotonic() - start) / 60
    info = {"steps": args.steps, "batch": args.batch, "crop": args.crop, "kernel_size": args.kernel_size,
            "seed": args.seed, "final_l1_sigma": float(np.mean(losses[-100:])), "minutes": round(minutes, 1),
            "command": "python -m baselines.sigma_cnn " + " ".join(argv if argv is not None else sys.argv[1:])}
    save(model, args.out, info)
    print(f"wrote {args.out}: L1(sigma) {info['final_l1_sigma']:.3f} px over the last 100 steps, {minutes:.1f} min")
    return 0


if __name__ == "__main__":
    sys.exit(main())
