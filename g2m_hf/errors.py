"""The package's exception classes, in one place.

Standard library only (copied flat into Hub repositories beside the remote-code files).
Each error subclasses the built-in exception a caller would naturally catch
(``ValueError`` for bad input, ``FileNotFoundError`` for a missing file).
"""


class G2MError(Exception):
    """Base class of every error raised by g2m_hf."""


class RemiError(G2MError, ValueError):
    """A MIDI file or an event sequence cannot be converted (names the file and the reason)."""


class VocabularyError(G2MError, ValueError):
    """An unknown event, composer or a malformed vocabulary / dictionary file."""
