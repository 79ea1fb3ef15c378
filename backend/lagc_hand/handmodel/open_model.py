"""Generator of the open hand model (``assets/open_hand_{right,left}.npz``).

How the hand is made, all from numbers written here (no scanned or third-party data):

1. **Design** (:class:`HandDesign`): MANO's 16-joint tree laid out with
   human proportions (wrist to middle fingertip ~18.8 cm), per-segment finger
   radii, palm outline and thickness, thenar/hypothenar eminences, knuckles
   and finger pads.  Built in a *design frame* ``(a, b, c)`` = (towards the
   fingers, towards the thumb, towards the back of the hand), wrist at the origin.
2. **Surface**: a signed distance function = smooth union of tapered capsules
   (finger segments, thumb), a rounded palm slab and ellipsoids; marching
   cubes (scikit-image) at a voxel size that lands inside the vertex budget;
   then a few rounds of tangential relaxation with re-projection onto the
   zero level set (even triangles, surface kept).
3. **Rig**: skinning weights = nearest bone, diffused over the mesh (a few
   umbrella-smoothing steps, so joints bend smoothly and each finger's weight
   never leaks to its neighbour through the air); ``J_regressor`` = sparse
   non-negative vertex weights that reproduce each designed joint exactly;
   fingertip vertices at the tip pads.
4. **Shape space** (``B = 11``): overall size, finger lengths, palm width,
   finger thickness, palm thickness (0-4, unchanged since the first version),
   the palm layout (5 palm length, 6 the wrist sideways, 7-9 the thumb CMC in
   three directions) and 10 the phalanx proportions: where real hands and the
   detectors' landmarks sit differs from hand to hand there; one unit = about one
   standard deviation.  Files written with the first ten columns (5..9 were zero)
   give the same hand: the layer pads missing coefficients with zeros.
5. **Pose space**: PCA of generated plausible poses -> ``hands_components``
   (orthonormal 45x45) and ``hands_mean`` (a relaxed hand).
   ``posedirs`` are zero (no pose correctives).

Finally the design frame is turned into MANO's model frame (fingers along
``-x``, thumb along ``+z``, back of the hand ``+y``) and the left hand is the
mirror image.  :func:`build_open_hand` is deterministic: the same version and
seed give the same arrays, and :func:`save_npz_deterministic` writes the same
bytes for them.
"""
from __future__ import annotations

import io
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import scipy.optimize
import scipy.sparse as sp

from lagc_hand.handmodel import meshops
from lagc_hand.handmodel.params import NUM_POSE_FEATURES, HandModelParams
from lagc_hand_blender.core.skeleton import MANO_PARENTS

VERSION = 1
MODEL_ID = f"lagc-open-hand-v{VERSION}"
#: Shape coefficients (MANO has 10; see the module docstring, step 4).
NUM_BETAS = 11

#: Design frame (a, b, c) -> MANO model frame (x, y, z) = (-a, c, b); a proper rotation.
DESIGN_TO_MODEL = np.array([[-1.0, 0.0, 0.0], [0.0, 0.0, 1.0], [0.0, 1.0, 0.0]])

FINGERS = ("index", "middle", "ring", "pinky")
#: MANO joint ids (base, middle, end) of each finger, and of the thumb.
FINGER_JOINTS = {"index": (1, 2, 3), "middle": (4, 5, 6), "pinky": (7, 8, 9), "ring": (10, 11, 12), "thumb": (13, 14, 15)}
#: Order of the tip vertices: thumb, index, middle, ring, pinky.
TIP_ORDER = ("thumb", "index", "middle", "ring", "pinky")


def _unit(v) -> np.ndarray:
    v = np.asarray(v, dtype=np.float64)
    return v / np.linalg.norm(v)


@dataclass
class FingerDesign:
    """One finger in the design frame (metres).  ``base`` = MCP (CMC for the
    thumb) joint centre; ``dirs`` = direction of each of the 3 segments;
    ``lengths`` = joint-to-joint, the last one joint-to-fingertip surface;
    ``radii`` = half-width at base, 2nd joint, 3rd joint, tip; cross-sections
    are ellipses ``flatten`` times as thick (palm-back) as wide; ``pad`` = the
    unit direction the finger pad faces."""

    base: np.ndarray
    dirs: np.ndarray          # (3, 3)
    lengths: np.ndarray       # (3,)
    radii: np.ndarray         # (4,)
    pad: np.ndarray           # (3,)
    flatten: float = 0.88

    def joints(self) -> np.ndarray:
        """``(4, 3)``: the three joints and the fingertip point."""
        pts = [self.base]
        for d, length in zip(self.dirs, self.lengths):
            pts.append(pts[-1] + d * length)
        return np.array(pts)


