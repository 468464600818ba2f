"""Texture controls: per-bar tokens that say how dense, how polyphonic and how high a bar is.

A controlled bar writes one token of each `vocab.CONTROL_KINDS`, in that order, right after its
``Time_Signature``::

    Bar_None Time_Signature_4/4 Density_mid Polyphony_low Register_high Beat_0 Note_Pitch_72 ...

The level of each (`vocab.CONTROL_LEVELS`) is the bar's class as `controls.bar_classes` measures it: notes per
quarter note, notes per onset, mean pitch, cut at `controls.BAR_CLASS_EDGES`. Bars without notes carry none.

- **Training** (`training_controls`, called by the data collator): the tokens are written into a share of a
  window's bars (the share drawn per window), so that they stay optional; the model is not asked to predict
  them (they are the user's choice, not the music; the collator masks their labels).
- **Generation**: a `TexturePlan` gives every bar of the piece its three levels; the grammar
  (`grammar.RemiGrammarLogitsProcessor` with ``controls=``) writes them after each bar's signature, so the
  model writes the bar under them. With no knob set, the plan follows the prompted composer's real pieces
  (`ComposerTextures`, measured from the training data by packaging and stored in the model's config,
  ``composer_textures``); ``density`` / ``polyphony`` / ``register`` fix a level for every bar (`parse_level`).
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
from .errors import InvalidArgumentError, VocabularyError
from .vocab import BAR_TOKEN, CONTROL_KINDS, CONTROL_LEVELS, CONTROL_TOKENS, split_event

FREE = -1
"""A plan entry for a bar without control tokens (a bar the model writes as it likes)."""

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


def has_control_tokens(vocabulary: Sequence[str]) -> bool:
    """Whether a model's vocabulary holds every control token (a model trained with them)."""
    return set(CONTROL_TOKENS) <= set(vocabulary)


def require_control_tokens(vocabulary: Sequence[str], what: str) -> None:
    """Refuse (`VocabularyError`, one line) a vocabulary without the control tokens."""
    if not has_control_tokens(vocabulary):
        raise VocabularyError(
            f"{what} has no texture-control tokens: the model was not trained with them "
            "(fine-tune one with data.collator.control_rate, see docs/texture.md)"
        )


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


# --- generation: what each bar is asked for --------------------------------------------------------------


def parse_level(kind: str, value: str | float | int | None) -> int | None:
    """The level index a knob asks for: ``None`` (the composer's texture), a level name (`vocab.CONTROL_LEVELS`)
    or a number in the control's unit (density: notes per quarter note; polyphony: notes per onset; register:
    mean MIDI pitch, 60 = middle C), classed by `controls.BAR_CLASS_EDGES`. `InvalidArgumentError` otherwise."""
    if value is None or value == "":
        return None
    edges = controls.BAR_CLASS_EDGES[kind]
    text = str(value).strip().lower()
    if text in CONTROL_LEVELS:
        return CONTROL_LEVELS.index(text)
    try:
        number = float(text)
    except ValueError:
        number = float("nan")
    if not np.isfinite(number) or number < 0:
        raise InvalidArgumentError(kind, value, f"expected one of {', '.join(CONTROL_LEVELS)} or a number ({level_help(kind)})")
    return int(np.searchsorted(edges, number, side="right"))


_UNITS = {"density": "notes per quarter note", "polyphony": "notes per onset", "register": "mean MIDI pitch, 60 = middle C"}


def level_help(kind: str) -> str:
    """What a knob's numbers mean and where its levels start: ``"notes per onset; low below 2, high from 2.8"``."""
    low, high = controls.BAR_CLASS_EDGES[kind]
    return f"{_UNITS[kind]}; low below {low:g}, high from {high:g}"


