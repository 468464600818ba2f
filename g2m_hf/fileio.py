"""Atomic writes: an output file appears complete or not at all.

The data goes to a hidden temporary sibling first (``.<name>.<pid>.partial``, in the same folder,
hence on the same file system) and is renamed into place with `os.replace`, which POSIX and Windows
make atomic, so a run killed at any moment leaves no truncated file under the final name.
"""

from __future__ import annotations

import os
from pathlib import Path


def write_bytes(path: str | os.PathLike, data: bytes) -> Path:
    """Write ``data`` to ``path`` atomically (flushed to disk before the rename); return the path."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f".{path.name}.{os.getpid()}.partial")
    try:
        with open(temporary, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temporary, path)
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise
    return path


__all__ = ["write_bytes"]