def _finger(base, angle_b, angle_c, lengths, radii, bend=(0.0, 0.0, 0.0), pad=(0.0, 0.0, -1.0), flatten=0.88):
    """Finger pointing at ``angle_b`` (rad, towards the thumb) and ``angle_c``
    (rad, towards the back) from the ``a`` axis; ``bend`` adds per-segment flexion (rad)."""
    dirs = []
    for k in range(3):
        ac = angle_c - bend[k]
        dirs.append(_unit([np.cos(angle_b) * np.cos(ac), np.sin(angle_b) * np.cos(ac), np.sin(ac)]))
    return FingerDesign(np.asarray(base, float), np.array(dirs), np.asarray(lengths, float),
                        np.asarray(radii, float), _unit(pad), flatten)


@dataclass
class HandDesign:
    """The designed right hand (design frame, metres).  Defaults: an adult hand
    of ~18.8 cm from the wrist joint to the middle fingertip."""

    fingers: dict = field(default_factory=lambda: {
        "index": _finger((0.088, 0.025, 0.000), 0.13, 0.0, (0.041, 0.025, 0.022), (0.0100, 0.0090, 0.0080, 0.0071)),
        "middle": _finger((0.093, 0.005, 0.001), 0.03, 0.0, (0.045, 0.028, 0.023), (0.0103, 0.0093, 0.0082, 0.0073)),
        "ring": _finger((0.087, -0.014, 0.000), -0.08, 0.0, (0.042, 0.027, 0.022), (0.0096, 0.0087, 0.0077, 0.0069)),
        "pinky": _finger((0.077, -0.031, -0.003), -0.20, 0.0, (0.033, 0.020, 0.020), (0.0085, 0.0077, 0.0069, 0.0062)),
        # The thumb leaves the palm ~40 degrees out and ~25 degrees palmwards,
        # bending slightly towards the fingers along its length.
        "thumb": FingerDesign(
            base=np.array([0.024, 0.017, -0.009]),
            dirs=np.array([_unit([0.62, 0.72, -0.30]), _unit([0.72, 0.64, -0.26]), _unit([0.80, 0.56, -0.22])]),
            lengths=np.array([0.044, 0.031, 0.027]),
            radii=np.array([0.0125, 0.0112, 0.0102, 0.0088]),
            pad=_unit([0.0, -0.72, -0.70]),
            flatten=0.85,
        ),
    })
    #: Palm outline in the (a, b) plane, counter-clockwise seen from the back.
    palm_outline: np.ndarray = field(default_factory=lambda: np.array([
        [-0.004, -0.026], [0.040, -0.037], [0.079, -0.037], [0.094, -0.010],
        [0.092, 0.033], [0.050, 0.034], [0.010, 0.027],
    ]))
    palm_half_thickness: float = 0.0125
    palm_round: float = 0.0085
    palm_c_offset: float = -0.001
    #: The wrist/forearm stub: ellipse half-axes (b, c) and how far it reaches back.
    wrist_half_axes: tuple = (0.026, 0.016)
    wrist_back: float = -0.024

    def joints(self) -> np.ndarray:
        """``(16, 3)`` MANO-order joints, design frame."""
        j = np.zeros((16, 3))
        for name, ids in FINGER_JOINTS.items():
            pts = self.fingers[name].joints()
            j[list(ids)] = pts[:3]
        return j

    def tips(self) -> np.ndarray:
        """``(5, 3)`` fingertip points (thumb, index, middle, ring, pinky)."""
        return np.array([self.fingers[n].joints()[3] for n in TIP_ORDER])


# --- signed distance functions (negative inside), points (N, 3) -----------------

def _smin(a: np.ndarray, b: np.ndarray, k: float) -> np.ndarray:
    """Polynomial smooth minimum: blends surfaces closer than ``k`` (metres)."""
    h = np.clip(0.5 + 0.5 * (b - a) / k, 0.0, 1.0)
    return b * (1 - h) + a * h - k * h * (1 - h)


def _sd_round_cone(p, a, b, ra, rb, flatten=1.0, up=None):
    """Tapered capsule from ``a`` (radius ``ra``) to ``b`` (``rb``); the
    component along ``up`` is stretched by ``1/flatten`` (elliptic section)."""
    ab = b - a
    length2 = float(ab @ ab)
    ap = p - a
    t = np.clip(ap @ ab / length2, 0.0, 1.0)
    q = ap - t[:, None] * ab
    if up is not None and flatten != 1.0:
        u = up - (up @ ab) / length2 * ab
        u = u / np.linalg.norm(u)
        qu = q @ u
        q = q + ((1.0 / flatten) - 1.0) * qu[:, None] * u
    r = ra + (rb - ra) * t
    return np.linalg.norm(q, axis=1) - r


