import pytest
import torch

from core.checkpoint import load_checkpoint, save_checkpoint
from gan.errors import ExperimentError
from nets import build_network
from restore.generator import generator_from_checkpoint


def _state(model, name="light_unet", **options):
    return {"model": {"name": name, **options}, "generator": model.state_dict()}


def test_round_trip_restores_identical_outputs(tmp_path):
    model = build_network("light_unet", start_filters=4)
    torch.nn.init.normal_(model.head.weight, std=0.1)
    save_checkpoint(_state(model, start_filters=4), tmp_path / "c.pt")
    reloaded = generator_from_checkpoint(load_checkpoint(tmp_path / "c.pt"))
    x = torch.rand(1, 3, 20, 20)
    assert torch.equal(model.eval()(x), reloaded.eval()(x))
    assert [p.name for p in tmp_path.iterdir()] == ["c.pt"]  # no temporary file left behind


def test_truncated_and_foreign_files_are_reported(tmp_path):
    model = build_network("light_unet", start_filters=4)
    save_checkpoint(_state(model, start_filters=4), tmp_path / "c.pt")
    data = (tmp_path / "c.pt").read_bytes()
    (tmp_path / "truncated.pt").write_bytes(data[: len(data) // 2])
    with pytest.raises(ExperimentError, match="truncated.pt is corrupt or truncated"):
        load_checkpoint(tmp_path / "truncated.pt")
    torch.save({"weights": 1}, tmp_path / "foreign.pt")
    with pytest.raises(ExperimentError, match="not a checkpoint of this project"):
        load_checkpoint(tmp_path / "foreign.pt")
    with pytest.raises(ExperimentError, match="does not exist"):
        load_checkpoint(tmp_path / "absent.pt")


def test_checkpoint_of_another_architecture_is_refused(tmp_path):
    unet = build_network("unet", start_filters=4)
    state = _state(unet, name="light_unet", start_filters=4)  # weights of one network labelled as another
    with pytest.raises(ExperimentError, match="does not match network 'light_unet'"):
        generator_from_checkpoint(state)
