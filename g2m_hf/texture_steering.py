"""Texture steering: each bar's notes pulled toward the texture its plan asks for, while it is written.

The texture-control tokens (`control_tokens`) tell the model each bar's density, polyphony and register
level, but a small model trained with them follows them weakly: given the bars before, a bar's control
tokens change the model's expected pitch by a fraction of a semitone (docs/texture.md#steering). Under
style guidance, which pushes every step the same way, that is not enough to hold a long piece: the
register drifts bar after bar, into the bass or up (issue 25). Steering closes the loop at sampling
time, the way a grammar closes it on the form: as a bar is written, what it has so far is measured, and
when it lies outside its planned level's band the scores are tilted back toward the band:

- **register** (mean pitch): every ``Note_Pitch`` score gets ``k_r * distance * (pitch - register)``, the
  pitch's offset bounded at an octave (`PITCH_REACH`);
- **polyphony** (notes per onset): after a note, another note at the same onset gets ``k_p * distance``;
- **density** (notes per quarter note, of the bar's onsets before the current one), once the bar has a note:
  the next onset (a ``Beat``, or the ``Bar`` that ends the bar) gets ``-k_d * distance * gap``, the gap in
  quarter notes from the current onset; an onset off the sixteenths and eighth-note triplets
  (`vocab.METRIC_GRIDS`) gets the least favoured of these tilts and ``-k_g`` more, in every planned bar;
- **spread** (the standard deviation of the bar's pitches): above `SPREAD_LIMIT`, every ``Note_Pitch`` gets
  ``-k_s * excess * (pitch - register)**2``, gathering the bar around its register from both sides;
- **short notes** (a moving share of the notes a sixteenth or shorter), where the plan gives the row a target
  (the share in the real piece it follows): every short ``Note_Duration`` gets ``k_h * distance``, the
  distance from the band `SHORT_MARGIN` around the target (``k_h`` half as large below the band as above it),
  and ``-k_piece * surplus`` more, the short notes the piece has written beyond its target's share so far
  (`SHORT_SURPLUS_NOTES`: a piece-level measure, which the moving share alone left about 0.06 over the target);
- **section register** (slow moving measures of the pitch and of the share of notes at or above middle C over the
  last few bars, `SECTION_RATE`), where the plan gives the row its composer's register ranges (the real 8-bar
  sections' 10-90 %, narrowed by `SECTION_MARGIN`): every ``Note_Pitch`` gets ``k_sec * distance * (pitch -
  register)`` more, and every pitch at or above middle C ``k_share * distance``: a run of bars planned low or high
  no longer takes a whole section out of the composer's register (docs/texture.md#section-register).

``distance`` is how far the bar's measure lies below its band (negative above it; 0 inside), in the
measure's unit, and ``excess`` how far the spread lies above its limit. Each is an exponential tilt: the least
change of the model's distribution that moves the mean of that quantity (pitch, notes per onset, the gap
between onsets; the squared distance from the register for the spread) toward the band. Inside the band,
and in a bar without a plan, the model's scores are untouched. What a bar "has so far" mixes its own notes
with a moving measure of the bars before it (`RECENT_WEIGHT`), so that its first notes are judged too.

The bands are the levels of `vocab.BAR_CLASS_EDGES`, the open ends closed at `vocab.STEERING_RANGES`.
The state it reads (each bar's pitch sum and sum of squares, notes, onsets, the current onset's notes and the moving measures) is kept by the grammar's
row state (`grammar._RowState`), which follows a piece across the windows of a long generation.

Remote-code file: torch and relative imports only.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from typing import Any

import torch

from .errors import InvalidArgumentError
from .vocab import (
    BAR_CLASS_EDGES,
    BAR_TOKEN,
    CONTROL_KINDS,
    MIDDLE_C,
    SHORT_NOTE_TICKS,
    STEERING_RANGES,
    TICKS_PER_BEAT,
    TICKS_PER_GRID,
    on_metric_grid,
    split_event,
)

STEERING_GAINS: dict[str, float] = {"density": 3.0, "polyphony": 1.0, "register": 0.1, "spread": 0.01, "short": 16.0,
                                    "short_up": 8.0, "short_piece": 16.0, "grid": 2.0, "section": 0.3, "section_share": 60.0}
"""The tilt per unit of distance at ``texture_steering=1`` (the strength multiplies them): per note per
quarter and quarter note of gap (density), per note per onset (polyphony), per semitone and semitone of
pitch (register), per semitone of spread and squared semitone of pitch (spread), per unit of share (short
notes above their band; short_up: below it), at a piece's full surplus of short notes (short_piece,
`SHORT_SURPLUS_NOTES`), and the fixed tilt against an onset off the metric grid (grid). Chosen by
benchmarks/texture_guidance.py (docs/texture.md#steering, #spread; density's on the distilled model, #defaults;
short_up #short-notes; short_piece #short-surplus)."""

KNOB_GAINS: dict[str, float] = {"polyphony": 16.0}
"""The gains of a control the caller fixed for every bar (a knob: ``polyphony="high"``) where they differ from
`STEERING_GAINS`. At 1 the polyphony knob's levels lay within half a note per onset of each other (Spearman 0.29
against the level asked); at 16, 0.71. In the composer's own plan the higher gain cost Mozart's recognition by
the feature judge (0.88 and 0.79 against 0.67 and 0.62 over 24 pieces, two seeds), so it holds a knob only
(benchmarks/control_obedience.py, docs/texture.md#polyphony-gain)."""

SPREAD_LIMIT = 13.0
"""The most a bar's pitches may spread (their standard deviation, in semitones) before steering gathers
them: about the 90th percentile of the real bars of the widest composer (Bach 9.9, Beethoven 13.6, Mozart
11.8; the median bar 8-9), so only a spread no real music has is pulled in. The register tilt alone, which
moves the mean, scattered a long piece's bars over six octaves (a note an octave above the mean, the next an
octave below); a limit of 10 brought Beethoven to the real median but its recognition down
(docs/texture.md#spread)."""

SECTION_RATE = 0.02
"""The section-scale moving measures (mean pitch, share of notes at or above middle C) follow about the last 50
notes: three or four bars, so that a drift is caught before an 8-bar section is lost."""

SECTION_MARGIN = 0.2
"""Where a row has register ranges (the composer's 10-90 % ranges of real 8-bar sections), its section measures are
kept this share of each range's width inside either end."""

SHORT_MARGIN = 0.05
"""Short notes are steered when their moving share lies further than this from the row's target (the share of
notes a sixteenth or shorter in the real piece its plan follows)."""

SHORT_SURPLUS_NOTES = 20.0
"""A piece this many short notes over its target's share so far (a target of 0.3 and 100 notes: 50 short instead
of 30) gets the whole piece-level push toward fewer (``short_piece``); a smaller surplus a proportional part,
none below it."""

RECENT_RATE = 0.1
"""Moving measures: the register and the share of short notes follow about the last ten notes; density and
polyphony about the last ten bars (their moving measures are updated once a bar)."""

RECENT_WEIGHT: dict[str, float] = {"density": 1.0, "polyphony": 2.0, "register": 4.0}
"""How much the moving measure of the bars before counts in a bar's own: as this many quarter notes
(density), onsets (polyphony) or notes (register) of the bar."""

PITCH_REACH = 12.0
"""The register tilt grows with a pitch's distance from the bar's register up to an octave, no further: a
linear tilt without a bound favours the keyboard's extremes most (stray notes at G0 and C1 under a melody)."""

GRIDS_PER_QUARTER = TICKS_PER_BEAT // TICKS_PER_GRID
"""Beat steps per quarter note (12)."""


class TextureSteering:
    """The score tilts of texture steering for a vocabulary, at a strength (0: none; 1: `STEERING_GAINS`).

    Args:
        events: the event strings in id order.
        strength: multiplies every gain of `STEERING_GAINS`.
        knobs: the controls the caller fixed for every bar (``"polyphony"``, ...): steered with `KNOB_GAINS`.
    """

    def __init__(self, events: Sequence[str], strength: float, knobs: Collection[str] = ()):
        if not strength >= 0:
            raise InvalidArgumentError("texture_steering", strength, "must be at least 0")
        unknown = sorted(set(knobs) - {kind.lower() for kind in CONTROL_KINDS})
        if unknown:
            raise InvalidArgumentError("knobs", unknown, f"controls are {', '.join(k.lower() for k in CONTROL_KINDS)}")
        self.strength = float(strength)
        self.knobs = frozenset(knobs)
        names = [split_event(token) for token in events]
        self._pitch = torch.tensor([float(v) if n == "Note_Pitch" and v.isdigit() else float("nan") for n, v in names])  # [V]
        self._grid = torch.tensor([float(v) if n == "Beat" and v.isdigit() else float("nan") for n, v in names])  # [V]
        self._is_bar = torch.tensor([token == BAR_TOKEN for token in events])  # [V]
        self._short = torch.tensor([n == "Note_Duration" and v.isdigit() and int(v) <= SHORT_NOTE_TICKS
                                    for n, v in names])  # [V]
        bands = {}
        for kind, (low, high) in STEERING_RANGES.items():
            edges = (low, *BAR_CLASS_EDGES[kind], high)
            bands[kind] = torch.tensor([edges[:-1], edges[1:]], dtype=torch.float)  # [2, levels]: lower, upper
        self._bands = bands
        self._columns: tuple[torch.Tensor, ...] | None = None  # `columns`' last answer

    def columns(self, vocab_size: int, device: torch.device) -> tuple[torch.Tensor, ...]:
        """Per column of the scores ``[V]``: the pitch of a ``Note_Pitch`` and the grid of a ``Beat`` (NaN for
        every other column), whether it is ``Bar_None``, whether it is a short ``Note_Duration`` (at most
        `vocab.SHORT_NOTE_TICKS`), whether it is a ``Beat`` on the metric grid (`vocab.on_metric_grid`) and
        whether it is a ``Note_Pitch`` at or above `vocab.MIDDLE_C`; built once per width and device."""
        columns = self._columns
        if columns is None or columns[0].numel() != vocab_size or columns[0].device != device:
            known = min(vocab_size, self._pitch.numel())
            pitch, grid = (torch.full((vocab_size,), float("nan"), device=device) for _ in range(2))
            is_bar, short = (torch.zeros(vocab_size, dtype=torch.bool, device=device) for _ in range(2))
            for out, values in ((pitch, self._pitch), (grid, self._grid), (is_bar, self._is_bar), (short, self._short)):
                out[:known] = values[:known].to(device)
            columns = self._columns = (pitch, grid, is_bar, short, on_metric_grid(grid), pitch >= MIDDLE_C)
        return columns

    def tilt(self, state: Any, bar: torch.Tensor, after_note: torch.Tensor, vocab_size: int) -> torch.Tensor:
        """``[B, V]`` what steering adds to the scores of the rows whose grammar state is ``state`` (a
        `grammar._RowState` with a texture plan). ``bar`` ``[B]``: the plan's bar each row is writing (-1: none
        yet, no steering); ``after_note`` ``[B]``: the row's last event is a note (a pitch now adds one to
        its onset)."""
        device = state.phase.device
        rows = torch.arange(state.phase.shape[0], device=device)
        levels = state.plan[rows, bar.clamp(min=0) % state.plan.shape[1]]  # [B, kinds], -1: none planned
        pitch, grid, is_bar, short, metric, upper = self.columns(vocab_size, device)  # [V] each

        def planned(kind: str) -> torch.Tensor:  # [B] the row writes a bar with a level of this kind
            return (levels[:, CONTROL_KINDS.index(kind.capitalize())] >= 0) & (bar >= 0)

        def distance(kind: str, measure: torch.Tensor) -> torch.Tensor:  # [B], semitones / notes below the band
            level = levels[:, CONTROL_KINDS.index(kind.capitalize())]
            low, high = self._bands[kind].to(device)[:, level.clamp(min=0)]  # [B] each
            return torch.where(planned(kind), _below(measure, low, high).nan_to_num(0.0), 0.0)

        gains = {kind: (KNOB_GAINS.get(kind, gain) if kind in self.knobs else gain) * self.strength
                 for kind, gain in STEERING_GAINS.items()}
        tilt = torch.zeros(rows.shape[0], vocab_size, device=device)

        register = _blend(state.bar_pitch_sum, state.bar_notes, state.recent_pitch, "register")  # [B]
        pitch_low, pitch_high, share_low, share_high = state.register_range.unbind(1)  # [B] each, NaN: none
        push = (gains["register"] * distance("register", register)
                + gains["section"] * torch.where(bar >= 0, _inside(state.section_pitch, pitch_low, pitch_high), 0.0))  # [B]
        offset = pitch - register.nan_to_num(0.0).unsqueeze(1)  # [B, V]
        tilt += torch.where(pitch.isnan(), 0.0, push.unsqueeze(1) * offset.clamp(-PITCH_REACH, PITCH_REACH))

        square = _blend(state.bar_pitch_squares, state.bar_notes, state.recent_pitch_square, "register")  # [B]
        spread = (square - register.square()).clamp(min=0).sqrt()  # [B] standard deviation of the pitches so far
        excess = torch.where(planned("register"), (spread - SPREAD_LIMIT).clamp(min=0).nan_to_num(0.0), 0.0)  # [B]
        tilt -= torch.where(pitch.isnan(), 0.0, gains["spread"] * excess.unsqueeze(1) * offset.square())

        push = torch.where(bar >= 0, gains["section_share"] * _inside(state.section_high, share_low, share_high), 0.0)
        tilt += torch.where(upper, push.unsqueeze(1), 0.0)  # [B, V]

        polyphony = _blend(state.bar_notes, state.bar_onsets, state.recent_polyphony, "polyphony")  # [B]
        push = gains["polyphony"] * distance("polyphony", polyphony)  # [B]
        tilt += torch.where(pitch.isnan() | ~after_note.unsqueeze(1), 0.0, push.unsqueeze(1))

        onset = state.grid.clamp(min=0).float()  # [B] grid of the current onset (0 before the bar's first)
        before = state.bar_notes - state.onset_notes  # [B] the notes of the onsets before the current one ...
        density = _blend(before, onset / GRIDS_PER_QUARTER, state.recent_density, "density")  # [B] ... over their time
        # Not before the bar's first note: there its measure is the bars' before alone, and after a busy bar a
        # low level would favour the bar line itself, an empty bar (pairs of silent bars in long pieces).
        push = torch.where(state.bar_notes > 0, gains["density"] * distance("density", density), 0.0)  # [B]
        bar_end = (state.bar_ticks // TICKS_PER_GRID).float()  # [B] the Bar token's "onset": the end of the bar
        next_onset = torch.where(is_bar, bar_end.unsqueeze(1), grid.unsqueeze(0))  # [B, V]
        gap = (next_onset - onset.unsqueeze(1)) / GRIDS_PER_QUARTER  # [B, V] quarters, NaN elsewhere
        # An onset off the sixteenths and eighth-note triplets gets the least favoured tilt (a whole bar's gap) and
        # the grid gain below that: guided long pieces drift there (a sixth of Beethoven's notes, real music 1 %),
        # and the model copies such steps on once a few appear (docs/texture.md#spread).
        least = -push.abs() * bar_end / GRIDS_PER_QUARTER  # [B]
        off_grid = least.unsqueeze(1) - gains["grid"] * (bar >= 0).unsqueeze(1)  # [B, 1]
        gap_tilt = torch.where(metric | is_bar, -push.unsqueeze(1) * gap, off_grid)  # [B, V]
        tilt += torch.where(gap.isnan(), 0.0, gap_tilt)

        target = state.short_target  # [B] the real piece's share of short notes, NaN: none
        # Half as hard toward more short notes as toward fewer: a push toward them starts a run of sixteenths,
        # which the model carries on past the target (docs/texture.md#short-notes).
        below = _below(state.recent_short, target - SHORT_MARGIN, target + SHORT_MARGIN)  # [B], NaN before any note
        push = torch.where(below > 0, gains["short_up"], gains["short"]) * below
        # The moving share alone settles above the band (a proportional push leaves an offset: Mozart's pieces ran
        # about 0.06 over their targets); what the piece has written beyond its target so far also pushes toward
        # fewer. Toward fewer only: the same push toward more lifted Beethoven's pieces past the real music's
        # share (docs/texture.md#short-surplus).
        push = push - gains["short_piece"] * (state.short_surplus / SHORT_SURPLUS_NOTES).clamp(0, 1)  # [B]
        push = torch.where(bar >= 0, push.nan_to_num(0.0), 0.0)  # [B]
        tilt += torch.where(short, push.unsqueeze(1), 0.0)
        return tilt


def _inside(measure: torch.Tensor, low: torch.Tensor, high: torch.Tensor) -> torch.Tensor:
    """How far ``measure`` lies below the range ``low .. high`` narrowed by `SECTION_MARGIN` at both ends
    (negative above it; 0 inside it, or where any of them is NaN). [B]"""
    margin = SECTION_MARGIN * (high - low)
    return _below(measure, low + margin, high - margin).nan_to_num(0.0)


def _below(measure: torch.Tensor, low: torch.Tensor, high: torch.Tensor) -> torch.Tensor:
    """How far ``measure`` lies below ``low .. high`` (negative above it, 0 inside; NaN where any is NaN). [B]"""
    return (low - measure).clamp(min=0) - (measure - high).clamp(min=0)


def _blend(total: torch.Tensor, count: torch.Tensor, recent: torch.Tensor, kind: str) -> torch.Tensor:
    """A bar's measure so far, ``total / count``, with the moving measure ``recent`` of the music before it
    counting as `RECENT_WEIGHT` more of ``count`` (not at all before there is one: NaN). [B]; NaN when there
    is nothing to measure yet."""
    weight = torch.where(recent.isnan(), 0.0, RECENT_WEIGHT[kind])
    return (total + weight * recent.nan_to_num(0.0)) / (count + weight)


__all__ = ["KNOB_GAINS", "SECTION_MARGIN", "SECTION_RATE", "STEERING_GAINS", "TextureSteering"]
