import math

import pytest
import torch
from torch import nn

from core.errors import MissingWeightsError
from losses.adversarial import GAN_TYPES, build_adversarial_loss, gradient_penalty, interpolate
from losses.perceptual import VGG19_FILE, PerceptualLoss
from losses.torchvision_import import import_torchvision
from nets import PatchGAN


class LinearCritic(nn.Module):
    """D(c, x) = <w, x>: its gradient is w for every sample, so ||grad|| = ||w||."""

    def __init__(self, weight: torch.Tensor):
        super().__init__()
        self.weight = weight

    def forward(self, condition, image):
        return (image * self.weight).flatten(1).sum(1).view(-1, 1, 1, 1)


class QuadraticCritic(nn.Module):
    """D(c, x) = ||x||^2 / 2: its gradient is x itself, so samples of different size have different norms."""

    def forward(self, condition, image):
        return (0.5 * image.pow(2)).flatten(1).sum(1).view(-1, 1, 1, 1)


def test_gradient_penalty_of_a_linear_critic_is_lambda_times_norm_minus_one_squared():
    torch.manual_seed(0)
    weight = torch.randn(3, 8, 8)
    real, fake, condition = torch.rand(4, 3, 8, 8), torch.rand(4, 3, 8, 8), torch.rand(4, 3, 8, 8)
    penalty = 10 * gradient_penalty(LinearCritic(weight), condition, real, fake)
    assert penalty.item() == pytest.approx(10 * (weight.norm().item() - 1) ** 2, rel=1e-5)


def test_gradient_norm_is_per_sample_over_chw_not_per_pixel():
    # Sample i is the constant image v_i, real = fake, so the interpolation weight does not matter.
    values = torch.tensor([0.01, 0.05, 0.2])
    images = values.view(3, 1, 1, 1).expand(3, 3, 4, 4).clone()
    penalty = gradient_penalty(QuadraticCritic(), images, images, images).item()
    per_sample = ((values * math.sqrt(3 * 4 * 4) - 1) ** 2).mean().item()
    per_pixel = ((values * math.sqrt(3) - 1) ** 2).mean().item()  # DeblurGAN's .norm(2, dim=1)
    assert penalty == pytest.approx(per_sample, rel=1e-5)
    assert abs(penalty - per_pixel) > 0.1


def test_interpolation_draws_one_weight_per_sample():
    real, fake = torch.zeros(64, 3, 5, 5), torch.ones(64, 3, 5, 5)
    mixed = interpolate(real, fake, torch.Generator().manual_seed(0))
    per_sample = mixed.flatten(1)
    assert torch.equal(per_sample.min(1).values, per_sample.max(1).values)  # constant within a sample
    assert per_sample[:, 0].unique().numel() == 64  # different across samples, not one per batch


def test_gradient_penalty_trains_the_critic_towards_unit_gradients():
    torch.manual_seed(0)
    weight = nn.Parameter(torch.full((3, 4, 4), 1.0))
    optimizer = torch.optim.SGD([weight], lr=0.05)
    real, fake = torch.rand(8, 3, 4, 4), torch.rand(8, 3, 4, 4)
    for _ in range(200):
        optimizer.zero_grad()
        gradient_penalty(LinearCritic(weight), real, real, fake).backward()
        optimizer.step()
    assert weight.norm().item() == pytest.approx(1.0, abs=1e-3)


def test_patchgan_has_a_70_pixel_receptive_field_and_a_patch_map_output():
    critic = PatchGAN(norm="none")
    condition, image = torch.rand(1, 3, 128, 128), torch.rand(1, 3, 128, 128, requires_grad=True)
    scores = critic(condition, image)
    assert scores.shape == (1, 1, 14, 14)
    scores[0, 0, 7, 7].backward()
    rows, cols = image.grad[0].abs().sum(0).nonzero().unbind(1)
    assert rows.max() - rows.min() + 1 == 70 and cols.max() - cols.min() + 1 == 70


def test_patchgan_is_conditional_on_the_blurred_input():
    torch.manual_seed(0)
    critic = PatchGAN(base_channels=8)
    image = torch.rand(2, 3, 64, 64)
    assert not torch.allclose(critic(torch.rand(2, 3, 64, 64), image), critic(torch.rand(2, 3, 64, 64), image))
    with pytest.raises(ValueError, match="unknown critic norm 'batch'"):
        PatchGAN(norm="batch")


@pytest.mark.parametrize("name", list(GAN_TYPES))
def test_every_gan_type_rewards_the_critic_for_separating_real_from_fake(name):
    loss = build_adversarial_loss(name)
    good = loss.critic_loss(torch.full((2, 1, 3, 3), 3.0), torch.full((2, 1, 3, 3), -3.0))
    bad = loss.critic_loss(torch.full((2, 1, 3, 3), -3.0), torch.full((2, 1, 3, 3), 3.0))
    assert good < bad
    real = torch.zeros(2, 1, 3, 3)  # relativistic losses judge the fake scores against these; the others ignore them
    winning, losing = torch.full((2, 1, 3, 3), 3.0), torch.full((2, 1, 3, 3), -3.0)
    assert loss.generator_loss(winning, real) < loss.generator_loss(losing, real)


def _small_vgg_file(path):
    """A VGG19 checkpoint made here (random weights, only the layers up to conv3_3), in torchvision's key format."""
    vgg = import_torchvision().models.vgg
    features = vgg.make_layers(vgg.cfgs["E"])[:15]
    torch.manual_seed(1)
    for module in features:
        if isinstance(module, nn.Conv2d):
            nn.init.normal_(module.weight, std=0.05)
    torch.save({f"features.{k}": v for k, v in features.state_dict().items()}, path)
    return features


