"""The package's exception classes, in one place.

Standard library only (copied flat into Hub repositories beside the remote-code files).
Each error subclasses the built-in exception a caller would naturally catch
(``ValueError`` for bad input, ``FileNotFoundError`` for a missing file). Errors of the
scripts around the library live beside them, subclassing `G2MError`: ``training.errors.ConfigError``
(recipes) and ``hub_upload.errors.HubPushError`` (pushing to the Hub).
"""


class G2MError(Exception):
    """Base class of every error raised by g2m_hf."""


class RemiError(G2MError, ValueError):
    """A MIDI file or an event sequence cannot be converted (names the file and the reason)."""


class VocabularyError(G2MError, ValueError):
    """An unknown event, composer or a malformed vocabulary / dictionary file."""


class CheckpointError(G2MError, ValueError):
    """A file is not a checkpoint of the expected layout, or disagrees with its dictionary (names file and reason)."""


class ModelConfigError(G2MError, ValueError):
    """A model configuration is inconsistent, e.g. a style adapter after a layer that does not exist."""


class DataError(G2MError, ValueError):
    """A data source cannot be listed or converted, or a dataset cannot be built (names the file and the reason)."""


class OutputExistsError(G2MError, FileExistsError):
    """An output folder already holds files; it is replaced only when the caller asks to overwrite it."""


class ModelInputError(G2MError, ValueError):
    """The arguments of a model call do not fit together (e.g. a cached step without its composer token)."""


class ModelNotFoundError(G2MError, FileNotFoundError):
    """A model folder or Hub id holds no model weights (e.g. the bundled default model was not built)."""


class EvaluationError(G2MError, ValueError):
    """An evaluation cannot start: a missing or empty input folder, or a classifier folder that cannot be loaded."""


class AudioError(G2MError, ValueError):
    """A piece cannot be rendered to audio: a missing or unreadable soundfont, an unreadable MIDI or an empty piece."""


class NotationError(G2MError, ValueError):
    """A score cannot be read or engraved (names the file and the reason)."""


class InvalidArgumentError(G2MError, ValueError):
    """An argument out of its range or a path of the wrong kind: ``<name>: <value> (<why>)``.

    ``why`` alone serves command lines, whose parser names the option and shows the value as typed.
    """

    def __init__(self, name: str, value: object, why: str):
        self.name, self.value, self.why = name, value, why
        super().__init__(f"{name}: {value} ({why})")


class GenerationCancelled(G2MError):
    """Generation was stopped before the end of the piece: its caller asked (``should_stop``), e.g. a
    listener left the page or a request ran past its time limit."""


class TimeLimitError(GenerationCancelled):
    """Generation was stopped because it ran past the time a request may take (the web app's limit)."""


class MissingExtraError(G2MError, ImportError):
    """A feature needs an optional dependency that is not installed; names the extra that brings it
    (``pip install "g2m_hf[audio]"``)."""
