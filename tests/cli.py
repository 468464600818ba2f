"""Running a console script's ``main(argv)`` in a test, whether it returns its exit code or exits."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any


def exit_code(main: Callable[[Sequence[str]], Any], argv: Sequence[str]) -> int:
    """The exit code of ``main(argv)``: its return value, or the code of the `SystemExit` it raised
    (argparse refuses a bad option by exiting)."""
    try:
        code = main([str(part) for part in argv])
    except SystemExit as exit_:
        code = exit_.code
    return 0 if code is None else code