def _sd_ellipsoid(p, centre, axes, radii):
    """Approximate ellipsoid distance (exact on the surface, good near it)."""
    q = (p - centre) @ np.asarray(axes).T  # local coordinates
    r = np.asarray(radii)
    k0 = np.linalg.norm(q / r, axis=1)
    k1 = np.linalg.norm(q / (r * r), axis=1)
    return k0 * (k0 - 1.0) / np.maximum(k1, 1e-12)


def _frame_from(axis_a, hint_c=(0.0, 0.0, 1.0)) -> np.ndarray:
    """Rows = orthonormal axes (along, side, up) with ``along = axis_a``."""
    a = _unit(axis_a)
    c = np.asarray(hint_c, float) - (np.asarray(hint_c, float) @ a) * a
    c = _unit(c)
    b = np.cross(c, a)
    return np.array([a, b, c])


def _sd_palm(p, d: HandDesign):
    """Rounded slab over the palm outline (a convex polygon)."""
    poly = d.palm_outline
    n = len(poly)
    d2 = np.full(len(p), -np.inf)
    for i in range(n):
        e0, e1 = poly[i], poly[(i + 1) % n]
        edge = e1 - e0
        normal = _unit([edge[1], -edge[0]])  # outward for a counter-clockwise polygon
        d2 = np.maximum(d2, (p[:, :2] - e0) @ normal)
    # thinner towards the fingers and the ulnar edge, like a real palm
    h = d.palm_half_thickness * (1.0 - 0.12 * np.clip(p[:, 0] / 0.09, 0, 1))
    dz = np.abs(p[:, 2] - d.palm_c_offset) - h
    r = d.palm_round
    qx, qz = d2 + r, dz + r
    outside = np.sqrt(np.maximum(qx, 0) ** 2 + np.maximum(qz, 0) ** 2)
    return outside + np.minimum(np.maximum(qx, qz), 0.0) - r


def _sd_finger(p, fd: FingerDesign, pads: bool = True):
    pts = fd.joints()
    up = np.array([0.0, 0.0, 1.0])
    dist = None
    for k in range(3):
        a, b = pts[k], pts[k + 1]
        rb = fd.radii[k + 1]
        if k == 2:  # stop the last capsule one radius short so the surface ends at the tip point
            b = b - fd.dirs[2] * fd.radii[3]
        s = _sd_round_cone(p, a, b, fd.radii[k], rb, fd.flatten, up)
        dist = s if dist is None else np.minimum(dist, s)
    if pads:
        # finger pad on the last segment and a softer one on the middle segment
        for k, (frac, size) in enumerate(((0.55, 0.62), (0.5, 0.5))):
            seg = 2 - k
            centre = pts[seg] + fd.dirs[seg] * fd.lengths[seg] * frac + fd.pad * fd.radii[seg + 1] * 0.32
            frame = _frame_from(fd.dirs[seg], -fd.pad)
            radii = (fd.lengths[seg] * 0.38, fd.radii[seg + 1] * 0.80, fd.radii[seg + 1] * size)
            dist = _smin(dist, _sd_ellipsoid(p, centre, frame, radii), 0.004)
    return dist


def hand_sdf(p: np.ndarray, d: HandDesign) -> np.ndarray:
    """Signed distance (metres, negative inside) of the designed hand at ``p (N, 3)``."""
    p = np.asarray(p, dtype=np.float64)
    body = _sd_palm(p, d)
    # wrist / forearm stub: an elliptic capsule along a
    wb, wc = d.wrist_half_axes
    q = p.copy()
    q[:, 1] *= wc / wb
    stub = _sd_round_cone(q, np.array([d.wrist_back + wc, 0.0, -0.002]), np.array([0.022, 0.0, -0.002]), wc, wc)
    body = _smin(body, stub, 0.012)
    th = d.fingers["thumb"]
    # thenar eminence around the thumb metacarpal, palm side
    t_frame = _frame_from(th.dirs[0], (0, 0, 1))
    thenar = _sd_ellipsoid(p, th.base + th.dirs[0] * 0.012 + np.array([0.0, -0.002, -0.004]), t_frame, (0.030, 0.016, 0.0125))
    body = _smin(body, thenar, 0.010)
    hypo = _sd_ellipsoid(p, np.array([0.045, -0.027, -0.005]), _frame_from((1, 0.05, 0)), (0.036, 0.011, 0.0105))
    body = _smin(body, hypo, 0.010)
    # knuckles: soft bumps on the back of the hand over each MCP joint
    for name in FINGERS:
        fd = d.fingers[name]
        bump = _sd_ellipsoid(p, fd.base + np.array([0.0, 0.0, 0.45 * fd.radii[0]]),
                             _frame_from(fd.dirs[0]), (0.7 * fd.radii[0], 0.75 * fd.radii[0], 0.6 * fd.radii[0]))
        body = _smin(body, bump, 0.004)
    # A small smooth minimum between fingers keeps the gradient continuous in
    # the gaps (a hard min has a crease there that re-projection trips on).
    fingers = None
    for n in FINGERS:
        s = _sd_finger(p, d.fingers[n])
        fingers = s if fingers is None else _smin(fingers, s, 0.003)
    thumb = _sd_finger(p, th)
    body = _smin(body, thumb, 0.010)
    return _smin(body, fingers, 0.009)


