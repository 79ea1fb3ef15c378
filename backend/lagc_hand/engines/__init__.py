"""Engines: one image in, the hands seen in it out (see :mod:`.base`).

:func:`create_engine` is the registry every front end uses.  Engines are
imported lazily so that asking for ``mediapipe`` never imports torch models
and asking for ``lagc`` never imports MediaPipe.
"""
from __future__ import annotations

import importlib
import importlib.util
import os
from typing import Any, Optional

from lagc_hand.engines.base import Engine, FrameObservations, HandObservation
from lagc_hand.errors import EngineUnavailable

#: engine name -> (module, factory function)
ENGINES: dict[str, tuple[str, str]] = {
    # Default: MediaPipe Hands' models run directly (engines/hands_tracker.py, no legacy
    # mp.solutions API) + second-hand recovery, de-duplication (engines/recovery.py).
    "mediapipe": ("lagc_hand.engines.recovery", "create_engine"),
    # Plain MediaPipe through its legacy mp.solutions graph: the benchmarks' reference
    # (``--engine mediapipe-raw``); needs mediapipe < 0.10.30.
    "mediapipe-raw": ("lagc_hand.engines.mediapipe_engine", "MediaPipeEngine"),
    # The LAGC-Hand network (engines/lagc.py; needs a checkpoint).
    "lagc": ("lagc_hand.engines.lagc", "LagcEngine"),
}


def engine_names() -> list[str]:
    return list(ENGINES)


def available_engines() -> list[str]:
    """Engines that can run here (``lagc`` only when its module is present;
    whether a checkpoint is given is checked when it is created)."""
    out = []
    for name, (module, _) in ENGINES.items():
        try:
            found = importlib.util.find_spec(module) is not None
        except ModuleNotFoundError:
            found = False
        if found:
            out.append(name)
    return out


def check_engine(name: str, checkpoint: Optional[str] = None) -> None:
    """Raise :class:`EngineUnavailable` (a message for the user) when engine ``name``
    cannot run with these options, without building it: unknown or missing here, or
    ``lagc`` without a checkpoint file.  The one statement of these rules, used by
    :func:`create_engine` and by the server before it queues a job."""
    if name not in ENGINES:
        raise EngineUnavailable(f"unknown engine {name!r}; available: {', '.join(ENGINES)}")
    if name not in available_engines():
        raise EngineUnavailable(f"the {name!r} engine is not part of this build; available: "
                                f"{', '.join(available_engines())}")
    if name == "lagc":
        if not checkpoint:
            raise EngineUnavailable(
                "the 'lagc' engine needs a trained LAGC-Hand checkpoint; pass one with --checkpoint "
                "(or the checkpoint option), or use the default 'mediapipe' engine")
        if not os.path.isfile(checkpoint):
            raise EngineUnavailable(f"the 'lagc' engine's checkpoint {checkpoint!r} is not a file")


def create_engine(name: str = "mediapipe", **kwargs: Any) -> Engine:
    """Create engine ``name`` with engine-specific keyword options.

    Raises :class:`EngineUnavailable` with a message for the user when the
    name is unknown or the engine cannot run here (module missing, no
    checkpoint, ...).
    """
    check_engine(name, kwargs.get("checkpoint"))
    module_name, factory = ENGINES[name]
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        if exc.name and module_name.startswith(exc.name):
            raise EngineUnavailable(
                f"the {name!r} engine is not part of this build (module {module_name} is missing)"
            ) from None
        raise
    if hasattr(module, factory):
        return getattr(module, factory)(**kwargs)
    raise EngineUnavailable(f"the {name!r} engine module {module_name} has no {factory!r} factory")


__all__ = ["Engine", "FrameObservations", "HandObservation", "create_engine", "engine_names",
           "available_engines", "check_engine", "ENGINES"]
