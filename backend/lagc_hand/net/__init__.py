"""The LAGC-Hand network: Linear Attention encoder, Compact single-hand heatmap
module and Linear Graph module (two hands' meshes from one 256x256 RGB crop),
plus the Hamba graph-guided state-space head, losses, metrics, data and training.

Pure torch/numpy math lives here; the one exception is :mod:`.checkpoint`, which
writes and reads checkpoint files; the command line is in
``lagc_hand.commands.{train,eval,export_onnx}``.
"""