def _sdf_gradient(p: np.ndarray, d: HandDesign, eps: float = 2e-4) -> np.ndarray:
    g = np.zeros_like(p)
    for k in range(3):
        dp = np.zeros(3)
        dp[k] = eps
        g[:, k] = (hand_sdf(p + dp, d) - hand_sdf(p - dp, d)) / (2 * eps)
    return g


# --- meshing --------------------------------------------------------------------

def mesh_hand(d: HandDesign, voxel: float, relax_iters: int = 8) -> tuple[np.ndarray, np.ndarray]:
    """Marching cubes of :func:`hand_sdf` + relaxation.  Returns design-frame
    ``verts (V, 3)`` and outward ``faces (F, 3)``."""
    from skimage.measure import marching_cubes

    lo = np.array([d.wrist_back - 0.02, -0.07, -0.06])
    hi = np.array([0.22, 0.12, 0.045])
    # A fractional offset keeps grid points off the surface (no zero-area triangles).
    lo = lo + 0.371 * voxel
    n = np.ceil((hi - lo) / voxel).astype(int) + 1
    axes = [lo[k] + voxel * np.arange(n[k]) for k in range(3)]
    grid = np.stack(np.meshgrid(*axes, indexing="ij"), axis=-1).reshape(-1, 3)
    vol = hand_sdf(grid, d).reshape(n)
    # Keep degenerate triangles and weld their coincident corners instead:
    # dropping them (allow_degenerate=False) leaves holes.
    verts, faces, _, _ = marching_cubes(vol, level=0.0, spacing=(voxel,) * 3, allow_degenerate=True)
    verts, faces = _weld(verts.astype(np.float64) + lo, faces.astype(np.int64), voxel * 1e-3)
    verts, faces = _largest_component(verts, faces)
    if meshops.signed_volume(verts, faces) < 0:
        faces = faces[:, [0, 2, 1]]
    verts = relax_on_surface(verts, faces, d, relax_iters)
    return verts, faces


def _weld(verts, faces, tol):
    """Merge vertices closer than ``tol`` and drop faces that collapse."""
    key = np.round(verts / tol).astype(np.int64)
    _, first, inverse = np.unique(key, axis=0, return_index=True, return_inverse=True)
    inverse = inverse.ravel()
    order = np.argsort(first, kind="stable")  # keep marching-cubes order (deterministic)
    rank = np.empty_like(order)
    rank[order] = np.arange(len(order))
    faces = rank[inverse[faces]]
    verts = verts[first[order]]
    ok = (faces[:, 0] != faces[:, 1]) & (faces[:, 1] != faces[:, 2]) & (faces[:, 0] != faces[:, 2])
    return verts, faces[ok]


def _largest_component(verts, faces):
    ncomp, labels = meshops.connected_components(faces, len(verts))
    if ncomp > 1:
        keep = np.argmax(np.bincount(labels))
        vmask = labels == keep
        remap = -np.ones(len(verts), np.int64)
        remap[vmask] = np.arange(vmask.sum())
        faces = remap[faces[vmask[faces[:, 0]]]]
        verts = verts[vmask]
    return verts, faces


