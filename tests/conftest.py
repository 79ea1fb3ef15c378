"""Shared test fixtures (additive: other test owners may add theirs below).
Plain helpers live in hand_helpers.py."""
from __future__ import annotations

import pytest

from hand_helpers import skeleton_hand_params  # noqa: F401  (used by fixtures below)


@pytest.fixture
def skeleton_hand():
    """Factory: ``skeleton_hand(side)`` -> torch HandModel of :func:`skeleton_hand_params`."""
    from lagc_hand.handmodel import HandModel

    return lambda side="right": HandModel(skeleton_hand_params(side))


@pytest.fixture(scope="session")
def open_models():
    """``{"left": HandModel, "right": HandModel}`` of the open hand model."""
    from lagc_hand.handmodel import HandModel, load_hand_model_params

    return {s: HandModel(load_hand_model_params("open", s)) for s in ("left", "right")}