def parse_knobs(
    density: str | float | None = None,
    polyphony: str | float | None = None,
    register: str | float | None = None,
    spell: Callable[[str], str] = str,
) -> dict[str, int | None]:
    """The level index of every knob (`parse_level`; ``None``: not set), keyed ``density``, ``polyphony``,
    ``register``; `InvalidArgumentError` naming the knob (``spell`` turns names into options)."""
    knobs = {}
    for kind, value in (("density", density), ("polyphony", polyphony), ("register", register)):
        try:
            knobs[kind] = parse_level(kind, value)
        except InvalidArgumentError as error:
            raise InvalidArgumentError(spell(error.name), error.value, error.why) from None
    return knobs


def with_knobs(levels: np.ndarray, knobs: Mapping[str, int | None]) -> np.ndarray:
    """``levels`` (``[..., kinds]``) with every knob that is set fixed; a `FREE` bar then gets the middle level
    for the kinds no knob sets (a bar carries all three controls or none)."""
    if all(level is None for level in knobs.values()):
        return levels
    levels = levels.copy()
    levels[(levels == FREE).any(-1)] = 1
    for column, kind in enumerate(CONTROL_KINDS):
        if knobs.get(kind.lower()) is not None:
            levels[..., column] = knobs[kind.lower()]
    return levels


@dataclass(frozen=True)
class TexturePlan:
    """What a batch of pieces is asked for: ``levels[row, bar, kind]`` (`FREE`: nothing), each row's tempo
    class (``None``: the model's or the caller's choice) and share of notes a sixteenth or shorter (NaN: none)."""

    levels: np.ndarray  # [B, bars, kinds]
    tempi: list[int | None]
    short_shares: list[float]


@dataclass(frozen=True)
class RealTexture:
    """One real piece as the texture table keeps it: its tempo class, every bar's levels ``[bars, kinds]`` and
    its share of notes a sixteenth or shorter (NaN: not measured, a table packaged before it was kept)."""

    tempo: int
    levels: np.ndarray
    short_share: float = float("nan")

    def encode(self) -> str:
        """``"120 0.21: 012 112 --- ..."``: the tempo class and the share of short notes, then a group of digits
        per bar (``-``: no notes)."""
        bars = " ".join("-" * len(row) if row[0] == FREE else "".join(map(str, row)) for row in self.levels)
        share = f" {self.short_share:.2f}" if np.isfinite(self.short_share) else ""
        return f"{self.tempo}{share}: {bars}"

    @classmethod
    def decode(cls, line: str) -> RealTexture:
        head, _, bars = line.partition(":")
        tempo, *share = head.split()
        levels = [[FREE if c == "-" else int(c) for c in bar] for bar in bars.split()]
        return cls(int(tempo), np.array(levels, dtype=np.int64).reshape(-1, len(CONTROL_KINDS)),
                   float(share[0]) if share else float("nan"))


PLAN_PHRASE_BARS = 4
"""Where a plan may enter its first real piece: at a multiple of this many bars. From the opening only, the plans
took the composers' openings for their whole texture, and openings are not the pieces: Mozart's are denser
(54 % of their bars at the high density level, 45 % over whole pieces), Beethoven's sparser (33 % against
45 %), which made generated Mozart x1.12-1.29 the real notes per bar and Beethoven x0.77 the real notes per
second (docs/texture.md#plan-entry)."""