def relax_on_surface(verts, faces, d: HandDesign, iters: int) -> np.ndarray:
    """Tangential umbrella smoothing, each step projected back onto the zero
    level set along the SDF gradient (evens out marching-cubes slivers)."""
    p_op = meshops.umbrella_operator(faces, len(verts))
    v = verts.copy()
    for _ in range(iters):
        prev = v
        n = meshops.vertex_normals(v, faces)
        delta = p_op @ v - v
        delta -= (delta * n).sum(1, keepdims=True) * n  # tangential only
        v = v + 0.6 * delta
        for _ in range(2):
            g = _sdf_gradient(v, d)
            s = hand_sdf(v, d)
            v = v - (s / np.maximum((g * g).sum(1), 1e-12))[:, None] * g
        # Fold guard: where a face no longer faces along the outward SDF
        # gradient (tight creases such as finger webs), undo the step for its corners.
        for _ in range(5):
            fn = meshops.face_normals(v, faces)
            centre = v[faces].mean(1)
            g = _sdf_gradient(centre, d)
            g /= np.maximum(np.linalg.norm(g, axis=1, keepdims=True), 1e-12)
            bad = np.einsum("ij,ij->i", fn, g) < 0.3
            if not bad.any():
                break
            ids = np.unique(faces[bad])
            v[ids] = prev[ids]
    return v


# --- rig ------------------------------------------------------------------------

def _segment_distance(p, a, b):
    ab = b - a
    t = np.clip((p - a) @ ab / (ab @ ab), 0.0, 1.0)
    return np.linalg.norm(p - (a + t[:, None] * ab), axis=1)


def bones(d: HandDesign) -> list[tuple[int, np.ndarray, np.ndarray]]:
    """``(joint, start, end)`` segments whose nearby vertices that joint moves."""
    out = []
    j = d.joints()
    wrist = j[0]
    for name in FINGERS:
        ids = FINGER_JOINTS[name]
        pts = d.fingers[name].joints()
        out.append((0, wrist, pts[0]))
        for k in range(3):
            out.append((ids[k], pts[k], pts[k + 1]))
    th = d.fingers["thumb"].joints()
    out.append((0, wrist, th[0]))
    for k in range(3):
        out.append((FINGER_JOINTS["thumb"][k], th[k], th[k + 1]))
    out.append((0, wrist, np.array([d.wrist_back, 0.0, 0.0])))
    return out


def skinning_weights(verts, faces, d: HandDesign, smooth_iters: int = 6, step: float = 0.5) -> np.ndarray:
    """``(V, 16)``: nearest bone, then diffused over the mesh (never through the air)."""
    segs = bones(d)
    dist = np.stack([_segment_distance(verts, a, b) for _, a, b in segs], axis=1)
    owner = np.array([j for j, _, _ in segs])[np.argmin(dist, axis=1)]
    w = np.zeros((len(verts), 16))
    w[np.arange(len(verts)), owner] = 1.0
    p_op = meshops.umbrella_operator(faces, len(verts))
    for _ in range(smooth_iters):
        w = (1 - step) * w + step * (p_op @ w)
    w[w < 1e-4] = 0.0
    return w / w.sum(1, keepdims=True)


def joint_regressor(verts, joints, k_min: int = 12) -> np.ndarray:
    """``(16, V)`` sparse non-negative rows summing to 1 with
    ``J_regressor @ verts == joints`` (to ~1e-6 m).

    Each joint uses the vertices around it (nearest ones, widening until the
    joint lies inside their hull), weights found by NNLS with a pull towards
    equal weights so no single vertex dominates."""
    nv = len(verts)
    reg = np.zeros((len(joints), nv))
    for j, target in enumerate(joints):
        dist = np.linalg.norm(verts - target, axis=1)
        order = np.argsort(dist, kind="stable")
        for k in (k_min, 2 * k_min, 4 * k_min, 8 * k_min):
            ids = order[:k]
            x = verts[ids]
            s_fit, s_sum, s_reg = 1e3, 1e2, 1e-2
            a = np.vstack([(x - target).T * s_fit, np.ones((1, k)) * s_sum, np.eye(k) * s_reg])
            b = np.concatenate([np.zeros(3), [s_sum], np.full(k, s_reg / k)])
            w, _ = scipy.optimize.nnls(a, b, maxiter=50 * k)
            w = w / w.sum()
            if np.linalg.norm(w @ x - target) < 2e-6:
                break
        reg[j, ids] = w
    reg[reg < 1e-7] = 0.0
    return reg / reg.sum(1, keepdims=True)


# --- shape space ----------------------------------------------------------------

