"""Argument checks shared by the Python API and the command lines (`g2m_hf.cli.arguments`).

Each check returns the value (a `Path` for paths) or raises `InvalidArgumentError` with the
message ``<name>: <value> (<why>)``; the command lines show the same ``<value> (<why>)`` after the
option's name. Checks run before any model is loaded or any file written, so a bad value costs
nothing.
"""

from __future__ import annotations

import math
import numbers
import os
from pathlib import Path

from .errors import InvalidArgumentError


def _number(name: str, value: object, integer: bool) -> float:
    """``value`` as a finite number (an integer when ``integer``), or the error saying what it is not."""
    if integer and (isinstance(value, bool) or not isinstance(value, numbers.Integral)):
        raise InvalidArgumentError(name, value, "not an integer")
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise InvalidArgumentError(name, value, "not a number")
    if not math.isfinite(value):
        raise InvalidArgumentError(name, value, "not a finite number")
    return value


def at_least(name: str, value: object, low: float, integer: bool = False) -> float:
    """``value >= low``."""
    if _number(name, value, integer) < low:
        raise InvalidArgumentError(name, value, f"must be at least {low}")
    return value


def positive_int(name: str, value: object) -> int:
    """An integer >= 1 (counts: pieces, bars, events, batch sizes, processes)."""
    return at_least(name, value, 1, integer=True)


def non_negative_int(name: str, value: object) -> int:
    """An integer >= 0."""
    return at_least(name, value, 0, integer=True)


def non_negative_float(name: str, value: object) -> float:
    """A finite number >= 0."""
    return at_least(name, value, 0)


def positive_float(name: str, value: object) -> float:
    """A finite number > 0 (a sampling temperature: 0 would divide the logits by zero)."""
    if _number(name, value, False) <= 0:
        raise InvalidArgumentError(name, value, "must be greater than 0")
    return value


def probability(name: str, value: object) -> float:
    """A number in (0, 1] (nucleus sampling's top-p: 0 keeps no token, above 1 means nothing)."""
    if not 0 < _number(name, value, False) <= 1:
        raise InvalidArgumentError(name, value, "must be greater than 0 and at most 1")
    return value


def unit_interval(name: str, value: object) -> float:
    """A number in [0, 1] (a mixing weight: 0 and 1 are both settings)."""
    if not 0 <= _number(name, value, False) <= 1:
        raise InvalidArgumentError(name, value, "must be between 0 and 1")
    return value


def fraction(name: str, value: object) -> float:
    """A number in [0, 1) (a share set aside, e.g. for validation: 1 would leave nothing to train on)."""
    if not 0 <= _number(name, value, False) < 1:
        raise InvalidArgumentError(name, value, "must be at least 0 and less than 1")
    return value


def port(name: str, value: object) -> int:
    """A TCP port number, 1..65535."""
    if not 1 <= _number(name, value, True) <= 65535:
        raise InvalidArgumentError(name, value, "must be a port number, 1 to 65535")
    return value


def existing_path(name: str, path: str | os.PathLike) -> Path:
    """A file or folder that exists (e.g. a tokenizer folder or a ``dictionary.pkl``)."""
    path = Path(path)
    if not path.exists():
        raise InvalidArgumentError(name, path, "no such file or folder")
    return path


def existing_file(name: str, path: str | os.PathLike) -> Path:
    """A file that exists and can be read."""
    path = Path(path)
    if not path.exists():
        raise InvalidArgumentError(name, path, "no such file")
    if not path.is_file():
        raise InvalidArgumentError(name, path, "not a file")
    if not os.access(path, os.R_OK):
        raise InvalidArgumentError(name, path, "not readable")
    return path


def existing_dir(name: str, path: str | os.PathLike) -> Path:
    """A folder that exists and can be listed."""
    path = Path(path)
    if not path.exists():
        raise InvalidArgumentError(name, path, "no such folder")
    if not path.is_dir():
        raise InvalidArgumentError(name, path, "not a folder")
    if not os.access(path, os.R_OK | os.X_OK):
        raise InvalidArgumentError(name, path, "not readable")
    return path


def _writable_from(name: str, path: Path) -> None:
    """The nearest existing folder at or above ``path`` must be a writable folder."""
    ancestor = path.absolute()
    while not ancestor.exists():
        ancestor = ancestor.parent
    if not ancestor.is_dir():
        raise InvalidArgumentError(name, path, f"{ancestor} is a file, not a folder")
    if not os.access(ancestor, os.W_OK | os.X_OK):
        raise InvalidArgumentError(name, path, f"{ancestor} is not writable")


def output_dir(name: str, path: str | os.PathLike) -> Path:
    """A folder to write into: an existing writable folder, or one that can be created."""
    path = Path(path)
    if path.exists() and not path.is_dir():
        raise InvalidArgumentError(name, path, "is a file; name a folder")
    _writable_from(name, path)
    return path


def output_file(name: str, path: str | os.PathLike) -> Path:
    """A file to write: not a folder, in a folder that exists or can be created."""
    path = Path(path)
    if path.is_dir():
        raise InvalidArgumentError(name, path, "is a folder; name a file")
    _writable_from(name, path.parent)
    return path


__all__ = [
    "at_least",
    "existing_dir",
    "existing_file",
    "existing_path",
    "fraction",
    "non_negative_float",
    "non_negative_int",
    "output_dir",
    "output_file",
    "positive_float",
    "port",
    "positive_int",
    "unit_interval",
    "probability",
]