def test_perceptual_loss_loads_weights_through_the_torch_hub_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    (tmp_path / "hub" / "checkpoints").mkdir(parents=True)
    reference = _small_vgg_file(tmp_path / "hub" / "checkpoints" / VGG19_FILE)
    loss = PerceptualLoss(weights="imagenet", allow_download=False)
    assert torch.equal(loss.features[14].weight, reference[14].weight)
    x = torch.rand(2, 3, 32, 32)
    assert loss(x, x).item() == 0.0
    assert loss(x, torch.rand(2, 3, 32, 32)).item() > 0.0


def test_perceptual_loss_is_frozen_and_stays_in_eval_mode(tmp_path):
    _small_vgg_file(tmp_path / "vgg.pth")
    loss = PerceptualLoss(layers=["relu2_2", "conv3_3"], criterion="l1", weights=str(tmp_path / "vgg.pth"))
    loss.train()
    assert not loss.features.training
    assert not any(p.requires_grad for p in loss.parameters())
    prediction = torch.rand(1, 3, 24, 24, requires_grad=True)
    loss(prediction, torch.rand(1, 3, 24, 24)).backward()
    assert prediction.grad is not None and prediction.grad.abs().sum() > 0


def test_missing_vgg_weights_say_which_file_and_where(tmp_path, monkeypatch):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    with pytest.raises(MissingWeightsError, match=f"put torchvision's {VGG19_FILE} at {tmp_path}/hub/checkpoints/"):
        PerceptualLoss(weights="imagenet", allow_download=False)
    with pytest.raises(MissingWeightsError, match="nope.pth does not exist"):
        PerceptualLoss(weights=str(tmp_path / "nope.pth"))
    with pytest.raises(ValueError, match="unknown VGG19 layer"):
        PerceptualLoss(layers=["conv9_9"], weights="random")


def test_spectral_norm_bounds_every_critic_layer_to_unit_gain():
    torch.manual_seed(0)
    critic = PatchGAN(base_channels=8, norm="none", spectral_norm=True).train()
    condition, image = torch.rand(2, 3, 64, 64), torch.rand(2, 3, 64, 64)
    for _ in range(30):  # power iteration converges over forward passes in training mode
        critic(condition, image)
    convs = [m for m in critic.modules() if isinstance(m, nn.Conv2d)]
    assert len(convs) == 5
    for conv in convs:
        sigma = torch.linalg.matrix_norm(conv.weight.flatten(1), ord=2).item()
        assert sigma == pytest.approx(1.0, abs=0.05)


def test_non_finite_steps_are_skipped_then_stop_the_run(tmp_path):
    from torch.utils.tensorboard import SummaryWriter

    from gan.config import load_config
    from gan.errors import TrainingDiverged
    from gan.experiment import plan_experiment
    from gan.pretrain import PretrainTrainer
    from helpers import TINY

    config = load_config(None, [*TINY, f"experiment.root={tmp_path}", "experiment.name=nan", "train.max_bad_steps=3"])
    trainer = PretrainTrainer(config, plan_experiment(config, "nan"))
    trainer.writer = SummaryWriter(str(tmp_path / "tb"))
    generator, optimizer = trainer.generator, trainer.optimizer
    x = torch.rand(1, 3, 32, 32)
    before = [p.detach().clone() for p in generator.parameters()]

    # 1. A non-finite loss: skipped, nothing applied.
    assert math.isnan(trainer.optimise(generator(x).mean() * float("nan"), optimizer, generator.parameters()))
    assert all(torch.equal(a, b) for a, b in zip(before, generator.parameters()))
    # 2. A good step applies and resets the count.
    assert math.isfinite(trainer.optimise(generator(x).mean(), optimizer, generator.parameters()))
    assert trainer.bad_steps == 0
    # 3. A finite loss with infinite gradients: skipped too; the third bad step in a row stops the run.
    handle = generator.head.weight.register_hook(lambda grad: grad * float("inf"))
    for _ in range(2):
        assert math.isnan(trainer.optimise(generator(x).mean(), optimizer, generator.parameters()))
    with pytest.raises(TrainingDiverged, match="3 steps in a row with a non-finite loss or gradient"):
        trainer.optimise(generator(x).mean(), optimizer, generator.parameters())
    handle.remove()
    assert not (tmp_path / "nan").exists()  # setup alone never wrote the experiment folder


def test_the_adversarial_phase_resolves_its_init_without_editing_the_callers_config(tmp_path, checkpoint):
    from gan.adversarial import AdversarialTrainer
    from gan.config import load_config
    from gan.experiment import plan_experiment
    from helpers import TINY

    state = torch.load(checkpoint, weights_only=True)
    pretrain = tmp_path / "pre.pt"
    torch.save({**state, "phase": "pretrain"}, pretrain)
    config = load_config(None, [*TINY, f"experiment.root={tmp_path}", "experiment.name=adv", f"adv.init={pretrain}",
                                "adv.w_perceptual=0", "adv.critic={name: patchgan, base_channels: 8}",
                                "model.start_filters=48"])
    before = config.to_dict()
    trainer = AdversarialTrainer(config, plan_experiment(config, "adv"))
    assert config.to_dict() == before  # the caller's config is left as it was
    assert trainer.config.model == {"name": "light_unet", "start_filters": 4}  # the pretrain run's network
    assert trainer.config.adv.init == str(trainer.init_path) == str(pretrain)
