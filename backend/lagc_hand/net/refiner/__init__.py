"""The two-hand graph refiner: both hands' detector output in, refined 3D
keypoints, relative root and per-joint confidence out (see :mod:`.model`).

Trained on synthetic two-hand data made on the fly (:mod:`.geometry`,
:mod:`.noise`) by :mod:`.training`; used by the pipeline stage
:mod:`lagc_hand.refine`.
"""
