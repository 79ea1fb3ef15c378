"""The two-hand graph refiner: both hands' detector output in, refined 3D
keypoints, relative root and per-joint confidence out (see :mod:`.model`).

Trained by :mod:`.training` on synthetic two-hand data made on the fly
(:mod:`lagc_hand.synth.refiner_pairs`, with the detector error model :mod:`.noise`); used by the pipeline stage
:mod:`lagc_hand.refine`.
"""