#: Palm-joint directions (columns 6..9): ``(name, joint, design-frame unit vector,
#: metres per unit beta)``.  Each moves one palm joint of the rest hand and nothing
#: else.  Why these: the detectors' palm is laid out differently from this model's;
#: on real clips (bench/fit_joints.py) the fit's largest 2D residuals against
#: MediaPipe are at the thumb CMC (4-10 % of the hand size), the wrist (3-4 %) and the
#: index / little MCPs (1-4 %), and MediaPipe's 3D palm, similarity-aligned to this
#: model's, puts the thumb CMC ~4 mm further out and the wrist ~4 mm towards the
#: little finger.  One unit ~ one standard deviation of where such a landmark sits
#: (anatomy and labelling conventions), a few millimetres.  The thumb CMC's units are
#: the smaller: MediaPipe puts it further out on the rendered clips too, whose truth is
#: this model's joint; with 5 / 5 / 4 mm the fit followed it there (rendered two-hand
#: clip, 2D error / detector's 0.91 -> 0.96, absolute wrist +3 mm; RHD absolute wrist
#: +6 mm), with 2.5 / 2.5 / 2 mm 0.95 and +2 / +2 mm, for nearly all of the gain on the
#: real stills (OneHand10K 2D error / detector's 1.09 without these directions, 1.04
#: with the larger units, 1.05 with these; bench/fit_joints.py).
PALM_DIRECTIONS = (
    ("wrist sideways", 0, (0.0, 1.0, 0.0), 0.004),
    ("thumb CMC along the palm", 13, (1.0, 0.0, 0.0), 0.0025),
    ("thumb CMC outwards", 13, (0.0, 1.0, 0.0), 0.0025),
    ("thumb CMC palmwards", 13, (0.0, 0.0, -1.0), 0.002),
)
#: Radius (metres) of the smooth region of the mesh moved with a palm joint: closer
#: than the nearest other joint (the thumb CMC is 3.1 cm from the wrist).
PALM_BUMP_RADIUS = 0.028
#: Palm length (column 5): the finger MCP row and the fingers move along ``a`` by this
#: fraction of their distance from the wrist per unit beta, the palm stretched between.
PALM_LENGTH_STEP = 0.04


def shape_directions(verts, weights, d: HandDesign, jreg=None) -> np.ndarray:
    """``(V, 3, NUM_BETAS)`` design-frame displacement per unit beta (~1 std):
    0 size (5.5%), 1 finger lengths (5%), 2 palm width (5%), 3 finger
    thickness (8%), 4 palm thickness (8%); the palm layout: 5 palm length (wrist to
    MCP row, 4%), 6 wrist sideways, 7-9 thumb CMC along / across / into the palm
    (:data:`PALM_DIRECTIONS`); 10 phalanx proportions (:data:`PHALANX_STEP`).
    ``jreg`` (16, V): the joint regressor, to scale the palm-joint columns so the
    joint itself moves the stated millimetres."""
    sd = np.zeros((len(verts), 3, NUM_BETAS))
    sd[:, :, 0] = verts * 0.055  # about the wrist joint (origin)
    for name, ids in FINGER_JOINTS.items():
        fd = d.fingers[name]
        w_f = weights[:, list(ids)].sum(1)
        # finger lengths: stretch along the finger from its base, weighted by
        # how much the vertex belongs to the finger
        along = np.clip((verts - fd.base) @ fd.dirs[0], 0.0, None)
        sd[:, :, 1] += (w_f * along * 0.05)[:, None] * fd.dirs[0]
        # thickness: push away from the finger's axis (nearest segment point)
        pts = fd.joints()
        best = np.full(len(verts), np.inf)
        radial = np.zeros_like(verts)
        for k in range(3):
            a, b = pts[k], pts[k + 1]
            ab = b - a
            t = np.clip((verts - a) @ ab / (ab @ ab), 0, 1)
            q = verts - (a + t[:, None] * ab)
            dist = np.linalg.norm(q, axis=1)
            sel = dist < best
            best[sel] = dist[sel]
            radial[sel] = q[sel]
        sd[:, :, 3] += (w_f * 0.08)[:, None] * radial
        # palm width: the finger rides along with its base
        sd[:, 1, 2] += w_f * (fd.base[1] - 0.0) * 0.05
    w_palm = weights[:, 0]
    sd[:, 1, 2] += w_palm * verts[:, 1] * 0.05
    sd[:, 2, 4] += w_palm * (verts[:, 2] - d.palm_c_offset) * 0.08
    sd[:, 0, 5] = _palm_length_field(verts, weights, d)
    joints = d.joints()
    for k, (_, joint, direction, step) in enumerate(PALM_DIRECTIONS):
        field = _bump(verts, joints[joint], PALM_BUMP_RADIUS)
        if jreg is not None:  # the joint is a weighted mean of nearby vertices: scale to move it ``step``
            field = field / max(float(jreg[joint] @ field), 1e-6)
        sd[:, :, 6 + k] = (field * step)[:, None] * np.asarray(direction, float)
    for name in FINGERS:
        sd[:, :, 10] += _phalanx_field(verts, weights, d.fingers[name], FINGER_JOINTS[name])
    return sd


