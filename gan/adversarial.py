"""Phase 2: fine-tune a pretrained generator as a conditional GAN against a PatchGAN critic.

Generator loss = w_adv * adversarial + w_perceptual * VGG19 features + w_charbonnier * Charbonnier
(+ w_feature_matching * critic feature matching + train.detail_losses).
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import torch
from torch import nn

from core.checkpoint import (
    best_checkpoints_newest_first,
    load_checkpoint,
    network_options,
)
from losses import charbonnier
from losses.adversarial import build_adversarial_loss, feature_matching, gradient_penalty, sample_scores
from losses.detail import detail_terms
from losses.perceptual import PerceptualLoss
from nets import build_network
from restore.generator import generator_from_checkpoint

from .config import Config
from .distributed import broadcast_parameters
from .errors import ConfigError, ExperimentError
from .experiment import Experiment
from .trainer import Scores, Trainer


def find_pretrain_checkpoint(init: str | None, root: str) -> tuple[Path, dict[str, Any]]:
    """``init`` as a checkpoint file, or a run folder (its best.pt); without it, the newest pretrain run in root.
    Returns the path and the loaded checkpoint (loaded once: the search already had to read it)."""
    if init:
        path = Path(init)
        if path.is_dir():
            path = path / "checkpoints" / "best.pt"
        if not path.is_file():
            raise ExperimentError(f"pretrain checkpoint {path} does not exist (adv.init={init!r})")
        return path, load_checkpoint(path)
    for candidate in best_checkpoints_newest_first(root):
        state = load_checkpoint(candidate)
        if state.get("phase") == "pretrain":
            return candidate, state
    raise ExperimentError(
        f"no pretrain run found under {root}/; run `python train_gan.py --pretrain` first or set adv.init"
    )


class AdversarialTrainer(Trainer):
    phase = "adv"

    def __init__(self, config: Config, experiment: Experiment):
        # adv.init is resolved before anything is built: the generator is the pretrain run's, so its architecture
        # comes from that checkpoint, not from this config, and the run's config (a copy: the caller's is left as
        # it was) records the file it came from.
        if config.train.init:
            raise ConfigError("train.init starts a --pretrain run; --adv starts from a pretrain run (adv.init)")
        self.init_path, self._init_state = find_pretrain_checkpoint(config.adv.init, config.experiment.root)
        config = copy.deepcopy(config)
        config.model = network_options(self._init_state, self.init_path)
        config.adv.init = str(self.init_path)
        super().__init__(config, experiment)
        adv = config.adv
        critic_options = dict(adv.critic)
        try:
            self.critic = build_network(critic_options.pop("name"), **critic_options).to(self.device)
            broadcast_parameters(self.critic, self.world)
            # Without its term, no VGG is needed: adv.w_perceptual=0 is how offline machines run this phase.
            self.perceptual = (
                PerceptualLoss(adv.perceptual_layers, adv.perceptual_criterion, adv.vgg_weights, adv.vgg_download)
                .to(self.device)
                if adv.w_perceptual > 0
                else None
            )
        except ValueError as error:
            raise ConfigError(f"adv: {error}") from None
        # The smallest crop it will see: data.crop_size or train.crop_schedule's smallest.
        self._check_critic_fits(min([config.data.crop_size, *(int(c) for _, c in config.train.crop_schedule)]))
        if adv.w_feature_matching > 0 and not hasattr(self.critic, "features"):
            raise ConfigError(f"adv.w_feature_matching needs a critic with features(); {adv.critic['name']!r} has none")
        self.adversarial = build_adversarial_loss(adv.gan_type, adv.drift)
        self.optimizer_g = torch.optim.Adam(self.generator.parameters(), lr=adv.lr_g, betas=tuple(adv.betas))
        self.optimizer_d = torch.optim.Adam(self.critic.parameters(), lr=adv.lr_d, betas=tuple(adv.betas))

    def _check_critic_fits(self, crop: int) -> None:
        """A deep critic shrinks its input by 2 per layer (the double-scale one's global half also by its downscale
        factor): on crops too small for it, a convolution or InstanceNorm fails mid-step. One probe forward says so
        before anything trains."""
        probe = torch.zeros(1, 3, crop, crop, device=self.device)
        # In training mode (InstanceNorm fails on one pixel only there); a training-mode forward may update buffers
        # (spectral norm's power iteration), so the critic's state is put back as it was.
        before = {name: value.clone() for name, value in self.critic.state_dict().items()}
        try:
            with torch.no_grad():
                self.critic(probe, probe)
            self.critic.load_state_dict(before)
        except (ValueError, RuntimeError) as error:
            raise ConfigError(
                f"adv.critic {self.config.adv.critic['name']!r} cannot score {crop} px crops "
                f"({str(error).splitlines()[0]}); use larger crops, fewer critic layers or less downscaling"
            ) from None

    def build_generator(self) -> nn.Module:
        return generator_from_checkpoint(self._init_state, self.init_path)

    def score_references(self) -> None:
        """Also the pretrain checkpoint's scores on the same pairs (rebuilt from its file: by now a resumed run's
        generator holds adversarial weights)."""
        super().score_references()
        pretrain = generator_from_checkpoint(self._init_state, self.init_path)
        pretrain = pretrain.to(self.device, memory_format=self.memory_format)
        self.reference_scores, _ = self._score(pretrain.eval())
        self._init_state = None  # the file's tensors are no longer needed

    def epoch_summary(self, scores: Scores) -> str:
        reference, blurry = self.reference_scores.describe(self.perceptual_name), self.blurry_scores.psnr
        return f"val {scores.describe(self.perceptual_name)}  (pretrain: {reference}; blurry PSNR {blurry:.2f})"

    def validate(self) -> Scores:
        scores = super().validate()
        for name in ("psnr", "ssim", "lpips"):
            if getattr(scores, name) is not None:
                self.writer.add_scalar(f"val/{name}_pretrain", getattr(self.reference_scores, name), self.step)
        return scores

    def train_step(self, blur: torch.Tensor, sharp: torch.Tensor) -> dict[str, float]:
        adv = self.config.adv
        with self.autocast():
            fake = self.training_generator(blur)
        critic_logs = {}
        # n_critic critic updates on this batch, reusing one generator forward (DeblurGAN's schedule).
        for _ in range(adv.n_critic):
            critic_logs = self._critic_step(blur, sharp, fake.detach())

        self.critic.requires_grad_(False)  # the generator step must not leave gradients in the critic
        with self.autocast():
            with torch.no_grad():  # the real images' side of each comparison: constants for the generator
                real_maps = self.critic(blur, sharp).float() if self.adversarial.generator_needs_real else None
                real_features = self.critic.features(blur, sharp) if adv.w_feature_matching > 0 else None
            adversarial = self.adversarial.generator_loss(self.critic(blur, fake).float(), real_maps)
            perceptual = self.perceptual(fake, sharp).float() if self.perceptual is not None else fake.new_zeros(())
            matching = (feature_matching(real_features, self.critic.features(blur, fake)).float()
                        if real_features is not None else fake.new_zeros(()))
        self.critic.requires_grad_(True)
        fake = fake.float()
        pixel = charbonnier(fake, sharp, self.config.train.charbonnier_eps)
        detail, detail_logs = detail_terms(fake, sharp, self.config.train.detail_losses)
        loss = (adv.w_adv * adversarial + adv.w_perceptual * perceptual + adv.w_charbonnier * pixel
                + adv.w_feature_matching * matching + detail)
        grad_norm_g = self.optimise(loss, self.optimizer_g, self.generator.parameters())
        return {
            "loss": loss.item(),
            "g_adversarial": adversarial.item(),
            "g_perceptual": perceptual.item(),
            "g_charbonnier": pixel.item(),
            "g_feature_matching": matching.item(),
            "grad_norm_g": grad_norm_g,
            **detail_logs,
            **critic_logs,
        }

    def _critic_step(self, blur: torch.Tensor, sharp: torch.Tensor, fake: torch.Tensor) -> dict[str, float]:
        adv = self.config.adv
        with self.autocast():
            real_maps, fake_maps = self.critic(blur, sharp).float(), self.critic(blur, fake).float()
        loss = self.adversarial.critic_loss(real_maps, fake_maps)
        logs = {"wasserstein": (sample_scores(real_maps) - sample_scores(fake_maps)).mean().item()}
        if self.adversarial.uses_gradient_penalty:
            penalty = gradient_penalty(self.critic, blur, sharp, fake.float())  # fp32: a second-order term
            loss = loss + adv.gp_weight * penalty
            logs["gradient_penalty"] = penalty.item()
        # The critic is not DDP-wrapped (double backward): its gradients are averaged over the ranks explicitly.
        logs["grad_norm_d"] = self.optimise(loss, self.optimizer_d, self.critic.parameters(), average=True)
        if self.adversarial.clips_weights:
            with torch.no_grad():
                for parameter in self.critic.parameters():
                    parameter.clamp_(-adv.clip_value, adv.clip_value)
        logs["critic_loss"] = loss.item()
        return logs

    def replicated_modules(self) -> list[nn.Module]:
        return [self.generator, self.critic]

    def state(self) -> dict[str, Any]:
        return {
            **super().state(),
            "critic_model": dict(self.config.adv.critic),
            "critic": self.critic.state_dict(),
            "optimizer_g": self.optimizer_g.state_dict(),
            "optimizer_d": self.optimizer_d.state_dict(),
            "init_checkpoint": str(self.init_path),
        }

    def restore(self, state: dict[str, Any], path: Path) -> None:
        self.critic.load_state_dict(state["critic"])
        self.optimizer_g.load_state_dict(state["optimizer_g"])
        self.optimizer_d.load_state_dict(state["optimizer_d"])
        super().restore(state, path)  # last: the random generators are restored after everything else
