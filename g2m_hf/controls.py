"""Texture and register: what a bar, a section and a piece measure, against a composer's real pieces.

The one place that says what a bar's density, polyphony and register are (ARCHITECTURE.md): the
long-form benchmark, the texture comparison of guidance variants and, later, the texture-control
tokens (inserted by the collator, asked for by generation, checked by evaluation) all read them here.

- per bar (`bar_attributes`, `bar_classes`): notes, onsets (distinct start times), notes per onset (polyphony), mean
  pitch, share of notes at or above middle C (MIDI 60);
- per section of `SECTION_BARS` bars (`section_register`): mean pitch and share at or above middle C;
- per piece (`piece_texture`): notes / bar, onsets / bar, notes / second (at the piece's tempo class),
  share of notes a sixteenth or shorter, tempo class, how far a bar's pitches spread, the share of notes off
  the metric grid.

`TextureReference` summarises a composer's real pieces: the 10-90 % range of their sections' register
(a section "keeps the register" when both its mean pitch and its share at or above middle C lie inside)
and the median real piece's texture.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, replace

import numpy as np

from .metrics import PieceLike, _as_notes
from .vocab import BAR_CLASS_EDGES, CONTROL_LEVELS, MIDDLE_C, SHORT_NOTE_TICKS, TICKS_PER_BEAT, on_metric_grid

SECTION_BARS = 8
"""Bars per section of the register measure (a phrase or two)."""

REGISTER_RANGE = (10.0, 90.0)
"""Percentiles of the real sections that bound a kept register."""

TEXTURE_KEYS = ("notes_per_bar", "onsets_per_bar", "notes_per_second", "short_share", "tempo", "pitch_spread",
                "off_grid_share")
"""Keys of `piece_texture`."""


# --- per bar ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class BarAttributes:
    """One entry per bar of a piece (bars without notes: 0 notes, 0 onsets, NaN pitch measures).

    Attributes:
        notes: notes starting in the bar. [n_bars]
        onsets: distinct start positions in the bar. [n_bars]
        polyphony: notes per onset (NaN without notes). [n_bars]
        mean_pitch: mean MIDI pitch of the bar's notes. [n_bars]
        high_share: share of the bar's notes at or above `MIDDLE_C`. [n_bars]
    """

    notes: np.ndarray
    onsets: np.ndarray
    polyphony: np.ndarray
    mean_pitch: np.ndarray
    high_share: np.ndarray


def bar_attributes(piece: PieceLike) -> BarAttributes:
    """Density, polyphony and register of every bar of ``piece`` (events or `PieceNotes`)."""
    notes = _as_notes(piece)
    n_bars = notes.n_bars
    counts = np.bincount(notes.bar, minlength=n_bars).astype(float)
    onset_bars = np.unique(np.stack([notes.bar, notes.start]), axis=1)[0] if len(notes.bar) else notes.bar
    onsets = np.bincount(onset_bars, minlength=n_bars).astype(float)
    pitch_sum = np.bincount(notes.bar, weights=notes.pitch.astype(float), minlength=n_bars)
    high = np.bincount(notes.bar, weights=(notes.pitch >= MIDDLE_C).astype(float), minlength=n_bars)
    with np.errstate(divide="ignore", invalid="ignore"):
        return BarAttributes(counts, onsets, counts / onsets, pitch_sum / counts, high / counts)


# --- per-bar classes: what the texture-control tokens say ----------------------------------------------

BAR_CLASS_LEVELS = CONTROL_LEVELS
"""Named levels of every bar class: the values of the texture-control tokens (`control_tokens`)."""

def bar_values(piece: PieceLike) -> dict[str, np.ndarray]:
    """Each bar's value of every class of `BAR_CLASS_EDGES`: ``density`` (notes per quarter note), ``polyphony``
    (notes per onset) and ``register`` (mean MIDI pitch); NaN polyphony and register without notes. [n_bars]"""
    notes = _as_notes(piece)
    attributes = bar_attributes(notes)
    return {
        "density": attributes.notes / (notes.bar_ticks / TICKS_PER_BEAT),
        "polyphony": attributes.polyphony,
        "register": attributes.mean_pitch,
    }


def bar_classes(piece: PieceLike, edges: dict[str, tuple[float, float]] = BAR_CLASS_EDGES) -> dict[str, np.ndarray]:
    """Each bar's level index (0 = low .. 2 = high) per class of ``edges``; -1 for a bar without notes. [n_bars]"""
    values = bar_values(piece)
    silent = ~np.isfinite(values["register"])
    return {name: np.where(silent, -1, np.searchsorted(edges[name], values[name], side="right")) for name in edges}


