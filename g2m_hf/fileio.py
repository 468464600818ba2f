"""Atomic writes: an output file or folder appears complete or not at all.

Every writer of user outputs (generated pieces, evaluation reports and plots, converted models,
datasets, training records) goes through these helpers, so a run killed at any moment leaves no
truncated file under the final name, and running it again completes it.

The data goes to a hidden temporary sibling first (``.<name>.<pid>.partial``, in the same folder,
hence on the same file system) and is renamed into place with `os.replace`, which POSIX and Windows
make atomic. The temporary name never ends with the real suffix, so a ``*.mid`` glob (``g2m-evaluate``)
never picks up a half-written piece; the partials a killed process left are removed by the next
successful write into the same folder.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

PARTIAL_SUFFIX = ".partial"
"""Last suffix of every temporary file or folder (``.<name>.<pid>.partial``)."""


def partial_path(path: str | os.PathLike) -> Path:
    """The temporary sibling this process writes before renaming to ``path``."""
    path = Path(path)
    return path.with_name(f".{path.name}.{os.getpid()}{PARTIAL_SUFFIX}")


def _process_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OSError):  # someone else's process, or a platform without signal 0
        return True
    return True


def _remove_stale_partials(folder: Path) -> None:
    """Remove the temporaries that killed processes left in ``folder`` (live writers' are kept)."""
    for stale in folder.glob(f".*{PARTIAL_SUFFIX}"):
        pid = stale.name[: -len(PARTIAL_SUFFIX)].rpartition(".")[2]
        if pid.isdigit() and int(pid) != os.getpid() and not _process_alive(int(pid)):
            if stale.is_dir() and not stale.is_symlink():
                shutil.rmtree(stale, ignore_errors=True)
            else:
                stale.unlink(missing_ok=True)


@contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """A temporary path to write ``path`` through, for writers that want a file name.

    ``with atomic_path("piece.mid") as tmp: midi.write(str(tmp))`` - the file is renamed to its
    final name when the block ends without an exception, and removed when it raises. The
    temporary name does not end with the final suffix: pass the format explicitly to writers that
    infer it from the name (``figure.savefig(tmp, format="png")``).
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = partial_path(path)
    try:
        yield temporary
        os.replace(temporary, path)
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise
    _remove_stale_partials(path.parent)


def write_bytes(path: str | os.PathLike, data: bytes) -> Path:
    """Write ``data`` to ``path`` atomically (flushed to disk before the rename); return the path."""
    with atomic_path(path) as temporary:
        with open(temporary, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
    return Path(path)


def write_text(path: str | os.PathLike, text: str) -> Path:
    """Write ``text`` (UTF-8) to ``path`` atomically; return the path."""
    return write_bytes(path, text.encode("utf-8"))


@contextmanager
def atomic_directory(path: str | os.PathLike, replace: bool = False) -> Iterator[Path]:
    """A temporary folder to build ``path`` in; published when the block ends without an exception.

    A new (or empty) ``path`` appears in one rename, with all its files or not at all. An existing
    ``path`` is swapped whole when ``replace`` (its old content removed after the swap: a dataset
    folder, whose files name each other), otherwise each staged file replaces the one of the same
    name in it, atomically, and the folder's other files are kept (``save_pretrained`` into a
    folder the user asked to overwrite). A block that raises leaves ``path`` untouched.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    staging = partial_path(path)
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir()
    try:
        yield staging
        if path.is_dir() and not any(path.iterdir()):
            path.rmdir()
        if not path.exists():
            os.replace(staging, path)
        elif replace:
            old = path.with_name(f".{path.name}.{os.getpid()}.old{PARTIAL_SUFFIX}")
            os.replace(path, old)
            os.replace(staging, path)
            shutil.rmtree(old, ignore_errors=True)
        else:
            for source in sorted(staging.rglob("*")):
                target = path / source.relative_to(staging)
                if source.is_dir():
                    target.mkdir(exist_ok=True)
                else:
                    os.replace(source, target)
            shutil.rmtree(staging, ignore_errors=True)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    _remove_stale_partials(path.parent)


__all__ = ["PARTIAL_SUFFIX", "atomic_directory", "atomic_path", "partial_path", "write_bytes", "write_text"]
