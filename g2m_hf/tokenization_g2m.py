"""`G2MTokenizer`: the REMI event vocabulary as a Hugging Face fast tokenizer (SPEC §2).

Every REMI event (``Bar_None``, ``Note_Pitch_60``...) is one token, so the backend is a
`tokenizers` WordLevel model over whitespace-separated events: ``tok("Composer_Bach Tempo_120")``
and ``tok.decode(ids)`` work as for any Hugging Face tokenizer, and the music helpers
(`encode_midi`, `decode_midi`, `composer_prompt`, `add_composer`) sit on top.

Remote-code file: copied flat into Hub repositories, so it imports only the standard library,
tokenizers, transformers and its siblings `vocab` / `errors`. The MIDI codec (`remi`) needs MIDI
libraries that remote code must not demand, so it is imported only inside the MIDI methods.
"""

from __future__ import annotations

import json
import os
from typing import Any, Iterable, Mapping, Sequence

from tokenizers import Tokenizer, pre_tokenizers
from tokenizers.models import WordLevel
from transformers import BatchEncoding, PreTrainedTokenizerFast

from .errors import VocabularyError
from .vocab import (
    BOS_TOKEN,
    CONTROL_TOKENS,
    EOS_TOKEN,
    NO_COMPOSER,
    PAD_TOKEN,
    check_vocabulary,
    complete_vocabulary,
    event,
    read_original_dictionary,
    split_event,
    vocabulary_from_mapping,
)

COMPOSER = "Composer"
"""Name part of the composer events (``Composer_Bach``)."""

_NO_UNK = "<no-unk>"
"""WordLevel always names an unknown token; this one is never in the vocabulary, so an unknown
event makes the backend fail (and us raise VocabularyError) instead of mapping it silently."""

_TOKENIZER_CONFIG = "tokenizer_config.json"
_GENERIC_CLASS = "PreTrainedTokenizerFast"
"""Class name written into tokenizer_config.json (see `G2MTokenizer._save_pretrained`)."""


def _backend(events: Sequence[str]) -> Tokenizer:
    """A WordLevel tokenizer whose token ids are the indices of ``events``, split on whitespace only.

    (``WhitespaceSplit``, not ``Whitespace``: the latter also splits punctuation and would cut
    ``Time_Signature_3/4`` at the slash.)
    """
    tokenizer = Tokenizer(WordLevel({token: index for index, token in enumerate(events)}, unk_token=_NO_UNK))
    tokenizer.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    return tokenizer


def _describe_midi(midi: Any) -> str:
    """How a MIDI input is named in error messages: its path, its file name, or its kind."""
    if isinstance(midi, (str, os.PathLike)):
        return os.fspath(midi)
    if isinstance(midi, (bytes, bytearray)):
        return "<MIDI bytes>"
    return str(getattr(midi, "name", "<MIDI stream>"))


def _load_codec():
    """Import the MIDI codec `remi`: beside this file (installed g2m_hf), else from an installed g2m_hf.

    Written as ``from . import remi`` on purpose: transformers scans remote-code files for
    ``from .name import`` lines and would copy remi.py into every saved folder and then demand
    its MIDI libraries from anyone loading the tokenizer with ``trust_remote_code``.
    """
    try:
        from . import remi
    except ImportError:
        try:
            from g2m_hf import remi
        except ImportError as error:
            raise ImportError(
                "MIDI conversion needs the g2m_hf package (pip install g2m_hf); this tokenizer was loaded "
                "as remote code without it, so only token/event methods are available"
            ) from error
    return remi


def _words(text: Any) -> set[str]:
    """The whitespace-separated words of a text input (a string or nested lists/tuples of strings)."""
    if isinstance(text, str):
        return set(text.split())
    return set().union(*map(_words, text)) if isinstance(text, (list, tuple)) else set()


def _flat_ids(ids: Any) -> list[int]:
    """Token ids of one piece as a list: accepts a list, a 1-D tensor/array or a ``[1, T]`` batch."""
    if hasattr(ids, "tolist"):
        ids = ids.tolist()
    ids = list(ids)
    if ids and isinstance(ids[0], (list, tuple)):
        if len(ids) != 1:
            raise VocabularyError(f"expected the ids of one piece, got a batch of {len(ids)}")
        ids = list(ids[0])
    return ids


