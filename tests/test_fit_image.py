"""The image-aligned fit (issue 13.2): the image rows of the LM against finite
differences, depth and shape recovered through an off-centre K, the cleaned hand
kept on the image, and on real footage (shared/realdev) the fit lying on the
detector's 2D keypoints."""
from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest
import torch

from lagc_hand.cleanup import CleanConfig, ImageAlign, clean_hand
from lagc_hand.fitting import FitConfig, anatomical_frames, fit_hand, joint_limit_boxes, pose_keypoints
from lagc_hand.fitting.image_term import make_image_term, project
from lagc_hand.fitting.landmarks import MEDIAPIPE_BETA, to_detector_points
from lagc_hand.fitting.lm import PoseProblem
from lagc_hand.handmodel import HandModel, load_hand_model_params
from lagc_hand.handmodel.torch_rotations import axis_angle_to_matrix
from lagc_hand_blender.core.rotations import matrix_to_quat
from lagc_hand_blender.core.skeleton import PUBLIC_TO_MANO21

F64 = torch.float64
#: Off-centre principal point on purpose: a fit that assumed the image centre would miss.
K_OFF = np.array([[900.0, 0.0, 250.0], [0.0, 900.0, 420.0], [0.0, 0.0, 1.0]])


def _realdev() -> Path | None:
    repo = Path(__file__).resolve().parents[1]
    for p in (os.environ.get("LAGC_REALDEV"), repo.parent / "shared" / "realdev", "/work/shared/realdev"):
        if p and (Path(p) / "labels").is_dir():
            return Path(p)
    return None


def _poses(model, T, seed, betas=None):
    """Keypoints (T, 21, 3) metres of random, mostly plausible poses 0.35-0.7 m in front of the camera."""
    rng = np.random.default_rng(seed)
    aa = rng.normal(scale=0.25, size=(T, 16, 3))
    aa[:, 0] *= 3
    tr = np.stack([rng.uniform(-0.1, 0.1, T), rng.uniform(-0.1, 0.1, T), rng.uniform(0.35, 0.7, T)], 1)
    b = None if betas is None else torch.as_tensor(np.asarray(betas)[None], dtype=model.v_template.dtype)
    with torch.no_grad():
        out = model.forward_rotmat(axis_angle_to_matrix(torch.as_tensor(aa, dtype=model.v_template.dtype)), b,
                                   torch.as_tensor(tr, dtype=model.v_template.dtype), return_vertices=False)
    return out.keypoints.numpy().astype(np.float64), rng


def _px(P):
    return project(torch.as_tensor(P), torch.as_tensor(K_OFF)).numpy()


def test_image_rows_in_the_normal_equations_match_finite_differences():
    """Relative 3D term + image term (Huber inactive): the structured J^T J and J^T r
    equal those of a finite-difference Jacobian of the whole residual vector."""
    model = HandModel(load_hand_model_params("open", "right"), dtype=F64)
    T = 3
    kp, rng = _poses(model, T, seed=4)
    R = axis_angle_to_matrix(torch.as_tensor(rng.normal(scale=0.4, size=(T, 16, 3)), dtype=F64))
    transl = torch.as_tensor(kp[:, 0] + rng.normal(scale=0.02, size=(T, 3)), dtype=F64)
    betas = torch.as_tensor(rng.normal(size=model.num_betas) * 0.5, dtype=F64)
    with torch.no_grad():
        rest = model.forward_rotmat(torch.eye(3, dtype=F64).expand(1, 16, 3, 3), betas[None],
                                    return_vertices=False).keypoints[0].numpy()
    frames = torch.as_tensor(anatomical_frames(rest[PUBLIC_TO_MANO21], "right"), dtype=F64)
    lo, hi = (torch.as_tensor(a, dtype=F64) for a in joint_limit_boxes())
    image = make_image_term(_px(kp) + rng.normal(scale=5, size=(T, 21, 2)), K_OFF, rng.uniform(0.5, 1, T),
                            3.0, 1e6, F64, "cpu")
    prob = PoseProblem(model, betas, torch.as_tensor(kp, dtype=F64), torch.as_tensor(rng.uniform(0.5, 2, (T, 21))),
                       frames, lo, hi, 30.0, image=image, relative3d=True)

    def residual(R_, t_):
        s = prob.evaluate(R_, t_)
        excess = (prob.lo - s.ang).clamp_min(0) + (s.ang - prob.hi).clamp_min(0)
        return torch.cat([s.res.reshape(T, -1), s.img_res.reshape(T, -1), (30.0 ** 0.5) * excess.reshape(T, -1)], 1)

    with torch.no_grad():
        s = prob.evaluate(R, transl)
        r0 = residual(R, transl)
        eps = 1e-6
        cols = []
        for p in range(51):
            w = torch.zeros(T, 51, dtype=F64)
            w[:, p] = eps
            t_p = transl + w[:, :3] / 100.0
            R_p = R @ axis_angle_to_matrix((s.glob.transpose(-1, -2) @ w[:, 3:].view(T, 16, 3)[..., None])[..., 0])
            t_m = transl - w[:, :3] / 100.0
            R_m = R @ axis_angle_to_matrix((s.glob.transpose(-1, -2) @ -w[:, 3:].view(T, 16, 3)[..., None])[..., 0])
            cols.append((residual(R_p, t_p) - residual(R_m, t_m)) / (2 * eps))
        J = torch.stack(cols, -1)  # (T, n, 51)
        H = J.transpose(1, 2) @ J
        g = (J.transpose(1, 2) @ r0[..., None])[..., 0]
        A, B, Hg, gf, gg = prob.normal_equations(s)
    scale = float(H.abs().max())
    for f in range(5):
        sl = slice(6 + 9 * f, 15 + 9 * f)
        np.testing.assert_allclose(A[:, f].numpy(), H[:, sl, sl].numpy(), atol=1e-5 * scale)
        np.testing.assert_allclose(B[:, f].numpy(), H[:, sl, :6].numpy(), atol=1e-5 * scale)
        np.testing.assert_allclose(gf[:, f].numpy(), g[:, sl].numpy(), atol=1e-5 * float(g.abs().max()))
    np.testing.assert_allclose(Hg.numpy(), H[:, :6, :6].numpy(), atol=1e-5 * scale)
    np.testing.assert_allclose(gg.numpy(), g[:, :6].numpy(), atol=1e-5 * float(g.abs().max()))


