"""Hub failures in one line: checking a Hub model id before loading it, and naming an unreachable Hub.

Loading a Hub id through transformers asks for a dozen files, each retried five times with a
back-off: an unreachable Hub costs minutes of retry messages before the error. `check_hub_model`
asks once, and turns each failure into a `ModelNotFoundError` naming the repository or the
endpoint, the reason and what to do. ``g2m-push`` words its network failures with `unreachable`.
"""

from __future__ import annotations

import json

from huggingface_hub import HfApi, constants, hf_hub_download
from huggingface_hub.errors import HfHubHTTPError, OfflineModeIsEnabled, RepositoryNotFoundError

from .errors import ModelNotFoundError

CLIENT_ERROR: type[Exception] = next(base for base in HfHubHTTPError.__mro__ if base.__name__ == "HTTPError")
"""Base class of huggingface_hub's HTTP client errors (httpx in huggingface_hub 1.x, httpx2 in 2.x): a refused
connection or a timeout reaches the caller as one of these, not as an `HfHubHTTPError`."""

def first_line(error: BaseException) -> str:
    """An exception's first message line (its class name when it has no message)."""
    text = str(error).strip()
    return text.splitlines()[0] if text else type(error).__name__


def unreachable(endpoint: str, error: BaseException, timeout: float, more_time: str) -> str | None:
    """What to tell the user when ``error`` means the Hub gave no answer at all (None: it did answer).

    ``more_time`` says how to wait longer (an option's name).
    """
    if not isinstance(error, CLIENT_ERROR) or getattr(error, "response", None) is not None:
        return None
    if "timeout" in type(error).__name__.lower():
        return f"{endpoint} did not answer within {timeout:g} s; try again later or allow more time ({more_time})"
    return (
        f"cannot reach {endpoint} ({first_line(error)}); check the network connection and the endpoint "
        "(HF_ENDPOINT)"
    )


def check_hub_model(repo_id: str, timeout: float | None = None) -> None:
    """Raise `ModelNotFoundError` unless the Hub serves a G2M model (config.json ``model_type`` g2m) at ``repo_id``.

    ``timeout``: seconds to wait for each answer (default ``HF_HUB_DOWNLOAD_TIMEOUT``, 10). Offline
    (``HF_HUB_OFFLINE``) nothing is checked: transformers then reads its cache.
    """
    if constants.is_offline_mode():
        return
    timeout = constants.HF_HUB_DOWNLOAD_TIMEOUT if timeout is None else timeout
    api = HfApi()
    try:
        files = {sibling.rfilename for sibling in api.model_info(repo_id, timeout=timeout).siblings or ()}
        if "config.json" not in files:
            raise ModelNotFoundError(f"{repo_id}: the repository has no config.json; it is not a G2M model")
        with open(hf_hub_download(repo_id, "config.json", etag_timeout=timeout), encoding="utf-8") as handle:
            model_type = json.load(handle).get("model_type")
    except OfflineModeIsEnabled:
        return
    except RepositoryNotFoundError:
        raise ModelNotFoundError(
            f"{repo_id}: no such model on {api.endpoint} (or a private one: log in with `hf auth login` or set "
            "HF_TOKEN); check the id, or pass a local model folder"
        ) from None
    except (CLIENT_ERROR, OSError, ValueError) as error:  # no answer, another refusal, a config.json not JSON
        message = unreachable(api.endpoint, error, timeout, "HF_HUB_DOWNLOAD_TIMEOUT")
        if message is None:
            message = f"cannot read the model on {api.endpoint} ({first_line(error)})"
        raise ModelNotFoundError(f"{repo_id}: {message}") from None
    if model_type != "g2m":
        raise ModelNotFoundError(f"{repo_id}: holds a {model_type!r} model (config.json model_type), not a G2M model")


__all__ = ["CLIENT_ERROR", "check_hub_model", "first_line", "unreachable"]
