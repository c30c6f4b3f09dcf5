"""Validation scores of the training engine: the blurred input's (the reference) and the generator's on the fixed
validation pairs, logged to TensorBoard with a strip of blurred | restored | sharp rows."""

from __future__ import annotations

from dataclasses import dataclass

import torch

from core.errors import ConfigError
from core.images import tensor_to_array
from evaluation.metrics import load_lpips, mean_psnr, psnr_per_image, ssim_per_image
from evaluation.offline_metrics import COLUMN, LOADERS


@dataclass
class Scores:
    psnr: float
    ssim: float
    lpips: float | None = None
    perceptual: float | None = None  # log.perceptual's metric (JOD or FLIP), where asked for

    def describe(self, perceptual: str = "") -> str:
        text = f"PSNR {self.psnr:.2f} dB  SSIM {self.ssim:.4f}"
        text += f"  LPIPS {self.lpips:.4f}" if self.lpips is not None else ""
        return text + (f"  {perceptual} {self.perceptual:.4f}" if self.perceptual is not None else "")


class Validation:
    """The Trainer's validation part (it reads ``config``, ``device``, ``val_loader``, ``writer``,
    ``eval_generator`` and ``global_step``)."""

    def _set_up_validation_metrics(self) -> None:
        """LPIPS where its weights are there, and log.perceptual's scorer."""
        config = self.config
        self.lpips, self.lpips_unavailable = load_lpips(device=self.device) if config.log.lpips else (None, "")
        self.val_metric = None  # log.perceptual's scorer (the adversarial phase's self.perceptual is its loss)
        if config.log.perceptual != "none":
            self.val_metric, reason = LOADERS[config.log.perceptual]()
            if self.val_metric is None:
                raise ConfigError(f"log.perceptual={config.log.perceptual}: {reason}")
        self.perceptual_name = COLUMN.get(config.log.perceptual, "").upper()

    def score_references(self) -> None:
        """Scores of what the restored images are compared with on the validation pairs: the blurred input.
        fit() calls it once before the first step; phases add their own references."""
        self.blurry_scores, _ = self._score(lambda blur: blur)

    @torch.no_grad()
    def _score(self, restore, keep_rows: int = 0) -> tuple[Scores, list[torch.Tensor]]:
        """Scores of ``restore`` on the validation set, and the first ``keep_rows`` pairs as blurred | restored |
        sharp rows (kept from the same pass, so logging images costs no second forward)."""
        psnrs, ssims, lpipses, perceptual, rows = [], [], [], [], []
        for batch in self.val_loader:
            blur, sharp = batch["blur"].to(self.device), batch["sharp"].to(self.device)
            restored = restore(blur).clamp(0.0, 1.0)
            psnrs.append(psnr_per_image(restored, sharp).cpu())
            ssims.append(ssim_per_image(restored, sharp).cpu())
            if self.lpips is not None:
                lpipses.append(self.lpips(restored, sharp).cpu())
            if self.val_metric is not None:
                for one, target in zip(restored.float().cpu(), sharp.float().cpu()):
                    perceptual.append(self.val_metric(tensor_to_array(one), tensor_to_array(target)))
            if len(rows) < keep_rows:
                rows += list(torch.cat([blur, restored, sharp], dim=-1).cpu())[: keep_rows - len(rows)]
        lpips = torch.cat(lpipses).mean().item() if lpipses else None
        mean_perceptual = sum(perceptual) / len(perceptual) if perceptual else None
        return Scores(mean_psnr(torch.cat(psnrs)), torch.cat(ssims).mean().item(), lpips, mean_perceptual), rows

    @torch.no_grad()
    def validate(self) -> Scores:
        generator = self.eval_generator.eval()
        scores, rows = self._score(generator, keep_rows=self.config.log.val_images)
        perceptual = self.perceptual_name.lower() or "perceptual"
        for name, field in (("psnr", "psnr"), ("ssim", "ssim"), ("lpips", "lpips"), (perceptual, "perceptual")):
            value = getattr(scores, field)
            if value is not None:
                self.writer.add_scalar(f"val/{name}", value, self.global_step)
                self.writer.add_scalar(f"val/{name}_blurry_input", getattr(self.blurry_scores, field),
                                       self.global_step)
        if rows and all(row.shape == rows[0].shape for row in rows):  # one row per pair: blurred | restored | sharp
            self.writer.add_image("val/blurred_restored_sharp", torch.cat(rows, dim=-2), self.global_step)
        else:  # whole validation images of different sizes: one image each
            for index, row in enumerate(rows):
                self.writer.add_image(f"val/blurred_restored_sharp/{index}", row, self.global_step)
        self.writer.flush()
        return scores
