import math

import torch

from losses import charbonnier


def test_charbonnier_matches_hand_computed_values():
    prediction = torch.tensor([0.0, 0.5, 1.0, 0.25])
    target = torch.tensor([0.0, 0.0, 0.0, 1.0])
    eps = 1e-3
    expected = (eps + math.sqrt(0.25 + eps**2) + math.sqrt(1 + eps**2) + math.sqrt(0.5625 + eps**2)) / 4
    assert math.isclose(charbonnier(prediction, target, eps).item(), expected, rel_tol=1e-6)


def test_charbonnier_of_identical_images_is_eps_and_approaches_l1():
    x = torch.rand(2, 3, 8, 8)
    assert math.isclose(charbonnier(x, x, eps=1e-3).item(), 1e-3, rel_tol=1e-5)
    y = torch.rand(2, 3, 8, 8)
    assert math.isclose(charbonnier(x, y, eps=1e-6).item(), (x - y).abs().mean().item(), rel_tol=1e-4)


def test_charbonnier_gradient_is_bounded_like_l1():
    prediction = torch.tensor([10.0], requires_grad=True)
    charbonnier(prediction, torch.tensor([0.0])).backward()
    assert 0.999 < prediction.grad.item() <= 1.0
