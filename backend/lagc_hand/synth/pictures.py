"""Pictures of a hand model (rest pose and fist) rendered with Blender Cycles CPU."""
from __future__ import annotations

import time
from pathlib import Path

import numpy as np
from scipy.spatial.transform import Rotation

from lagc_hand.handmodel.params import HandModelParams

#: Model frame of a right hand -> camera frame: fingers up the image, back of
#: the hand towards the camera, thumb on the image's left.
RIGHT_BACK_VIEW = np.array([[0.0, 0.0, -1.0], [1.0, 0.0, 0.0], [0.0, -1.0, 0.0]])


def posed_vertices(params: HandModelParams, hand_pose: np.ndarray) -> np.ndarray:
    """``(V, 3)`` model-frame vertices for a ``(45,)`` axis-angle hand pose."""
    import torch

    from lagc_hand.handmodel.layer import HandModel

    layer = HandModel(params)
    with torch.no_grad():
        out = layer(torch.zeros(1, 3), torch.as_tensor(hand_pose, dtype=torch.float32)[None])
    return out.vertices[0].numpy().astype(np.float64)


def view_transform(yaw_deg: float, pitch_deg: float, side: str) -> np.ndarray:
    """Model -> camera rotation: the back view turned by ``yaw`` about the image's
    vertical and ``pitch`` about its horizontal axis."""
    base = RIGHT_BACK_VIEW.copy()
    if side == "left":  # mirror model (x -> -x) and image (x -> -x) keep the view a true mirror
        base = np.diag([-1.0, 1.0, 1.0]) @ base @ np.diag([-1.0, 1.0, 1.0])
    turn = Rotation.from_euler("yx", [yaw_deg, pitch_deg], degrees=True).as_matrix()
    return turn @ base


def render_model_picture(params: HandModelParams, hand_pose: np.ndarray, path: str | Path,
                         yaw_deg: float = 30.0, pitch_deg: float = -15.0, size: int = 512,
                         samples: int = 16, distance: float = 0.5) -> dict:
    """Render the posed model to ``path`` (PNG); returns timing info."""
    from lagc_hand.synth import scene as sc

    t0 = time.perf_counter()
    verts = posed_vertices(params, hand_pose)
    rot = view_transform(yaw_deg, pitch_deg, params.side)
    cam_pts = verts @ rot.T
    lo, hi = cam_pts.min(0), cam_pts.max(0)
    centre = 0.5 * (lo + hi)
    cam_pts = cam_pts - centre + np.array([0.0, 0.0, distance])
    extent = max(hi[0] - lo[0], hi[1] - lo[1])
    fx = 0.80 * size * distance / extent  # the hand fills ~80% of the frame
    cam = sc.CameraIntrinsics(size, size, fx, size / 2.0, size / 2.0)
    scene = sc.new_scene(cam, samples=samples, background=(0.36, 0.38, 0.41))
    sc.add_lights(scene, key=(-0.5, -0.7, -0.6), strength=3.5)
    sc.add_mesh(scene, "Hand", cam_pts, params.f, sc.skin_material())
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(path).with_name(Path(path).stem + ".tmp.png")
    sc.render_to_array(scene, tmp)
    tmp.replace(path)
    return {"path": str(path), "seconds": time.perf_counter() - t0, "vertices": int(len(verts))}


def render_rest_and_fist(params: HandModelParams, out_dir: str | Path, **kw) -> list[dict]:
    """``open_hand_rest.png`` and ``open_hand_fist.png`` in ``out_dir``."""
    from lagc_hand.handmodel.poses import fist_pose

    out_dir = Path(out_dir)
    joints = params.rest_joints()
    rest = render_model_picture(params, np.zeros(45), out_dir / "open_hand_rest.png", **kw)
    fist = render_model_picture(params, fist_pose(joints, params.side), out_dir / "open_hand_fist.png",
                                **{"yaw_deg": 180.0, "pitch_deg": 10.0, **kw})
    return [rest, fist]
