"""The training scripts' own exception (the library's are in `g2m_hf.errors`)."""

from g2m_hf.errors import G2MError


class ConfigError(G2MError, ValueError):
    """A training recipe (YAML) or a command-line override is malformed (names the file / key and the reason)."""


__all__ = ["ConfigError"]
