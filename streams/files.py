"""Reading CloudTrail from files: single files of any shape, S3-layout trees, stdin.

A directory is walked recursively in sorted order. In an ``AWSLogs/`` tree the
``CloudTrail-Digest/`` and ``CloudTrail-Insight/`` folders are skipped (digests are not events,
and Insight files are our own kind of output); organization trails (``AWSLogs/o-xxxx/...``) need
nothing special. ``.json.gz`` / ``.gz`` files are decompressed. A file whose content starts with
``{"Records"`` or ``[`` is one message; any other file is JSON lines.
"""

from __future__ import annotations

import gzip
import os
import sys
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from insights import (
    DECODE_CHUNK_BYTES,
    DecodeResult,
    Rejection,
    RejectReason,
    decode_message,
    iter_json_lines,
)
from streams.errors import SourceError

__all__ = [
    "FileBatch",
    "InputBlob",
    "iter_blobs",
    "iter_paths",
    "load_file",
    "read_inputs",
    "write_atomically",
]

_SKIP_DIRS = frozenset({"CloudTrail-Digest", "CloudTrail-Insight"})
_SUFFIXES = (".json", ".json.gz", ".jsonl", ".jsonl.gz", ".ndjson", ".gz", ".log")
#: A CloudTrail log file may be far larger than one Kafka message.
MAX_FILE_BYTES = 1 << 30


@dataclass(slots=True)
class FileBatch:
    """What one input file (or stdin chunk) decoded to."""

    source: str
    result: DecodeResult


def iter_paths(root: Path) -> Iterator[Path]:
    """Input files below ``root`` in a stable order, skipping digest and Insight folders."""
    if root.is_file():
        yield root
        return
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = sorted(d for d in dirnames if d not in _SKIP_DIRS)
        for name in sorted(filenames):
            if name.endswith(_SUFFIXES) and not name.startswith("."):
                yield Path(dirpath) / name


_GZIP_MAGIC = b"\x1f\x8b"


def load_file(path: Path) -> bytes:
    """A file's bytes, gunzipped when it is gzip (``ValueError`` for a broken gzip)."""
    return load_file_bytes(path.read_bytes())


def load_file_bytes(data: bytes) -> bytes:
    """``data`` gunzipped when it is gzip (``ValueError`` for a broken gzip)."""
    if data[:2] == _GZIP_MAGIC:
        try:
            data = gzip.decompress(data)
        except (OSError, EOFError, zlib.error) as exc:
            raise ValueError(f"bad gzip: {exc}") from exc
    return data


def _decode_file(data: bytes) -> Iterator[DecodeResult]:
    head = data.lstrip()[:12]
    if head.startswith(b"[") or head.replace(b" ", b"").startswith(b'{"Records"'):
        yield decode_message(data, max_bytes=MAX_FILE_BYTES)
        return
    # one object on one line (maybe with blank lines after it): one message
    newline = data.find(b"\n")
    after = len(data) - newline
    if head.startswith(b"{") and (newline < 0 or (after <= 4096 and data[newline:].isspace())):
        yield decode_message(data.strip(), max_bytes=MAX_FILE_BYTES)
        return
    yield from iter_json_lines(data)


@dataclass(slots=True)
class InputBlob:
    """One unit of input: whole lines of stdin as they arrive, or a whole file's bytes (or why
    it could not be read)."""

    source: str
    data: bytes
    from_stdin: bool = False
    error: str | None = None


def _stdin_lines(stdin: BinaryIO) -> Iterator[bytes]:
    """Whole lines of ``stdin`` as they arrive (what one read returns, ~64 KB from a busy
    pipe), not a Python object per line; a last line without a newline at the end."""
    read = getattr(stdin, "read1", stdin.read)
    rest = b""
    while data := read(DECODE_CHUNK_BYTES):
        data = rest + data if rest else data
        cut = data.rfind(b"\n") + 1
        rest = data[cut:]
        if cut:
            yield data[:cut]
    if rest.strip():
        yield rest


def iter_blobs(paths: list[str]) -> Iterator[InputBlob]:
    """Stdin lines (``-``) and files below each path, in order.

    Raises :class:`SourceError` for a path that does not exist (an operator error); a file that
    cannot be read or decompressed comes back with ``error`` set.
    """
    for name in paths:
        if name != "-" and not Path(name).exists():
            raise SourceError(f"no such file or directory: {name}")
    for name in paths:
        if name == "-":
            stdin = sys.stdin.buffer
            # a gzip file piped in is read as a file (peek: a BufferedReader; stand-ins lack it)
            peek = getattr(stdin, "peek", None)
            if peek is not None and peek(2)[:2] == _GZIP_MAGIC:
                try:
                    yield InputBlob("-", load_file_bytes(stdin.read()))
                except ValueError as exc:
                    yield InputBlob("-", b"", error=f"stdin: {exc}")
                continue
            for lines in _stdin_lines(stdin):
                yield InputBlob("-", lines, from_stdin=True)
            continue
        for path in iter_paths(Path(name)):
            try:
                yield InputBlob(str(path), load_file(path))
            except (OSError, ValueError) as exc:
                yield InputBlob(str(path), b"", error=f"{path}: {exc}")


def read_inputs(paths: list[str]) -> Iterator[FileBatch]:
    """Decode every input named on the command line (``-`` is stdin, JSON lines).

    Raises :class:`SourceError` for a path that does not exist (an operator error); a file that
    cannot be read or decompressed yields a rejection instead.
    """
    for blob in iter_blobs(paths):
        if blob.error is not None:
            bad = DecodeResult([], [Rejection(RejectReason.BAD_PAYLOAD, blob.error, b"")])
            yield FileBatch(blob.source, bad)
        elif blob.from_stdin:
            for result in iter_json_lines(blob.data):
                yield FileBatch(blob.source, result)
        else:
            for result in _decode_file(blob.data):
                yield FileBatch(blob.source, result)


def write_atomically(path: Path, data: bytes, mode: int = 0o600) -> None:
    """Replace ``path`` with ``data`` so that readers see the old or the new file, never half:
    write a temporary file beside it, fsync, rename, fsync the directory. The file gets
    ``mode`` whatever the umask (created directories: the same, plus search permission)."""
    directory_mode = mode | (mode & 0o444) >> 2 | 0o700
    path.parent.mkdir(mode=directory_mode, parents=True, exist_ok=True)
    temp = path.with_name(f".{path.name}.tmp{os.getpid()}")
    with open(os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode), "wb") as out:
        os.fchmod(out.fileno(), mode)
        out.write(data)
        out.flush()
        os.fsync(out.fileno())
    os.replace(temp, path)
    directory = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(directory)
    finally:
        os.close(directory)
