"""The peer networks bench/peers.py times: each is the network it names (published parameter counts) and runs on
any size; the round-robin table has a row per LightUNet backend and per peer."""

import pytest
import torch

from bench.peer_nets import PARAMETER_TOLERANCE, PEERS
from bench.peers import bench_peers
from nets import build_network
from nets.summary import count_parameters


class Rows:
    def __init__(self):
        self.rows = []

    def add(self, section, figure, value, unit, note=""):
        self.rows.append((section, figure, value, unit, note))


@pytest.mark.parametrize("name", list(PEERS))
def test_each_peer_has_its_published_size_and_keeps_the_input_shape(name):
    make, published = PEERS[name]
    network = make().eval()
    if published is not None:
        assert abs(count_parameters(network) - published) <= PARAMETER_TOLERANCE * published
    image = torch.rand(1, 3, 45, 71) * 2 - 1
    with torch.no_grad():
        out = network(image)
    assert out.shape == image.shape and torch.isfinite(out).all()


def test_the_peers_table_times_every_backend_and_every_peer():
    torch.manual_seed(0)
    model = build_network("light_unet", start_filters=4).eval()
    table = Rows()
    bench_peers(table, model, repeats=1, height=64, width=96)
    figures = [figure for _, figure, _, _, _ in table.rows]
    assert any("LightUNet-48 | torch fp32" in f for f in figures)
    assert all(any(name in f for f in figures) for name in PEERS)
    seconds = [value for _, figure, value, unit, _ in table.rows if unit == "s"]
    assert len(seconds) >= 1 + len(PEERS) and all(value > 0 for value in seconds)
    assert sum("1.00x our fastest" in note for *_, note in table.rows) >= 1
