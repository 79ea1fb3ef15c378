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
def open_model_dir(tmp_path_factory):
    """Folder holding ``open_hand_{left,right}.npz``: the committed asset, or, when it
    has not been built, a generated copy that ``$LAGC_HAND_ASSETS_DIR`` points to for
    the session (set here, in the tests, not by the package)."""
    from lagc_hand.handmodel.loading import ASSETS_DIR_ENV, open_model_path

    if open_model_path("right").is_file() and open_model_path("left").is_file():
        yield open_model_path("right").parent
        return
    from lagc_hand.handmodel.open_model import write_open_hand_assets

    out = tmp_path_factory.mktemp("open_model_assets")
    write_open_hand_assets(out)
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv(ASSETS_DIR_ENV, str(out))
        yield out


@pytest.fixture(scope="session")
def open_models():
    """``{"left": HandModel, "right": HandModel}`` of the open hand model."""
    from lagc_hand.handmodel import HandModel, load_hand_model_params

    return {s: HandModel(load_hand_model_params("open", s)) for s in ("left", "right")}


@pytest.fixture(scope="session")
def realdev():
    """The realdev folder (real footage beside the clone, never in the repository); skips without it."""
    from bench.real import find_realdev

    path = find_realdev()
    if path is None:
        pytest.skip("shared/realdev is not here (set LAGC_REALDEV or place it at <repo>/../shared/realdev; "
                    "it is never in the repository)")
    return path
