"""torchrun data parallelism: two real processes with the gloo backend on the CPU, both phases."""

import os
import subprocess
import sys

import pytest
import torch

import train_gan
from core.checkpoint import load_checkpoint
from gan.distributed import weights_checksum
from helpers import ROOT, TINY
from nets import build_network
from restore.generator import generator_from_checkpoint

pytestmark = pytest.mark.subprocess  # every test here starts the project's scripts or servers


def torchrun(*args: str, cwd) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(ROOT), "NO_ALBUMENTATIONS_UPDATE": "1", "OMP_NUM_THREADS": "1"}
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
               str(ROOT / "train_gan.py"), *args]
    return subprocess.run(command, cwd=cwd, env=env, capture_output=True, text=True, timeout=600)


def last_checkpoint(folder):
    return load_checkpoint(sorted((folder / "checkpoints").glob("step-*.pt"))[-1])


@pytest.mark.slow  # over 20 s on a 2-core CPU
@pytest.mark.skipif(not torch.distributed.is_available(), reason="this torch build has no torch.distributed")
def test_two_gloo_processes_train_both_phases_to_identical_replicas(tmp_path, capsys):
    # 16 pairs an epoch, batch 4 per process x 2 processes: 2 steps an epoch, each rank on its own 8 pairs.
    common = [*TINY, "data.train_pairs_per_epoch=16", "train.threads=1", "train.ema_decay=0.9"]
    result = torchrun("--pretrain", "--set", *common, "experiment.name=pre", cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    assert result.stdout.count("experiment folder:") == 1  # rank 0 alone speaks
    assert "batch 4 per process x 2 processes = 8" in result.stdout
    state = last_checkpoint(tmp_path / "experiments" / "pre")
    assert state["step"] == 4 and state["world_size"] == 2
    # Each rank hashed its own weights at the checkpoint: the ranks trained on different pairs, so only averaged
    # gradients keep them equal; and the hash is that of the weights rank 0 saved.
    first, second = state["replica_checksums"]
    assert first == second
    generator = build_network("light_unet", start_filters=4)
    generator.load_state_dict(state["generator"])
    assert weights_checksum([generator]) == first

    result = torchrun("--adv", "--set", *common, "experiment.name=adv", "adv.n_critic=2", "adv.w_perceptual=0",
                      f"adv.init={tmp_path / 'experiments' / 'pre' / 'checkpoints' / 'best.pt'}", cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    state = last_checkpoint(tmp_path / "experiments" / "adv")
    first, second = state["replica_checksums"]  # generator and critic (gradient penalty averaged explicitly)
    assert first == second and state["step"] == 4
    assert not torch.equal(generator_from_checkpoint(state).state_dict()["head.weight"], generator.head.weight)

    # A run of 2 processes continues with 2 processes only: each one's share of an epoch depends on the count.
    code = train_gan.main(["--pretrain", "--resume", str(tmp_path / "experiments" / "pre")])
    assert code == 2 and "trained by 2 process(es), this run has 1" in capsys.readouterr().err
