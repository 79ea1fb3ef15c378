"""Streaming ``multipart/form-data`` reader that enforces size limits while the
body arrives.

Frameworks usually spool a whole upload to a temp file before the handler
sees it, so a size limit checked in the handler comes after the disk is full.
Here the body is parsed chunk by chunk (``python_multipart.MultipartParser``)
and file parts go straight to their final folder; the moment the byte count
passes the limit, writing stops and :class:`TooLarge` is raised.
"""
from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional

from python_multipart import MultipartParser
from python_multipart.exceptions import MultipartParseError
from python_multipart.multipart import parse_options_header

#: After the limit is passed the rest of the body is read and discarded up to
#: this many bytes, so that an ordinary client (which sends the whole body
#: before reading the answer) receives the 413 instead of a broken pipe.
#: Beyond it the connection is simply closed.
DRAIN_LIMIT = 64 * 1024 * 1024
MAX_TEXT_FIELD = 64 * 1024


class UploadError(Exception):
    def __init__(self, status: int, code: str, message: str, close: bool = False):
        super().__init__(message)
        self.status, self.code, self.message, self.close = status, code, message, close


class TooLarge(UploadError):
    def __init__(self, message: str, close: bool = False):
        super().__init__(413, "too_large", message, close)


@dataclass
class FilePart:
    """One file of the form.  ``path`` when streamed to disk, else ``data``."""

    field: str
    filename: str
    content_type: str
    size: int = 0
    path: Optional[Path] = None
    data: Optional[bytearray] = None


@dataclass
class Form:
    fields: dict[str, str] = field(default_factory=dict)
    files: list[FilePart] = field(default_factory=list)


_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")


def safe_filename(name: str, default: str = "video") -> str:
    """A file name safe to create in our own folder: base name only, no
    separators, no leading dots, at most 120 characters."""
    base = name.replace("\\", "/").rsplit("/", 1)[-1]
    base = _UNSAFE.sub("_", base).lstrip(".")[:120]
    return base or default


def _fmt_mb(n: int) -> str:
    return f"{n / (1024 * 1024):.1f} MB"


