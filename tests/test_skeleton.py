"""Joint-order maps: checked against the orders' definitions, not against themselves."""
import numpy as np

from lagc_hand_blender.core import skeleton as sk


def _public_names_from_mano21():
    fingers_mano = {"index": (1, 2, 3), "middle": (4, 5, 6), "pinky": (7, 8, 9), "ring": (10, 11, 12), "thumb": (13, 14, 15)}
    tips = {"thumb": 16, "index": 17, "middle": 18, "ring": 19, "pinky": 20}
    order = [0]
    for finger in ("thumb", "index", "middle", "ring", "pinky"):
        order += list(fingers_mano[finger]) + [tips[finger]]
    return np.array(order)


def test_mano21_to_public_matches_definition():
    np.testing.assert_array_equal(sk.MANO21_TO_PUBLIC, _public_names_from_mano21())


def test_public_names_follow_mano_names():
    mano21_names = list(sk.MANO_JOINT_NAMES) + list(sk.TIP_NAMES)
    finger_of = lambda name: name.rstrip("0123456789").replace("_tip", "").split("_")[0]
    for pub_idx, mano_idx in enumerate(sk.MANO21_TO_PUBLIC):
        assert finger_of(sk.PUBLIC_KEYPOINT_NAMES[pub_idx]) == finger_of(mano21_names[mano_idx])


def test_roundtrips_are_inverse():
    x = np.random.default_rng(0).normal(size=(4, 21, 3))
    np.testing.assert_array_equal(sk.public_to_mano21(sk.mano21_to_public(x)), x)
    np.testing.assert_array_equal(sk.interhand_to_public(sk.public_to_interhand(x)), x)


def test_interhand_order_tip_first_wrist_last():
    # InterHand2.6M: per finger tip first; wrist at 20.
    ih = np.arange(21)[:, None].astype(float)
    pub = sk.interhand_to_public(ih)[:, 0]
    assert pub[0] == 20  # wrist
    assert list(pub[1:5]) == [3, 2, 1, 0]  # thumb base..tip = ih 3..0
    assert list(pub[17:21]) == [19, 18, 17, 16]  # pinky


def test_split_interhand42_right_first():
    x = np.zeros((42, 1))
    x[20] = 1.0  # right wrist
    x[41] = 2.0  # left wrist
    left, right = sk.split_interhand42(x)
    assert right[0, 0] == 1.0 and left[0, 0] == 2.0


def test_parents_are_topologically_sorted():
    for i, p in enumerate(sk.MANO21_PARENTS):
        assert p < i
    for i, p in enumerate(sk.PUBLIC_PARENTS):
        assert p < i
    # each public parent is the public image of the MANO-21 parent
    pub_of = {int(m): i for i, m in enumerate(sk.MANO21_TO_PUBLIC)}
    for i in range(1, 21):
        m = int(sk.MANO21_TO_PUBLIC[i])
        assert sk.PUBLIC_PARENTS[i] == pub_of[int(sk.MANO21_PARENTS[m])]