#: Phalanx proportions (column 10): per unit beta the PIP joint moves this far towards
#: the MCP and the DIP joint ``PHALANX_DIP_SHARE`` of it, the fingertip stays: a shorter
#: proximal phalanx and a longer last segment.  Why: relative to this model's bones
#: (sum of the 20 bones normalised), RHD's 3D labels have proximal phalanges 0.72-0.90x
#: and last segments 1.12-1.25x as long, and MediaPipe's 3D on real and rendered clips
#: 0.69-0.87x and 0.91-1.33x (bench/fit_joints.py inputs); the single finger-length
#: direction scales all three segments alike.
PHALANX_STEP = 0.003
PHALANX_DIP_SHARE = 0.7


def _phalanx_field(verts, weights, fd: FingerDesign, ids) -> np.ndarray:
    """(V, 3) displacement of one finger's vertices per unit phalanx-proportion beta:
    piecewise linear along the finger (0 at the MCP, -step at the PIP, -share x step at
    the DIP, 0 at the tip), weighted by the finger's skinning weight."""
    pts = fd.joints()
    axis = fd.dirs[0]
    s = (verts - pts[0]) @ axis
    knots = [float((p - pts[0]) @ axis) for p in pts]
    amount = np.interp(s, knots, [0.0, -PHALANX_STEP, -PHALANX_STEP * PHALANX_DIP_SHARE, 0.0])
    amount = np.where(s > knots[3], 0.0, amount)
    return (weights[:, list(ids)].sum(1) * amount)[:, None] * axis


def _bump(verts: np.ndarray, centre: np.ndarray, radius: float) -> np.ndarray:
    """(V,) smooth weight, 1 at ``centre`` falling to 0 at ``radius`` (C1, cubic)."""
    x = np.clip(np.linalg.norm(verts - centre, axis=1) / radius, 0.0, 1.0)
    return 1.0 - x * x * (3.0 - 2.0 * x)


def _palm_length_field(verts: np.ndarray, weights: np.ndarray, d: HandDesign) -> np.ndarray:
    """(V,) displacement along ``a`` per unit palm length: the fingers (and their MCPs)
    move with their base, the palm stretches linearly from the wrist, the thumb and
    the forearm stay (their weights do not take part)."""
    a_row = float(np.mean([d.fingers[n].base[0] for n in FINGERS]))
    out = weights[:, 0] * np.clip(verts[:, 0] / a_row, 0.0, 1.0) * a_row
    for name in FINGERS:
        ids = list(FINGER_JOINTS[name])
        out += weights[:, ids].sum(1) * d.fingers[name].base[0]
    return out * PALM_LENGTH_STEP


# --- pose space -----------------------------------------------------------------

def generate_plausible_poses(joints_model: np.ndarray, side: str, n: int, seed: int) -> np.ndarray:
    """``(n, 45)`` axis-angle poses (radians) of joints 1..15: random curls
    (correlated along each finger and between neighbours), spreads and thumb motion."""
    from lagc_hand.handmodel.poses import pose_from_angles

    rng = np.random.default_rng(seed)
    curl_all = rng.beta(1.3, 1.6, size=(n, 1))
    curl = np.clip(curl_all + 0.25 * rng.standard_normal((n, 5)), 0.0, 1.1)
    flex = np.zeros((n, 5, 3))
    flex[:, 1:, 0] = curl[:, 1:] * 1.45
    flex[:, 1:, 1] = curl[:, 1:] * 1.65
    flex[:, 1:, 2] = curl[:, 1:] * 1.05
    flex[:, 0, 0] = curl[:, 0] * 0.6
    flex[:, 0, 1] = curl[:, 0] * 0.7
    flex[:, 0, 2] = curl[:, 0] * 1.0
    flex += 0.08 * rng.standard_normal(flex.shape)
    spread = 0.12 * rng.standard_normal((n, 5))
    opposition = np.clip(rng.beta(1.5, 1.5, size=n) * 1.2 - 0.2 + 0.2 * curl[:, 0], -0.3, 1.2)
    poses = pose_from_angles(joints_model, side, flex, spread, opposition)
    # Small jitter with a different scale per coordinate: the angle model spans
    # only ~21 of the 45 dimensions, and an exactly degenerate null space would
    # let SVD return any rotation of it (different bytes on another CPU).
    return poses + rng.standard_normal(poses.shape) * 0.01 * (1.0 + np.arange(45) / 45.0)


