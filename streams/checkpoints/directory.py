"""Checkpoints as files, one per partition, replaced atomically (the directory store)."""

from __future__ import annotations

from pathlib import Path

from streams.checkpoints.model import Checkpoint
from streams.errors import SinkError, SourceError
from streams.files import write_atomically

__all__ = ["DirectoryStore"]


class DirectoryStore:
    """Checkpoints as files ``<root>/<topic>/<partition>.ckpt``, replaced atomically."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def _path(self, topic: str, partition: int) -> Path:
        return self.root / topic / f"{partition}.ckpt"

    def save(self, checkpoint: Checkpoint) -> int:
        path = self._path(checkpoint.topic, checkpoint.partition)
        data = checkpoint.encode()
        try:
            write_atomically(path, data)
        except OSError as exc:
            raise SinkError(f"cannot write checkpoint {path}: {exc}") from exc
        return len(data)

    def load(self, topic: str, partition: int) -> Checkpoint | None:
        path = self._path(topic, partition)
        try:
            data = path.read_bytes()
        except FileNotFoundError:
            return None
        except OSError as exc:
            raise SourceError(f"cannot read checkpoint {path}: {exc}") from exc
        return Checkpoint.decode(data)

    def close(self) -> None:
        return None
