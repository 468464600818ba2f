"""Bar infilling: the sequence layout that lets a causal model rewrite bars in the middle of a piece.

Fill-in-the-middle (Bavarian et al. 2022) for whole bars, as MMM (Ens & Pasquier 2020) lays it out: the
bars to rewrite (the *span*) are taken out of the piece, one ``Infill_Bar`` placeholder stands where each
of them was, and the span is written after the rest of the piece between ``Infill_Start`` and
``Infill_End``::

    before               Composer Tempo [BOS] Bar ... Bar ...      the bars before the span
    Infill_Bar x k       one placeholder per bar of the span
    after                Bar ... Bar ... [EOS]                     the bars after it (EOS: the piece ends there)
    Infill_Start  span  Infill_End                                 the k bars themselves, then the end

So when the model writes the span it has read both sides of the gap. ``before`` follows the rule of every
training window and generation context (`data.prefixed_window`): it starts at the piece start (with BOS)
or at a bar line behind the piece's Composer and Tempo events. The three tokens are appended after the
existing ids (`vocab.INFILL_TOKENS`, ``G2MTokenizer.add_events``), so plain REMI is untouched.

This module is the one place of that layout: the data collator cuts training examples with
`training_example`, generation builds its prompt with `infill_context` and puts the written bars back
with `splice`; `unarrange` is the inverse of `arrange` (tests, evaluation).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from . import data  # module import: data's collator imports this module too
from .errors import InvalidArgumentError, VocabularyError
from .vocab import BAR_TOKEN, EOS_TOKEN, INFILL_BAR_TOKEN, INFILL_END_TOKEN, INFILL_START_TOKEN, INFILL_TOKENS

DEFAULT_MAX_SPAN_BARS = 8
"""Longest span a training example rewrites: from one bar (a bar that does not work) to a phrase or two."""


@dataclass(frozen=True)
class InfillTokens:
    """The token ids the layout uses."""

    bar: int
    eos: int
    placeholder: int  # Infill_Bar
    start: int  # Infill_Start
    end: int  # Infill_End

    @classmethod
    def of(cls, tokenizer: Any) -> InfillTokens:
        """The ids of ``tokenizer`` (a `G2MTokenizer`); `VocabularyError` when it has no infill tokens."""
        require_infill_tokens(tokenizer.event_vocabulary, "the tokenizer")
        ids = tokenizer.events_to_ids([BAR_TOKEN, EOS_TOKEN, INFILL_BAR_TOKEN, INFILL_START_TOKEN, INFILL_END_TOKEN])
        return cls(*ids)

    @property
    def unlearnt(self) -> tuple[int, int]:
        """Tokens a training example does not ask the model to predict: where a gap is and where the span
        starts are the example's choices, not the music's."""
        return self.placeholder, self.start


def add_infill_tokens(tokenizer: Any) -> list[int]:
    """Append the infill tokens to ``tokenizer`` if it lacks them (existing ids unchanged); their ids."""
    return tokenizer.add_events(INFILL_TOKENS)


def require_infill_tokens(vocabulary: Sequence[str], what: str) -> None:
    """Refuse (`VocabularyError`, one line) a vocabulary without the infill tokens: a model that never
    learnt them cannot infill."""
    missing = [token for token in INFILL_TOKENS if token not in vocabulary]
    if missing:
        raise VocabularyError(
            f"{what} has no infilling tokens ({', '.join(missing)}): the model was not trained for infilling "
            "(fine-tune one with data.collator.infill_rate, see docs/infilling.md)"
        )


def bar_bounds(ids: np.ndarray, tokens: InfillTokens) -> np.ndarray:
    """``[n_bars + 1]``: where each bar starts (its ``Bar_None``), then where the last one ends (the EOS,
    or the end of ``ids``). A sequence of whole bars: nothing but a head before the first bar."""
    starts = np.flatnonzero(ids == tokens.bar)
    ends = np.flatnonzero(ids == tokens.eos)
    end = int(ends[0]) if ends.size else len(ids)
    return np.append(starts[starts < end], end)


def arrange(
    before: np.ndarray, span: np.ndarray, after: np.ndarray, span_bars: int, tokens: InfillTokens
) -> np.ndarray:
    """The infilling sequence: ``before``, a placeholder per span bar, ``after``, then the span between
    ``Infill_Start`` and ``Infill_End`` (``span`` may be empty: the prompt a model writes the span after)."""
    head = np.concatenate([before, np.full(span_bars, tokens.placeholder), after, [tokens.start]])
    return np.concatenate([head, span, [tokens.end]]) if len(span) else head.astype(np.int64)


def unarrange(ids: np.ndarray, tokens: InfillTokens) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(before, span, after)`` of an infilling sequence (the inverse of `arrange`); ``Infill_End`` may be
    missing (a span still being written)."""
    ids = np.asarray(ids, dtype=np.int64)
    placeholders = np.flatnonzero(ids == tokens.placeholder)
    starts = np.flatnonzero(ids == tokens.start)
    if not placeholders.size or starts.size != 1 or placeholders[-1] - placeholders[0] + 1 != placeholders.size:
        raise VocabularyError("not an infilling sequence: it needs one run of Infill_Bar and one Infill_Start")
    start = int(starts[0])
    ends = np.flatnonzero(ids[start + 1 :] == tokens.end)
    stop = start + 1 + int(ends[0]) if ends.size else len(ids)
    return ids[: placeholders[0]], ids[start + 1 : stop], ids[placeholders[-1] + 1 : start]


