"""One declaration of the options (core/options_spec.py): the dataclass, both
command-line parsers, the server model, the engine registry and the add-on's
properties (real bpy) all agree with it."""
from __future__ import annotations

import argparse
import dataclasses

import pytest

from lagc_hand.commands import batch as batch_cmd
from lagc_hand.commands import reconstruct as reconstruct_cmd
from lagc_hand.engines import ENGINES as ENGINE_REGISTRY
from lagc_hand.errors import InputError
from lagc_hand.options import ReconstructOptions, options_from_args
from lagc_hand.server.models import OptionsModel
from lagc_hand_blender.core.options_spec import ENGINE_NAMES, OPTIONS, SPECS, OptionError, check_options


def _parser(cmd) -> argparse.ArgumentParser:
    p = argparse.ArgumentParser()
    cmd.add_arguments(p)
    return p


def test_dataclass_is_the_declaration():
    fields = dataclasses.fields(ReconstructOptions)
    assert [f.name for f in fields] == [s.name for s in OPTIONS]
    assert ReconstructOptions().to_dict() == {s.name: s.default for s in OPTIONS}
    assert ENGINE_NAMES == tuple(ENGINE_REGISTRY), "the engine registry and the declared engines differ"


@pytest.mark.parametrize("cmd", [reconstruct_cmd, batch_cmd])
def test_cli_flags_choices_and_bounds(cmd):
    p = _parser(cmd)
    actions = {a.dest: a for a in p._actions}
    for s in OPTIONS:
        if s.cli is None or (cmd is batch_cmd and s.name == "detect_workers"):
            continue
        a = actions[s.name]
        assert s.cli in a.option_strings and a.default == s.default
        if s.kind == "choice":
            assert tuple(a.choices) == s.choices
    assert "frames" in actions  # --frames A:B gives frame_start / frame_end
    base = ["v.mp4", "-o", "x.npz"] if cmd is reconstruct_cmd else ["v.mp4", "--out", "o"]
    args = p.parse_args(base + ["--fov", "75", "--frames", "3:9", "--engine", "mediapipe-raw"])
    o = options_from_args(args)
    assert (o.fov_deg, o.frame_start, o.frame_end, o.engine) == (75.0, 3, 9, "mediapipe-raw")
    args = p.parse_args(base + ["--intrinsics", "800, 810,300.5,200"])
    assert options_from_args(args).intrinsics == (800.0, 810.0, 300.5, 200.0)
    # Bounds are the declaration's: one past each end is refused with the option's name.
    for s in OPTIONS:
        if s.cli and s.kind in ("int", "float") and s.name in {a.dest for a in p._actions}:
            for v in (s.minimum - 1, s.maximum + 1):
                with pytest.raises(InputError, match=s.name):
                    options_from_args(p.parse_args(base + [s.cli, str(v)]))
            options_from_args(p.parse_args(base + [s.cli, str(s.maximum)]))
    with pytest.raises(SystemExit):  # two cameras at once
        p.parse_args(base + ["--fov", "60", "--intrinsics", "1,1,1,1"])


def test_server_model_bounds_are_the_declaration():
    props = OptionsModel.model_json_schema()["properties"]
    assert list(props) == [s.name for s in OPTIONS]
    for s in OPTIONS:
        if s.kind in ("int", "float"):
            OptionsModel(**{s.name: s.maximum})
            for bad in (s.minimum - 1, s.maximum + 1):
                with pytest.raises(ValueError):
                    OptionsModel(**{s.name: bad})
    # The old server allowed FOV up to 179 and focal lengths the pipeline refused; no longer.
    with pytest.raises(ValueError):
        OptionsModel(fov_deg=175)
    assert OptionsModel(intrinsics=[800, 800, 10, 20]).to_options().intrinsics == (800.0, 800.0, 10.0, 20.0)
    for bad in ({"intrinsics": [800, 800, 10]}, {"intrinsics": [800, 800, 10, 20], "focal_mm": 20},
                {"calibration": "a.yaml", "fov_deg": 50}, {"engine": "nope"}):
        with pytest.raises(ValueError):
            OptionsModel(**bad)


