import math

import numpy as np
import pytest
import torch
from skimage.metrics import structural_similarity

from evaluation.metrics import psnr_per_image, quantize_8bit, ssim_per_image


def test_psnr_of_a_known_error():
    target = torch.zeros(1, 3, 4, 4)
    prediction = torch.full((1, 3, 4, 4), 10 / 255)
    assert math.isclose(psnr_per_image(prediction, target).item(), 20 * math.log10(255 / 10), rel_tol=1e-9)


def test_identical_images_have_infinite_psnr():
    x = torch.rand(2, 3, 8, 8)
    assert torch.isinf(psnr_per_image(x, x)).all()


def test_psnr_rounds_to_8_bit_before_comparing():
    target = torch.full((1, 3, 4, 4), 100 / 255)
    within_rounding = target + 0.4 / 255
    assert torch.isinf(psnr_per_image(within_rounding, target)).all()
    rounded = quantize_8bit(torch.tensor([-0.2, 1.3, 0.6 / 255, 0.4 / 255]))
    assert torch.equal(rounded, torch.tensor([0.0, 1.0, 1 / 255, 0.0]))


def test_psnr_is_averaged_per_image_not_over_the_pooled_error():
    target = torch.zeros(2, 3, 4, 4)
    prediction = target.clone()
    prediction[0] = 1 / 255
    prediction[1] = 10 / 255
    scores = psnr_per_image(prediction, target)
    assert scores.shape == (2,)
    assert math.isclose(scores[0].item(), 20 * math.log10(255), rel_tol=1e-9)
    assert math.isclose(scores[1].item(), 20 * math.log10(255 / 10), rel_tol=1e-9)
    # The mean of the two (what evaluate.py averages) differs from the PSNR of the pooled error.
    pooled = 10 * math.log10(1 / ((1 / 255) ** 2 / 2 + (10 / 255) ** 2 / 2))
    assert abs(scores.mean().item() - pooled) > 5


@pytest.mark.parametrize("seed", [0, 1])
def test_ssim_matches_scikit_image_gaussian_definition(seed):
    rng = np.random.default_rng(seed)
    a = rng.integers(0, 256, (3, 40, 48)).astype(np.float32) / 255
    b = np.clip(a + rng.normal(0, 0.1, a.shape), 0, 1).round(3).astype(np.float32)
    ours = ssim_per_image(torch.from_numpy(a)[None], torch.from_numpy(b)[None]).item()
    reference = structural_similarity(
        np.round(a * 255) / 255, np.round(b * 255) / 255, gaussian_weights=True, sigma=1.5,
        use_sample_covariance=False, data_range=1.0, channel_axis=0,
    )
    assert abs(ours - reference) < 1e-4
