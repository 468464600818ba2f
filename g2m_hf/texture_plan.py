"""Texture plans: what every bar of a generated piece is asked for, before the model writes it.

A plan gives each bar of each piece a level of every texture control (`vocab.CONTROL_KINDS`; the tokens and
their layout are `control_tokens`'), and each piece a tempo class, a share of short notes and a register range:

- with no knob set, the plan follows the prompted composer's real pieces (`ComposerTextures`, measured on the
  training data by packaging and stored in the model's config: ``composer_textures``, ``composer_registers``);
- ``density`` / ``polyphony`` / ``register`` knobs (`parse_knobs`) fix a level for every bar.

`generation.generate_midi` and `G2MForCausalLM.generate` (`prompt_plan`) both plan with `plan_batch`; the
grammar (`grammar.RemiGrammarLogitsProcessor` with ``controls=``, `TexturePlan.grammar_arguments`) writes the
levels and texture steering holds them.

Remote-code file: numpy, torch and relative imports only.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from .errors import InvalidArgumentError, VocabularyError
from .vocab import BAR_CLASS_EDGES, CONTROL_KINDS, CONTROL_LEVELS, CONTROL_TOKENS, NO_COMPOSER, split_event

FREE = -1
"""A plan entry for a bar without control tokens (a bar the model writes as it likes)."""


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


def plannable(vocabulary: Sequence[str], knobs: Mapping[str, int | None]) -> bool:
    """Whether a model of this vocabulary can be given a texture plan (it has the control tokens);
    `VocabularyError` (one line) when a knob is set for one that cannot."""
    if has_control_tokens(vocabulary):
        return True
    if any(level is not None for level in knobs.values()):
        require_control_tokens(vocabulary, "the model")
    return False


def parse_level(kind: str, value: str | float | int | None) -> int | None:
    """The level index a knob asks for: ``None`` (the composer's texture), a level name (`vocab.CONTROL_LEVELS`)
    or a number in the control's unit (density: notes per quarter note; polyphony: notes per onset; register:
    mean MIDI pitch, 60 = middle C), classed by `vocab.BAR_CLASS_EDGES`. `InvalidArgumentError` otherwise."""
    if value is None or value == "":
        return None
    edges = BAR_CLASS_EDGES[kind]
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
    low, high = BAR_CLASS_EDGES[kind]
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


def fixed_knobs(knobs: Mapping[str, int | None]) -> tuple[str, ...]:
    """The knobs that are set (a grammar's ``knobs``: steering holds them harder)."""
    return tuple(kind for kind, level in knobs.items() if level is not None)


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


NO_REGISTER = (float("nan"),) * 4
"""A row's register range when none is held (`TexturePlan.registers`)."""


@dataclass(frozen=True)
class TexturePlan:
    """What a batch of pieces is asked for: ``levels[row, bar, kind]`` (`FREE`: nothing), each row's tempo
    class (``None``: the model's or the caller's choice), share of notes a sixteenth or shorter (NaN: none)
    and register range (`ComposerTextures.registers`; `NO_REGISTER`: none)."""

    levels: np.ndarray  # [B, bars, kinds]
    tempi: list[int | None]
    short_shares: list[float]
    registers: list[tuple[float, float, float, float]]

    @property
    def empty(self) -> bool:
        """Whether no bar of any row is planned (nothing for a grammar to write)."""
        return bool((self.levels == FREE).all())

    def grammar_arguments(self, texture_steering: float, knobs: Mapping[str, int | None]) -> dict[str, Any]:
        """The keyword arguments of `grammar.RemiGrammarLogitsProcessor` that write and steer this plan
        (``knobs``: the ones set are held harder, `texture_steering.KNOB_GAINS`)."""
        return {"controls": torch.from_numpy(self.levels), "short_shares": torch.tensor(self.short_shares),
                "registers": torch.tensor(self.registers), "texture_steering": texture_steering,
                "knobs": fixed_knobs(knobs)}


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

    ``registers``: per composer, the 10-90 % ranges of its real 8-bar sections' mean pitch and share of notes
    at or above middle C (``(pitch low, pitch high, share low, share high)``, `controls.TextureReference`),
    where steering keeps a planned piece's sections (`texture_steering.SECTION_MARGIN`). Both are measured on
    the training pieces by `control_tokens.measure_textures`.
    """

    def __init__(self, pieces: Mapping[str, Sequence[RealTexture]],
                 registers: Mapping[str, Sequence[float]] | None = None):
        self.pieces = {composer: list(rows) for composer, rows in pieces.items()}
        self.registers = {composer: tuple(map(float, r)) for composer, r in (registers or {}).items()}

    def to_config(self) -> dict[str, dict]:
        """The config fields that hold the table: ``composer_textures`` (per composer, a line per piece,
        `RealTexture.encode`) and ``composer_registers``."""
        return {"composer_textures": {composer: [piece.encode() for piece in pieces]
                                      for composer, pieces in self.pieces.items()},
                "composer_registers": {composer: [round(x, 4) for x in r] for composer, r in self.registers.items()}}

    @classmethod
    def from_config(cls, config: Any) -> ComposerTextures | None:
        """The table a model config carries (``composer_textures``, ``composer_registers``), ``None`` when it has
        none."""
        table = getattr(config, "composer_textures", None)
        if not table:
            return None
        return cls({composer: [RealTexture.decode(line) for line in lines] for composer, lines in table.items()},
                   getattr(config, "composer_registers", None))

    def plan(self, composer: str, bars: int, generator: np.random.Generator) -> tuple[np.ndarray, RealTexture | None]:
        """``[bars, kinds]`` levels for one piece of ``composer`` (real pieces one after another, the first entered
        at a random phrase of `PLAN_PHRASE_BARS` bars, its opening included) and the first one (whose tempo class
        and share of short notes the piece takes); `FREE` and ``None`` for a composer the table lacks. Each piece
        is drawn on its own: a batch may follow one twice (drawing a batch's first pieces without repeats was
        measured and lost, docs/texture.md#distinct-pieces)."""
        pieces = self.pieces.get(composer)
        if not pieces:
            return np.full((bars, len(CONTROL_KINDS)), FREE, dtype=np.int64), None
        first = pieces[int(generator.integers(len(pieces)))]
        phrases = max(1, len(first.levels) // PLAN_PHRASE_BARS)  # a piece shorter than a phrase: from its start
        levels = [first.levels[PLAN_PHRASE_BARS * int(generator.integers(phrases)) :]]  # [bars of it, kinds]
        while sum(map(len, levels)) < bars:
            levels.append(pieces[int(generator.integers(len(pieces)))].levels)
        return np.concatenate(levels)[:bars], first


def plan_batch(
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
        return TexturePlan(with_knobs(free, knobs), [None] * len(composers), [float("nan")] * len(composers),
                           [NO_REGISTER] * len(composers))
    planned = [textures.plan(composer, bars, generator) for composer in composers]
    firsts = [first for _, first in planned]
    keep_shares = knobs.get("density") is None
    keep_register = knobs.get("register") is None
    return TexturePlan(with_knobs(np.stack([levels for levels, _ in planned]), knobs),
                       [None if first is None else first.tempo for first in firsts],
                       [first.short_share if first is not None and keep_shares else float("nan") for first in firsts],
                       [textures.registers.get(composer, NO_REGISTER) if keep_register else NO_REGISTER
                        for composer in composers])


def prompt_plan(
    config: Any, style_ids: Sequence[int], bars: int, seed: int, knobs: Mapping[str, int | None],
    composer_texture: bool = True,
) -> TexturePlan | None:
    """The plan of `G2MForCausalLM.generate`: `plan_batch` for the composer of each row's style token (the token
    the style adapters read, its prompt's first; not a ``Composer_`` token: `vocab.NO_COMPOSER`, which the table
    lacks), following the composers' real textures unless ``composer_texture`` is False. ``None`` when nothing is
    planned (no table and no knob, or a model without texture-control tokens); `VocabularyError` for a knob such a
    model cannot take."""
    vocabulary = config.event_vocabulary or []
    if not plannable(vocabulary, knobs):
        return None
    named = (split_event(vocabulary[i]) if 0 <= i < len(vocabulary) else ("", "") for i in style_ids)
    composers = [value if kind == "Composer" else NO_COMPOSER for kind, value in named]
    textures = ComposerTextures.from_config(config) if composer_texture else None
    plan = plan_batch(textures, composers, bars, seed, knobs)
    return None if plan.empty else plan


__all__ = [
    "ComposerTextures",
    "FREE",
    "NO_REGISTER",
    "PLAN_PHRASE_BARS",
    "RealTexture",
    "TexturePlan",
    "fixed_knobs",
    "has_control_tokens",
    "level_help",
    "parse_knobs",
    "parse_level",
    "plan_batch",
    "plannable",
    "prompt_plan",
    "require_control_tokens",
    "with_knobs",
]