async def read_multipart(
    request,
    *,
    max_body: int,
    file_fields: tuple[str, ...],
    text_fields: tuple[str, ...],
    dest_dir: Optional[Path] = None,
    max_files: int = 1,
    what: str = "upload",
) -> Form:
    """Parse the request body.  File parts named in ``file_fields`` are written to
    ``dest_dir`` (``part-<n>-<safe name>``) or kept in memory when ``dest_dir`` is
    None; text parts named in ``text_fields`` are decoded as UTF-8.  Any other
    part name is refused (a typo should not be ignored silently).

    Raises :class:`UploadError` (400 malformed, 415 not multipart, 413 too large).
    """
    ctype, params = parse_options_header(request.headers.get("content-type", ""))
    if ctype != b"multipart/form-data" or not params.get(b"boundary"):
        raise UploadError(415, "unsupported_media", f"the {what} must be sent as multipart/form-data")
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > max_body:
        limit_msg = f"the {what} is {_fmt_mb(int(declared))}; the limit is {_fmt_mb(max_body)}"
        if int(declared) - max_body > DRAIN_LIMIT:
            raise TooLarge(limit_msg, close=True)
        async for _ in request.stream():
            pass
        raise TooLarge(limit_msg)

    form = Form()
    state = {"headers": {}, "hname": b"", "hval": b"", "part": None, "fh": None, "text": None, "ended": False}
    errors: list[UploadError] = []

    def fail(err: UploadError) -> None:
        if not errors:
            errors.append(err)

    def on_part_begin() -> None:
        state["headers"], state["hname"], state["hval"] = {}, b"", b""
        state["part"] = state["fh"] = state["text"] = None

    def on_header_field(data: bytes, start: int, end: int) -> None:
        state["hname"] += data[start:end]

    def on_header_value(data: bytes, start: int, end: int) -> None:
        state["hval"] += data[start:end]

    def on_header_end() -> None:
        state["headers"][state["hname"].strip().lower()] = state["hval"].strip()
        state["hname"], state["hval"] = b"", b""

    def on_headers_finished() -> None:
        if errors:
            return
        disp, opts = parse_options_header(state["headers"].get(b"content-disposition", b""))
        name = opts.get(b"name", b"").decode("utf-8", "replace")
        if disp != b"form-data" or not name:
            return fail(UploadError(400, "invalid_request", "a form part has no Content-Disposition name"))
        if b"filename" in opts or name in file_fields:
            if name not in file_fields:
                return fail(UploadError(400, "invalid_request", f"unexpected file field {name!r}; expected {list(file_fields)}"))
            if len(form.files) >= max_files:
                return fail(UploadError(413, "too_large", f"too many files; at most {max_files} per request"))
            part = FilePart(
                field=name,
                filename=opts.get(b"filename", b"").decode("utf-8", "replace"),
                content_type=state["headers"].get(b"content-type", b"application/octet-stream").decode("latin-1"),
            )
            if dest_dir is not None:
                part.path = Path(dest_dir) / f"part-{len(form.files)}-{safe_filename(part.filename)}"
                state["fh"] = open(part.path, "wb")
            else:
                part.data = bytearray()
            form.files.append(part)
            state["part"] = part
        elif name in text_fields:
            if name in form.fields:
                return fail(UploadError(400, "invalid_request", f"field {name!r} given twice"))
            state["text"] = (name, bytearray())
        else:
            fail(UploadError(400, "invalid_request", f"unexpected form field {name!r}; expected {list(file_fields + text_fields)}"))

    def on_part_data(data: bytes, start: int, end: int) -> None:
        if errors:
            return
        chunk = data[start:end]
        if state["part"] is not None:
            part = state["part"]
            part.size += len(chunk)
            if state["fh"] is not None:
                state["fh"].write(chunk)
            else:
                part.data += chunk
        elif state["text"] is not None:
            buf = state["text"][1]
            buf += chunk
            if len(buf) > MAX_TEXT_FIELD:
                fail(UploadError(413, "too_large", f"form field {state['text'][0]!r} is longer than {MAX_TEXT_FIELD} bytes"))

    def on_part_end() -> None:
        if state["fh"] is not None:
            state["fh"].close()
            state["fh"] = None
        if state["text"] is not None and not errors:
            name, buf = state["text"]
            try:
                form.fields[name] = buf.decode("utf-8")
            except UnicodeDecodeError:
                fail(UploadError(400, "invalid_request", f"form field {name!r} is not UTF-8 text"))
        state["part"] = state["text"] = None

    def on_end() -> None:
        state["ended"] = True

    parser = MultipartParser(
        params[b"boundary"],
        callbacks={
            "on_part_begin": on_part_begin, "on_part_data": on_part_data, "on_part_end": on_part_end,
            "on_header_field": on_header_field, "on_header_value": on_header_value,
            "on_header_end": on_header_end, "on_headers_finished": on_headers_finished, "on_end": on_end,
        },
    )
    received = 0
    over_limit = False
    try:
        async for chunk in request.stream():
            if not chunk:
                continue
            received += len(chunk)
            if received > max_body:
                # Stop writing at once; keep reading (bounded, discarding) so that
                # the client gets to read our answer.
                if state["fh"] is not None:
                    state["fh"].close()
                    state["fh"] = None
                over_limit = True
                if received - max_body > DRAIN_LIMIT:
                    raise TooLarge(f"the {what} is larger than the limit of {_fmt_mb(max_body)}", close=True)
                continue
            if errors:
                continue  # keep reading (bounded by max_body) so the answer reaches the client
            try:
                parser.write(chunk)
            except MultipartParseError as exc:
                fail(UploadError(400, "invalid_request", f"malformed multipart body ({exc})"))
        if over_limit:
            raise TooLarge(f"the {what} is larger than the limit of {_fmt_mb(max_body)}")
        if errors:
            raise errors[0]
        if not state["ended"]:
            raise UploadError(400, "invalid_request", "the multipart body is incomplete (no closing boundary)")
    finally:
        if state["fh"] is not None:
            state["fh"].close()
    return form


def remove_quietly(path: Optional[Path]) -> None:
    if path is None:
        return
    try:
        os.unlink(path)
    except OSError:
        pass