def pose_pca(poses: np.ndarray, relaxed: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``hands_components`` (45, 45) orthonormal rows by decreasing variance, and ``hands_mean``."""
    x = poses - poses.mean(0)
    _, _, vt = np.linalg.svd(x, full_matrices=True)
    # fix each component's sign so the output does not depend on LAPACK's choice
    signs = np.sign(vt[np.arange(45), np.argmax(np.abs(vt), axis=1)])
    return vt * signs[:, None], relaxed


# --- assembly -------------------------------------------------------------------

def build_open_hand(side: str = "right", voxel: float = 0.0048, seed: int = 0,
                    relax_iters: int = 8) -> HandModelParams:
    """Generate the open hand model (see module docstring).  Deterministic."""
    from lagc_hand.handmodel.poses import relaxed_pose

    d = HandDesign()
    verts, faces = mesh_hand(d, voxel, relax_iters)
    weights = skinning_weights(verts, faces, d)
    joints = d.joints()
    jreg = joint_regressor(verts, joints)
    tips = []
    for name in TIP_ORDER:
        fd = d.fingers[name]
        target = fd.joints()[3] - fd.dirs[2] * 0.0015 + fd.pad * 0.0015
        tips.append(int(np.argmin(np.linalg.norm(verts - target, axis=1))))
    sd = shape_directions(verts, weights, d, jreg)

    # design frame -> MANO model frame
    r = DESIGN_TO_MODEL
    v_m = verts @ r.T
    sd_m = np.einsum("ij,vjb->vib", r, sd)
    joints_m = jreg @ v_m
    kintree = np.stack([MANO_PARENTS, np.arange(16)]).astype(np.int64)
    relaxed = relaxed_pose(joints_m, "right")
    poses = generate_plausible_poses(joints_m, "right", 4000, seed)
    comps, mean = pose_pca(poses, relaxed)
    # Round to fixed grids before float32: last-bit differences between CPUs
    # (SIMD sums, libm) then almost never reach the stored bytes.
    params = HandModelParams(
        v_template=np.round(v_m, 7), f=faces, weights=np.round(weights, 6), J_regressor=np.round(jreg, 6),
        kintree_table=kintree, shapedirs=np.round(sd_m, 8), posedirs=np.zeros((len(v_m), 3, NUM_POSE_FEATURES)),
        hands_components=np.round(comps, 6), hands_mean=np.round(mean, 6), tip_vertex_ids=np.array(tips),
        side="right", model_id=MODEL_ID,
    ).normalized()
    if side == "left":
        params = mirror_params(params)
    return params.validate()


def mirror_params(p: HandModelParams) -> HandModelParams:
    """Left hand from right (or back): ``x -> -x``, faces flipped, pose basis mirrored."""
    v, f = meshops.mirror_x(p.v_template, p.f)
    sd = p.shapedirs.copy()
    sd[:, 0, :] *= -1
    pdirs = p.posedirs.copy()
    pdirs[:, 0, :] *= -1  # (correctives are zero for the open model; kept consistent anyway)
    # a mirrored rotation has axis-angle (x, -y, -z)
    flip = np.tile(np.array([1.0, -1.0, -1.0], np.float32), 15)
    comps = p.hands_components * flip[None, :]
    mean = p.hands_mean * flip
    return HandModelParams(
        v_template=v, f=f, weights=p.weights.copy(), J_regressor=p.J_regressor.copy(),
        kintree_table=p.kintree_table.copy(), shapedirs=sd, posedirs=pdirs,
        hands_components=comps, hands_mean=mean, tip_vertex_ids=p.tip_vertex_ids.copy(),
        side="left" if p.side == "right" else "right", model_id=p.model_id,
    ).normalized()


def save_npz_deterministic(path: str | Path, arrays: dict[str, np.ndarray]) -> None:
    """``np.savez_compressed`` without timestamps (fixed zip dates, sorted
    keys), written to a temp file and renamed, so the same arrays give the same bytes."""
    path = Path(path)
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        for key in sorted(arrays):
            info = zipfile.ZipInfo(f"{key}.npy", date_time=(1980, 1, 1, 0, 0, 0))
            info.compress_type = zipfile.ZIP_DEFLATED
            info.external_attr = 0o644 << 16
            body = io.BytesIO()
            np.lib.format.write_array(body, np.asanyarray(arrays[key]), allow_pickle=False)
            zf.writestr(info, body.getvalue(), compresslevel=9)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_bytes(buf.getvalue())
    tmp.replace(path)


def write_open_hand_assets(out_dir: str | Path, **build_kwargs) -> list[Path]:
    """Build the right hand, mirror it, write ``open_hand_{right,left}.npz``."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    right = build_open_hand("right", **build_kwargs)
    left = mirror_params(right).validate()
    paths = []
    for p in (right, left):
        path = out_dir / f"open_hand_{p.side}.npz"
        save_npz_deterministic(path, p.to_arrays())
        paths.append(path)
    return paths
