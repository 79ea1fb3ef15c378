"""``lagc-hand batch`` end to end on videos the test generates: a rendered hand
(the open hand model, Blender Workbench) moved over 20 frames, and a corrupt
file.  Real MediaPipe, real pipeline, real spawned workers, real bpy exporters;
the outputs are loaded back with Blender's own importers."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

REPO = Path(__file__).resolve().parents[1]
PY = sys.executable
FORMATS = "blend,fbx,glb,bvh,npz"


def render_hand_png(path: Path, size=(320, 240)) -> None:
    """A still of the open hand model, palm to the camera, fingers up (Workbench)."""
    import bpy
    import mathutils

    with np.load(REPO / "assets" / "open_hand_right.npz", allow_pickle=False) as z:
        v, f = z["v_template"].astype(float), z["f"]
        J = z["J_regressor"] @ v
    bpy.ops.wm.read_homefile(use_empty=True, use_factory_startup=True)
    sc = bpy.context.scene
    me = bpy.data.meshes.new("hand")
    me.from_pydata(v.tolist(), [], f.tolist())
    me.polygons.foreach_set("use_smooth", np.ones(len(me.polygons), bool))
    me.update()
    sc.collection.objects.link(bpy.data.objects.new("hand", me))
    cam = bpy.data.objects.new("cam", bpy.data.cameras.new("cam"))
    sc.collection.objects.link(cam)
    sc.camera = cam
    centre = 0.35 * J[0] + 0.65 * J[5]
    n = np.cross(J[1] - J[0], J[7] - J[0])
    pos = centre - 0.6 * n / np.linalg.norm(n)
    zc = mathutils.Vector((pos - centre).tolist()).normalized()
    up = mathutils.Vector((J[4] - J[0]).tolist())
    yc = (up - up.dot(zc) * zc).normalized()
    cam.matrix_world = mathutils.Matrix((yc.cross(zc), yc, zc)).transposed().to_4x4()
    cam.location = pos.tolist()
    sc.render.engine = 'BLENDER_WORKBENCH'
    sc.render.resolution_x, sc.render.resolution_y = size
    sc.render.filepath = str(path)
    bpy.ops.render.render(write_still=True)


def write_video(still: Path, path: Path, frames: int = 20) -> None:
    """The still, rotated and shifted a little per frame (so tracking has work)."""
    import cv2

    im = cv2.imread(str(still))
    h, w = im.shape[:2]
    vw = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), 30.0, (w, h))
    for t in range(frames):
        M = cv2.getRotationMatrix2D((w / 2, h * 0.6), 6 * np.sin(t * 0.4), 1.0)
        M[0, 2] += 12 * np.sin(t * 0.3)
        M[1, 2] += 5 * np.cos(t * 0.25)
        vw.write(cv2.warpAffine(im, M, (w, h), borderMode=cv2.BORDER_REPLICATE))
    vw.release()


def batch(*args: str, timeout: float = 240) -> subprocess.CompletedProcess:
    return subprocess.run([PY, "-m", "lagc_hand.cli", "batch", *args], capture_output=True, text=True,
                          timeout=timeout, cwd=str(REPO))


@pytest.fixture(scope="module")
def videos(tmp_path_factory):
    pytest.importorskip("bpy")
    d = tmp_path_factory.mktemp("videos")
    render_hand_png(d / "hand.png")
    write_video(d / "hand.png", d / "wave.mp4")
    (d / "broken.mp4").write_bytes(b"\x00\x00\x00\x18ftypmp42" + os.urandom(4000))
    return d


@pytest.fixture(scope="module")
def first_run(videos, tmp_path_factory):
    out = tmp_path_factory.mktemp("out")
    p = batch(str(videos / "wave.mp4"), str(videos / "broken.mp4"), "--out", str(out), "--format", FORMATS,
              "--workers", "2")
    return out, p


def _files(folder: Path) -> dict:
    return {str(p.relative_to(folder)): p.stat().st_mtime_ns for p in folder.rglob("*") if p.is_file()}


def test_good_video_gets_every_format_and_bad_one_is_reported(first_run):
    out, p = first_run
    assert p.returncode == 1, p.stdout + p.stderr  # one video failed
    assert "broken: FAILED" in p.stdout and "cannot open" in p.stdout
    assert "wave: done" in p.stdout
    assert "batch: 1 done, 0 skipped, 1 failed" in p.stdout
    assert "wave: detect" in p.stdout  # per-file progress
    w = out / "wave"
    for name in ("wave.npz", "wave.blend", "wave.glb", "wave.fbx", "wave_right.bvh", "manifest.json",
                 "qa/report.md", "qa/confidence.png", "qa/jitter.png", "qa/thumbnail.png"):
        assert (w / name).is_file() and (w / name).stat().st_size > 0, name
    assert not [f for f in out.rglob("*") if ".part" in f.name]  # atomic writes left no temp files
    m = json.loads((w / "manifest.json").read_text())
    assert m["complete"] and set(m["outputs"]) == set(FORMATS.split(","))
    summary = json.loads((out / "batch_summary.json").read_text())
    assert summary["counts"] == {"done": 1, "skipped": 0, "failed": 1}
    assert not (out / "broken").exists()  # no empty folder for a video that failed at once


def test_qa_report_numbers_and_thumbnail(first_run):
    import cv2

    out, _ = first_run
    m = json.loads((out / "wave" / "manifest.json").read_text())
    qa = m["qa"]
    right = qa["hands"]["right"]
    assert right["detected_pct"] >= 90.0 and qa["hands"]["left"]["detected_pct"] <= 10.0
    assert qa["identity_switches"] == 0
    assert right["jitter_mm_clean"] < right["jitter_mm_raw"]  # cleanup reduced jitter
    text = (out / "wave" / "qa" / "report.md").read_text()
    for needle in ("detected", "keypoint jitter raw -> clean", "low confidence", "identity switches", "thumbnail.png"):
        assert needle in text
    thumb = cv2.imread(str(out / "wave" / "qa" / "thumbnail.png"))
    # the right hand's bones are drawn in orange (BGR 40, 140, 240)
    orange = np.all(np.abs(thumb.astype(int) - [40, 140, 240]) < 40, axis=-1)
    assert orange.sum() > 200
    assert qa["thumbnail_frame"] is not None


def test_rerun_skips_finished_and_resumes_partial(first_run, videos):
    out, _ = first_run
    before = _files(out / "wave")
    p = batch(str(videos / "wave.mp4"), "--out", str(out), "--format", FORMATS)
    assert p.returncode == 0, p.stdout + p.stderr
    assert "wave: already done, skipped" in p.stdout
    assert _files(out / "wave") == before  # nothing rewritten
    # An interrupted run: the manifest (written last) and one output are missing.
    (out / "wave" / "manifest.json").unlink()
    (out / "wave" / "wave.fbx").unlink()
    npz_mtime = (out / "wave" / "wave.npz").stat().st_mtime_ns
    p = batch(str(videos / "wave.mp4"), "--out", str(out), "--format", "fbx,npz")
    assert p.returncode == 0, p.stdout + p.stderr
    assert (out / "wave" / "wave.fbx").is_file()
    # the reconstruction is redone only when the manifest does not vouch for it
    assert "wave: done" in p.stdout
    m = json.loads((out / "wave" / "manifest.json").read_text())
    assert m["complete"] and set(m["outputs"]) == {"fbx", "npz"}
    assert (out / "wave" / "wave.npz").stat().st_mtime_ns >= npz_mtime


def test_outputs_load_back_in_blender(first_run):
    bpy = pytest.importorskip("bpy")
    import addon_utils

    out, _ = first_run
    w = out / "wave"
    bpy.ops.wm.open_mainfile(filepath=str(w / "wave.blend"))
    arms = [o for o in bpy.data.objects if o.type == 'ARMATURE']
    assert [a.name for a in arms] == ["wave_hand.R"]
    assert arms[0].animation_data and arms[0].animation_data.action
    for mod in ("io_scene_gltf2", "io_scene_fbx", "io_anim_bvh"):
        addon_utils.enable(mod, default_set=True)
    for fmt, op in (("glb", lambda p: bpy.ops.import_scene.gltf(filepath=p)),
                    ("fbx", lambda p: bpy.ops.import_scene.fbx(filepath=p)),
                    ("bvh", lambda p: bpy.ops.import_anim.bvh(filepath=p))):
        bpy.ops.wm.read_homefile(use_empty=True, use_factory_startup=True)
        path = w / ("wave_right.bvh" if fmt == "bvh" else f"wave.{fmt}")
        assert op(str(path)) == {'FINISHED'}, fmt
        arms = [o for o in bpy.data.objects if o.type == 'ARMATURE']
        assert arms, fmt
        bones = len(arms[0].data.bones)
        assert bones >= 16, (fmt, bones)
        assert arms[0].animation_data and arms[0].animation_data.action, fmt
    with open(w / "wave_right.bvh") as f:
        text = f.read()
    assert "Frames: 20" in text


def _max_vertex_influences(blend: Path) -> int:
    """Most non-zero skin weights on one vertex of the meshes in the ``.blend`` file."""
    import bpy

    bpy.ops.wm.open_mainfile(filepath=str(blend))
    meshes = [o for o in bpy.data.objects if o.type == 'MESH']
    assert meshes
    return max(sum(g.weight > 1e-6 for g in v.groups) for o in meshes for v in o.data.vertices)


def test_max_influences_reaches_the_scene_files(first_run, tmp_path):
    """--max-influences 4 (game engines): the scene's vertices carry at most 4 weights (the FBX
    exporter writes them as they are; glTF's exporter cuts to 4 on its own); the default keeps
    the model's (some vertices have 5)."""
    pytest.importorskip("bpy")
    out, _ = first_run
    p = batch(str(out / "wave" / "wave.npz"), "--out", str(tmp_path / "o"), "--format", "blend",
              "--max-influences", "4")
    assert p.returncode == 0, p.stdout + p.stderr
    assert _max_vertex_influences(tmp_path / "o" / "wave" / "wave.blend") <= 4
    assert _max_vertex_influences(out / "wave" / "wave.blend") > 4
    p = batch(str(out / "wave" / "wave.npz"), "--out", str(tmp_path / "o2"), "--max-influences", "-1")
    assert p.returncode == 2 and "--max-influences" in p.stderr


