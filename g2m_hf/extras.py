"""Optional dependencies: import one, or refuse in one line naming the extra that installs it.

The core install (``pip install g2m_hf``) holds what loading a model, generating and the MIDI codec
need. Everything else comes with an extra of setup.cfg; a library module imports such a dependency
inside the function that uses it, through `require`, so that ``import g2m_hf`` never needs it and a
user who lacks it learns which extra to install instead of reading an ImportError traceback.
"""

from __future__ import annotations

import importlib
import importlib.util
from types import ModuleType

from .errors import MissingExtraError

AUDIO_MODULES = ("midirenderer", "soxr")
"""What rendering audio imports (the ``audio`` extra): checked up front by the commands that render."""


def require(module: str, extra: str, feature: str | None = None) -> ModuleType:
    """``importlib.import_module(module)``, or `MissingExtraError` naming ``extra`` when it is missing.

    ``feature`` says what needed it in the message (default: the module's name).
    """
    try:
        return importlib.import_module(module)
    except ImportError as error:
        top = module.split(".")[0]
        if error.name is not None and error.name.split(".")[0] != top:
            raise  # the module is there but one of its own imports failed: not a missing extra
        raise MissingExtraError(
            f"{feature or module} needs {top}, which is not installed: pip install \"g2m_hf[{extra}]\""
        ) from None


def available(module: str) -> bool:
    """Whether ``module`` can be imported, without importing it (for output that is written only when
    its extra is installed, such as the piano rolls of ``g2m-generate``)."""
    try:
        return importlib.util.find_spec(module) is not None
    except ImportError:  # a parent package of a dotted name is missing
        return False


__all__ = ["AUDIO_MODULES", "available", "require"]
