"""Import torchvision even where its compiled ops do not match the installed torch.

PyPI's only torchvision for torch 2.13 is a CUDA build; next to a CPU-only torch its import dies with
``operator torchvision::nms does not exist`` because the detection ops' library cannot load. We use none of those
ops (only models), so on that exact failure we declare the two op schemas it looks up and import again. Any other
import error is left alone. With a matching torch/torchvision pair (every GPU machine) the first import succeeds and
nothing here runs.
"""

from __future__ import annotations

import sys
from types import ModuleType

import torch

_fallback_library: torch.library.Library | None = None


def import_torchvision() -> ModuleType:
    global _fallback_library
    try:
        import torchvision
    except RuntimeError as error:
        if "torchvision::nms" not in str(error):
            raise
        for name in [m for m in sys.modules if m == "torchvision" or m.startswith("torchvision.")]:
            del sys.modules[name]
        if _fallback_library is None:
            _fallback_library = torch.library.Library("torchvision", "DEF")
            _fallback_library.define("nms(Tensor dets, Tensor scores, float iou_threshold) -> Tensor")
            _fallback_library.define("qnms(Tensor qdets, Tensor scores, float iou_threshold) -> Tensor")
        import torchvision
    return torchvision
