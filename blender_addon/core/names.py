"""Names derived from a video's file name, kept within filesystem and Blender
limits (standard library only).

A video may be called anything a filesystem allows: 247 ASCII characters, or
82 CJK characters (250 UTF-8 bytes).  Appending ``_<job id>.npz`` to such a
stem overflows the 255-byte file-name limit of ext4, APFS and NTFS, and
Blender 4.x cuts data-block names at 63 bytes (so ``<stem>_hand.L`` and
``<stem>_hand_mesh.L`` would collide).  Long stems are therefore shortened to
a readable prefix, cut at a UTF-8 character boundary, plus a short hash of
the whole stem, so two long names with the same beginning stay distinct.
"""
from __future__ import annotations

import hashlib
import re

#: Bytes of the stem kept in a result file name (the whole name stays < 100 bytes).
RESULT_STEM_BYTES = 64
#: Bytes of the prefix of Blender data-block names: the longest suffix the
#: scene writer adds (``_hand_mesh.L_visibility``, 23 bytes) must still fit in
#: Blender 4.x's 63-byte names.
DATABLOCK_STEM_BYTES = 36
_HASH_CHARS = 8
# Characters Windows refuses in file names, control characters, and path separators.
_UNSAFE = re.compile(r'[<>:"/\\|?*\x00-\x1f\x7f]')


def utf8_prefix(text: str, max_bytes: int) -> str:
    """The longest prefix of ``text`` whose UTF-8 encoding has at most ``max_bytes`` bytes
    (never half a character)."""
    data = text.encode("utf-8")
    if len(data) <= max_bytes:
        return text
    return data[:max_bytes].decode("utf-8", errors="ignore")


def short_stem(stem: str, max_bytes: int) -> str:
    """``stem`` itself when it fits in ``max_bytes`` UTF-8 bytes, else a prefix
    of it and ``~`` and 8 hex digits of its SHA-1, together at most ``max_bytes``."""
    if len(stem.encode("utf-8")) <= max_bytes:
        return stem
    digest = hashlib.sha1(stem.encode("utf-8")).hexdigest()[:_HASH_CHARS]
    return f"{utf8_prefix(stem, max_bytes - _HASH_CHARS - 1)}~{digest}"


def safe_stem(stem: str) -> str:
    """``stem`` with characters no filesystem accepts replaced by ``_`` (never empty)."""
    cleaned = _UNSAFE.sub("_", stem).strip(" .")
    return cleaned or "video"


def result_file_name(video_stem: str, job_id: str) -> str:
    """``<stem>_<id8>.npz`` for the HandMotion of ``job_id``; the stem is shortened
    (:func:`short_stem`) so the name is at most ``RESULT_STEM_BYTES + 13`` bytes."""
    return f"{short_stem(safe_stem(video_stem), RESULT_STEM_BYTES)}_{job_id[:8]}.npz"


def datablock_prefix(video_stem: str) -> str:
    """Prefix of the Blender data-blocks made from a video (collection, objects, actions)."""
    return short_stem(video_stem.strip() or "LAGC", DATABLOCK_STEM_BYTES)
