"""One torch :class:`~lagc_hand.handmodel.layer.HandModel` per (model, side, device),
built once per process: the server runs many jobs and the refiner's training
samples many batches from the same model."""
from __future__ import annotations

from typing import Any

from lagc_hand.handmodel.layer import HandModel
from lagc_hand.handmodel.loading import load_hand_model_params

_MODEL_CACHE: dict[tuple[str, str, str], Any] = {}


def load_hand_model(hand_model: str, side: str, device: str = "cpu"):
    """``(HandModelParams, HandModel)`` for ``side`` of ``hand_model`` (``"open"`` or a
    MANO folder), the torch layer in eval mode on ``device``."""
    key = (str(hand_model), side, device)
    if key not in _MODEL_CACHE:
        params = load_hand_model_params(hand_model, side)
        _MODEL_CACHE[key] = (params, HandModel(params).to(device).eval())
    return _MODEL_CACHE[key]