def test_check_options_rules():
    assert check_options({})["engine"] == "mediapipe"
    for bad, word in (({"frame_start": 5, "frame_end": 5}, "frame_end"), ({"smoothing": float("nan")}, "smoothing"),
                      ({"stride": 1.5}, "stride"), ({"hand_model": "a\x00b"}, "hand_model"),
                      ({"bogus": 1}, "unknown"), ({"intrinsics": (-5, 5, 1, 1)}, "positive")):
        with pytest.raises(OptionError, match=word):
            check_options(bad)


_ADDON_CHECK = """
import json
import bpy
from lagc_hand_blender.blender import props
from lagc_hand_blender.core.options_spec import ENGINE_NAMES, SPECS

bpy.utils.register_class(props.LagcHandSettings)
rna = props.LagcHandSettings.bl_rna.properties
out = {"bounds": {n: [rna[n].hard_min, rna[n].hard_max]
                  for n in ("stride", "smoothing", "focal_mm", "fov_deg", "frame_start", "frame_end")},
       "engines": [i.identifier for i in rna["engine"].enum_items], "intrinsics_len": rna["intrinsics"].array_length}
bpy.types.Scene.lagc_hand_test = bpy.props.PointerProperty(type=props.LagcHandSettings)
s = bpy.context.scene.lagc_hand_test
out["guess"] = props.job_options(s)
s.camera = 'INTRINSICS'
s.intrinsics = (900.0, 905.0, 100.0, 50.0)
out["intrinsics"] = props.job_options(s)
s.camera = 'FOV'
s.fov_deg = 500.0
out["fov"] = props.job_options(s)
print("RESULT" + json.dumps(out))
"""


def test_addon_properties_are_built_from_the_declaration():
    """In a fresh Blender (bpy module) process, so the test's registration cannot
    disturb the installed add-on of the Blender tests."""
    import json
    import subprocess
    import sys

    pytest.importorskip("bpy")
    p = subprocess.run([sys.executable, "-c", _ADDON_CHECK], capture_output=True, text=True, timeout=120)
    assert p.returncode == 0, p.stderr
    out = json.loads(p.stdout.split("RESULT", 1)[1])
    # The panel's frame range is in scene frames (1-based, last included; props.api_frame_range):
    # video frame i (the API's 0-based frame_start) is scene frame i + 1; an exclusive end e is
    # the inclusive last scene frame e.
    scene_frames = {"frame_start": (SPECS["frame_start"].minimum + 1, SPECS["frame_start"].maximum + 1),
                    "frame_end": (SPECS["frame_end"].minimum, SPECS["frame_end"].maximum)}
    for name, (lo, hi) in out["bounds"].items():
        want = scene_frames.get(name, (SPECS[name].minimum, SPECS[name].maximum))
        assert (lo, hi) == pytest.approx(want), name
    assert out["engines"] == list(ENGINE_NAMES) and out["intrinsics_len"] == 4
    assert not {"focal_mm", "fov_deg", "intrinsics", "calibration"} & set(out["guess"])
    assert out["intrinsics"]["intrinsics"] == [900.0, 905.0, 100.0, 50.0]
    assert OptionsModel(**out["intrinsics"]).to_options().intrinsics == (900.0, 905.0, 100.0, 50.0)
    assert out["fov"]["fov_deg"] == SPECS["fov_deg"].maximum  # the property clamps to the declared bound
    OptionsModel(**out["fov"])


def test_http_api_doc_lists_the_declared_options():
    import re
    from pathlib import Path

    doc = (Path(__file__).resolve().parents[1] / "docs" / "http-api.md").read_text()
    rows = re.findall(r"^\| `(\w+)` \| [^|]+ \| [^|]+ \| ([^\n]*)\|$", doc, re.M)
    assert [name for name, _ in rows] == [s.name for s in OPTIONS]
    for name, allowed in rows:
        s = SPECS[name]
        if s.kind in ("int", "float"):
            assert f"{s.minimum:.0f} to {s.maximum:.0f}" in allowed.replace("0.0", "0"), name
        if s.kind == "choice":
            assert all(f"`{c}`" in allowed for c in s.choices), name
