"""The hand model: open model generator, MANO loading, and the torch layer.

* :mod:`.params`  -- :class:`HandModelParams` (MANO key layout, numpy).
* :mod:`.loading` -- :func:`load_hand_model_params` (open model or MANO files).
* :mod:`.layer`   -- :class:`HandModel` (torch FK + LBS), :class:`HandOutput`.
* :mod:`.open_model` -- the generator of ``assets/open_hand_*.npz``.
"""
from lagc_hand.handmodel.params import HandModelParams  # noqa: F401
from lagc_hand.handmodel.loading import load_hand_model_params  # noqa: F401


def __getattr__(name):  # torch is imported only when the layer is asked for
    if name in ("HandModel", "HandOutput"):
        from lagc_hand.handmodel import layer

        return getattr(layer, name)
    raise AttributeError(name)
