"""The models in weights/ are real deblurrers: they pass their sha256 check, load, and sharpen photos they never saw.

The photo is scikit-image's coffee (CC0), which neither shipped model trained on (they trained on the installable
photo set, datasets/photo_manifest.json), blurred by camera shake with read noise as on the motion-v1 benchmark.
"""

import numpy as np
import pytest
import torch
from PIL import Image

from datasets.photos import embedded_photo
from datasets.synthetic import Degradation
from evaluation.metrics import psnr_per_image
from helpers import ROOT, run_cli
from restore.inference import Restorer, default_checkpoint, load_generator


@pytest.fixture(scope="module")
def shaken_photos():
    photo = embedded_photo("coffee")
    degrade = Degradation(kernel_size=21, kernels={"trajectory_v1": 1.0}, noise_sigma=0.01, noise_space="srgb")
    rng = np.random.default_rng(7)
    pairs = []
    for top, left in ((60, 100), (150, 300), (250, 420)):  # cup rim, saucer, beans: edges a shake smears
        pair = degrade(photo[:, top : top + 148, left : left + 148], rng)
        pairs.append((pair["blur"], pair["sharp"]))
    return torch.stack([b for b, _ in pairs]), torch.stack([s for _, s in pairs])


@pytest.fixture(scope="module")
def restorations(shaken_photos):
    blurred, _ = shaken_photos
    out = {}
    for model in ("pretrain", "gan"):
        restore = Restorer(load_generator(default_checkpoint(model), torch.device("cpu")), torch.device("cpu"), tile=0)
        out[model] = torch.stack([restore(image) for image in blurred])
    return out


def test_the_pretrain_model_sharpens_an_unseen_photo(shaken_photos, restorations):
    blurred, sharp = shaken_photos
    gain = psnr_per_image(restorations["pretrain"], sharp) - psnr_per_image(blurred, sharp)
    assert (gain > 0.1).all() and gain.mean() > 0.5, gain  # measured: +1.54, +1.35, +0.57 dB


def test_the_gan_model_stays_close_to_the_pretrain_model(shaken_photos, restorations):
    blurred, sharp = shaken_photos
    pretrain, gan = (psnr_per_image(restorations[m], sharp).mean() for m in ("pretrain", "gan"))
    assert gan > psnr_per_image(blurred, sharp).mean() and gan > pretrain - 1.0, (gan, pretrain)


@pytest.mark.subprocess
def test_infer_uses_the_bundled_models_without_a_checkpoint(tmp_path, shaken_photos, restorations):
    blurred, _ = shaken_photos
    photo = tmp_path / "shaken.png"
    Image.fromarray((blurred[0].permute(1, 2, 0).numpy() * 255).round().astype(np.uint8)).save(photo)
    for model in ("pretrain", "gan"):
        out = tmp_path / f"{model}.png"
        result = run_cli("infer.py", "--input", str(photo), "--output", str(out), "--model", model, cwd=ROOT)
        assert result.returncode == 0, result.stderr
        written = torch.from_numpy(np.asarray(Image.open(out), dtype=np.float32) / 255).permute(2, 0, 1)
        # the same model as loaded in-process, up to the 8-bit input and output
        assert (written - restorations[model][0]).abs().mean() < 2 / 255