def test_bad_arguments_are_clear(tmp_path):
    p = batch(str(tmp_path / "nope.mp4"), "--out", str(tmp_path / "o"))
    assert p.returncode == 2 and "no such file" in p.stderr
    (tmp_path / "v.mp4").write_bytes(b"x")
    p = batch(str(tmp_path / "v.mp4"), "--out", str(tmp_path / "o"), "--format", "blend,obj")
    assert p.returncode == 2 and "unknown format" in p.stderr and "obj" in p.stderr


def test_blender_script_runs_the_same_function(first_run, tmp_path):
    """scripts/blender_batch.py under the bpy module (as ``blender -b --python``
    would run it): argument handling after '--', and the per-video function on
    a HandMotion input."""
    out, _ = first_run
    script = str(REPO / "scripts" / "blender_batch.py")
    p = subprocess.run([PY, script, "--", str(out / "wave" / "wave.npz"), "--out", str(tmp_path / "o"),
                        "--format", "bvh,npz"], capture_output=True, text=True, timeout=180)
    assert p.returncode == 0, p.stdout + p.stderr
    assert (tmp_path / "o" / "wave" / "wave_right.bvh").is_file()
    assert (tmp_path / "o" / "wave" / "qa" / "report.md").is_file()
    p = subprocess.run([PY, script, "--", "--out", str(tmp_path / "o")], capture_output=True, text=True, timeout=60)
    assert p.returncode == 2 and "VIDEO_OR_DIR" in p.stderr
    p = subprocess.run([PY, script], capture_output=True, text=True, timeout=60)
    assert p.returncode == 2


@pytest.mark.slow
def test_ray_local_cluster_runs_the_same_function(first_run, tmp_path):
    pytest.importorskip("ray")
    out, _ = first_run
    p = batch(str(out / "wave" / "wave.npz"), "--out", str(tmp_path / "r"), "--format", "npz,bvh",
              "--ray", "local", timeout=300)
    assert p.returncode == 0, p.stdout + p.stderr
    assert "submitted 1 video(s) to Ray (local)" in p.stdout and "wave: done" in p.stdout
    assert (tmp_path / "r" / "wave" / "wave_right.bvh").is_file()
    assert json.loads((tmp_path / "r" / "wave" / "manifest.json").read_text())["complete"]
