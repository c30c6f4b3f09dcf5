"""train.amp=auto: bf16 only where the CPU flags say it is native and a measured step is faster."""

import pytest
import torch

from core.cpu_features import cpu_flags, native_bf16_flags
from gan.config import TrainConfig
from gan.precision import choose_cpu_precision, choose_precision
from helpers import TINY, run_cli
from nets import build_network


def _tiny_generator() -> torch.nn.Module:
    torch.manual_seed(0)
    return build_network("light_unet", start_filters=8)


def test_cpu_flags_are_read_from_cpuinfo(tmp_path):
    info = tmp_path / "cpuinfo"
    info.write_text("processor\t: 0\nvendor_id\t: AuthenticAMD\nflags\t\t: fpu sse2 avx2 avx512f avx512_bf16\n\n"
                    "processor\t: 1\nflags\t\t: fpu\n")
    assert cpu_flags(info) == {"fpu", "sse2", "avx2", "avx512f", "avx512_bf16"}
    assert native_bf16_flags(cpu_flags(info)) == ["avx512_bf16"]
    assert cpu_flags(tmp_path / "absent") == set()
    assert native_bf16_flags({"avx2", "fma"}) == []


def test_auto_keeps_fp32_without_native_bf16_and_measures_where_it_is_native():
    model = _tiny_generator()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    sample = torch.rand(2, 3, 32, 32)
    plain = choose_cpu_precision(model, sample, flags={"avx2", "fma"})
    assert plain.dtype is None and plain.name == "off" and "no native bf16" in plain.reason
    native = choose_cpu_precision(model, sample, flags={"avx512_bf16"}, repeats=1)
    # Either answer is possible on a given CPU; the measurement that decided it is stated.
    assert native.dtype in (None, torch.bfloat16) and "fp32," in native.reason and "s bf16" in native.reason
    assert all(p.grad is None for p in model.parameters())  # timing leaves no gradients behind
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())  # nor changed weights


def test_explicit_settings_are_taken_as_configured():
    model, sample = _tiny_generator(), torch.rand(1, 3, 16, 16)
    assert choose_precision("off", torch.device("cpu"), model, lambda: sample).dtype is None
    assert choose_precision("bf16", torch.device("cpu"), model, lambda: sample).dtype is torch.bfloat16
    assert TrainConfig(amp="auto").check() == []
    assert any("train.amp must be one of off, auto, bf16, fp16" in p for p in TrainConfig(amp="half").check())


@pytest.mark.subprocess
def test_a_run_with_auto_precision_records_its_choice(tmp_path):
    result = run_cli("-m", "train_gan", "--pretrain", "--name", "auto", "--set", *TINY, "train.amp=auto",
                     cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "train.amp=auto: " in result.stdout
    last = torch.load(sorted((tmp_path / "experiments" / "auto" / "checkpoints").glob("step-*.pt"))[-1],
                      weights_only=True)
    assert last["precision"]["amp"] in ("off", "bf16") and last["precision"]["reason"]
