"""A local web demo: drop a blurry photo, pick a model, compare before and after, download the result.

    python demo.py                                   # http://127.0.0.1:8765, the bundled models
    python demo.py --checkpoint experiments/RUN/checkpoints/best.pt --port 9000
    python demo.py --host 0.0.0.0                    # other machines may reach it: only on a network you trust

It listens on loopback unless --host says otherwise, writes only to a temporary folder (removed on exit), and
answers a file it cannot use (not an image, corrupt, too large) with one message while it goes on serving.
"""

from __future__ import annotations

import argparse
import math
import signal
import sys
from pathlib import Path


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    from restore.demo import DEFAULT_MAX_MEGAPIXELS, DEFAULT_MAX_UPLOAD_MB

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--host", default="127.0.0.1",
                        help="address to listen on (default 127.0.0.1: this machine only)")
    parser.add_argument("--port", type=int, default=8765, help="port (default 8765; 0 picks a free one)")
    parser.add_argument("--checkpoint", type=Path, action="append", default=[],
                        help="also offer this train_gan.py checkpoint (repeat for several)")
    parser.add_argument("--no-bundled", action="store_true", help="offer only the --checkpoint models")
    parser.add_argument("--device", default="auto", help="auto, cpu, cuda[:N] or mps")
    parser.add_argument("--tile", type=int, default=None,
                        help="tile size in pixels (default: auto, whole images on the CPU up to 3 MP)")
    parser.add_argument("--max-upload-mb", type=float, default=DEFAULT_MAX_UPLOAD_MB,
                        help=f"largest file accepted (default {DEFAULT_MAX_UPLOAD_MB} MiB)")
    parser.add_argument("--max-megapixels", type=float, default=DEFAULT_MAX_MEGAPIXELS,
                        help=f"largest image accepted after decoding (default {DEFAULT_MAX_MEGAPIXELS:g} MP)")
    args = parser.parse_args(argv)
    if not 0 <= args.port <= 65535:
        parser.error(f"--port must be in 0-65535, got {args.port}")
    limits = (args.max_upload_mb, args.max_megapixels)
    if not all(math.isfinite(limit) and limit > 0 for limit in limits):
        parser.error(f"--max-upload-mb and --max-megapixels must be positive finite numbers, got {limits[0]} and "
                     f"{limits[1]}")
    if args.no_bundled and not args.checkpoint:
        parser.error("--no-bundled needs at least one --checkpoint")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    from core.cpu_allocator import reuse_freed_memory
    from core.device import pick_device
    from core.errors import RESTORE_ERRORS
    from restore.bundled import BUNDLED_MODELS, WEIGHTS_DIR, bundled_path
    from restore.demo import DemoApp, Model, make_server
    from restore.inference import Restorer, default_checkpoint, load_generator

    reuse_freed_memory()
    try:
        device = pick_device(args.device)
        sources = [] if args.no_bundled else [
            (name, f"bundled {name}", lambda name=name: default_checkpoint(name))
            for name in BUNDLED_MODELS if bundled_path(name).is_file()
        ]
        for path in args.checkpoint:
            load_generator(path, device)  # a bad file is one line now, not a failed job later
            sources.append((f"checkpoint-{len(sources)}", str(path), lambda path=path: path))
        if not sources:
            raise FileNotFoundError(f"no bundled weights in {WEIGHTS_DIR}; pass --checkpoint")
        models = [Model(id, label, lambda find=find: Restorer(load_generator(find(), device), device, args.tile))
                  for id, label, find in sources]
        app = DemoApp(models, args.max_upload_mb, args.max_megapixels)
        server = make_server(app, args.host, args.port)
    except (*RESTORE_ERRORS, OSError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    # A terminating signal stops it like Ctrl+C does, so the temporary folder is removed either way.
    signal.signal(signal.SIGTERM, lambda *_: (_ for _ in ()).throw(KeyboardInterrupt()))
    host, port = server.server_address[:2]
    print(f"serving the deblurring demo on http://{host}:{port} (Ctrl+C stops it)", flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
        app.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
