"""Texture controls: per-bar tokens that say how dense, how polyphonic and how high a bar is.

A controlled bar writes one token of each `vocab.CONTROL_KINDS`, in that order, right after its
``Time_Signature``::

    Bar_None Time_Signature_4/4 Density_mid Polyphony_low Register_high Beat_0 Note_Pitch_72 ...

The level of each (`vocab.CONTROL_LEVELS`) is the bar's class as `controls.bar_classes` measures it: notes per
quarter note, notes per onset, mean pitch, cut at `controls.BAR_CLASS_EDGES`. Bars without notes carry none.

- **Training** (`training_controls`, called by the data collator): the tokens are written into a share of a
  window's bars (the share drawn per window), so that they stay optional; the model is not asked to predict
  them (they are the user's choice, not the music; the collator masks their labels).
- **Generation**: a plan (`texture_plan`) gives every bar of the piece its three levels; the grammar
  (`grammar.RemiGrammarLogitsProcessor` with ``controls=``) writes them after each bar's signature, so the
  model writes the bar under them. With no knob set, the plan follows the prompted composer's real pieces,
  which `measure_textures` measures on the training data for packaging to store in the model's config.
- The tokens are appended after the existing ids (and after the infill tokens), so a piece without them is
  exactly the original REMI; `strip` takes them out of a generated piece (what is returned, decoded and
  saved is plain REMI).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from . import controls
from .texture_plan import FREE, ComposerTextures, RealTexture, require_control_tokens
from .vocab import BAR_TOKEN, CONTROL_KINDS, CONTROL_LEVELS, CONTROL_TOKENS, split_event

MIN_BAR_SHARE = 0.5
"""A controlled training window carries the tokens in a share of its bars drawn from MIN_BAR_SHARE..1: mostly
controlled windows, as generation writes them into every bar, but never all, so the model also reads
uncontrolled bars (a prompt's, an infilled piece's context)."""


@dataclass(frozen=True)
class ControlTokens:
    """The ids the layout uses."""

    ids: np.ndarray  # [kinds, levels] the id of each control token
    bar: int  # Bar_None
    signatures: np.ndarray  # ids of the Time_Signature tokens

    @classmethod
    def of(cls, tokenizer: Any) -> ControlTokens:
        """The ids of ``tokenizer`` (a `G2MTokenizer`); `VocabularyError` when it has no control tokens."""
        vocabulary = tokenizer.event_vocabulary
        require_control_tokens(vocabulary, "the tokenizer")
        ids = np.array(tokenizer.events_to_ids(CONTROL_TOKENS)).reshape(len(CONTROL_KINDS), len(CONTROL_LEVELS))
        signatures = [index for index, token in enumerate(vocabulary) if split_event(token)[0] == "Time_Signature"]
        return cls(ids, vocabulary.index(BAR_TOKEN), np.array(signatures))


def add_control_tokens(tokenizer: Any) -> list[int]:
    """Append the control tokens to ``tokenizer`` if it lacks them (existing ids unchanged); their ids."""
    return tokenizer.add_events(CONTROL_TOKENS)


# --- the layout --------------------------------------------------------------------------------------


def bar_levels(events: Sequence[str]) -> np.ndarray:
    """``[n_bars, kinds]`` each bar's level of every control (`controls.bar_classes`), `FREE` for a bar without
    notes; one row per ``Bar_None`` of ``events`` (a window may start and end anywhere in a piece)."""
    classes = controls.bar_classes(events)
    n_bars = events.count(BAR_TOKEN)
    levels = np.full((n_bars, len(CONTROL_KINDS)), FREE, dtype=np.int64)
    for column, kind in enumerate(CONTROL_KINDS):
        measured = classes[kind.lower()][:n_bars]  # a closing empty bar is not measured
        levels[: len(measured), column] = measured  # bar_classes marks a silent bar in every kind at once
    return levels


def insert(ids: np.ndarray, levels: np.ndarray, tokens: ControlTokens) -> np.ndarray:
    """``ids`` with the control tokens of ``levels`` (``[n_bars, kinds]``, one row per ``Bar_None``; `FREE`
    rows get none) written after each bar's ``Time_Signature``."""
    bars = np.flatnonzero(ids == tokens.bar)
    pieces, last = [], 0
    for bar, row in zip(bars, levels):
        if (row == FREE).any() or bar + 1 >= len(ids) or ids[bar + 1] not in tokens.signatures:
            continue
        pieces += [ids[last : bar + 2], tokens.ids[np.arange(len(row)), row]]
        last = bar + 2
    pieces.append(ids[last:])
    return np.concatenate(pieces).astype(np.int64)


def strip(ids: Sequence[int] | np.ndarray, tokens: ControlTokens) -> np.ndarray:
    """``ids`` without its control tokens: the plain REMI piece."""
    ids = np.asarray(ids, dtype=np.int64)
    return ids[~np.isin(ids, tokens.ids)]


def training_controls(
    window: np.ndarray, vocabulary: Sequence[str], tokens: ControlTokens, random: Callable[[], float], max_length: int
) -> np.ndarray:
    """A training window with control tokens in a random share of its bars (from `MIN_BAR_SHARE` to 1, drawn
    with ``random()``, uniform in [0, 1)), at most ``max_length`` tokens: when the tokens make it longer, it
    ends earlier, at a bar line (with that bar's ``Bar_None``, as every window cut inside a piece ends)."""
    levels = bar_levels([vocabulary[int(i)] for i in window])
    share = MIN_BAR_SHARE + (1 - MIN_BAR_SHARE) * random()
    levels[[random() >= share for _ in range(len(levels))]] = FREE
    controlled = insert(window, levels, tokens)
    if len(controlled) <= max_length:
        return controlled
    fitting = np.flatnonzero(controlled[:max_length] == tokens.bar)
    return controlled[: fitting[-1] + 1] if fitting.size > 1 else window


def measure_textures(pieces_by_composer: Mapping[str, Sequence[Sequence[str]]]) -> ComposerTextures:
    """Each composer's real texture (`texture_plan.ComposerTextures`), measured on its pieces (event lists): the
    bar-by-bar levels, tempo class and share of short notes of every piece with a bar, and the register ranges of
    its 8-bar sections (none for a composer no piece of whom fills a section, `controls.SECTION_BARS`)."""
    table, registers = {}, {}
    for composer, pieces in pieces_by_composer.items():
        rows = []
        for events in pieces:
            levels = bar_levels(events)
            if len(levels):
                texture = controls.piece_texture(events)
                rows.append(RealTexture(int(texture["tempo"]), levels, texture["short_share"]))
        if rows:
            table[composer] = rows
        try:
            reference = controls.TextureReference.from_pieces(pieces)
        except ValueError:
            continue
        registers[composer] = (*reference.mean_pitch, *reference.high_share)
    return ComposerTextures(table, registers)


__all__ = [
    "ControlTokens",
    "MIN_BAR_SHARE",
    "add_control_tokens",
    "bar_levels",
    "insert",
    "measure_textures",
    "strip",
    "training_controls",
]
