"""Refine: the two-hand graph refiner between tracking and placement (see :mod:`.stage`)."""
from lagc_hand.refine.stage import RefinedHands, apply_refinement, refine_tracking, refiner_input

__all__ = ["RefinedHands", "apply_refinement", "refine_tracking", "refiner_input"]