def test_depth_recovered_through_an_off_centre_principal_point(open_models):
    """The detector's 3D keypoints have a size of their own (here 0.75-1.1x, varying
    per frame, as MediaPipe's world landmarks) and are placed 15 % too far; the 2D
    comes through K_OFF with 1.5 px noise.  The image fit finds the wrist within
    1.5 cm and lies on the image; the 3D-only fit keeps the placement's depth."""
    model = open_models["right"]
    kp, rng = _poses(model, 150, seed=7)
    uv = _px(kp) + rng.normal(scale=1.5, size=(len(kp), 21, 2))
    size = rng.uniform(0.75, 1.1, (len(kp), 1, 1))
    placed = (kp - kp[:, :1]) * size + rng.normal(scale=0.003, size=kp.shape) + 1.15 * kp[:, :1]
    # (the 2D are the model's own keypoints, not MediaPipe's landmarks)
    new = fit_hand(model, placed, keypoints2d=uv, K=K_OFF, config=FitConfig(landmarks=None))
    old = fit_hand(model, placed, config=FitConfig(w_image=0.0))
    root_new = np.linalg.norm(new.root - kp[:, 0], axis=1)
    root_old = np.linalg.norm(old.root - kp[:, 0], axis=1)
    assert np.median(root_new) < 0.015 and np.median(root_old) > 0.05
    assert np.abs(kp[:, 0, 2] - new.root[:, 2]).mean() < 0.015
    err2d = np.linalg.norm(_px(new.keypoints3d) - _px(kp), axis=-1).mean()
    assert err2d < 6.0 and new.reproj_px.mean() < 6.0


def test_one_shape_per_track_from_image_and_relative_3d(open_models):
    """A hand of another shape, its 3D keypoints of the right size (normalise_size off):
    the shape solved from the image rows and the wrist-relative 3D of all frames comes
    back, one betas vector for the track, every frame with the same bones."""
    model = open_models["right"]
    true_b = np.zeros(model.num_betas)
    true_b[:2] = [1.0, -0.8]
    kp, rng = _poses(model, 150, seed=8, betas=true_b)
    uv = _px(kp) + rng.normal(scale=1.5, size=(len(kp), 21, 2))
    placed = (kp - kp[:, :1]) + rng.normal(scale=0.003, size=kp.shape) + 1.15 * kp[:, :1]
    fit = fit_hand(model, placed, keypoints2d=uv, K=K_OFF,
                   config=FitConfig(normalise_size=False, w_betas_image=0.05, landmarks=None))
    assert fit.betas.shape == (model.num_betas,)
    assert np.abs(fit.betas[:2] - true_b[:2]).max() < 0.5
    assert np.median(np.linalg.norm(fit.root - kp[:, 0], axis=1)) < 0.015
    parent = [0, 1, 2, 3, 0, 5, 6, 7, 0, 9, 10, 11, 0, 13, 14, 15, 0, 17, 18, 19]
    bones = np.linalg.norm(fit.keypoints3d[:, 1:] - fit.keypoints3d[:, parent], axis=-1)
    rigid = bones[:, [1, 2, 5, 6, 9, 10, 13, 14, 17, 18]]  # finger bones: rigid in the model
    assert (rigid.std(0) / rigid.mean(0)).max() < 1e-3


