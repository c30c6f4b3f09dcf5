"""Detail losses, RaGAN-LS, critic feature matching and the double-scale critic, with hand-computed values."""

import math

import pytest
import torch

from gan.config import load_config
from gan.errors import ConfigError
from losses.adversarial import RelativisticLeastSquares, build_adversarial_loss, feature_matching
from losses.detail import DETAIL_LOSSES, detail_terms, frequency_loss, gradient_loss, total_variation
from nets import build_network


def _ramp(height: int = 8, width: int = 10, slope: float = 0.05) -> torch.Tensor:
    return (torch.arange(width, dtype=torch.float32) * slope).expand(1, 1, height, width).clone()


def test_gradient_loss_ignores_offsets_and_measures_edge_contrast():
    target = _ramp()
    assert gradient_loss(target + 0.2, target).item() == pytest.approx(0.0, abs=1e-7)
    # A flat prediction misses the ramp's x-gradient: normalised Sobel gives the slope 0.05 inside, half of it in
    # the replicate-padded first and last columns; y-gradients are 0. Mean over 2 directions x 10 columns:
    expected = (8 * 0.05 + 2 * 0.025) / 10 / 2
    assert gradient_loss(torch.zeros_like(target), target).item() == pytest.approx(expected, rel=1e-5)


def test_frequency_loss_of_a_constant_error_is_its_dc_term():
    target = torch.rand(1, 1, 6, 8, generator=torch.Generator().manual_seed(0))
    # An error of c everywhere has one orthonormal Fourier coefficient, c * sqrt(H W), real; the mean of |.| runs
    # over H x W complex numbers, two parts each.
    c = 0.1
    assert frequency_loss(target + c, target).item() == pytest.approx(c * math.sqrt(48) / (2 * 48), rel=1e-5)
    assert frequency_loss(target, target).item() == pytest.approx(0.0, abs=1e-7)


def test_total_variation_of_one_step_edge():
    image = torch.zeros(1, 1, 4, 5)
    image[..., 3:] = 1.0  # one vertical edge: 4 of the 4 x 4 horizontal differences are 1
    assert total_variation(image).item() == pytest.approx(4 / 16)
    assert total_variation(torch.full((1, 3, 4, 5), 0.7)).item() == 0.0


def test_detail_terms_add_weighted_values_and_skip_zero_weights():
    prediction, target = torch.zeros(1, 1, 8, 10), _ramp()
    total, logged = detail_terms(prediction, target, {"gradient": 2.0, "tv": 0.0})
    assert set(logged) == {"loss_gradient"} and total.item() == pytest.approx(2 * logged["loss_gradient"])
    assert set(DETAIL_LOSSES) == {"gradient", "fft", "tv"}


def test_ragan_ls_matches_its_formula():
    loss = build_adversarial_loss("ragan-ls")
    assert isinstance(loss, RelativisticLeastSquares) and loss.generator_needs_real
    real, fake = torch.full((2, 1, 3, 3), 2.0), torch.full((2, 1, 3, 3), 0.5)
    # Critic: [(2 - 0.5 - 1)^2 + (0.5 - 2 + 1)^2] / 2 = 0.25; generator: [(2 - 0.5 + 1)^2 + (0.5 - 2 - 1)^2] / 2 = 6.25.
    assert loss.critic_loss(real, fake).item() == pytest.approx(0.25)
    assert loss.generator_loss(fake, real).item() == pytest.approx(6.25)
    with pytest.raises(ValueError, match="needs the critic's scores of the real images"):
        loss.generator_loss(fake)


def test_feature_matching_is_zero_for_the_real_image_and_trains_only_the_generator_side():
    torch.manual_seed(0)
    critic = build_network("patchgan", base_channels=4, n_layers=2)
    condition, real = torch.rand(1, 3, 32, 32), torch.rand(1, 3, 32, 32)
    fake = torch.rand(1, 3, 32, 32, requires_grad=True)
    features = critic.features(condition, real)
    assert len(features) == 3  # one per LeakyReLU: the first conv and n_layers blocks
    assert feature_matching(features, critic.features(condition, real)).item() == 0.0
    value = feature_matching(features, critic.features(condition, fake))
    value.backward()
    assert value.item() > 0 and fake.grad.abs().sum() > 0


def test_double_scale_critic_weights_its_local_and_global_scores_equally():
    torch.manual_seed(0)
    critic = build_network("double_scale", base_channels=4, n_layers=2, global_n_layers=2, global_downscale=2)
    condition, image = torch.rand(2, 3, 64, 64), torch.rand(2, 3, 64, 64)
    scores = critic(condition, image)
    local = critic.local(condition, image).flatten(1)
    half = local.shape[1]
    assert scores.shape == (2, 1, 1, 2 * half)
    assert torch.allclose(scores[..., :half].flatten(1), local)
    small = torch.nn.functional.avg_pool2d
    whole = critic.global_critic(small(condition, 2), small(image, 2)).flatten(1).mean(1)
    assert torch.allclose(scores[0, 0, 0, half:], whole[0].expand(half))
    assert len(critic.features(condition, image)) == 6


def test_unknown_loss_names_and_gan_types_are_named():
    with pytest.raises(ConfigError, match="train.detail_losses: unknown loss 'edges'; known: gradient, fft, tv"):
        load_config(None, ["train.detail_losses={edges: 1}"])
    with pytest.raises(ConfigError, match="train.detail_losses.tv must be a number >= 0"):
        load_config(None, ["train.detail_losses={tv: -1}"])
    with pytest.raises(ConfigError, match="adv.gan_type must be one of wgan-gp, wgan-clip, vanilla, lsgan, ragan-ls"):
        load_config(None, ["adv.gan_type=ragan"])


def test_plateau_schedule_halves_the_rate_when_validation_stalls(tmp_path):
    from gan.experiment import plan_experiment
    from gan.pretrain import PretrainTrainer
    from gan.trainer import Scores
    from helpers import TINY

    config = load_config(None, [*TINY, f"experiment.root={tmp_path}", "experiment.name=plateau",
                                "train.schedule=plateau", "train.plateau_patience=1", "train.lr=4e-4"])
    trainer = PretrainTrainer(config, plan_experiment(config, "plateau"))
    rates = []
    for psnr in (30.0, 31.0, 31.0, 30.5, 30.9, 30.8):  # better, better, then stalls
        trainer.after_validation(Scores(psnr=psnr, ssim=0.9))
        rates.append(trainer.optimizer.param_groups[0]["lr"])
    # Patience 1: the second epoch without a better PSNR halves the rate, and the count starts again.
    assert rates == pytest.approx([4e-4, 4e-4, 4e-4, 2e-4, 2e-4, 1e-4])
    with pytest.raises(ConfigError, match="train.schedule must be one of cosine, plateau"):
        load_config(None, ["train.schedule=step"])
