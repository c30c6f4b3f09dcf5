"""Numerical details: perceptual features not overwritten in place, EMA with BatchNorm, finite
validation PSNR for identical pairs, and model cards that name the adversarial objective a run used."""

import math

import torch
from torch.optim.swa_utils import AveragedModel

from evaluation.metrics import PSNR_CAP, mean_psnr
from gan.config import load_config
from gan.experiment import plan_experiment
from gan.pretrain import PretrainTrainer
from gan.trainer import ema_with_warmup
from helpers import TINY
from losses.perceptual import PerceptualLoss
from nets import build_network
from release.model_card import render


def test_a_stored_conv_feature_is_not_overwritten_by_the_relu_after_it():
    loss = PerceptualLoss(["conv2_2", "conv3_3"], weights="random", allow_download=False)
    torch.manual_seed(0)
    conv2_2, conv3_3 = loss._features(torch.rand(1, 3, 32, 32))
    assert conv2_2.min() < 0  # a conv output, not relu(conv2_2) as an in-place ReLU would leave it
    # ... and it is exactly what running the layers by hand gives.
    x = (torch.rand(1, 3, 32, 32, generator=torch.Generator().manual_seed(1)) - loss.mean) / loss.std
    expected = loss.features[: loss.indices[0] + 1](x)
    got, _ = loss._features(torch.rand(1, 3, 32, 32, generator=torch.Generator().manual_seed(1)))
    assert torch.allclose(got, expected)


def test_ema_of_a_batchnorm_generator_updates_and_copies_the_step_counter():
    model = build_network("light_unet", start_filters=4, norm="batch")
    ema = AveragedModel(model, multi_avg_fn=ema_with_warmup(0.999), use_buffers=True)
    for _ in range(3):
        model.train()(torch.rand(2, 3, 32, 32))
        ema.update_parameters(model)
    counters = [(n, b) for n, b in ema.module.named_buffers() if n.endswith("num_batches_tracked")]
    assert counters and all(int(b) == 3 for _, b in counters)
    running = dict(ema.module.named_buffers())
    assert any(not torch.equal(running[n], b) for n, b in model.named_buffers() if b.is_floating_point())


def test_validation_psnr_stays_finite_when_a_pair_is_identical(tmp_path):
    assert mean_psnr(torch.tensor([30.0, math.inf])) == (30.0 + PSNR_CAP) / 2
    config = load_config(None, [*TINY, f"experiment.root={tmp_path}", "experiment.name=inf"])
    trainer = PretrainTrainer(config, plan_experiment(config, "inf"))
    image = torch.rand(2, 3, 32, 32)
    trainer.val_loader = [{"blur": image, "sharp": image.clone()}]  # a noise-free pair with a delta-like kernel
    scores, _ = trainer._score(lambda blur: blur)
    assert scores.psnr == PSNR_CAP


def test_a_model_card_names_the_adversarial_objective_the_run_used():
    def card(gan_type):
        bundle = {"model": {"name": "light_unet"}, "phase": "adv",
                  "config": {"adv": {"gan_type": gan_type}, "train": {}, "data": {}}}
        return render(bundle, file_name="x.pt", digest="0", parameters=1, run=None, summaries=[], hardware="cpu",
                      commands=[])

    assert "(conditional least-squares GAN fine-tuning)" in card("lsgan")
    assert "WGAN-GP" not in card("lsgan")
    assert "(conditional WGAN-GP fine-tuning)" in card("wgan-gp")