def test_cleanup_keeps_the_hand_on_the_image(open_models):
    """Noisy fitted motion (rotation and root jitter), clean 2D: smoothing alone drifts
    off the image; with ImageAlign the cleaned keypoints project onto the 2D."""
    model = open_models["left"]
    T = 60
    t = np.linspace(0, 2 * np.pi, T)
    aa = np.zeros((T, 16, 3))
    aa[:, 0] = np.stack([0.3 * np.sin(t), 1.2 * t / (2 * np.pi), 0.2 * np.cos(t)], 1)
    aa[:, 1:, 2] = 0.5 + 0.4 * np.sin(2 * t)[:, None]
    root = np.stack([0.1 * np.sin(t), 0.05 * np.cos(2 * t), 0.5 + 0.1 * np.sin(t)], 1)
    R = axis_angle_to_matrix(torch.as_tensor(aa, dtype=torch.float32)).numpy()
    q = matrix_to_quat(R)
    b = np.zeros(model.num_betas)
    truth = pose_keypoints(model, q, root, b)
    uv = _px(truth)
    rng = np.random.default_rng(1)
    noisy_R = R @ axis_angle_to_matrix(torch.as_tensor(rng.normal(scale=0.05, size=(T, 16, 3)),
                                                       dtype=torch.float32)).numpy()
    q_noisy = matrix_to_quat(noisy_R)
    r_noisy = root + rng.normal(scale=0.004, size=root.shape)
    present, conf = np.ones(T, bool), np.ones(T)
    align = ImageAlign(K_OFF, lambda qq, rr: pose_keypoints(model, qq, rr, b))
    plain = clean_hand(present, conf, q_noisy, r_noisy, uv, 30.0, CleanConfig())
    aligned = clean_hand(present, conf, q_noisy, r_noisy, uv, 30.0, CleanConfig(), align=align)
    err = lambda c: np.linalg.norm(_px(pose_keypoints(model, c.quats, c.root, b)) - uv, axis=-1).mean()  # noqa: E731
    raw_err = np.linalg.norm(_px(pose_keypoints(model, q_noisy, r_noisy, b)) - uv, axis=-1).mean()
    assert err(aligned) < 0.7 * err(plain)
    assert err(aligned) <= raw_err
    np.testing.assert_allclose(aligned.quats, plain.quats)  # the pose smoothing is unchanged


def test_cleanup_depth_stays_with_the_fit_when_the_2d_collapses(open_models):
    """A hand going behind another: for 4 frames its 2D keypoints collapse towards their
    centre (a partial detection, 0.3-0.5x the size) while the fit keeps the hand at its
    depth.  Re-placed on that 2D the hand ran off to several times its depth; the cleaned
    depth stays within MAX_DEPTH_RATIO of the fitted one, and elsewhere the hand stays
    on the image."""
    from lagc_hand.cleanup.clean import MAX_DEPTH_RATIO

    model = open_models["right"]
    T = 40
    aa = np.zeros((T, 16, 3))
    aa[:, 0] = [0.2, 0.4, 0.1]
    aa[:, 1:, 2] = 0.4
    q = matrix_to_quat(axis_angle_to_matrix(torch.as_tensor(aa, dtype=torch.float32)).numpy())
    root = np.stack([np.linspace(-0.05, 0.05, T), np.zeros(T), np.full(T, 0.5)], 1)
    b = np.zeros(model.num_betas)
    uv = _px(pose_keypoints(model, q, root, b))
    bad = np.arange(18, 22)
    c = uv[bad].mean(1, keepdims=True)
    uv[bad] = c + (uv[bad] - c) * np.array([0.5, 0.35, 0.3, 0.4])[:, None, None]
    align = ImageAlign(K_OFF, lambda qq, rr: pose_keypoints(model, qq, rr, b))
    out = clean_hand(np.ones(T, bool), np.ones(T), q, root, uv, 30.0, CleanConfig(), align=align)
    ratio = out.root[:, 2] / root[:, 2]
    assert ratio.max() <= MAX_DEPTH_RATIO + 1e-6 and ratio.min() >= 1 / MAX_DEPTH_RATIO - 1e-6
    good = np.r_[0:12, 28:T]
    px = np.linalg.norm(_px(pose_keypoints(model, out.quats, out.root, b))[good] - uv[good], axis=-1).mean()
    assert px < 1.0


