"""The add-on must run inside a plain Blender: stdlib + bpy + Blender's numpy,
relative imports only (an installed extension is not called lagc_hand_blender)."""
import ast
import sys
from pathlib import Path

ADDON = Path(__file__).resolve().parents[1] / "blender_addon"
ALLOWED_THIRD_PARTY = {"bpy", "bpy_extras", "mathutils", "numpy", "addon_utils", "bmesh", "rna_keymap_ui", "idprop"}


def _imports(path: Path):
    tree = ast.parse(path.read_text(), filename=str(path))
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield node.lineno, alias.name.split(".")[0], 0
        elif isinstance(node, ast.ImportFrom):
            yield node.lineno, (node.module or "").split(".")[0], node.level


def test_addon_imports_only_blender_numpy_stdlib_and_itself():
    stdlib = set(sys.stdlib_module_names)
    bad = []
    files = sorted(ADDON.rglob("*.py"))
    assert len(files) > 10
    for f in files:
        for line, top, level in _imports(f):
            if level > 0:
                continue
            if top in stdlib or top in ALLOWED_THIRD_PARTY:
                continue
            bad.append(f"{f.relative_to(ADDON)}:{line} imports {top!r}")
    assert not bad, "add-on modules must not import these outside Blender's Python:\n" + "\n".join(bad)


def test_core_is_free_of_bpy():
    for f in sorted((ADDON / "core").rglob("*.py")):
        tops = {top for _, top, level in _imports(f) if level == 0}
        assert not tops & {"bpy", "bpy_extras", "mathutils", "bmesh"}, f
