"""Adversarial objectives for a critic ``D(condition, image)`` that returns a map of patch scores.

A sample's score is the mean of its patch map. ``wgan-gp`` is the default; ``vanilla``, ``lsgan``, ``wgan-clip`` and
DeblurGAN-v2's ``ragan-ls`` are there so the trade-offs can be shown on the same generator and data.
"""

from __future__ import annotations

from typing import Callable

import torch
import torch.nn.functional as F

from core.registry import Registry

Critic = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]


def sample_scores(score_maps: torch.Tensor) -> torch.Tensor:
    """One score per sample: the mean over its patch map (N x 1 x h x w -> N)."""
    return score_maps.flatten(1).mean(dim=1)


def interpolate(real: torch.Tensor, fake: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
    """Random points on the segments between real and fake samples: ONE weight per sample.

    DeblurGAN and DeblurGAN-v2 draw a single weight for the whole batch, so every sample sits at the same fraction
    of its segment; WGAN-GP (Gulrajani et al. 2017, Algorithm 1) draws one per sample.
    """
    alpha = torch.rand(real.shape[0], 1, 1, 1, device=real.device, dtype=real.dtype, generator=generator)
    return alpha * real + (1 - alpha) * fake


def gradient_penalty(
    critic: Critic,
    condition: torch.Tensor,
    real: torch.Tensor,
    fake: torch.Tensor,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """``E[(||grad_x D(x_hat)||_2 - 1)^2]`` with the norm taken per sample over all of C x H x W.

    Public DeblurGAN, DeblurGAN-v2 and BasicSR code take ``.norm(2, dim=1)``: a norm over channels at each pixel,
    which penalises every pixel's gradient towards 1, a different (and much stronger) constraint than the
    1-Lipschitz one WGAN-GP asks for. The condition is the same for real and fake, so it is not interpolated.
    Returns the unweighted penalty; the caller multiplies by lambda (10).
    """
    mixed = interpolate(real.detach(), fake.detach(), generator).requires_grad_(True)
    scores = sample_scores(critic(condition, mixed))
    # Samples do not interact in the critic (no BatchNorm), so the gradient of the sum is each sample's own gradient.
    (gradients,) = torch.autograd.grad(scores.sum(), mixed, create_graph=True)
    norms = gradients.flatten(1).norm(2, dim=1)
    return ((norms - 1) ** 2).mean()


class AdversarialLoss:
    """Critic and generator objectives of one GAN formulation, on patch-score maps.

    ``generator_needs_real``: the generator objective also compares with the critic's scores of the real images
    (relativistic GANs); the trainer then passes ``real_maps`` to ``generator_loss``.
    """

    uses_gradient_penalty = False
    clips_weights = False
    generator_needs_real = False

    def critic_loss(self, real_maps: torch.Tensor, fake_maps: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def generator_loss(self, fake_maps: torch.Tensor, real_maps: torch.Tensor | None = None) -> torch.Tensor:
        raise NotImplementedError


class WassersteinLoss(AdversarialLoss):
    """Critic minimises ``E[D(fake)] - E[D(real)] (+ drift * E[D(real)^2])``; generator minimises ``-E[D(fake)]``.

    The optional drift term (Karras et al. 2018, 1e-3 there) keeps the unconstrained scores from wandering off.
    """

    def __init__(self, drift: float = 0.0):
        self.drift = drift

    def critic_loss(self, real_maps: torch.Tensor, fake_maps: torch.Tensor) -> torch.Tensor:
        loss = fake_maps.mean() - real_maps.mean()
        if self.drift:
            loss = loss + self.drift * (sample_scores(real_maps) ** 2).mean()
        return loss

    def generator_loss(self, fake_maps: torch.Tensor, real_maps: torch.Tensor | None = None) -> torch.Tensor:
        return -fake_maps.mean()


class WassersteinGP(WassersteinLoss):
    uses_gradient_penalty = True


class WassersteinClip(WassersteinLoss):
    """The original WGAN: Lipschitz by clipping every critic weight to [-c, c] after each step."""

    clips_weights = True


class VanillaLoss(AdversarialLoss):
    """Cross-entropy GAN with the non-saturating generator loss (Goodfellow et al. 2014)."""

    def critic_loss(self, real_maps: torch.Tensor, fake_maps: torch.Tensor) -> torch.Tensor:
        return F.binary_cross_entropy_with_logits(
            real_maps, torch.ones_like(real_maps)
        ) + F.binary_cross_entropy_with_logits(fake_maps, torch.zeros_like(fake_maps))

    def generator_loss(self, fake_maps: torch.Tensor, real_maps: torch.Tensor | None = None) -> torch.Tensor:
        return F.binary_cross_entropy_with_logits(fake_maps, torch.ones_like(fake_maps))


class LeastSquaresLoss(AdversarialLoss):
    """LSGAN (Mao et al. 2017): real -> 1, fake -> 0 for the critic; fake -> 1 for the generator."""

    def critic_loss(self, real_maps: torch.Tensor, fake_maps: torch.Tensor) -> torch.Tensor:
        return 0.5 * (((real_maps - 1) ** 2).mean() + (fake_maps**2).mean())

    def generator_loss(self, fake_maps: torch.Tensor, real_maps: torch.Tensor | None = None) -> torch.Tensor:
        return 0.5 * ((fake_maps - 1) ** 2).mean()


class RelativisticLeastSquares(AdversarialLoss):
    """RaGAN-LS, DeblurGAN-v2's objective (Kupyn et al. 2019, after Jolicoeur-Martineau 2018): each score is
    judged relative to the mean score of the other kind. Critic: ``[(D(x) - E D(G) - 1)^2 + (D(G) - E D(x) + 1)^2]
    / 2``; generator: the same with the targets swapped. Means are over the batch's patch maps."""

    generator_needs_real = True

    @staticmethod
    def _relative(first: torch.Tensor, second: torch.Tensor, target: float) -> torch.Tensor:
        return ((first - second.mean() - target) ** 2).mean()

    def critic_loss(self, real_maps: torch.Tensor, fake_maps: torch.Tensor) -> torch.Tensor:
        return (self._relative(real_maps, fake_maps, 1.0) + self._relative(fake_maps, real_maps, -1.0)) / 2

    def generator_loss(self, fake_maps: torch.Tensor, real_maps: torch.Tensor | None = None) -> torch.Tensor:
        if real_maps is None:
            raise ValueError("ragan-ls: the generator loss needs the critic's scores of the real images")
        return (self._relative(real_maps, fake_maps, -1.0) + self._relative(fake_maps, real_maps, 1.0)) / 2


def feature_matching(real_features: list[torch.Tensor], fake_features: list[torch.Tensor]) -> torch.Tensor:
    """pix2pixHD's feature-matching term: the mean over the critic's layers of the L1 distance between its
    activations on the real and on the restored image (real ones detached). A perceptual loss learnt on this very
    data, so it needs no ImageNet weights."""
    if not real_features or len(real_features) != len(fake_features):
        raise ValueError("feature matching needs the same non-empty list of critic layers for real and fake")
    terms = [(fake - real.detach()).abs().mean() for real, fake in zip(real_features, fake_features)]
    return torch.stack(terms).mean()


GAN_TYPES: Registry = Registry("gan_type", {
    "wgan-gp": WassersteinGP, "wgan-clip": WassersteinClip, "vanilla": VanillaLoss, "lsgan": LeastSquaresLoss,
    "ragan-ls": RelativisticLeastSquares,
})


def build_adversarial_loss(name: str, drift: float = 0.0) -> AdversarialLoss:
    objective = GAN_TYPES.lookup(name)
    return objective(drift) if issubclass(objective, WassersteinLoss) else objective()