@pytest.mark.skipif(_realdev() is None, reason="shared/realdev (real footage) not found; set LAGC_REALDEV")
def test_fit_lies_on_the_detector_2d_on_real_stills():
    """Real photos (OneHand10K, one hand close to the camera): the image fit's
    keypoints reproject within 0.035 hand sizes of MediaPipe's own 2D, less than
    half the old fit's offset; against the labels it is much closer than the old fit.
    (The issue's target, output no further from the labels than the detector, is not
    met yet: measured 29.0 px vs the detector's 24.3 px here, old fit 52.6 px; offset to
    the detector 0.015 hand sizes, old fit 0.056.)"""
    from lagc_hand.options import ReconstructOptions
    from lagc_hand.pipeline import run_pipeline

    realdev = _realdev()
    labels = {it["file"]: it for it in json.loads((realdev / "labels" / "onehand10k_hands.json").read_text())["items"]}
    res = {}
    for name, cfg in (("old", FitConfig(w_image=0.0)), ("new", FitConfig())):
        agree, lab_fit, lab_det = [], [], []
        for f in ("images/onehand10k/5.jpg", "images/onehand10k/75.jpg", "images/acr/magic.jpg"):
            inter: dict = {}
            m = run_pipeline(realdev / f, ReconstructOptions(), fit_config=cfg, intermediates=inter).motion
            for s, h in m.hands.items():
                if not h.present[0]:
                    continue
                det = inter["tracking"].tracks[s].keypoints2d[0].astype(np.float64)
                size = (det.max(0) - det.min(0)).max()
                fit2d = project(torch.as_tensor(h.raw.keypoints3d[0:1], dtype=F64),
                                torch.as_tensor(m.intrinsics))[0].numpy()
                agree.append(np.linalg.norm(fit2d - det, axis=-1).mean() / size)
                if f in labels:
                    lab = labels[f]["hands"][0]
                    vis = np.asarray(lab["visible"], bool)
                    kp = np.array([k if k is not None else [0, 0] for k in lab["keypoints_2d"]], np.float64)
                    if np.linalg.norm(det[vis] - kp[vis], axis=-1).mean() < 0.5 * max(lab["bbox_xywh"][2:]):
                        lab_fit.append(np.linalg.norm(fit2d[vis] - kp[vis], axis=-1).mean())
                        lab_det.append(np.linalg.norm(det[vis] - kp[vis], axis=-1).mean())
        assert agree, "MediaPipe found no hand in the real stills"
        res[name] = (np.mean(agree), np.mean(lab_fit) if lab_fit else np.nan, np.mean(lab_det) if lab_det else np.nan)
    assert res["new"][0] < 0.035 and res["new"][0] < 0.5 * res["old"][0], res
    if np.isfinite(res["new"][1]):
        assert res["new"][1] < 0.7 * res["old"][1] and res["new"][1] <= 1.3 * res["new"][2], res


@pytest.mark.skipif(_realdev() is None, reason="shared/realdev (real footage) not found; set LAGC_REALDEV")
def test_cleaned_output_stays_on_the_hand_in_real_video():
    """tfjs_asl_hand (real, one hand fingerspelling), first 40 frames: MediaPipe's
    landmarks on the cleaned output (fitting.landmarks) reproject within 0.03 hand sizes of the detector's 2D (measured 0.021 on 100
    frames; the cleanup before issue 13: 0.041) and closer than the old fit + cleanup,
    while staying smoother than the detector (2D acceleration)."""
    from lagc_hand.options import ReconstructOptions
    from lagc_hand.pipeline import run_pipeline

    video = _realdev() / "videos" / "tfjs_asl_hand.25fps.mp4"
    out = {}
    for name, cfg in (("old", FitConfig(w_image=0.0)), ("new", FitConfig())):
        inter: dict = {}
        m = run_pipeline(video, ReconstructOptions(frame_end=40), fit_config=cfg, intermediates=inter).motion
        errs, acc_clean, acc_det = [], [], []
        for s, h in m.hands.items():
            p = h.present & inter["tracking"].tracks[s].present
            if not p.any():
                continue
            det = inter["tracking"].tracks[s].keypoints2d[p].astype(np.float64)
            # where the cleaned hand puts MediaPipe's landmarks (they lie short of its joints)
            marks = to_detector_points(h.clean.keypoints3d[p], MEDIAPIPE_BETA)
            clean = project(torch.as_tensor(marks, dtype=F64), torch.as_tensor(m.intrinsics)).numpy()
            size = (det.max(1) - det.min(1)).max(-1)
            errs += list(np.linalg.norm(clean - det, axis=-1).mean(-1) / size)
            acc = lambda k: np.linalg.norm(k[2:] - 2 * k[1:-1] + k[:-2], axis=-1).mean()  # noqa: E731
            acc_clean.append(acc(clean))
            acc_det.append(acc(det))
        assert errs, "MediaPipe found no hand in tfjs_asl_hand"
        out[name] = (np.mean(errs), np.mean(acc_clean), np.mean(acc_det))
    assert out["new"][0] < 0.03 and out["new"][0] < 0.7 * out["old"][0], out
    assert out["new"][1] < out["new"][2], out


