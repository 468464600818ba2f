"""Grammar-constrained decoding: only REMI event sequences that round-trip through MIDI.

The original sampler (SPEC §5) drew a token, rejected a Beat that moved backwards and drew again
(up to 256 times), and cut the piece at 1200 events wherever it stood. Here a logits processor masks,
at every step and for every row of the batch, every token that would make the sequence invalid, so a
single draw always succeeds and every piece ends with ``EOS_None`` inside the length budget.

"Valid" is stricter than the event grammar of SPEC §1: a generated piece must decode to MIDI whose
re-encoding (``remi.midi_to_events``) gives back the same events. That adds these rules:

- durations are multiples of the bar's unit (40 ticks in /4 bars, 80 in /8 bars), at most a bar long;
- notes on one Beat come in strictly descending pitch (the converter's order), and a pitch may not
  start while an earlier note of the same pitch still sounds (MIDI would merge the two);
- the converter builds bars up to the last MIDI message, and the written file ends one tick after its
  last event, so when the piece ends every note must have ended strictly before the last bar's end;
- the converter's pickup rule (SPEC §1) rewrites a first bar shorter than 4/4 that is also shorter than
  the second bar, so a first bar other than 4/4 needs a second bar that is not longer, and cannot be the
  only bar.

The processor keeps a small state tensor per row, updated from the last token at each call (a full
parse happens at the first call, or whenever the input is not the previous input plus one column),
and builds the mask from precomputed per-token tables: no Python loop over the vocabulary or the batch.
For the length budget it knows the cheapest way to finish from any state (at most ``Bar``,
``Time_Signature``, ``EOS`` once a bar's content is complete), and forbids any token after which the
piece could no longer be finished in the tokens that remain.

Remote-code file: standard library, torch, transformers and relative imports only.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Sequence
from typing import Any

import torch
from transformers import GenerationConfig, LogitsProcessor, LogitsProcessorList
from transformers.utils import logging

from .errors import InvalidArgumentError
from .kv_cache import PreallocatedCache
from .texture_steering import RECENT_RATE, SECTION_RATE, TextureSteering
from .validation import positive_float, positive_int
from .vocab import (
    BAR_TOKEN,
    BOS_TOKEN,
    CONTROL_KINDS,
    CONTROL_LEVELS,
    EOS_TOKEN,
    FULL_BAR_TICKS,
    INFILL_END_TOKEN,
    INFILL_START_TOKEN,
    INFILL_TOKENS,
    MAX_GRIDS,
    MIDDLE_C,
    PAD_TOKEN,
    PITCH_MAX,
    PITCH_MIN,
    SHORT_NOTE_TICKS,
    TICKS_PER_BEAT,
    TICKS_PER_GRID,
    TIME_SIGNATURES,
    bar_geometry,
    split_event,
)

logger = logging.get_logger(__name__)

SPEC_GENERATION_DEFAULTS: dict[str, Any] = {
    "do_sample": True,
    "temperature": 1.1,
    "top_p": 0.99,
    "top_k": 0,  # nucleus sampling only: transformers would otherwise add top-k 50
}
"""The original's sampling (SPEC §5): what a saved generation_config.json holds, and what
`G2MForCausalLM.generate` uses for every setting that neither the call nor a generation config sets."""
_SAMPLING_SETTINGS = ("temperature", "top_p", "top_k")

SPEC_MAX_LENGTH = 1200
"""The original's length limit (SPEC §5), used by `generate` when neither ``max_length`` nor
``max_new_tokens`` is set. Deliberately not saved in generation configs: transformers warns at every
call that passes ``max_new_tokens`` to a model whose generation config has a ``max_length``."""

# Token classes. A row's "phase" is the class of its last meaningful token; SKIP tokens (padding,
# ids the vocabulary does not know) never change it and are never allowed, and phase 0 means "empty".
# CONTROL tokens (texture controls, control_tokens.py) leave the phase as it was, like SKIP, but are allowed
# where a texture plan asks for them.
SKIP, COMPOSER, TEMPO, BOS, BAR, EOS, TIME_SIGNATURE, BEAT, PITCH, DURATION, CONTROL = range(11)
_START = SKIP

_NO_PITCH = 1 << 10  # "above every pitch": a new Beat accepts any pitch
_INF = 1 << 40  # cost of a state from which the piece cannot end
_PITCH_SLOTS = 128  # MIDI pitch values; only PITCH_MIN..PITCH_MAX occur in the vocabulary
# Tokens needed to finish after Composer / Tempo / BOS: (Tempo) (BOS) Bar Time_Signature_4/4 EOS.
_COST_AFTER_COMPOSER, _COST_AFTER_TEMPO, _COST_AFTER_BOS = 5, 4, 3


def duration_ticks(seconds: float, tempo: torch.Tensor) -> torch.Tensor:
    """The tick (480 per quarter) at which ``seconds`` of music end at the Tempo class ``tempo`` (in BPM,
    as `remi.events_to_midi` plays it), rounded up: a bar line at or after it is at or after ``seconds``."""
    return torch.ceil(seconds * tempo.double() * TICKS_PER_BEAT / 60 - 1e-9).long()


def _event_vocabulary(vocabulary_or_tokenizer: Sequence[str] | object) -> list[str]:
    """The id-ordered event list of a vocabulary list or of a tokenizer."""
    events = getattr(vocabulary_or_tokenizer, "event_vocabulary", vocabulary_or_tokenizer)
    if isinstance(events, str) or not isinstance(events, Sequence) or not events:
        raise InvalidArgumentError(
            "vocabulary_or_tokenizer",
            type(vocabulary_or_tokenizer).__name__,
            "RemiGrammarLogitsProcessor needs the event vocabulary (a list of event strings in id order) "
            "or a G2MTokenizer",
        )
    return list(events)


def may_occur(rows: torch.Tensor) -> bool:
    """Whether any row of the mask ``rows`` ``[B]`` is set; always True off the CPU, where reading the mask would
    wait for the device. The grammar skips the work of token kinds no row has (a decoding step of a small batch
    touches one or two kinds), which leaves every result as it was: the skipped work changes no row."""
    return rows.device.type != "cpu" or bool(rows.any())


class _TokenTables:
    """Per-token lookup tables built once from the vocabulary.

    Each token gets a class, a value (tempo, signature index, grid, pitch or duration ticks) and a
    *slot*: the mask is computed per slot (``[B, num_slots]``, a few hundred) and gathered to the
    vocabulary with ``slot[token]``. Slot 0 is never allowed (padding, unknown ids).
    """

    def __init__(self, events: list[str]):
        durations = sorted({int(v) for n, v in map(split_event, events) if n == "Note_Duration"})
        self.duration_values = torch.tensor(durations, dtype=torch.long)  # [D]
        geometry = [bar_geometry(s) for s in TIME_SIGNATURES]
        self.bar_ticks = torch.tensor([g[0] for g in geometry])  # [S]
        self.bar_grids = torch.tensor([g[1] for g in geometry])  # [S]
        self.bar_units = torch.tensor([g[2] for g in geometry])  # [S]

        # Slot layout: never, Composer, Tempo, BOS, Bar, EOS, then one slot per signature, grid,
        # pitch and duration value, and per texture-control token.
        self.ts_slot = 6
        self.beat_slot = self.ts_slot + len(TIME_SIGNATURES)
        self.pitch_slot = self.beat_slot + MAX_GRIDS
        self.duration_slot = self.pitch_slot + _PITCH_SLOTS
        self.control_slot = self.duration_slot + len(durations)
        self.num_slots = self.control_slot + len(CONTROL_KINDS) * len(CONTROL_LEVELS)

        classes, values, slots = [], [], []
        for token in events:
            cls, value, slot = self._classify(token, durations)
            classes.append(cls)
            values.append(value)
            slots.append(slot)
        # One extra SKIP entry at the end: ids outside the vocabulary are mapped to it.
        self.token_class = torch.tensor(classes + [SKIP])
        self.token_value = torch.tensor(values + [0])
        self.token_slot = torch.tensor(slots + [0])
        self.vocab_size = len(events)
        # Slots no token maps to (a pitch outside the piano, a Beat an original dictionary lacks).
        self.slot_present = torch.zeros(self.num_slots, dtype=torch.bool)
        self.slot_present[self.token_slot[:-1]] = True
        self.slot_present[0] = False
        self.pad_id = events.index(PAD_TOKEN) if PAD_TOKEN in events else -1
        self._column_slots: torch.Tensor | None = None  # `column_slots`' last answer

    def _classify(self, token: str, durations: list[int]) -> tuple[int, int, int]:
        """(class, value, slot) of one event string; anything unexpected is SKIP (never allowed)."""
        fixed = {BOS_TOKEN: (BOS, 3), BAR_TOKEN: (BAR, 4), EOS_TOKEN: (EOS, 5)}
        if token in fixed:
            cls, slot = fixed[token]
            return cls, 0, slot
        name, value = split_event(token)
        if name == "Composer":
            return COMPOSER, 0, 1
        if name == "Tempo" and value.isdigit():
            return TEMPO, int(value), 2
        if name == "Time_Signature" and value in TIME_SIGNATURES:
            index = TIME_SIGNATURES.index(value)
            return TIME_SIGNATURE, index, self.ts_slot + index
        if name == "Beat" and value.isdigit() and int(value) < MAX_GRIDS:
            return BEAT, int(value), self.beat_slot + int(value)
        if name == "Note_Pitch" and value.isdigit() and PITCH_MIN <= int(value) <= PITCH_MAX:
            return PITCH, int(value), self.pitch_slot + int(value)
        if name == "Note_Duration" and value.isdigit():
            return DURATION, int(value), self.duration_slot + durations.index(int(value))
        if name in CONTROL_KINDS and value in CONTROL_LEVELS:
            kind = CONTROL_KINDS.index(name)
            return CONTROL, kind, self.control_slot + kind * len(CONTROL_LEVELS) + CONTROL_LEVELS.index(value)
        return SKIP, 0, 0

    def to(self, device: torch.device) -> _TokenTables:
        for name in ("duration_values", "bar_ticks", "bar_grids", "bar_units", "token_class", "token_value",
                     "token_slot", "slot_present"):
            setattr(self, name, getattr(self, name).to(device))
        return self

    def column_slots(self, vocab_size: int, device: torch.device) -> torch.Tensor:
        """``[V]`` slot of each column of the scores (built once per width and device); columns beyond the
        vocabulary get the never-slot."""
        slots = self._column_slots
        if slots is None or slots.numel() != vocab_size or slots.device != device:
            known = self.token_slot[: self.vocab_size].to(device)
            slots = torch.zeros(vocab_size, dtype=torch.long, device=device)
            n = min(vocab_size, known.numel())
            slots[:n] = known[:n]
            self._column_slots = slots
        return slots


def _moved(recent: torch.Tensor, value: torch.Tensor, where: torch.Tensor, rate: float = RECENT_RATE) -> torch.Tensor:
    """A moving measure ``recent`` ([B], NaN before any value) after ``value`` in the rows ``where``."""
    moved = torch.where(recent.isnan(), value, recent + rate * (value - recent))
    return torch.where(where, moved, recent)


class _RowState:
    """Where each row of the batch stands in its piece (all tensors ``[B]`` unless noted).

    Ticks are absolute, at 480 per quarter, counted from the first bar (the decoder's time line).
    """

    def __init__(self, batch_size: int, device: torch.device):
        def zeros() -> torch.Tensor:
            return torch.zeros(batch_size, dtype=torch.long, device=device)

        self.phase = zeros()  # class of the last meaningful token (_START before any)
        self.length = zeros()  # tokens that are not padding (for the per-row event budget)
        self.n_bars = zeros()
        self.bar_start = zeros()  # tick where the current bar starts
        self.bar_ticks = zeros()  # length of the current bar (0 before the first Time_Signature)
        self.bar_grids = zeros()
        self.unit = zeros() + 40  # duration unit of the current bar
        self.first_bar_ticks = zeros()
        self.tempo = zeros()  # the Tempo class (0 before the Tempo event)
        self.grid = zeros() - 1  # current Beat in the bar (-1: none yet)
        self.last_pitch = zeros() + _NO_PITCH  # last pitch on the current Beat
        self.pending_pitch = zeros()  # pitch waiting for its Note_Duration
        self.max_end = zeros()  # latest note end so far
        self.pitch_end = torch.zeros(batch_size, _PITCH_SLOTS, dtype=torch.long, device=device)  # [B, 128]
        self.controls_done = zeros()  # control tokens written in the current bar
        # texture steering: the current bar's pitch sum and sum of squares, notes and onsets, the current onset's notes, and moving
        # measures of the music before (NaN before any): mean pitch and mean squared pitch over notes, notes per onset and notes per
        # quarter over bars
        self.bar_pitch_sum, self.bar_pitch_squares, self.bar_notes, self.bar_onsets, self.onset_notes = (zeros() for _ in range(5))
        self.recent_pitch, self.recent_pitch_square, self.recent_polyphony, self.recent_density = (
            torch.full((batch_size,), float("nan"), device=device) for _ in range(4))
        # the moving share of notes a sixteenth or shorter, the share each row aims at (NaN: none), and the short notes
        # the piece has written beyond that share so far (negative: fewer)
        self.recent_short, self.short_target = (torch.full((batch_size,), float("nan"), device=device) for _ in range(2))
        self.short_surplus = torch.zeros(batch_size, device=device)
        # the section-scale moving mean pitch and share of notes at or above middle C, and the ranges each row keeps
        # them in ([B, 4]: pitch low, high, share low, high; NaN: none)
        self.section_pitch, self.section_high = (torch.full((batch_size,), float("nan"), device=device) for _ in range(2))
        self.register_range = torch.full((batch_size, 4), float("nan"), device=device)
        # [B, P, kinds] the texture plan: the level of each control in bar p (counted from 0), -1: none;
        # P = 0 without a plan (`_force_controls`)
        self.plan = torch.zeros(batch_size, 0, len(CONTROL_KINDS), dtype=torch.long, device=device)

    def advance(self, tokens: torch.Tensor, tables: _TokenTables) -> None:
        """Consume one token per row (``tokens``: ``[B]``), vectorised over the batch."""
        tokens = torch.where((tokens >= 0) & (tokens < tables.vocab_size), tokens, tables.vocab_size)
        cls = tables.token_class[tokens]  # [B]
        value = tables.token_value[tokens]  # [B]
        self.length += tokens != tables.pad_id

        is_bar, is_beat, is_ts = cls == BAR, cls == BEAT, cls == TIME_SIGNATURE
        is_pitch, is_duration = cls == PITCH, cls == DURATION
        # Each update below changes only the rows its mask selects; one that no row needs is skipped.
        if may_occur(is_bar):  # the new bar starts where the previous one ends; its length comes with Time_Signature
            self.bar_start = torch.where(is_bar, self.bar_start + self.bar_ticks, self.bar_start)
            self.n_bars += is_bar
            self.controls_done = torch.where(is_bar, 0, self.controls_done)
            ended = is_bar & (self.bar_notes > 0)  # a bar with notes ends: the moving measures take it in
            quarters = (self.bar_ticks.float() / TICKS_PER_BEAT).clamp(min=1e-6)
            self.recent_density = _moved(self.recent_density, self.bar_notes / quarters, ended)
            self.recent_polyphony = _moved(self.recent_polyphony, self.bar_notes / self.bar_onsets.clamp(min=1), ended)
            self.bar_pitch_sum, self.bar_pitch_squares, self.bar_notes, self.bar_onsets = (
                torch.where(is_bar, 0, value)
                for value in (self.bar_pitch_sum, self.bar_pitch_squares, self.bar_notes, self.bar_onsets))
        self.controls_done += cls == CONTROL
        if may_occur(is_ts):
            signature = value.clamp(max=len(TIME_SIGNATURES) - 1)
            self.bar_ticks = torch.where(is_ts, tables.bar_ticks[signature], self.bar_ticks)
            self.bar_grids = torch.where(is_ts, tables.bar_grids[signature], self.bar_grids)
            self.unit = torch.where(is_ts, tables.bar_units[signature], self.unit)
            self.first_bar_ticks = torch.where(is_ts & (self.n_bars == 1), self.bar_ticks, self.first_bar_ticks)
        if may_occur(cls == TEMPO):
            self.tempo = torch.where(cls == TEMPO, value, self.tempo)
        if may_occur(is_bar | is_beat | is_pitch):
            self.grid = torch.where(is_bar, -1, torch.where(is_beat, value, self.grid))
            self.last_pitch = torch.where(is_bar | is_beat, _NO_PITCH, torch.where(is_pitch, value, self.last_pitch))
            self.pending_pitch = torch.where(is_pitch, value, self.pending_pitch)
            self.bar_pitch_sum += torch.where(is_pitch, value, 0)
            self.bar_pitch_squares += torch.where(is_pitch, value * value, 0)
            self.bar_notes += is_pitch
            self.bar_onsets += is_beat
            self.onset_notes = torch.where(is_bar | is_beat, 0, self.onset_notes) + is_pitch
            self.recent_pitch = _moved(self.recent_pitch, value.float(), is_pitch)
            self.recent_pitch_square = _moved(self.recent_pitch_square, value.float().square(), is_pitch)
            self.section_pitch = _moved(self.section_pitch, value.float(), is_pitch, SECTION_RATE)
            self.section_high = _moved(self.section_high, (value >= MIDDLE_C).float(), is_pitch, SECTION_RATE)
        if may_occur(is_duration):  # the pending note ends at its Beat's tick plus the duration
            end = self.bar_start + self.grid.clamp(min=0) * TICKS_PER_GRID + value  # [B]
            self.max_end = torch.where(is_duration, torch.maximum(self.max_end, end), self.max_end)
            slot = self.pending_pitch.unsqueeze(1)  # [B, 1]
            previous_end = self.pitch_end.gather(1, slot).squeeze(1)  # [B]
            new_end = torch.where(is_duration, torch.maximum(previous_end, end), previous_end)
            self.pitch_end.scatter_(1, slot, new_end.unsqueeze(1))
            short = (value <= SHORT_NOTE_TICKS).float()  # [B]
            self.recent_short = _moved(self.recent_short, short, is_duration)
            self.short_surplus += torch.where(is_duration, (short - self.short_target).nan_to_num(0.0), 0.0)  # NaN: no target
        self.phase = torch.where((cls == SKIP) | (cls == CONTROL), self.phase, cls)

    def select(self, rows: torch.Tensor) -> _RowState:
        """The state of the rows ``rows`` (``[B']`` indices) only."""
        selected = copy.copy(self)
        for name, value in vars(self).items():
            setattr(selected, name, value[rows])
        return selected


def _check_plan(controls: torch.Tensor | None, tables: _TokenTables) -> torch.Tensor | None:
    """A texture plan as `_RowState.plan` holds it; `InvalidArgumentError` for a plan of the wrong shape or
    levels, or for a vocabulary without the control tokens."""
    if controls is None:
        return None
    plan = torch.as_tensor(controls, dtype=torch.long)
    if plan.dim() != 3 or plan.shape[-1] != len(CONTROL_KINDS) or plan.shape[1] == 0:
        raise InvalidArgumentError("controls", tuple(plan.shape), f"expected [rows, bars, {len(CONTROL_KINDS)}]")
    if ((plan < -1) | (plan >= len(CONTROL_LEVELS))).any():
        raise InvalidArgumentError("controls", "levels", f"each -1 or 0..{len(CONTROL_LEVELS) - 1}")
    if not tables.slot_present[tables.control_slot :].all():
        raise InvalidArgumentError("controls", "a texture plan", "the vocabulary has no texture-control tokens")
    return plan


def _check_short_shares(short_shares: torch.Tensor | None, plan: torch.Tensor | None) -> torch.Tensor | None:
    """Each row's target share of short notes as `_RowState.short_target` holds it; `InvalidArgumentError` for
    targets without a plan, of another number of rows, or outside 0..1."""
    if short_shares is None:
        return None
    targets = torch.as_tensor(short_shares, dtype=torch.float)
    if plan is None or targets.shape != plan.shape[:1]:
        raise InvalidArgumentError("short_shares", tuple(targets.shape), "expected one per row of the texture plan")
    if ((targets < 0) | (targets > 1)).any():
        raise InvalidArgumentError("short_shares", "values", "each a share in 0..1 (NaN: none)")
    return targets


def _check_registers(registers: torch.Tensor | None, plan: torch.Tensor | None) -> torch.Tensor | None:
    """Each row's register ranges as `_RowState.register_range` holds them; `InvalidArgumentError` for ranges
    without a plan, of another number of rows, or whose low end lies above the high one."""
    if registers is None:
        return None
    ranges = torch.as_tensor(registers, dtype=torch.float)
    if plan is None or ranges.shape != (plan.shape[0], 4):
        raise InvalidArgumentError("registers", tuple(ranges.shape), "expected [rows of the texture plan, 4]")
    if (ranges[:, 0] > ranges[:, 1]).any() or (ranges[:, 2] > ranges[:, 3]).any():
        raise InvalidArgumentError("registers", "ranges", "each (pitch low, pitch high, share low, share high)")
    return ranges


def _force_controls(
    s: _RowState, costs: torch.Tensor, bar: torch.Tensor, tables: _TokenTables
) -> tuple[torch.Tensor, torch.Tensor | None]:
    """``costs`` (``[B, num_slots]``) with the texture plan applied, and which rows it forces (``[B]``, ``None``:
    none): a row whose bar ``bar`` (``[B]``, from 0) has a planned control still to write after its
    Time_Signature may write only that token (the kinds in `CONTROL_KINDS` order); control tokens stay
    forbidden everywhere else. A plan shorter than the piece starts over."""
    planned = s.plan.shape[1]
    if planned == 0:
        return costs, None
    rows = torch.arange(costs.shape[0], device=costs.device)
    kind = s.controls_done.clamp(max=len(CONTROL_KINDS) - 1)  # [B]
    level = s.plan[rows, bar.clamp(min=0) % planned, kind]  # [B] -1: nothing planned
    due = (s.phase == TIME_SIGNATURE) & (s.controls_done < len(CONTROL_KINDS)) & (level >= 0) & (bar >= 0)
    if not may_occur(due):
        return costs, None
    slot = tables.control_slot + kind * len(CONTROL_LEVELS) + level.clamp(min=0)  # [B]
    onward = costs.amin(1) + (len(CONTROL_KINDS) - 1 - kind)  # the bar's cheapest way on, after the controls left
    forced = torch.full_like(costs, _INF)
    forced[rows, slot] = onward
    return torch.where(due.unsqueeze(1), forced, costs), due


class _GrammarMask(LogitsProcessor):
    """A processor that masks the scores of every token its ``allowed_mask`` forbids, and with a texture plan
    and ``_steering`` tilts them toward each bar's planned levels (`texture_steering`)."""

    _steering: TextureSteering
    _state: _RowState | None

    def allowed_mask(self, input_ids: torch.Tensor, vocab_size: int | None = None) -> torch.Tensor:
        raise NotImplementedError

    def _planned_bar(self, state: _RowState) -> torch.Tensor | None:
        """``[B]`` the bar of the texture plan each row is writing (-1: none yet); None without a plan."""
        raise NotImplementedError

    def __call__(self, input_ids: torch.LongTensor, scores: torch.FloatTensor) -> torch.FloatTensor:
        allowed = self.allowed_mask(input_ids, scores.shape[-1])  # [B, V] (brings the state up to input_ids)
        scores = scores.masked_fill(~allowed, float("-inf"))
        bar = self._planned_bar(self._state) if self._steering.strength else None
        if bar is not None:
            tilt = self._steering.tilt(self._state, bar, self._state.phase == DURATION, scores.shape[-1])  # [B, V]
            scores = scores + tilt.to(scores.dtype)
        return scores


class RemiGrammarLogitsProcessor(_GrammarMask):
    """Mask every token that would make a row an invalid, non-round-tripping REMI piece.

    Allowed at each step: ``Composer`` -> ``Tempo`` -> ``BOS`` -> ``Bar``; after ``Bar`` a
    ``Time_Signature``; then per bar ``{Beat {Note_Pitch Note_Duration}+}*`` with Beats strictly
    increasing and below the bar's grid count, then ``Bar`` or ``EOS``. Never ``PAD``, never a second
    Composer/Tempo/BOS, never an id outside the vocabulary. The extra rules that make the decoded MIDI
    re-encode to the same events are listed in the module docstring. After ``max_bars`` bars only EOS
    can end the last one. A row that has finished (EOS) keeps EOS allowed, so batched sampling never
    sees an all-masked row.

    Length targets: with ``bars`` a piece has exactly that many bars (EOS is masked before the last
    one, ``Bar`` after it, so the piece ends when that bar does); with ``duration`` it ends at the
    first bar line at or after that many seconds of music (from the row's ``Tempo`` class and each
    bar's signature): ``Bar`` is masked once the current bar reaches it, EOS before. ``time_signature``
    is the first bar's signature, and every bar's with ``fixed_time_signature``.

    Args:
        vocabulary_or_tokenizer: the event strings in id order (``config.event_vocabulary``,
            ``vocab.complete_vocabulary()``) or a tokenizer with an ``event_vocabulary`` attribute.
        max_bars: most bars a piece may have (SPEC §5: 128); ``None``: no limit.
        max_length: total length of the (padded) sequences at which ``generate`` stops; every row is
            steered to end with EOS by then. ``None``: no length budget.
        max_events: most events per piece, padding not counted (SPEC §5: 1200). ``None``: no limit.
        bars: exact number of bars (replaces ``max_bars``); ``None``: the model decides.
        duration: seconds of music after which the piece ends at the next bar line; ``None``: no target.
        time_signature: the first bar's signature (one of ``vocab.TIME_SIGNATURES``); ``None``: any.
        fixed_time_signature: every bar has ``time_signature``.
        controls: the texture plan, ``[B, P, kinds]`` levels (`texture_plan.TexturePlan`; -1: none) of bar
            ``p`` of each row's piece (counted from its first bar, the prompt's included; the plan starts
            over after P bars): after each bar's Time_Signature the grammar writes its planned control tokens.
            ``None``: no control tokens.
        short_shares: with ``controls``, the share of notes a sixteenth or shorter each row aims at, ``[B]``
            (NaN: none; `texture_plan.TexturePlan.short_shares`), which steering holds the row near.
        registers: with ``controls``, the register ranges each row's sections are kept in, ``[B, 4]``: mean pitch
            low and high, share of notes at or above middle C low and high (NaN: none;
            `texture_plan.TexturePlan.registers`); steering holds a moving measure of the last bars inside them.
        texture_steering: with ``controls``, how hard each bar is pulled into its planned levels while it is
            written (`texture_steering.TextureSteering`; 0: not at all, 1: its `STEERING_GAINS`).
        knobs: the controls of ``controls`` the caller fixed for every bar (``"density"``, ``"polyphony"``,
            ``"register"``), which steering holds harder (`texture_steering.KNOB_GAINS`).

    If a prompt leaves no valid continuation inside the budget, the budget is ignored for that row;
    if a prompt is not valid REMI at all, only EOS is allowed for that row.

    The last bar: where the length (a target, ``max_bars`` or the budget) masks ``Bar`` and allows EOS, EOS
    also gets the model's probability of ``Bar``. The model does not know the piece must end, so where it would
    close the bar and go on, the mask alone left it the bar's last grid steps: it piled notes there until they
    ran out (a chord of a dozen 32nd notes on the last sixteenth of a 16-bar piece; 4-6 notes on the last
    onset on average). With the transfer the piece ends where the model closes its last bar.

    Long pieces: the state is kept per row and can outlive one `generate` call. `update` brings it up to
    the end of a call's output, and `continue_from` tells the processor that the next call's input is a
    shortened window of those rows (as `longform` builds it): the state carries over unchanged.
    """

    def __init__(
        self,
        vocabulary_or_tokenizer: Sequence[str] | object,
        max_bars: int | None = 128,
        max_length: int | None = None,
        max_events: int | None = None,
        *,
        bars: int | None = None,
        duration: float | None = None,
        time_signature: str | None = None,
        fixed_time_signature: bool = False,
        controls: torch.Tensor | None = None,
        short_shares: torch.Tensor | None = None,
        registers: torch.Tensor | None = None,
        texture_steering: float = 0.0,
        knobs: Sequence[str] = (),
    ):
        if max_bars is not None:
            positive_int("max_bars", max_bars)
        if bars is not None:
            positive_int("bars", bars)
        if duration is not None:
            positive_float("duration", duration)
        if time_signature is not None and time_signature not in TIME_SIGNATURES:
            raise InvalidArgumentError("time_signature", time_signature, f"not one of {', '.join(TIME_SIGNATURES)}")
        if fixed_time_signature and time_signature is None:
            raise InvalidArgumentError("fixed_time_signature", True, "needs time_signature")
        events = _event_vocabulary(vocabulary_or_tokenizer)
        self.tables = _TokenTables(events)
        self._plan = _check_plan(controls, self.tables)
        self._short_shares = _check_short_shares(short_shares, self._plan)
        self._registers = _check_registers(registers, self._plan)
        self._steering = TextureSteering(events, texture_steering, knobs)
        self.max_bars = bars if bars is not None else max_bars
        self._bar_limit = _INF if self.max_bars is None else self.max_bars
        self.max_length = max_length
        self.max_events = max_events
        self.bars = bars
        self.duration = duration
        # Allowed signatures of the first bar and of the later ones ([S] bool).
        every = torch.ones(len(TIME_SIGNATURES), dtype=torch.bool)
        chosen = every if time_signature is None else torch.tensor([s == time_signature for s in TIME_SIGNATURES])
        self._first_signatures, self._later_signatures = chosen, chosen if fixed_time_signature else every
        # The longest bar a piece may still add: how many bars a duration target needs at least.
        self._longest_bar = int(self.tables.bar_ticks[self._later_signatures].max())
        self._eos_slot = 5
        self._bar_id, self._eos_id = events.index(BAR_TOKEN), events.index(EOS_TOKEN)
        self._state: _RowState | None = None
        self._seen: torch.Tensor | None = None  # the input_ids of the previous call

    @property
    def planned(self) -> bool:
        """Whether the rows are written under a texture plan (``controls``)."""
        return self._plan is not None

    def __call__(self, input_ids: torch.LongTensor, scores: torch.FloatTensor) -> torch.FloatTensor:
        masked = super().__call__(input_ids, scores)
        bar, eos = masked[:, self._bar_id], masked[:, self._eos_id]  # [B] each
        ending = bar.isneginf() & ~eos.isneginf()  # [B] the length ends the piece where the bar would close
        closing = torch.logaddexp(eos, scores[:, self._bar_id])  # [B] EOS with the model's Bar score added
        masked[:, self._eos_id] = torch.where(ending, closing, eos)
        return masked

    # --- state tracking ---------------------------------------------------------------------

    def update(self, input_ids: torch.Tensor) -> None:
        """Bring the state up to the end of ``input_ids`` (``[B, L]``), e.g. the output of a `generate`
        call whose last token the processor has not seen yet."""
        self._sync(input_ids)

    def continue_from(self, input_ids: torch.Tensor, rows: torch.Tensor | None = None) -> None:
        """Carry the state over: the next call's input is ``input_ids``, a new (shorter) window of the
        rows seen so far that ends where they end (``rows``: which of them, in this order; default all).

        Call `update` with everything generated first: the state is not re-read from ``input_ids``, so
        the piece's bar count, note ends and budgets continue across windows.
        """
        if self._state is None:
            raise InvalidArgumentError("input_ids", "a window", "continue_from needs update() with the whole rows first")
        if rows is not None:
            self._state = self._state.select(rows.to(self._state.phase.device))
        if self._state.phase.shape[0] != input_ids.shape[0]:
            raise InvalidArgumentError("input_ids", f"{input_ids.shape[0]} rows", f"{self._state.phase.shape[0]} are tracked")
        self._seen = input_ids

    def _sync(self, input_ids: torch.Tensor) -> _RowState:
        """The state after ``input_ids``: unchanged for the input seen last, one incremental step when
        it adds one column, else a full parse."""
        seen = self._seen
        comparable = (
            self._state is not None
            and seen is not None
            and seen.shape[0] == input_ids.shape[0]
            and seen.device == input_ids.device
        )
        if comparable and seen.shape[1] == input_ids.shape[1] and torch.equal(seen, input_ids):
            pass
        elif comparable and seen.shape[1] + 1 == input_ids.shape[1] and torch.equal(seen, input_ids[:, :-1]):
            self._state.advance(input_ids[:, -1], self.tables)
        else:
            self.tables.to(input_ids.device)
            self._state = _RowState(input_ids.shape[0], input_ids.device)
            if self._plan is not None:
                if self._plan.shape[0] != input_ids.shape[0]:
                    raise InvalidArgumentError("controls", f"{self._plan.shape[0]} rows", f"the input has {input_ids.shape[0]}")
                self._state.plan = self._plan.to(input_ids.device)
            if self._short_shares is not None:
                self._state.short_target = self._short_shares.to(input_ids.device)
            if self._registers is not None:
                # the section measures start at the middle of the ranges, as if a typical section came before:
                # from the first note alone, a piece opening in the treble read as all treble and was pushed down
                ranges = self._state.register_range = self._registers.to(input_ids.device)  # [B, 4]
                self._state.section_pitch = ranges[:, :2].mean(1)
                self._state.section_high = ranges[:, 2:].mean(1)
            for column in input_ids.unbind(1):
                self._state.advance(column, self.tables)
        self._seen = input_ids
        return self._state

    # --- costs of candidate tokens ----------------------------------------------------------

    def _bars_to_target(self, s: _RowState, bar_end, n_bars) -> torch.Tensor | None:
        """Bars a piece still needs after its bar number ``n_bars`` ending at tick ``bar_end`` to meet the
        length target (0: this bar meets it; the piece must end with it); ``None`` without a target.
        Arguments broadcast with ``[B]`` (or ``[B, 1]``) state tensors."""
        if self.bars is not None:
            return (self.bars - n_bars).clamp(min=0)
        if self.duration is not None:
            tempo = s.tempo.view(-1, *([1] * (bar_end.dim() - 1)))  # [B] or [B, 1]
            target = duration_ticks(self.duration, tempo)
            missing = (target - bar_end).clamp(min=0)
            return (missing + self._longest_bar - 1) // self._longest_bar  # at least this many more bars
        return None

    def _finish_cost(self, s: _RowState, end, bar_end, n_bars, first_bar_ticks) -> torch.Tensor:
        """Tokens needed to end the piece once the current bar's content is complete.

        Without a length target: 1 (EOS) when every note has ended before the bar's end and the first
        bar will not read back as a pickup; else 3 (Bar, a Time_Signature long enough, EOS) when one
        more bar is allowed; else impossible. With one: 1 + 2 per bar still needed (EOS only when the
        target is met by this bar, and then only if the piece can end there). Arguments broadcast.
        """
        first_bar_ok = (n_bars >= 2) | (first_bar_ticks >= FULL_BAR_TICKS)
        can_end = (end < bar_end) & first_bar_ok
        missing = self._bars_to_target(s, bar_end, n_bars)
        if missing is None:
            return torch.where(can_end, 1, torch.where(n_bars < self._bar_limit, 3, _INF))
        within = n_bars + missing <= self._bar_limit
        return torch.where(missing == 0, torch.where(can_end, 1, _INF), torch.where(within, 1 + 2 * missing, _INF))

    def _signature_costs(self, s: _RowState, n_bars, bar_start) -> torch.Tensor:
        """``[B, S]`` cost of finishing after each Time_Signature of the bar number ``n_bars`` starting
        at ``bar_start`` (``_INF`` where that signature is not allowed)."""
        ticks = self.tables.bar_ticks.unsqueeze(0)  # [1, S]
        n_bars, bar_start = n_bars.unsqueeze(1), bar_start.unsqueeze(1)  # [B, 1]
        first_bar_ticks = torch.where(n_bars == 1, ticks, s.first_bar_ticks.unsqueeze(1))  # [B, S]
        # Pickup rule: a short first bar needs a second bar that is not longer.
        pickup = (n_bars == 2) & (first_bar_ticks < FULL_BAR_TICKS) & (ticks > first_bar_ticks)  # [B, S]
        chosen = torch.where(n_bars == 1, self._first_signatures.to(ticks.device), self._later_signatures.to(ticks.device))
        cost = self._finish_cost(s, s.max_end.unsqueeze(1), bar_start + ticks, n_bars, first_bar_ticks)
        return torch.where(pickup | ~chosen, _INF, cost)

    def _slot_costs(self, s: _RowState) -> torch.Tensor:
        """``[B, num_slots]``: for each slot, the tokens needed to finish the piece after emitting it
        (``_INF`` where the token is not allowed at all)."""
        t = self.tables
        phase = s.phase
        in_bar = (phase == TIME_SIGNATURE) | (phase == DURATION)  # a bar's content is complete
        bar_end = s.bar_start + s.bar_ticks
        tick = s.bar_start + s.grid.clamp(min=0) * TICKS_PER_GRID  # [B] tick of the current Beat

        def only(condition: torch.Tensor, cost) -> torch.Tensor:
            return torch.where(condition, cost, _INF)

        def group(condition: torch.Tensor, width: int, costs: Callable[[], torch.Tensor]) -> torch.Tensor:
            """``[B, width]`` costs of a group of slots that only rows in ``condition`` ``[B]`` may emit; not
            computed when no row may (`may_occur`): after a Note_Pitch, say, only the durations are."""
            if not may_occur(condition):
                return torch.full((phase.shape[0], width), _INF, dtype=torch.long, device=phase.device)
            return only(condition.unsqueeze(1), costs())

        composer = only(phase == _START, _COST_AFTER_COMPOSER)
        tempo = only(phase == COMPOSER, _COST_AFTER_TEMPO)
        bos = only(phase == TEMPO, _COST_AFTER_BOS)
        bar_allowed = (in_bar | (phase == BOS)) & (s.n_bars < self._bar_limit)
        missing = self._bars_to_target(s, bar_end, s.n_bars)
        if missing is not None:  # the bar that meets the length target is the last one
            bar_allowed &= (missing > 0) | (phase == BOS)

        def next_bar() -> torch.Tensor:  # Bar, then the cheapest signature of the next bar [B, 1]
            return 1 + self._signature_costs(s, s.n_bars + 1, bar_end).amin(1, keepdim=True)

        bar = group(bar_allowed, 1, next_bar).squeeze(1)  # [B]
        can_end = in_bar & (self._finish_cost(s, s.max_end, bar_end, s.n_bars, s.first_bar_ticks) == 1)
        eos = only(can_end | (phase == EOS), 0)
        num_signatures = len(TIME_SIGNATURES)
        signature = group(phase == BAR, num_signatures, lambda: self._signature_costs(s, s.n_bars, s.bar_start))

        def beat_costs() -> torch.Tensor:
            """Beat g: later than the current one, inside the bar, with some pitch free to start there;
            cheapest completion is one note of the shortest duration, then finishing the bar. [B, G]"""
            grids = torch.arange(MAX_GRIDS, device=phase.device)  # [G]
            beat_tick = s.bar_start.unsqueeze(1) + grids * TICKS_PER_GRID  # [B, G]
            piano = s.pitch_end[:, PITCH_MIN : PITCH_MAX + 1]  # [B, 88]
            free = (piano.unsqueeze(1) <= beat_tick.unsqueeze(2)).any(2)  # [B, G]
            beat_ok = (grids > s.grid.unsqueeze(1)) & (grids < s.bar_grids.unsqueeze(1)) & free
            shortest_end = torch.maximum(s.max_end.unsqueeze(1), beat_tick + s.unit.unsqueeze(1))  # [B, G]
            cost = 2 + self._finish_cost(s, shortest_end, bar_end.unsqueeze(1), s.n_bars.unsqueeze(1),
                                         s.first_bar_ticks.unsqueeze(1))
            return only(beat_ok, cost)

        def pitch_costs() -> torch.Tensor:
            """Note_Pitch p on the current Beat: descending, and not while the same pitch still sounds. [B, P]"""
            pitches = torch.arange(_PITCH_SLOTS, device=phase.device)  # [P]
            pitch_ok = (pitches < s.last_pitch.unsqueeze(1)) & (s.pitch_end <= tick.unsqueeze(1))
            cost = 1 + self._finish_cost(s, torch.maximum(s.max_end, tick + s.unit), bar_end, s.n_bars,
                                         s.first_bar_ticks)  # [B]
            return only(pitch_ok, cost.unsqueeze(1))

        def duration_costs() -> torch.Tensor:
            """Note_Duration d: a multiple of the bar's unit, at most one bar. [B, D]"""
            d = t.duration_values.unsqueeze(0)  # [1, D]
            duration_ok = (d % s.unit.unsqueeze(1) == 0) & (d <= s.bar_ticks.unsqueeze(1))
            note_end = torch.maximum(s.max_end.unsqueeze(1), tick.unsqueeze(1) + d)  # [B, D]
            return only(duration_ok, self._finish_cost(s, note_end, bar_end.unsqueeze(1), s.n_bars.unsqueeze(1),
                                                       s.first_bar_ticks.unsqueeze(1)))

        beat = group(in_bar, MAX_GRIDS, beat_costs)
        pitch = group((phase == BEAT) | (phase == DURATION), _PITCH_SLOTS, pitch_costs)
        duration = group(phase == PITCH, len(t.duration_values), duration_costs)

        never = torch.full_like(phase, _INF)
        columns = [never, composer, tempo, bos, bar, eos]
        controls = torch.full((phase.shape[0], t.num_slots - t.control_slot), _INF, dtype=torch.long, device=phase.device)
        costs = torch.cat([torch.stack(columns, 1), signature, beat, pitch, duration, controls], 1)  # [B, num_slots]
        return _force_controls(s, costs, s.n_bars - 1, t)[0]

    def _budget(self, s: _RowState, length: int) -> torch.Tensor | None:
        """``[B]`` tokens each row may still emit, including this one (``None``: unlimited)."""
        limits = []
        if self.max_length is not None:
            limits.append(torch.full_like(s.length, self.max_length - length))
        if self.max_events is not None:
            limits.append(self.max_events - s.length)
        return torch.stack(limits).amin(0) if limits else None

    # --- the processor ----------------------------------------------------------------------

    def _planned_bar(self, state: _RowState) -> torch.Tensor | None:
        return None if self._plan is None else state.n_bars - 1  # the plan counts the piece's bars from its first

    def allowed_mask(self, input_ids: torch.Tensor, vocab_size: int | None = None) -> torch.Tensor:
        """``[B, V]`` bool: which tokens may follow each row of ``input_ids`` (``[B, L]``)."""
        state = self._sync(input_ids)
        costs = self._slot_costs(state)  # [B, K]
        valid = (costs < _INF) & self.tables.slot_present
        budget = self._budget(state, input_ids.shape[1])
        allowed = valid if budget is None else valid & (costs <= (budget - 1).unsqueeze(1))
        # Rows with nothing inside the budget fall back to the grammar alone, then to EOS.
        allowed = torch.where(allowed.any(1, keepdim=True), allowed, valid)
        stuck = ~allowed.any(1)
        allowed[:, self._eos_slot] |= stuck
        return allowed[:, self.tables.column_slots(vocab_size or self.tables.vocab_size, input_ids.device)]


# --- bar infilling: the rules for a span written after the rest of the piece -----------------------------


class InfillGrammarLogitsProcessor(_GrammarMask):
    """Mask every token that would make a rewritten span of bars invalid in its piece (bar infilling,
    ``g2m_hf/infill.py``).

    The model writes the span after ``Infill_Start``; this processor allows exactly ``len(signatures)``
    bars, bar ``j`` in ``signatures[j]``, with the rules of `RemiGrammarLogitsProcessor` inside them, and
    then ``Infill_End``. It reads the piece around the gap so that the spliced piece decodes to MIDI and
    re-encodes to the same events: notes still sounding from ``before`` keep their pitches busy at the
    span's start; a span note may not outlast the next onset of its pitch in ``after`` (MIDI would merge
    the two) nor the piece's last bar. The state is that of the whole piece, whatever context the model
    reads.

    Args:
        vocabulary_or_tokenizer: the event strings in id order (with the `vocab.INFILL_TOKENS`) or a tokenizer.
        before: ids of the piece up to the span: its head (Composer, Tempo, BOS) and whole bars.
        signatures: the time signature of each bar of the span.
        after: ids of the bars after the span (an EOS is ignored).
        max_length: total length of the sequences at which ``generate`` stops (prompt included); every row
            is steered to end the span by then. ``None``: no length budget.
        controls: the texture plan of the span's bars, ``[1, len(signatures), kinds]`` levels (-1: none), as
            `RemiGrammarLogitsProcessor` takes it; the same for every row. ``None``: no control tokens.
        texture_steering: with ``controls``, how hard each new bar is pulled into its planned levels, as in
            `RemiGrammarLogitsProcessor` (the bars before the gap count as the music before).
        knobs: the controls the caller fixed, as in `RemiGrammarLogitsProcessor`.

    Rows may hold any prompt that ends with ``Infill_Start`` (left-padded); what comes after their last
    ``Infill_Start`` is the span. A row that has written ``Infill_End`` keeps it allowed.
    """

    def __init__(
        self,
        vocabulary_or_tokenizer: Sequence[str] | object,
        before: Sequence[int],
        signatures: Sequence[str],
        after: Sequence[int],
        max_length: int | None = None,
        controls: torch.Tensor | None = None,
        texture_steering: float = 0.0,
        knobs: Sequence[str] = (),
    ):
        events = _event_vocabulary(vocabulary_or_tokenizer)
        missing = [token for token in INFILL_TOKENS if token not in events]
        if missing:
            raise InvalidArgumentError("vocabulary_or_tokenizer", f"missing {', '.join(missing)}", "no infill tokens")
        if not signatures or any(s not in TIME_SIGNATURES for s in signatures):
            raise InvalidArgumentError("signatures", list(signatures), f"one or more of {', '.join(TIME_SIGNATURES)}")
        self.tables = _TokenTables(events)
        self.max_length = max_length
        self.start_id, self.end_id = events.index(INFILL_START_TOKEN), events.index(INFILL_END_TOKEN)
        self._signatures = torch.tensor([TIME_SIGNATURES.index(s) for s in signatures])  # [K]
        self.span_bars = len(signatures)

        start = _RowState(1, torch.device("cpu"))  # the piece where the span starts
        for token in before:
            start.advance(torch.tensor([int(token)]), self.tables)
        plan = _check_plan(controls, self.tables)
        if plan is not None:
            start.plan = plan[:1]
        self._start = start
        self._steering = TextureSteering(events, texture_steering, knobs)
        span_ticks = int(self.tables.bar_ticks[self._signatures].sum())
        after_start = int(start.bar_start + start.bar_ticks) + span_ticks
        # A pitch's deadline: its first onset after the span; the piece's end: the end of its last bar.
        self._deadline = torch.full((_PITCH_SLOTS,), _INF, dtype=torch.long)
        bar_start, ticks, grid = after_start, 0, 0
        for token in after:
            cls, value = int(self.tables.token_class[token]), int(self.tables.token_value[token])
            if cls == BAR:
                bar_start, grid = bar_start + ticks, 0
            elif cls == TIME_SIGNATURE:
                ticks = int(self.tables.bar_ticks[value])
            elif cls == BEAT:
                grid = value
            elif cls == PITCH:
                onset = bar_start + grid * TICKS_PER_GRID
                self._deadline[value] = min(int(self._deadline[value]), onset)
        self._piece_end = bar_start + ticks
        self._state: _RowState | None = None
        self._seen: torch.Tensor | None = None
        self._done: torch.Tensor | None = None  # [B] rows that wrote Infill_End

    def _sync(self, input_ids: torch.Tensor) -> _RowState:
        """The state after ``input_ids``: one incremental step when it adds one column to the input seen
        last, else parsed again from each row's last ``Infill_Start``."""
        seen = self._seen
        if seen is not None and seen.shape[1] + 1 == input_ids.shape[1] and torch.equal(seen, input_ids[:, :-1]):
            self._step(input_ids[:, -1])
        elif seen is None or not torch.equal(seen, input_ids):
            batch, length = input_ids.shape
            self.tables.to(input_ids.device)
            self._state = self._start.select(torch.zeros(batch, dtype=torch.long))
            for name, value in vars(self._state).items():
                setattr(self._state, name, value.to(input_ids.device))
            self._done = torch.zeros(batch, dtype=torch.bool, device=input_ids.device)
            columns = torch.arange(length, device=input_ids.device)
            opened = torch.where(input_ids == self.start_id, columns, -1).amax(1)  # [B] last Infill_Start
            pad = torch.full((batch,), self.tables.pad_id, dtype=torch.long, device=input_ids.device)
            for column in range(int(opened.clamp(min=0).min()) + 1, length):
                self._step(torch.where(opened < column, input_ids[:, column], pad))
        self._seen = input_ids
        return self._state

    def _step(self, tokens: torch.Tensor) -> None:
        self._state.advance(tokens, self.tables)
        self._done |= tokens == self.end_id

    def _written(self, state: _RowState) -> torch.Tensor:
        """``[B]`` bars of the span opened so far."""
        return state.n_bars - int(self._start.n_bars)

    def _planned_bar(self, state: _RowState) -> torch.Tensor | None:
        return self._written(state) - 1 if self._start.plan.shape[1] else None  # the plan counts the span's bars

    def allowed_mask(self, input_ids: torch.Tensor, vocab_size: int | None = None) -> torch.Tensor:
        """``[B, V]`` bool: which tokens may follow each row of ``input_ids`` (``[B, L]``)."""
        s = self._sync(input_ids)
        t = self.tables
        device = input_ids.device
        deadline, signatures = self._deadline.to(device), self._signatures.to(device)
        written = self._written(s)  # [B]
        phase = s.phase
        in_bar = (written > 0) & ((phase == TIME_SIGNATURE) | (phase == DURATION)) & ~self._done
        bars_left = self.span_bars - written  # bars not opened yet
        tick = s.bar_start + s.grid.clamp(min=0) * TICKS_PER_GRID  # [B] the current Beat's tick

        def sounding_ok(onset: torch.Tensor, pitch_end: torch.Tensor, unit: torch.Tensor) -> torch.Tensor:
            """A note of each pitch may start at ``onset`` and last one ``unit``: free, ending before the
            pitch's next onset after the span and before the piece's end. Shapes broadcast ([..., 128])."""
            end = onset + unit
            return (pitch_end <= onset) & (end <= deadline) & (end < self._piece_end)

        # cost: tokens still needed to close the span once the token is written (Bar, TS per bar left, End)
        close = 2 * bars_left + 1  # [B] from inside a bar
        costs = torch.full((input_ids.shape[0], t.num_slots), _INF, dtype=torch.long, device=device)
        opening = (written == 0) & ~self._done
        costs[:, 4] = torch.where(opening | (in_bar & (bars_left > 0)), 1 + 2 * (bars_left - 1) + 1, _INF)  # Bar
        signature = signatures[(written - 1).clamp(0, self.span_bars - 1)]  # [B] this bar's signature
        rows = torch.arange(input_ids.shape[0], device=device)
        costs[rows, t.ts_slot + signature] = torch.where((phase == BAR) & (written > 0), close, _INF)

        grids = torch.arange(MAX_GRIDS, device=device)  # [G]
        beat_tick = s.bar_start.unsqueeze(1) + grids * TICKS_PER_GRID  # [B, G]
        free = sounding_ok(beat_tick.unsqueeze(2), s.pitch_end.unsqueeze(1), s.unit.view(-1, 1, 1)).any(2)  # [B, G]
        beat_ok = in_bar.unsqueeze(1) & (grids > s.grid.unsqueeze(1)) & (grids < s.bar_grids.unsqueeze(1)) & free
        costs[:, t.beat_slot : t.pitch_slot] = torch.where(beat_ok, (2 + close).unsqueeze(1), _INF)

        pitches = torch.arange(_PITCH_SLOTS, device=device)
        on_beat = ((phase == BEAT) | (phase == DURATION)) & (written > 0) & ~self._done
        pitch_ok = on_beat.unsqueeze(1) & (pitches < s.last_pitch.unsqueeze(1))
        pitch_ok &= sounding_ok(tick.unsqueeze(1), s.pitch_end, s.unit.unsqueeze(1))  # [B, P]
        costs[:, t.pitch_slot : t.duration_slot] = torch.where(pitch_ok, (1 + close).unsqueeze(1), _INF)

        d = t.duration_values.unsqueeze(0)  # [1, D]
        note_end = tick.unsqueeze(1) + d  # [B, D]
        pending_deadline = deadline[s.pending_pitch].unsqueeze(1)  # [B, 1]
        duration_ok = ((phase == PITCH) & ~self._done).unsqueeze(1) & (d % s.unit.unsqueeze(1) == 0)
        duration_ok &= (d <= s.bar_ticks.unsqueeze(1)) & (note_end <= pending_deadline) & (note_end < self._piece_end)
        costs[:, t.duration_slot : t.control_slot] = torch.where(duration_ok, close.unsqueeze(1), _INF)
        costs, forced = _force_controls(s, costs, torch.where(written > 0, written - 1, -1), t)

        valid = (costs < _INF) & t.slot_present
        end_ok = (in_bar & (bars_left == 0)) | self._done  # [B]
        if forced is not None:  # a bar's planned controls come first
            end_ok &= ~forced
        if self.max_length is not None:
            budget = self.max_length - input_ids.shape[1]  # tokens that may still come, this one included
            fits = valid & (costs <= budget - 1)
            valid = torch.where(fits.any(1, keepdim=True) | end_ok.unsqueeze(1), fits, valid)
        allowed = valid[:, t.column_slots(vocab_size or t.vocab_size, device)]  # [B, V]
        allowed[:, self.end_id] = end_ok
        return allowed


# --- what G2MForCausalLM.generate hands to GenerationMixin.generate -----------------------------


def _setting(name: str, kwargs: dict, configs: Sequence[GenerationConfig | None]) -> Any:
    """A generation setting as `generate` will resolve it: call argument, then the configs in order."""
    if kwargs.get(name) is not None:
        return kwargs[name]
    for config in configs:
        if config is not None and getattr(config, name, None) is not None:
            return getattr(config, name)
    return None


def _prompt_length(inputs: torch.Tensor | None, kwargs: dict) -> int:
    """Length of the prompt `generate` will start from (it starts from one BOS when given none)."""
    for prompt in (inputs, kwargs.get("input_ids"), kwargs.get("inputs_embeds")):
        if prompt is not None:
            return prompt.shape[1]
    return 1


def remi_generate_arguments(
    model: Any,
    inputs: torch.Tensor | None,
    generation_config: GenerationConfig | None,
    logits_processor: LogitsProcessorList | None,
    kwargs: dict,
    remi_grammar: bool,
    max_bars: int,
    max_events: int | None,
    texture: dict | None = None,
) -> tuple[GenerationConfig | None, LogitsProcessorList, dict]:
    """Arguments for `GenerationMixin.generate`: SPEC §5 defaults filled in, the grammar appended, and
    (for a float32 model, unless the caller chose a cache) a `PreallocatedCache`.

    A SPEC default applies to a setting only when the call, the given ``generation_config`` and
    ``model.generation_config`` all leave it unset (``max_length`` also yields to ``max_new_tokens``).
    The grammar comes after the caller's processors and before temperature / top-p, so nucleus
    sampling works on the valid tokens only. Its length budget is the ``max_length`` / ``max_new_tokens``
    that `generate` will stop at. ``texture``: the grammar's texture-plan arguments
    (`texture_plan.TexturePlan.grammar_arguments`), if any.
    """
    kwargs = dict(kwargs)
    if generation_config is not None:
        generation_config = copy.deepcopy(generation_config)
    configs = (generation_config, model.generation_config)
    sampling = _setting("do_sample", kwargs, configs) in (None, True)
    for name, value in {**SPEC_GENERATION_DEFAULTS, "max_length": SPEC_MAX_LENGTH}.items():
        if _setting(name, kwargs, configs) is not None:
            continue
        if name == "max_length" and _setting("max_new_tokens", kwargs, configs) is not None:
            continue
        if name in _SAMPLING_SETTINGS and not sampling:  # greedy decoding asked for: no warper settings
            continue
        if generation_config is None:
            kwargs[name] = value
        else:  # a call with a generation config and loose settings too would make transformers warn
            setattr(generation_config, name, value)

    # In-place appends pay off in float32; reduced-precision matmuls on CPU are much slower on the
    # cache's strided views than on the contiguous tensors torch.cat makes (see kv_cache.py).
    caching = _setting("use_cache", kwargs, configs) is not False and model.dtype == torch.float32
    chosen = kwargs.get("cache") is not None or kwargs.get("past_key_values") is not None
    if caching and not chosen and _setting("cache_implementation", kwargs, configs) is None:
        kwargs["cache"] = PreallocatedCache()

    processors = LogitsProcessorList(logits_processor or [])
    vocabulary = getattr(model.config, "event_vocabulary", None)
    if remi_grammar and not vocabulary:
        logger.warning_once("config.event_vocabulary is not set: generating without the REMI grammar")
    elif remi_grammar:
        max_new_tokens = _setting("max_new_tokens", kwargs, configs)
        if max_new_tokens is not None:
            max_length = _prompt_length(inputs, kwargs) + max_new_tokens
        else:
            max_length = _setting("max_length", kwargs, configs)
        processors.append(
            RemiGrammarLogitsProcessor(vocabulary, max_bars=max_bars, max_length=max_length, max_events=max_events,
                                       **(texture or {}))
        )
    return generation_config, processors, kwargs


__all__ = [
    "SPEC_GENERATION_DEFAULTS",
    "SPEC_MAX_LENGTH",
    "InfillGrammarLogitsProcessor",
    "RemiGrammarLogitsProcessor",
    "duration_ticks",
    "remi_generate_arguments",
]
