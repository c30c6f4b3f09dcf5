"""Inference backends: the ONNX runtimes give torch's result, the export is cached per weights, and what a runtime
cannot run (exact InstanceNorm tiles, tiny inputs) goes to torch."""

import numpy as np
import pytest
import torch
from PIL import Image

from core.checkpoint import save_checkpoint
from core.errors import ConfigError
from helpers import ROOT, run_cli, smooth_photo
from nets import build_network
from restore import backends, inference
from restore.backends import cached_onnx, resolve_backend, weights_sha256
from restore.inference import Restorer, resolve_precision

RUNTIMES = [name for name in ("onnxruntime", "openvino") if backends.available(name)]
CPU = torch.device("cpu")


def _model(norm: str = "instance") -> torch.nn.Module:
    torch.manual_seed(0)
    model = build_network("light_unet", start_filters=4, norm=norm)
    torch.nn.init.normal_(model.head.weight, std=0.05)  # away from the identity, so outputs differ by path
    return model.eval()


@pytest.fixture(autouse=True)
def private_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("LIGHTDEBLUR_CACHE", str(tmp_path / "cache"))


def test_the_weights_key_follows_the_values_not_the_memory_format():
    model = _model()
    key = weights_sha256(model)
    assert weights_sha256(_model().to(memory_format=torch.channels_last)) == key
    with torch.no_grad():
        model.head.bias[0] += 1e-3
    assert weights_sha256(model) != key


@pytest.mark.skipif(not RUNTIMES, reason="neither onnxruntime nor openvino is installed")
def test_the_export_is_written_once_per_weights_and_leaves_no_partial_files(tmp_path):
    model = _model()
    path = cached_onnx(model)
    assert path.is_file() and path.parent.name == f"{weights_sha256(model)}-{backends.EXPORT_VERSION}"
    stamp = path.stat().st_mtime_ns
    assert cached_onnx(_model()) == path and path.stat().st_mtime_ns == stamp  # same weights: no new export
    with torch.no_grad():
        model.head.bias[0] += 1e-3
    assert cached_onnx(model) != path
    assert sorted(p.name for p in (tmp_path / "cache").iterdir()) == sorted(
        [path.parent.name, cached_onnx(model).parent.name])  # no staging folders left behind


@pytest.mark.parametrize("backend", RUNTIMES)
def test_a_runtime_restores_like_torch_and_hands_exact_tiles_to_torch(backend):
    model = _model()
    image = torch.rand(3, 72, 88)
    expected = Restorer(model, CPU, tile=0, precision="fp32")(image)
    restore = Restorer(model, CPU, tile=0, precision="fp32", backend=backend)
    assert (restore(image) - expected).abs().max() < 1e-3 and restore.last_backend == backend
    tiled = Restorer(model, CPU, tile=48, overlap=16, precision="fp32", backend=backend)
    exact = Restorer(model, CPU, tile=48, overlap=16, precision="fp32")(image)
    assert torch.equal(tiled(image), exact) and tiled.last_backend == "torch"  # statistics hooks need torch
    own = Restorer(model, CPU, tile=48, overlap=16, precision="fp32", norm_statistics="tile", backend=backend)
    fast = Restorer(model, CPU, tile=48, overlap=16, precision="fp32", norm_statistics="tile")(image)
    assert (own(image) - fast).abs().max() < 1e-3 and own.last_backend == backend


@pytest.mark.parametrize("backend", RUNTIMES)
def test_inputs_below_the_exported_minimum_run_in_torch(backend):
    model = _model()
    restore = Restorer(model, CPU, tile=0, precision="fp32", backend=backend)
    small = torch.rand(1, 3, 20, 40)
    assert torch.equal(restore.runtime(small), restore.network(small))


def test_backend_choices_and_their_errors(monkeypatch):
    with pytest.raises(ConfigError, match="backend must be one of"):
        resolve_backend("tensorrt", CPU, torch.float32)
    with pytest.raises(ConfigError, match="fp32 only"):
        resolve_backend("onnxruntime", CPU, torch.bfloat16)
    with pytest.raises(ConfigError, match="runs on the CPU"):
        resolve_backend("openvino", torch.device("cuda"), torch.float16)
    assert resolve_backend("auto", torch.device("cuda"), torch.float16) == "torch"
    monkeypatch.setattr(backends, "available", lambda name: name == "torch")
    assert resolve_backend("auto", CPU, torch.float32) == "torch"
    with pytest.raises(ConfigError, match=r"pip install -e '\.\[openvino\]'"):
        resolve_backend("openvino", CPU, torch.float32)


def test_auto_precision_on_a_cpu_follows_its_bf16_flags(monkeypatch):
    monkeypatch.setattr(inference, "native_bf16_flags", lambda: [])
    assert resolve_precision("auto", CPU) == torch.float32
    monkeypatch.setattr(inference, "native_bf16_flags", lambda: ["amx_bf16"])
    assert resolve_precision("auto", CPU) == torch.bfloat16
    assert resolve_precision("fp32", CPU) == torch.float32
    if "onnxruntime" in RUNTIMES:  # auto precision on a bf16 CPU still runs onnxruntime, in fp32
        assert Restorer(_model(), CPU, tile=0, backend="onnxruntime").dtype == torch.float32


@pytest.mark.slow  # over 20 s on a 2-core CPU
@pytest.mark.subprocess
@pytest.mark.skipif("openvino" not in RUNTIMES, reason="openvino is not installed")
def test_infer_with_the_openvino_backend_writes_what_torch_writes(tmp_path):
    checkpoint = tmp_path / "tiny.pt"
    save_checkpoint({"model": {"name": "light_unet", "start_filters": 4}, "generator": _model().state_dict()},
                    checkpoint)
    photo = tmp_path / "in.png"
    Image.fromarray(smooth_photo(np.random.default_rng(0), 70, 90)).save(photo)
    outputs = {}
    for backend in ("torch", "openvino"):
        outputs[backend] = tmp_path / f"{backend}.png"
        result = run_cli("infer.py", "--input", str(photo), "--output", str(outputs[backend]), "--checkpoint",
                         str(checkpoint), "--precision", "fp32", "--backend", backend, cwd=ROOT)
        assert result.returncode == 0, result.stderr
    torch_out, openvino_out = (np.asarray(Image.open(outputs[b])).astype(int) for b in ("torch", "openvino"))
    assert np.abs(torch_out - openvino_out).max() <= 1
    tiled = run_cli("infer.py", "--input", str(photo), "--output", str(tmp_path / "tiled.png"), "--checkpoint",
                    str(checkpoint), "--backend", "openvino", "--tile", "48", "--overlap", "16", cwd=ROOT)
    assert tiled.returncode == 0 and "ran in torch, not openvino" in tiled.stderr, tiled.stderr
    result = run_cli("infer.py", "--input", str(photo), "--output", str(tmp_path / "x.png"), "--checkpoint",
                     str(checkpoint), "--backend", "tflite", cwd=ROOT)
    assert result.returncode == 2 and "backend must be one of" in result.stderr
    assert not (tmp_path / "x.png").exists()