#: Public indices of the palm points: wrist, thumb CMC, the four finger MCPs.
PALM = [0, 1, 5, 9, 13, 17]


def test_palm_layout_recovered_from_the_image(open_models):
    """A hand whose palm is laid out differently (the palm-layout and phalanx shape
    directions, betas 5..10): the fit with the whole shape space puts the palm points
    and the fingers on the image and comes back with that layout; the same fit limited to
    the first five shape directions (the model before them) cannot (measured: palm points
    1.3 vs 3.7 px, all points 1.3 vs 2.5 px).  A weak shape prior, as in the test above:
    this is about what the shape space can express."""
    params = load_hand_model_params("open", "right")
    full = open_models["right"]
    true_b = np.zeros(full.num_betas)
    true_b[5:11] = [1.0, -1.5, 1.5, 2.0, 1.5, 1.5]
    kp, rng = _poses(full, 60, seed=11, betas=true_b)
    uv = _px(kp) + rng.normal(scale=1.0, size=(len(kp), 21, 2))
    placed = (kp - kp[:, :1]) + rng.normal(scale=0.002, size=kp.shape) + 1.1 * kp[:, :1]
    err = {}
    for name, model in (("full", full), ("five", HandModel(params, num_betas=5))):
        fit = fit_hand(model, placed, keypoints2d=uv, K=K_OFF,
                       config=FitConfig(normalise_size=False, w_betas_image=0.05, landmarks=None))
        d = np.linalg.norm(_px(fit.keypoints3d) - _px(kp), axis=-1)
        err[name] = (d[:, PALM].mean(), d.mean())
        if name == "full":  # (palm length, 5, trades against size and finger length: not checked)
            assert np.all(np.sign(fit.betas[6:11]) == np.sign(true_b[6:11])), fit.betas
    assert err["full"][0] < 0.5 * err["five"][0] and err["full"][1] < 0.7 * err["five"][1], err


@pytest.mark.skipif(_realdev() is None, reason="shared/realdev (real footage) not found; set LAGC_REALDEV")
def test_fit_matches_the_detector_palm_on_real_stills():
    """Real photos (OneHand10K): with the palm-layout shape directions the fitted palm
    points (wrist, thumb CMC, MCPs) reproject much closer to MediaPipe's than a fit
    limited to the first five shape directions (measured on the three stills: 0.020 vs
    0.032 hand sizes)."""
    from lagc_hand.handmodel.cache import load_hand_model
    from lagc_hand.options import ReconstructOptions
    from lagc_hand.pipeline import run_pipeline

    realdev = _realdev()
    dist = {"full": [], "five": []}
    for f in ("5.jpg", "75.jpg", "160.jpg"):
        inter: dict = {}
        run_pipeline(realdev / "images" / "onehand10k" / f, ReconstructOptions(), intermediates=inter)
        for s, tr in inter["tracking"].tracks.items():
            if not tr.present[0]:
                continue
            params, full = load_hand_model("open", s, "cpu")
            det = tr.keypoints2d[:1].astype(np.float64)
            size = (det[0].max(0) - det[0].min(0)).max()
            for name, model in (("full", full), ("five", HandModel(params, num_betas=5))):
                fit = fit_hand(model, inter["placements"][s].keypoints3d[:1], keypoints2d=det, K=inter["intrinsics"],
                               confidence=tr.confidence[:1])
                fit2d = project(torch.as_tensor(fit.keypoints3d, dtype=F64), torch.as_tensor(inter["intrinsics"]))
                dist[name].append(np.linalg.norm(fit2d.numpy()[0, PALM] - det[0, PALM], axis=-1).mean() / size)
    assert len(dist["full"]) >= 2, "MediaPipe found too few hands in the OneHand10K stills"
    assert np.mean(dist["full"]) < 0.75 * np.mean(dist["five"]), dist