# --- per section ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class SectionRegister:
    """The register of one section: bars ``first .. first + SECTION_BARS - 1`` (0-based)."""

    first: int
    mean_pitch: float
    high_share: float


def section_register(piece: PieceLike, section_bars: int = SECTION_BARS) -> list[SectionRegister]:
    """Mean pitch and share of notes at or above middle C of every whole ``section_bars``-bar section
    that holds notes (a trailing partial section and silent sections are left out)."""
    notes = _as_notes(piece)
    sections = []
    for first in range(0, notes.n_bars - section_bars + 1, section_bars):
        pitch = notes.pitch[(notes.bar >= first) & (notes.bar < first + section_bars)]
        if len(pitch):
            sections.append(SectionRegister(first, float(pitch.mean()), float(np.mean(pitch >= MIDDLE_C))))
    return sections


# --- per piece ------------------------------------------------------------------------------------


def piece_texture(piece: PieceLike) -> dict[str, float]:
    """`TEXTURE_KEYS` of a piece: notes and onsets per bar, notes per second at its tempo class, the
    share of notes a sixteenth or shorter, the tempo class, the median bar's standard deviation of pitch
    (``pitch_spread``, over bars of two notes or more: 8-9 semitones in the real music of the bundled
    composers) and the share of notes whose onset is off the sixteenths and eighth-note triplets
    (``off_grid_share``, `vocab.METRIC_GRIDS`). NaN measures for a piece without notes."""
    notes = _as_notes(piece)
    attributes = bar_attributes(notes)
    n_notes = len(notes.pitch)
    seconds = notes.bar_ticks.sum() * notes.seconds_per_tick  # bars as written, rests included
    spreads = [pitch.std() for pitch in (notes.pitch[notes.bar == bar] for bar in np.unique(notes.bar)) if len(pitch) > 1]
    return {
        "notes_per_bar": float(attributes.notes.mean()) if notes.n_bars else float("nan"),
        "onsets_per_bar": float(attributes.onsets.mean()) if notes.n_bars else float("nan"),
        "notes_per_second": n_notes / seconds if seconds else float("nan"),
        "short_share": float(np.mean(notes.duration <= SHORT_NOTE_TICKS)) if n_notes else float("nan"),
        "tempo": float(notes.tempo),
        "pitch_spread": float(np.median(spreads)) if spreads else float("nan"),
        "off_grid_share": float(np.mean(~on_metric_grid(notes.grid))) if n_notes else float("nan"),
    }


def median_texture(pieces: Iterable[PieceLike]) -> dict[str, float]:
    """The median piece's `TEXTURE_KEYS` of ``pieces`` (each key's median over the pieces; tempo: the most
    common tempo class)."""
    textures = [piece_texture(piece) for piece in pieces]
    texture = {key: float(np.nanmedian([t[key] for t in textures])) for key in TEXTURE_KEYS}
    tempi, counts = np.unique([t["tempo"] for t in textures], return_counts=True)
    texture["tempo"] = float(tempi[counts.argmax()])
    return texture


# --- against the real pieces ------------------------------------------------------------------------


OPENING_SECTIONS = 8
"""Sections of a 64-bar opening: the register goal asks that all but one keep the composer's register."""


