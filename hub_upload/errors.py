"""The Hub upload's own exception (the library's are in `g2m_hf.errors`)."""

from g2m_hf.errors import G2MError


class HubPushError(G2MError, ValueError):
    """A model folder cannot be pushed to the Hugging Face Hub (names the folder or file and the reason)."""


__all__ = ["HubPushError"]
