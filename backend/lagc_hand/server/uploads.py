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


class _FormBuilder:
    """The ``MultipartParser`` callbacks: collect headers per part, stream file
    parts to ``dest_dir`` (or memory), collect text parts.  The first problem is
    kept in ``error`` and everything after it is ignored (the body is still read
    so that the answer reaches the client)."""

    def __init__(self, file_fields: tuple[str, ...], text_fields: tuple[str, ...],
                 dest_dir: Optional[Path], max_files: int):
        self.file_fields, self.text_fields = file_fields, text_fields
        self.dest_dir, self.max_files = dest_dir, max_files
        self.form = Form()
        self.error: Optional[UploadError] = None
        self.ended = False
        self.headers: dict[bytes, bytes] = {}
        self.hname = self.hval = b""
        self.part: Optional[FilePart] = None
        self.fh = None
        self.text: Optional[tuple[str, bytearray]] = None

    def callbacks(self) -> dict:
        return {
            "on_part_begin": self.on_part_begin, "on_part_data": self.on_part_data, "on_part_end": self.on_part_end,
            "on_header_field": self.on_header_field, "on_header_value": self.on_header_value,
            "on_header_end": self.on_header_end, "on_headers_finished": self.on_headers_finished,
            "on_end": self.on_end,
        }

    def fail(self, err: UploadError) -> None:
        if self.error is None:
            self.error = err

    def close_file(self) -> None:
        if self.fh is not None:
            self.fh.close()
            self.fh = None

    def on_part_begin(self) -> None:
        self.headers, self.hname, self.hval = {}, b"", b""
        self.part = self.fh = self.text = None

    def on_header_field(self, data: bytes, start: int, end: int) -> None:
        self.hname += data[start:end]

    def on_header_value(self, data: bytes, start: int, end: int) -> None:
        self.hval += data[start:end]

    def on_header_end(self) -> None:
        self.headers[self.hname.strip().lower()] = self.hval.strip()
        self.hname, self.hval = b"", b""

    def on_headers_finished(self) -> None:
        if self.error:
            return
        disp, opts = parse_options_header(self.headers.get(b"content-disposition", b""))
        name = opts.get(b"name", b"").decode("utf-8", "replace")
        if disp != b"form-data" or not name:
            self.fail(UploadError(400, "invalid_request", "a form part has no Content-Disposition name"))
        elif b"filename" in opts or name in self.file_fields:
            self._begin_file(name, opts)
        elif name in self.text_fields:
            if name in self.form.fields:
                return self.fail(UploadError(400, "invalid_request", f"field {name!r} given twice"))
            self.text = (name, bytearray())
        else:
            self.fail(UploadError(400, "invalid_request",
                                  f"unexpected form field {name!r}; expected {list(self.file_fields + self.text_fields)}"))

    def _begin_file(self, name: str, opts: dict) -> None:
        if name not in self.file_fields:
            return self.fail(UploadError(400, "invalid_request",
                                         f"unexpected file field {name!r}; expected {list(self.file_fields)}"))
        if len(self.form.files) >= self.max_files:
            return self.fail(UploadError(413, "too_large", f"too many files; at most {self.max_files} per request"))
        part = FilePart(
            field=name,
            filename=opts.get(b"filename", b"").decode("utf-8", "replace"),
            content_type=self.headers.get(b"content-type", b"application/octet-stream").decode("latin-1"),
        )
        if self.dest_dir is not None:
            part.path = Path(self.dest_dir) / f"part-{len(self.form.files)}-{safe_filename(part.filename)}"
            # user-only: the upload is the user's video
            self.fh = os.fdopen(os.open(part.path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600), "wb")
        else:
            part.data = bytearray()
        self.form.files.append(part)
        self.part = part

    def on_part_data(self, data: bytes, start: int, end: int) -> None:
        if self.error:
            return
        chunk = data[start:end]
        if self.part is not None:
            self.part.size += len(chunk)
            if self.fh is not None:
                self.fh.write(chunk)
            else:
                self.part.data += chunk
        elif self.text is not None:
            buf = self.text[1]
            buf += chunk
            if len(buf) > MAX_TEXT_FIELD:
                self.fail(UploadError(413, "too_large", f"form field {self.text[0]!r} is longer than {MAX_TEXT_FIELD} bytes"))

    def on_part_end(self) -> None:
        self.close_file()
        if self.text is not None and not self.error:
            name, buf = self.text
            try:
                self.form.fields[name] = buf.decode("utf-8")
            except UnicodeDecodeError:
                self.fail(UploadError(400, "invalid_request", f"form field {name!r} is not UTF-8 text"))
        self.part = self.text = None

    def on_end(self) -> None:
        self.ended = True


async def _refuse_declared_too_large(request, max_body: int, what: str) -> None:
    """Refuse a body whose Content-Length already says it is over the limit
    (after draining a bounded remainder so the client reads the 413)."""
    declared = request.headers.get("content-length")
    if declared is None or not declared.isdigit() or int(declared) <= max_body:
        return
    limit_msg = f"the {what} is {_fmt_mb(int(declared))}; the limit is {_fmt_mb(max_body)}"
    if int(declared) - max_body > DRAIN_LIMIT:
        raise TooLarge(limit_msg, close=True)
    async for _ in request.stream():
        pass
    raise TooLarge(limit_msg)


async def _feed(request, parser: MultipartParser, builder: _FormBuilder, max_body: int, what: str) -> None:
    """Stream the body into ``parser``, stopping writes the moment ``max_body`` is passed."""
    received = 0
    over_limit = False
    async for chunk in request.stream():
        if not chunk:
            continue
        received += len(chunk)
        if received > max_body:
            # Stop writing at once; keep reading (bounded, discarding) so that
            # the client gets to read our answer.
            builder.close_file()
            over_limit = True
            if received - max_body > DRAIN_LIMIT:
                raise TooLarge(f"the {what} is larger than the limit of {_fmt_mb(max_body)}", close=True)
            continue
        if builder.error:
            continue  # keep reading (bounded by max_body) so the answer reaches the client
        try:
            parser.write(chunk)
        except MultipartParseError as exc:
            builder.fail(UploadError(400, "invalid_request", f"malformed multipart body ({exc})"))
    if over_limit:
        raise TooLarge(f"the {what} is larger than the limit of {_fmt_mb(max_body)}")


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
    ``dest_dir`` (``part-<n>-<safe name>``, mode 0600) or kept in memory when
    ``dest_dir`` is None; text parts named in ``text_fields`` are decoded as
    UTF-8.  Any other part name is refused (a typo should not be ignored silently).

    Raises :class:`UploadError` (400 malformed, 415 not multipart, 413 too large).
    """
    ctype, params = parse_options_header(request.headers.get("content-type", ""))
    if ctype != b"multipart/form-data" or not params.get(b"boundary"):
        raise UploadError(415, "unsupported_media", f"the {what} must be sent as multipart/form-data")
    await _refuse_declared_too_large(request, max_body, what)
    builder = _FormBuilder(file_fields, text_fields, dest_dir, max_files)
    parser = MultipartParser(params[b"boundary"], callbacks=builder.callbacks())
    try:
        await _feed(request, parser, builder, max_body, what)
        if builder.error:
            raise builder.error
        if not builder.ended:
            raise UploadError(400, "invalid_request", "the multipart body is incomplete (no closing boundary)")
    finally:
        builder.close_file()
    return builder.form


def remove_quietly(path: Optional[Path]) -> None:
    if path is None:
        return
    try:
        os.unlink(path)
    except OSError:
        pass
