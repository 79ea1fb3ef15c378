"""Training data: the InterHand2.6M loader and the synthetic two-hand generator.

Both produce the same sample dict (see :mod:`lagc_hand.net.data.sample`)."""