class G2MTokenizer(PreTrainedTokenizerFast):
    """Tokenizer of REMI events: one token per event, token id = index in the event vocabulary.

    ``G2MTokenizer()`` uses the deterministic complete vocabulary (`vocab.complete_vocabulary()`);
    `from_original_dictionary` reproduces the ids of an original checkpoint's ``dictionary.pkl``.

    Encoding adds nothing: a REMI piece already carries its ``BOS_None`` (third event) and
    ``EOS_None``, so encoding a whole piece gives exactly its event ids. There is no unknown
    token (the original vocabulary has none): an event outside the vocabulary raises
    `VocabularyError`. Padding is on the left, as batched generation needs.

    Args:
        vocab: the events in id order, or an ``event -> id`` mapping with ids 0..n-1 (default: the
            complete vocabulary). Ignored when ``tokenizer_file`` or ``tokenizer_object`` is given.
        tokenizer_file: a ``tokenizer.json`` written by `save_pretrained`.
        pad_token, bos_token, eos_token: the special events (``PAD_None``, ``BOS_None``, ``EOS_None``).
    """

    vocab_files_names = {"tokenizer_file": "tokenizer.json"}
    model_input_names = ["input_ids", "attention_mask"]

    def __init__(
        self,
        vocab: Sequence[str] | Mapping[str, int] | None = None,
        tokenizer_file: str | None = None,
        pad_token: str = PAD_TOKEN,
        bos_token: str = BOS_TOKEN,
        eos_token: str = EOS_TOKEN,
        **kwargs: Any,
    ) -> None:
        if tokenizer_file is None and kwargs.get("tokenizer_object") is None:
            if vocab is None:
                events = complete_vocabulary()
            elif isinstance(vocab, Mapping):
                # from_pretrained with g2m_hf imported hands over the tokenizer.json vocab as a mapping
                events = vocabulary_from_mapping(vocab, "vocab")
            else:
                events = check_vocabulary(vocab, "vocab")
            for special in map(str, (pad_token, bos_token, eos_token)):  # str: from_pretrained passes AddedToken
                if special not in events:
                    raise VocabularyError(f"vocab: the special token {special!r} is missing")
            kwargs["tokenizer_object"] = _backend(events)
        kwargs.setdefault("clean_up_tokenization_spaces", False)
        # Saved in tokenizer_config.json, so a plain PreTrainedTokenizerFast load pads left as well.
        kwargs.setdefault("padding_side", "left")
        super().__init__(
            tokenizer_file=tokenizer_file, pad_token=pad_token, bos_token=bos_token, eos_token=eos_token, **kwargs
        )

    @classmethod
    def from_original_dictionary(cls, path: str | os.PathLike, **kwargs: Any) -> "G2MTokenizer":
        """A tokenizer whose ids are those of an original ``dictionary.pkl`` (``PAD_None`` = its size)."""
        return cls(vocab=read_original_dictionary(path), **kwargs)

    # --- events <-> ids --------------------------------------------------------------------

    @property
    def event_vocabulary(self) -> list[str]:
        """Every event, in id order (``event_vocabulary[i]`` is the event of token id ``i``)."""
        vocab = self._tokenizer.get_vocab(with_added_tokens=False)
        return sorted(vocab, key=vocab.__getitem__)

    def events_to_ids(self, events: Iterable[str]) -> list[int]:
        """Token ids of REMI events; raises `VocabularyError` naming the events not in the vocabulary."""
        vocab = self._tokenizer.get_vocab(with_added_tokens=False)
        events = list(events)
        try:
            return [vocab[token] for token in events]
        except KeyError:
            unknown = sorted({token for token in events if token not in vocab}, key=str)
            raise VocabularyError(f"events not in the vocabulary: {unknown[:20]}") from None

    def ids_to_events(self, ids: Any) -> list[str]:
        """REMI events of token ids (a list, 1-D tensor or ``[1, T]`` batch); unknown ids raise `VocabularyError`."""
        events = self.event_vocabulary
        ids = _flat_ids(ids)
        bad = [index for index in ids if not isinstance(index, int) or not 0 <= index < len(events)]
        if bad:
            raise VocabularyError(f"token ids outside the vocabulary of {len(events)}: {bad[:20]}")
        return [events[index] for index in ids]

    def _encode_plus(self, text: Any, text_pair: Any = None, **kwargs: Any) -> BatchEncoding:
        """`tok(...)` / `tok.encode(...)`: as the base class, but an unknown event raises `VocabularyError`."""
        try:
            return super()._encode_plus(text, text_pair=text_pair, **kwargs)
        except Exception as error:
            if "Missing [UNK]" not in str(error):  # the backend's message for a word outside the vocabulary
                raise
            unknown = _words((text, text_pair)) - set(self.get_vocab())
            raise VocabularyError(f"events not in the vocabulary: {sorted(unknown)[:20]}") from None

    # --- composers -------------------------------------------------------------------------

    @property
    def composers(self) -> list[str]:
        """Names of the composer tokens (without ``Composer_``, ``None`` excluded), in id order."""
        names = (split_event(token) for token in self.event_vocabulary)
        return [value for name, value in names if name == COMPOSER and value != NO_COMPOSER]

    def composer_token(self, composer: str | None) -> str:
        """The composer event for a name, matched case-insensitively (``"bach"`` -> ``Composer_Bach``).

        ``None`` or ``"None"`` gives ``Composer_None`` (no style, the pretraining condition).
        Raises `VocabularyError` listing the known composers.
        """
        wanted = (NO_COMPOSER if composer is None else str(composer)).casefold()
        for token in self.event_vocabulary:
            name, value = split_event(token)
            if name == COMPOSER and value.casefold() == wanted:
                return token
        raise VocabularyError(f"unknown composer {composer!r}; known composers: {', '.join(self.composers)}")

    def composer_prompt(
        self, composers: str | Sequence[str | None], return_tensors: str | None = "pt"
    ) -> BatchEncoding:
        """Generation prompts: one composer token per piece.

        Returns a BatchEncoding with ``input_ids`` and ``attention_mask`` of shape ``[B, 1]``
        (B = number of composers; a single name gives B = 1), as tensors of ``return_tensors``.
        """
        if composers is None or isinstance(composers, str):
            composers = [composers]
        ids = self.events_to_ids(self.composer_token(name) for name in composers)
        data = {"input_ids": [[index] for index in ids], "attention_mask": [[1] for _ in ids]}
        return BatchEncoding(data, tensor_type=return_tensors)

    def add_composer(self, name: str) -> int:
        """Add a ``Composer_<name>`` token at the end of the vocabulary and return its id.

        Existing ids do not change, so a trained model stays valid (resize its embeddings to
        ``len(tokenizer)`` before training the new style). Adding a known composer (any case)
        returns its id and changes nothing. The name may not contain whitespace or ``_``.
        """
        try:
            return self.get_vocab()[self.composer_token(name)]
        except VocabularyError:
            pass
        if not name or "_" in name or any(char.isspace() for char in name):
            raise VocabularyError(f"composer name {name!r} must be non-empty, without whitespace or '_'")
        return self.add_events([event(COMPOSER, name)])[0]

    def add_events(self, events: Iterable[str]) -> list[int]:
        """Append the ``events`` the vocabulary lacks, in the order given; return the ids of all of them.

        As `add_composer`: existing ids do not change (resize a model's embeddings to ``len(tokenizer)``
        before it learns the new events). Used for the infilling tokens (`vocab.INFILL_TOKENS`).
        """
        events = check_vocabulary(list(dict.fromkeys(events)), "events")
        known = self.event_vocabulary
        new = [token for token in events if token not in set(known)]
        if new:
            if len(self) != self.vocab_size:
                # tokens from add_tokens() hold the ids after the vocabulary; appending would reuse them
                raise VocabularyError("cannot add events after add_tokens(): the new ids are already taken")
            known = known + new
            # Swapping the model keeps the backend's special-token table valid: their ids are unchanged.
            self._tokenizer.model = WordLevel({token: index for index, token in enumerate(known)}, unk_token=_NO_UNK)
        return self.events_to_ids(events)

    # --- MIDI ------------------------------------------------------------------------------

    def encode_midi(self, midi: Any, composer: str | None = None, **options: Any) -> list[int]:
        """Token ids of a MIDI file (path, bytes or binary file object), conditioned on ``composer``.

        ``composer`` None means ``Composer_None``. ``options`` go to `remi.midi_to_events`.
        Raises `RemiError` for a file the codec rejects and `VocabularyError` for an unknown
        composer or an event this vocabulary lacks (both name the file).
        """
        token = self.composer_token(composer)
        events = _load_codec().midi_to_events(midi, composer=split_event(token)[1], **options)
        try:
            return self.events_to_ids(events)
        except VocabularyError as error:
            raise VocabularyError(f"{_describe_midi(midi)}: {error}") from None

    def decode_midi(self, ids: Any):
        """A `pretty_midi.PrettyMIDI` from the token ids of one piece (list, tensor or ``[1, T]``); PAD and the
        texture-control tokens (`control_tokens`: what the piece was asked for, not music) are skipped."""
        skipped = {self.pad_token, *CONTROL_TOKENS}
        events = [token for token in self.ids_to_events(ids) if token not in skipped]
        return _load_codec().events_to_midi(events)

    # --- saving ----------------------------------------------------------------------------

    def _save_pretrained(self, save_directory: str | os.PathLike, file_names: tuple[str, ...], **kwargs: Any):
        """Write tokenizer.json, and declare the generic fast class in tokenizer_config.json.

        The folder then loads everywhere: ``AutoTokenizer.from_pretrained(folder)`` gives a plain
        PreTrainedTokenizerFast with the same ids where g2m_hf is not installed, while the
        ``auto_map`` entry (written because the class is registered for AutoTokenizer) gives a
        G2MTokenizer with ``trust_remote_code=True``. Naming "G2MTokenizer" here instead would make
        transformers refuse the plain load without ``trust_remote_code``. The price: with g2m_hf
        imported, ``AutoTokenizer`` (without ``trust_remote_code``) also gives the generic class, so
        g2m_hf code loads with ``G2MTokenizer.from_pretrained``.
        """
        file_names = super()._save_pretrained(save_directory, file_names, **kwargs)
        for path in file_names:
            if os.path.basename(path).endswith(_TOKENIZER_CONFIG):
                with open(path, encoding="utf-8") as handle:
                    config = json.load(handle)
                config["tokenizer_class"] = _GENERIC_CLASS
                with open(path, "w", encoding="utf-8") as handle:
                    handle.write(json.dumps(config, indent=2, sort_keys=True, ensure_ascii=False) + "\n")
        return file_names


G2MTokenizer.register_for_auto_class("AutoTokenizer")

__all__ = ["G2MTokenizer"]
