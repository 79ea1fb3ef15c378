"""core/atomic.py: the final name holds either the old or the complete new file."""
import os
import stat

import pytest

from lagc_hand_blender.core.atomic import write_atomic


def test_writes_and_sets_mode(tmp_path):
    p = tmp_path / "sub" / "f.txt"
    write_atomic(p, lambda f: f.write("hello\n"), binary=False, mode=0o600)
    assert p.read_text() == "hello\n"
    assert stat.S_IMODE(os.stat(p).st_mode) == 0o600
    assert [x.name for x in p.parent.iterdir()] == ["f.txt"]


def test_failure_keeps_old_file_and_leaves_no_temp(tmp_path):
    p = tmp_path / "f.bin"
    p.write_bytes(b"old")

    def boom(f):
        f.write(b"partial")
        raise RuntimeError("disk on fire")

    with pytest.raises(RuntimeError, match="disk on fire"):
        write_atomic(p, boom)
    assert p.read_bytes() == b"old"
    assert [x.name for x in tmp_path.iterdir()] == ["f.bin"]