class ComposerTextures:
    """Each composer's real bar-by-bar texture: the tempo class and the levels of every bar of each training piece.

    With no knob set, a generated piece follows real pieces of its composer bar by bar (one entered at a
    phrase drawn at random, `PLAN_PHRASE_BARS`, then others drawn at random from their start), so it gets the
    composer's texture, its register and its changes from phrase to phrase, not an average; and the first
    piece's tempo class, as the composer's pieces are spread over the tempo classes (style guidance alone
    pushed the choice to the slowest class, docs/texture.md).
    """

    def __init__(self, pieces: Mapping[str, Sequence[RealTexture]]):
        self.pieces = {composer: list(rows) for composer, rows in pieces.items()}

    @classmethod
    def measure(cls, pieces_by_composer: Mapping[str, Sequence[Sequence[str]]]) -> ComposerTextures:
        """The table of real pieces (event lists), per composer; pieces without a bar are left out."""
        table = {}
        for composer, pieces in pieces_by_composer.items():
            rows = []
            for events in pieces:
                levels = bar_levels(events)
                if len(levels):
                    texture = controls.piece_texture(events)
                    rows.append(RealTexture(int(texture["tempo"]), levels, texture["short_share"]))
            if rows:
                table[composer] = rows
        return cls(table)

    def to_config(self) -> dict[str, list[str]]:
        """The table as `G2MConfig.composer_textures` holds it: per composer, a line per piece (`RealTexture.encode`)."""
        return {composer: [piece.encode() for piece in pieces] for composer, pieces in self.pieces.items()}

    @classmethod
    def from_config(cls, config: Any) -> ComposerTextures | None:
        """The table a model config carries (``composer_textures``), ``None`` when it has none."""
        table = getattr(config, "composer_textures", None)
        if not table:
            return None
        return cls({composer: [RealTexture.decode(line) for line in lines] for composer, lines in table.items()})

    def plan(self, composer: str, bars: int, generator: np.random.Generator) -> tuple[np.ndarray, RealTexture | None]:
        """``[bars, kinds]`` levels for one piece of ``composer`` (real pieces one after another, the first entered
        at a random phrase of `PLAN_PHRASE_BARS` bars, its opening included) and the first one (whose tempo class
        and share of short notes the piece takes); `FREE` and ``None`` for a composer the table lacks."""
        pieces = self.pieces.get(composer)
        if not pieces:
            return np.full((bars, len(CONTROL_KINDS)), FREE, dtype=np.int64), None
        first = pieces[int(generator.integers(len(pieces)))]
        phrases = max(1, len(first.levels) // PLAN_PHRASE_BARS)  # a piece shorter than a phrase: from its start
        levels = [first.levels[PLAN_PHRASE_BARS * int(generator.integers(phrases)) :]]  # [bars of it, kinds]
        while sum(map(len, levels)) < bars:
            levels.append(pieces[int(generator.integers(len(pieces)))].levels)
        return np.concatenate(levels)[:bars], first


def texture_plan(
    textures: ComposerTextures | None,
    composers: Sequence[str],
    bars: int,
    seed: int,
    knobs: Mapping[str, int | None],
) -> TexturePlan:
    """The plan of a batch (one composer per row): the composer's real textures and tempo (`ComposerTextures.plan`;
    `FREE` and no tempo without a table), with every knob that is set (a level index, `parse_level`) fixed for
    every bar (`with_knobs`). A density knob drops the real pieces' shares of short notes: a piece's share of
    sixteenths is part of its density, and holding it fought the knob (`low` bars at a median of 4.0 notes per
    quarter with it, 3.0 without; docs/texture.md#obedience)."""
    generator = np.random.default_rng(seed)
    if textures is None:
        free = np.full((len(composers), bars, len(CONTROL_KINDS)), FREE, dtype=np.int64)
        return TexturePlan(with_knobs(free, knobs), [None] * len(composers), [float("nan")] * len(composers))
    planned = [textures.plan(composer, bars, generator) for composer in composers]
    firsts = [first for _, first in planned]
    keep_shares = knobs.get("density") is None
    return TexturePlan(with_knobs(np.stack([levels for levels, _ in planned]), knobs),
                       [None if first is None else first.tempo for first in firsts],
                       [first.short_share if first is not None and keep_shares else float("nan") for first in firsts])


__all__ = [
    "ComposerTextures",
    "ControlTokens",
    "FREE",
    "MIN_BAR_SHARE",
    "PLAN_PHRASE_BARS",
    "RealTexture",
    "TexturePlan",
    "add_control_tokens",
    "bar_levels",
    "has_control_tokens",
    "insert",
    "level_help",
    "parse_knobs",
    "parse_level",
    "require_control_tokens",
    "strip",
    "texture_plan",
    "training_controls",
    "with_knobs",
]