def splice(piece: np.ndarray, first: int, stop: int, span: np.ndarray, tokens: InfillTokens) -> np.ndarray:
    """``piece`` (a whole piece's ids) with its bars ``first..stop-1`` (0-based) replaced by ``span``."""
    bounds = bar_bounds(piece, tokens)
    return np.concatenate([piece[: bounds[first]], span, piece[bounds[stop] :]]).astype(np.int64)


def training_example(
    window: np.ndarray, tokens: InfillTokens, randint: Callable[[int], int], max_span_bars: int = DEFAULT_MAX_SPAN_BARS
) -> np.ndarray | None:
    """An infilling example made of a training window (`data.prefixed_window`): a span of 1 to
    ``max_span_bars`` whole bars (at least one bar of the window stays as context), drawn with
    ``randint(n)`` (uniform in ``0..n-1``). The example is ``max_span_bars + 2`` tokens longer at most.

    A window cut at a bar line ends with the ``Bar_None`` of a bar it does not hold; that token is dropped,
    so both sides of the gap are whole bars, as `infill_context` builds them. ``None`` when the window
    holds fewer than two whole bars (a window cut inside its first bar).
    """
    if window[-1] == tokens.bar:
        window = window[:-1]
    elif window[-1] != tokens.eos:
        return None  # cut inside a bar
    bounds = bar_bounds(window, tokens)
    bars = len(bounds) - 1
    if bars < 2:
        return None
    count = 1 + randint(min(max_span_bars, bars - 1))
    first = randint(bars - count + 1)
    start, stop = bounds[first], bounds[first + count]
    return arrange(window[:start], window[start:stop], window[stop:], count, tokens)


# --- generation: the bars to rewrite, the context around them ----------------------------------------


def parse_bars(text: str) -> tuple[int, int]:
    """``"9-12"`` -> ``(9, 12)``; ``"5"`` -> ``(5, 5)`` (bars counted from 1, inclusive).
    `InvalidArgumentError` for anything else."""
    first, dash, last = text.strip().partition("-")
    try:
        return (int(first), int(last)) if dash else (int(first), int(first))
    except ValueError:
        raise InvalidArgumentError("bars", text, "expected FIRST-LAST, bars counted from 1, e.g. 9-12") from None


def check_bars(bars: tuple[int, int], num_bars: int, source: str = "the piece") -> tuple[int, int]:
    """The 0-based ``(first, stop)`` of the bars ``bars`` (from 1, inclusive) of a piece of ``num_bars``
    bars; `InvalidArgumentError` (one line) for a range that is empty, reversed, past the end or the whole
    piece."""
    try:
        first, last = (int(bar) for bar in bars)
    except (TypeError, ValueError):
        raise InvalidArgumentError("bars", bars, "expected (first, last), bars counted from 1") from None
    shown = f"{first}-{last}"
    if first < 1:
        raise InvalidArgumentError("bars", shown, "bars are counted from 1")
    if last < first:
        raise InvalidArgumentError("bars", shown, "reversed or empty: the last bar comes before the first")
    if last > num_bars:
        raise InvalidArgumentError("bars", shown, f"past the end: {source} has {num_bars} bars")
    if first == 1 and last == num_bars:
        raise InvalidArgumentError("bars", shown, f"the whole of {source}: keep some bars (or use g2m-generate)")
    return first - 1, last


def infill_context(piece: np.ndarray, first: int, stop: int, budget: int, tokens: InfillTokens) -> np.ndarray:
    """The prompt to rewrite bars ``first..stop-1`` (0-based) of ``piece`` (a whole piece's ids), ending
    with ``Infill_Start``: the bars around the gap that fit ``budget`` tokens, whole bars only, taken one
    at a time from the side that has fewer tokens so far (the whole piece when it fits). Its ``before``
    starts at the piece start or at a bar line behind the Composer and Tempo events, as the windows the
    model was trained on; its ``after`` ends with EOS when it reaches the piece end.
    """
    bounds = bar_bounds(piece, tokens)
    bars = len(bounds) - 1
    span_bars = stop - first
    ends_piece = bool(bounds[-1] < len(piece))  # the piece has its EOS

    def size(left: int, right: int) -> int:
        head = bounds[0] if left == 0 else data.PREFIX_LENGTH  # the piece head, or Composer + Tempo
        eos = 1 if right == bars and ends_piece else 0
        return head + (bounds[first] - bounds[left]) + span_bars + (bounds[right] - bounds[stop]) + eos + 1

    left, right = first, stop  # context bars: left..first-1 and stop..right-1
    while True:
        grow_left = left > 0 and size(left - 1, right) <= budget
        grow_right = right < bars and size(left, right + 1) <= budget
        if not (grow_left or grow_right):
            break
        fewer_left = bounds[first] - bounds[left] <= bounds[right] - bounds[stop]
        if grow_left and (fewer_left or not grow_right):
            left -= 1
        else:
            right += 1
    before = data.prefixed_window(piece, int(bounds[left]) if left else 0, int(bounds[first]))
    after = piece[bounds[stop] : bounds[right]]
    if right == bars and ends_piece:
        after = np.append(after, tokens.eos)
    return arrange(before, np.empty(0, dtype=np.int64), after, span_bars, tokens)


__all__ = [
    "DEFAULT_MAX_SPAN_BARS",
    "InfillTokens",
    "add_infill_tokens",
    "arrange",
    "bar_bounds",
    "check_bars",
    "infill_context",
    "parse_bars",
    "require_infill_tokens",
    "splice",
    "training_example",
    "unarrange",
]