@dataclass(frozen=True)
class TextureReference:
    """What a composer's real pieces measure.

    Attributes:
        mean_pitch: (low, high) 10-90 % range of the real sections' mean pitch.
        high_share: (low, high) 10-90 % range of their share of notes at or above middle C.
        texture: the median real piece's `TEXTURE_KEYS` (tempo: the most common tempo class).
        pieces, sections: how many real pieces and sections the figures come from.
        kept_sections: how many of those sections keep the register by these ranges (the real pieces' own
            rate: about 0.7, as the ranges leave out a fifth of the sections by each measure).
        kept_openings: (real pieces of at least `OPENING_SECTIONS` sections whose first ones keep the register
            in all but one, such pieces): how often real music meets the "7 of 8 sections" goal.
    """

    mean_pitch: tuple[float, float]
    high_share: tuple[float, float]
    texture: dict[str, float]
    pieces: int
    sections: int
    kept_sections: int = 0
    kept_openings: tuple[int, int] = (0, 0)

    @classmethod
    def from_pieces(cls, pieces: Iterable[PieceLike], section_bars: int = SECTION_BARS) -> TextureReference:
        """The reference of real pieces (event lists or `PieceNotes`)."""
        notes = [_as_notes(piece) for piece in pieces]
        by_piece = [section_register(piece, section_bars) for piece in notes]
        sections = [section for piece_sections in by_piece for section in piece_sections]
        if not sections:
            raise ValueError("no real section to measure: the pieces are shorter than a section or silent")
        low, high = REGISTER_RANGE
        pitch = np.percentile([s.mean_pitch for s in sections], [low, high])
        share = np.percentile([s.high_share for s in sections], [low, high])
        reference = cls(tuple(map(float, pitch)), tuple(map(float, share)), median_texture(notes), len(notes), len(sections))
        openings = [piece_sections[:OPENING_SECTIONS] for piece_sections in by_piece
                    if len(piece_sections) >= OPENING_SECTIONS]
        kept = sum(sum(map(reference.keeps_register, opening)) >= OPENING_SECTIONS - 1 for opening in openings)
        return replace(reference, kept_sections=sum(map(reference.keeps_register, sections)),
                       kept_openings=(kept, len(openings)))

    def keeps_register(self, section: SectionRegister) -> bool:
        """Both the section's mean pitch and its share at or above middle C lie in the real 10-90 % ranges."""
        return (self.mean_pitch[0] <= section.mean_pitch <= self.mean_pitch[1]
                and self.high_share[0] <= section.high_share <= self.high_share[1])

    def sections_kept(self, piece: PieceLike, section_bars: int = SECTION_BARS) -> tuple[int, int]:
        """(sections keeping the register, whole sections with notes) of a generated piece."""
        sections = section_register(piece, section_bars)
        return sum(self.keeps_register(section) for section in sections), len(sections)

    def to_dict(self) -> dict:
        return asdict(self)


def composer_reference(
    composer: str, limit: int | None = None, cache_dir: str | os.PathLike | None = None
) -> TextureReference:
    """The `TextureReference` of a composer's works in the music21 corpus (``limit``: at most that many).

    Works are converted to MIDI with music21 once (cached in ``cache_dir``, default the datasets cache);
    works music21 cannot convert are left out. Needs the ``train`` extra (the music21 corpus).
    """
    from .corpus import corpus_sources, source_midi
    from .data import default_cache_dir
    from .errors import G2MError
    from .remi import midi_to_events

    cache = default_cache_dir() / "midi" if cache_dir is None else cache_dir
    pieces: list[Sequence[str]] = []
    for source in corpus_sources([composer], limit=limit):
        try:
            pieces.append(midi_to_events(source_midi(source, cache), composer=composer))
        except G2MError:  # badly formed repeats and the like: not a real piece to measure
            continue
    return TextureReference.from_pieces(pieces)


__all__ = [
    "BAR_CLASS_EDGES",
    "BAR_CLASS_LEVELS",
    "BarAttributes",
    "MIDDLE_C",
    "OPENING_SECTIONS",
    "REGISTER_RANGE",
    "SECTION_BARS",
    "SHORT_NOTE_TICKS",
    "SectionRegister",
    "TEXTURE_KEYS",
    "TextureReference",
    "bar_attributes",
    "bar_classes",
    "bar_values",
    "composer_reference",
    "median_texture",
    "piece_texture",
    "section_register",
]
