"""train.init: a new pretrain run that starts from given generator weights (a checkpoint or a bundled file)."""

import pytest
import torch

from core.checkpoint import generator_weights, load_checkpoint
from helpers import TINY, run_cli


@pytest.mark.subprocess
def test_train_init_starts_a_new_run_from_given_generator_weights(tmp_path, photo_folder, checkpoint):
    common = ["--pretrain", "--set", *TINY, "data.source=folder", f"data.sharp_dir={photo_folder}", "train.epochs=1",
              "train.lr=1e-12", "train.lr_min=0"]
    result = run_cli("-m", "train_gan", *common, f"train.init={checkpoint}", "--name", "init", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    trained = generator_weights(load_checkpoint(tmp_path / "experiments" / "init" / "checkpoints" / "best.pt"))
    start = generator_weights(load_checkpoint(checkpoint))
    # A learning rate of 1e-12 leaves the weights where train.init put them (not a fresh random init).
    assert all(torch.allclose(trained[name].float(), start[name].float(), atol=1e-6) for name in start)

    wrong = run_cli("-m", "train_gan", *common, "model.start_filters=8", f"train.init={checkpoint}", "--name", "bad",
                    cwd=tmp_path)
    assert wrong.returncode == 2 and len(wrong.stderr.strip().splitlines()) == 1
    assert f"train.init {checkpoint} is not a generator of the configured network 'light_unet'" in wrong.stderr
    assert not (tmp_path / "experiments" / "bad").exists()
    missing = run_cli("-m", "train_gan", *common, "train.init=nowhere.pt", "--name", "missing", cwd=tmp_path)
    assert missing.returncode == 2 and "nowhere.pt does not exist" in missing.stderr
