"""``python -m nets [NAME] [--set key=value ...]``: parameters and GMACs of a registered network."""

from __future__ import annotations

import argparse

import yaml

from . import build_network, network_names
from .summary import count_macs, count_parameters


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m nets", description=__doc__)
    parser.add_argument("names", nargs="*", default=network_names(), help="networks to describe (default: all)")
    parser.add_argument("--set", nargs="*", default=[], metavar="KEY=VALUE",
                        help="network options, e.g. start_filters=32")
    parser.add_argument("--size", nargs=2, type=int, default=[256, 256], metavar=("H", "W"))
    args = parser.parse_args()
    options = {}
    for item in args.set:
        key, sep, value = item.partition("=")
        if not sep:
            parser.error(f"--set expects KEY=VALUE, got {item!r}")
        options[key] = yaml.safe_load(value)
    try:
        models = {name: build_network(name, **options).eval() for name in args.names}
    except ValueError as error:
        parser.exit(2, f"error: {error}\n")
    height, width = args.size
    print(f"{'network':<12} {'params':>12} {f'GMACs@{height}x{width}':>16}")
    for name, model in models.items():
        print(f"{name:<12} {count_parameters(model):>12,} {count_macs(model, height, width) / 1e9:>16.2f}")


if __name__ == "__main__":
    main()
