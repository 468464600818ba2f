"""The paper's objective measures of a piece (SPEC §7), computed on REMI events.

* ``H`` / ``H1`` -- pitch-class histogram entropy (bits) over windows of 4 bars / 1 bar.
* ``GS`` -- grooving pattern similarity: how alike the bars' onset patterns are (0..1).
* ``SI_short`` / ``SI_mid`` / ``SI_long`` -- structureness indicator: the maximum fitness of
  any repeated segment lasting 3-8 s, 8-15 s or 15 s up to the whole piece (0..1).

All follow the MusDr toolkit (Wu & Yang, "The Jazz Transformer on the Front Line", ISMIR 2020)
that the paper uses. MusDr computes SI on audio synthesised from the piece; here the chroma
comes straight from the notes (a symbolic piano roll), timed by the piece's tempo class and
bar lengths, so no synthesiser is needed and the result is deterministic. The rest of the
SI pipeline (smoothing, transposition- and tempo-invariant self-similarity, thresholding,
fitness scape plot) reproduces MusDr's parameters and gives MusDr's values for the same
chroma; the scape plot is vectorised over all segment starts (MusDr's Python version loops
over every cell of every segment: minutes to hours per piece).

Every metric takes the event list of one piece (``list[str]``, as written by
``g2m_hf.remi.midi_to_events``) or an already parsed :class:`PieceNotes`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Sequence

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from .vocab import BAR_TOKEN, EOS_TOKEN, MAX_GRIDS, TICKS_PER_BEAT, TICKS_PER_GRID, bar_ticks, split_event

METRIC_NAMES: tuple[str, ...] = ("H", "H1", "GS", "SI_short", "SI_mid", "SI_long")
"""Keys of :func:`compute_metrics`, in report order."""

SI_RANGES: dict[str, tuple[float, float | None]] = {
    "SI_short": (3.0, 8.0),
    "SI_mid": (8.0, 15.0),
    "SI_long": (15.0, None),  # None: up to the whole piece
}
"""Segment-length ranges in seconds of the three structureness indicators."""

DEFAULT_TEMPO = 120
"""Tempo (BPM) assumed when a piece has no Tempo event (the original's default class)."""

# MusDr's self-similarity parameters (mueller_audio_tools / run_python_scapeplot.py).
CHROMA_RATE = 10.0
"""Frames per second of the raw chroma (MusDr: hop of 0.1 s)."""
SMOOTH_FRAMES = 21
"""Boxcar smoothing of the raw chroma, in raw frames (about 2 s)."""
DOWNSAMPLE = 5
"""Raw frames per SSM frame: the SSM is sampled at CHROMA_RATE / DOWNSAMPLE = 2 Hz."""
SSM_RATE = CHROMA_RATE / DOWNSAMPLE  # 2 Hz, MusDr's rate for the SSM and the scape plot
PATH_SMOOTH_FRAMES = 16
"""Length of the diagonal (path-enhancing) filter over the SSM, in SSM frames (8 s)."""
TEMPO_RATIOS = np.exp(np.linspace(np.log(0.5), np.log(2.0), 7))
"""Relative tempi the diagonal filter follows, so repeats played slower or faster still match."""
THRESHOLD_KEEP = 0.25
"""Fraction of the highest SSM values kept; the rest become PENALTY."""
PENALTY = -2.0
"""Similarity given to cells below the threshold (penalises paths through unrelated music)."""

_EPS = 1e-16  # MusDr's guard against division by zero in the fitness measure


# --- reading events ------------------------------------------------------------------------


@dataclass(frozen=True)
class PieceNotes:
    """The notes of a REMI piece, one array entry per ``Note_Pitch`` event.

    Attributes:
        tempo: the piece's tempo class in BPM (``Tempo_<t>``).
        bar_starts: start tick of every bar, shape ``[n_bars]``.
        bar_ticks: length of every bar in ticks (from its time signature), shape ``[n_bars]``.
        bar: bar index of each note, shape ``[n_notes]``.
        grid: Beat position (0..47) of each note within its bar.
        pitch: MIDI pitch of each note.
        start: absolute start tick of each note (480 ticks per quarter).
        duration: duration in ticks (one Beat step when the event has no ``Note_Duration``).
    """

    tempo: int
    bar_starts: np.ndarray
    bar_ticks: np.ndarray
    bar: np.ndarray
    grid: np.ndarray
    pitch: np.ndarray
    start: np.ndarray
    duration: np.ndarray

    @property
    def n_bars(self) -> int:
        return len(self.bar_starts)

    @property
    def seconds_per_tick(self) -> float:
        return 60.0 / (self.tempo * TICKS_PER_BEAT)

    @property
    def seconds(self) -> float:
        """Length of the piece in seconds, up to the end of its last note."""
        return float((self.start + self.duration).max() * self.seconds_per_tick) if len(self.start) else 0.0

    def bars(self, first: int, count: int) -> PieceNotes:
        """The notes of bars ``first .. first + count - 1`` (fewer at the end), bars counted from 0 again."""
        inside = (self.bar >= first) & (self.bar < first + count)
        return PieceNotes(
            self.tempo, self.bar_starts[first : first + count], self.bar_ticks[first : first + count],
            self.bar[inside] - first, self.grid[inside], self.pitch[inside], self.start[inside], self.duration[inside],
        )  # fmt: skip

    @classmethod
    def from_events(cls, events: Sequence[str]) -> PieceNotes:
        """Parse a REMI event list the way the original decoder places notes (SPEC §1).

        Lenient about generated sequences: events before the first bar are ignored except
        ``Tempo``, a note before any Beat of its bar sits on the bar's first position, a bar
        without a readable signature keeps the previous one (4/4 at first), and ``EOS`` ends
        the piece. A last bar without notes is left out, as MusDr drops a piece's closing
        ``Bar`` event (the converter often ends a file with an empty bar).
        """
        tempo = DEFAULT_TEMPO
        bar_starts: list[int] = []
        bar_ticks: list[int] = []
        notes: list[list[int]] = []  # [bar, grid, pitch, start, duration]
        grid, awaiting_duration = 0, False
        for token in events:
            if token == EOS_TOKEN:
                break
            name, value = split_event(token)
            is_pitch = name == "Note_Pitch" and value.isdigit()
            if name == "Tempo" and value.isdigit():
                tempo = int(value) or DEFAULT_TEMPO
            elif token == BAR_TOKEN:
                bar_starts.append(bar_starts[-1] + bar_ticks[-1] if bar_starts else 0)
                bar_ticks.append(bar_ticks[-1] if bar_ticks else _bar_ticks("4/4"))
                grid = 0
            elif not bar_starts:
                pass  # nothing can be placed before the first bar
            elif name == "Time_Signature":
                bar_ticks[-1] = _bar_ticks(value, default=bar_ticks[-1])
            elif name == "Beat" and value.isdigit():
                grid = min(int(value), MAX_GRIDS - 1)
            elif is_pitch:
                start = bar_starts[-1] + grid * TICKS_PER_GRID
                notes.append([len(bar_starts) - 1, grid, int(value), start, TICKS_PER_GRID])
            elif name == "Note_Duration" and value.isdigit() and awaiting_duration:
                notes[-1][4] = int(value)
            awaiting_duration = is_pitch and bool(bar_starts)
        if bar_starts and (not notes or notes[-1][0] < len(bar_starts) - 1):
            bar_starts.pop()  # a closing empty bar is not music (MusDr drops a final Bar event too)
            bar_ticks.pop()
        table = np.asarray(notes, dtype=np.int64).reshape(-1, 5)
        return cls(tempo, np.asarray(bar_starts, dtype=np.int64), np.asarray(bar_ticks, dtype=np.int64), *table.T)


def _bar_ticks(signature: str, default: int | None = None) -> int:
    """Length of a bar in ticks (`vocab.bar_ticks`); ``default`` (else 4/4's) for an unreadable signature."""
    numerator, _, denominator = signature.partition("/")
    if numerator.isdigit() and denominator.isdigit() and int(numerator) and int(denominator):
        return bar_ticks(int(numerator), int(denominator))
    return _bar_ticks("4/4") if default is None else default


PieceLike = Sequence[str] | PieceNotes


def _as_notes(piece: PieceLike) -> PieceNotes:
    return piece if isinstance(piece, PieceNotes) else PieceNotes.from_events(piece)


# --- H: pitch-class histogram entropy -------------------------------------------------------


def pitch_class_entropy(piece: PieceLike, window_bars: int = 4) -> float:
    """Mean entropy (bits) of the pitch-class histogram over every window of consecutive bars.

    Each window of ``window_bars`` bars (all bars when the piece is shorter) gives a histogram
    of note counts per pitch class (pitch % 12); windows without notes are left out. One
    pitch class gives 0, twelve equally used classes give log2(12) = 3.585.
    Returns NaN for a piece without notes.
    """
    notes = _as_notes(piece)
    if len(notes.pitch) == 0:
        return math.nan
    counts = np.zeros((notes.n_bars, 12))  # [n_bars, 12] note counts per bar and pitch class
    np.add.at(counts, (notes.bar, notes.pitch % 12), 1)
    window = min(window_bars, notes.n_bars)
    cumulative = np.concatenate([np.zeros((1, 12)), np.cumsum(counts, axis=0)])
    windows = cumulative[window:] - cumulative[:-window]  # [n_windows, 12]
    windows = windows[windows.sum(axis=1) > 0]
    probs = windows / windows.sum(axis=1, keepdims=True)
    with np.errstate(divide="ignore", invalid="ignore"):
        entropy = -np.where(probs > 0, probs * np.log2(probs), 0.0).sum(axis=1)
    return float(entropy.mean())


# --- GS: grooving pattern similarity --------------------------------------------------------


def groove_similarity(piece: PieceLike, max_pairs: int = 1000, seed: int = 0) -> float:
    """Mean grooving-pattern similarity over pairs of bars.

    A bar's pattern is its binary onset vector over the 48 Beat positions; the similarity of
    two bars is ``1 - (positions where exactly one has an onset) / 48``. All pairs of distinct
    bars are used, or ``max_pairs`` of them drawn with ``seed`` when there are more (MusDr
    samples 1000). Identical bars give 1. Returns NaN for a piece with fewer than two bars.
    """
    notes = _as_notes(piece)
    n_bars = notes.n_bars
    if n_bars < 2:
        return math.nan
    onsets = np.zeros((n_bars, MAX_GRIDS))  # [n_bars, 48] 1 where a note starts
    onsets[notes.bar, notes.grid] = 1.0
    first, second = np.triu_indices(n_bars, k=1)  # every pair of distinct bars
    if len(first) > max_pairs:
        chosen = np.random.default_rng(seed).choice(len(first), size=max_pairs, replace=False)
        first, second = first[chosen], second[chosen]
    # |a xor b| = |a| + |b| - 2 a.b for binary vectors
    per_bar = onsets.sum(axis=1)
    shared = np.einsum("pk,pk->p", onsets[first], onsets[second])
    differing = per_bar[first] + per_bar[second] - 2.0 * shared
    return float(np.mean(1.0 - differing / MAX_GRIDS))


# --- SI: structureness indicator ------------------------------------------------------------


def chroma_features(piece: PieceLike) -> np.ndarray:
    """Smoothed chroma at 2 Hz from the notes, shape ``[12, n_frames]``, unit-norm columns.

    MusDr's steps on a symbolic piano roll: the time every pitch class sounds within each
    0.1 s frame (frame k covers [k/10, (k+1)/10) s; the piece ends with its last note), each
    frame scaled to unit norm, a 21-frame moving average, every 5th frame kept, and the
    columns normalised (a near-silent column becomes the uniform vector, as in MusDr).
    """
    notes = _as_notes(piece)
    onset = notes.start * notes.seconds_per_tick
    offset = (notes.start + notes.duration) * notes.seconds_per_tick
    n_raw = math.ceil(notes.seconds * CHROMA_RATE)
    boundaries = np.arange(n_raw + 1) / CHROMA_RATE
    raw = np.zeros((12, n_raw))
    for pitch_class in range(12):
        chosen = notes.pitch % 12 == pitch_class
        raw[pitch_class] = np.diff(_sounding_time(onset[chosen], offset[chosen], boundaries))
    raw = _normalise_columns(raw, threshold=0.0, fill=0.0)
    if n_raw == 0:
        return raw
    # centred moving average ("same"-size convolution with a boxcar, zeros beyond the ends)
    boxcar = np.full(SMOOTH_FRAMES, 1.0 / SMOOTH_FRAMES)
    half = SMOOTH_FRAMES // 2
    smoothed = np.stack([np.convolve(row, boxcar)[half : half + n_raw] for row in raw])
    return _normalise_columns(smoothed[:, ::DOWNSAMPLE], threshold=1e-3, fill=1.0 / math.sqrt(12))


def _sounding_time(onsets: np.ndarray, offsets: np.ndarray, times: np.ndarray) -> np.ndarray:
    """Total sounding time of the notes before each time: sum_i clip(t - onset_i, 0, dur_i)."""
    onsets, offsets = np.sort(onsets), np.sort(offsets)
    begun = np.searchsorted(onsets, times)  # notes started before t
    ended = np.searchsorted(offsets, times)  # notes ended before t
    onset_sums = np.concatenate([[0.0], np.cumsum(onsets)])
    offset_sums = np.concatenate([[0.0], np.cumsum(offsets)])
    return (times * begun - onset_sums[begun]) - (times * ended - offset_sums[ended])


def _normalise_columns(features: np.ndarray, threshold: float, fill: float) -> np.ndarray:
    """Scale columns to unit L2 norm; columns with norm <= threshold become ``fill``."""
    norms = np.linalg.norm(features, axis=0)
    loud = norms > threshold
    out = np.full_like(features, fill)
    out[:, loud] = features[:, loud] / norms[loud]
    return out


def self_similarity_matrix(chroma: np.ndarray) -> np.ndarray:
    """MusDr's enhanced self-similarity matrix of a chroma sequence, shape ``[N, N]``.

    Dot-product similarity under all 12 cyclic transpositions, smoothed along diagonals over
    PATH_SMOOTH_FRAMES frames forwards and backwards at the 7 TEMPO_RATIOS, maximised over
    all of those; then the top THRESHOLD_KEEP of the cells are rescaled to 0..1, the others
    set to PENALTY, and the diagonal set to 1.
    """
    n_frames = chroma.shape[1]
    enhanced = np.zeros((n_frames, n_frames))
    # one transposition at a time: [N, N] arrays stay in cache, a stack of 12 would not
    for shift in range(12):
        similarity = np.roll(chroma, shift, axis=0).T @ chroma  # [N, N]
        for ratio in TEMPO_RATIOS:
            for backward in (False, True):
                enhanced = np.maximum(enhanced, _diagonal_smoothing(similarity, ratio, backward))
    return _threshold_and_scale(enhanced)


def _diagonal_smoothing(similarity: np.ndarray, tempo_ratio: float, backward: bool) -> np.ndarray:
    """Average each cell with the next (or previous) PATH_SMOOTH_FRAMES cells along a path of slope
    ``1 / tempo_ratio``: the columns are resampled so that the path becomes a diagonal.
    """
    n_frames = similarity.shape[0]
    length = PATH_SMOOTH_FRAMES
    n_resampled = math.ceil(n_frames / tempo_ratio)
    resampled = similarity[:, _resample_index(n_resampled, n_frames)]  # [N, n_resampled]
    padded = np.zeros((n_frames + length, n_resampled + length))
    offset = length if backward else 0
    padded[offset : offset + n_frames, offset : offset + n_resampled] = resampled
    smoothed = np.zeros_like(resampled)
    for step in range(length):
        at = length - step if backward else step
        smoothed += padded[at : at + n_frames, at : at + n_resampled]
    smoothed /= length
    return smoothed[:, _resample_index(n_frames, n_resampled)]  # back to [N, N]


def _resample_index(n_out: int, n_in: int) -> np.ndarray:
    """Nearest-neighbour indices mapping ``n_out`` positions onto ``n_in`` (MusDr's rounding)."""
    return np.maximum(np.round(np.arange(1, n_out + 1) / n_out * n_in) - 1, 0).astype(np.int64)


def _threshold_and_scale(similarity: np.ndarray) -> np.ndarray:
    """Keep the top THRESHOLD_KEEP of the cells scaled to 0..1, others PENALTY, diagonal 1."""
    out = similarity.copy()
    n_below = int(np.round(out.size * (1 - THRESHOLD_KEEP)))
    out[out < np.partition(out, n_below, axis=None)[n_below]] = 0.0
    zero = out == 0
    if (~zero).any() and out.max() > out[~zero].min():
        low, high = out[~zero].min(), out.max()
        out = (out - low) / (high - low)
        out[zero] = PENALTY
    np.fill_diagonal(out, 1.0)
    return out


def fitness_scape_plot(ssm: np.ndarray, lengths: Sequence[int] | None = None) -> np.ndarray:
    """Fitness of every segment of the piece, as MusDr's start-duration matrix ``[N, N]``.

    ``scape[L - 1, s]`` is the fitness of the segment of ``L`` frames starting at frame ``s``
    (Müller's audio thumbnailing, FMP C4S3): the harmonic mean of how well and how much of
    the piece the segment's optimal path family explains, not counting the segment itself.
    Only ``lengths`` (default: all) are computed; other rows stay 0.

    The path family is found by dynamic programming over the SSM columns of the segment.
    MusDr backtracks each segment's accumulated score matrix to measure its paths; here the
    same per-cell backtracking choices are followed forwards, carrying each cell's path
    length and coverage along, so all starts of one length are one vectorised sweep over
    the frames with O(segment length) memory per start. The result equals MusDr's; the cost
    still grows as N**4 / 6 cell updates: on two shared CPU cores about 0.3 s at N = 100
    (50 s of music), 2-4 s at N = 200 and 8-13 s at N = 300 (benchmarks/metrics_speed.py).
    """
    n_frames = ssm.shape[0]
    scape = np.zeros((n_frames, n_frames))
    for length in range(1, n_frames + 1) if lengths is None else lengths:
        scape[length - 1, : n_frames - length + 1] = _segment_fitness(ssm, length)
    return scape


_CELL = 1 << 32
"""The carried path statistics share one int64: ``cells * _CELL + cover`` (|cover| <= N + 1)."""


def _segment_fitness(ssm: np.ndarray, length: int) -> np.ndarray:
    """Fitness of every segment of ``length`` frames, shape ``[N - length + 1]`` (by start).

    Accumulated score matrix D of a segment starting at frame s: rows are the piece's frames
    n, column 0 is the "elevator" (between paths), column m >= 1 means "at segment frame m-1":
        D[n, 0] = max(D[n-1, 0], D[n-1, L])                                 (wait / end a path)
        D[n, 1] = D[n, 0] + S[n, s]                                         (start a path)
        D[n, m] = S[n, s+m-1] + max(D[n-1, m-1], D[n-2, m-1], D[n-1, m-2])  (m >= 2)
    MusDr then backtracks from the last row, taking the first maximal predecessor in that
    order but never D[n-2, m-1] on rows n <= 2 nor D[n-1, m-2] on column m = 2; from the
    elevator it enters a path only if D[n-1, L] is strictly larger than D[n-1, 0]; it starts
    in a path unless D[N-1, L] < D[N-1, 0]. Those choices depend only on the cell, so here
    they are followed forwards instead, each cell carrying the statistics of its backtrack:
    ``cells`` (path cells visited) and ``cover`` (coverage of the finished paths, minus the
    current path's first row, plus one: finishing a path on row n then adds n).

    Layout: one row of D for all starts is a flat array of L + 1 blocks of n_seg values
    (block m holds column m of every segment), so the predecessors of columns 2..L are the
    contiguous slices one block (m-1) or two blocks (m-2) earlier.
    """
    n_frames = ssm.shape[0]
    n_seg = n_frames - length + 1
    size = (length + 1) * n_seg
    lift_col, start_col = slice(0, n_seg), slice(n_seg, 2 * n_seg)  # columns 0 and 1
    end_col = slice(length * n_seg, size)  # column L
    body = slice(2 * n_seg, size)  # columns 2..L
    one_back, two_back = slice(n_seg, length * n_seg), slice(0, (length - 1) * n_seg)  # columns m-1, m-2
    windows = sliding_window_view(ssm, n_seg, axis=1)  # [N, L, n_seg]: windows[n, j, s] = S[n, s + j]

    # rows n, n-1, n-2 of D and of the carried statistics, rotated each step; each [(L + 1) * n_seg]
    score, score_1, score_2 = (np.full(size, -np.inf) for _ in range(3))
    carry, carry_1, carry_2 = (np.zeros(size, dtype=np.int64) for _ in range(3))
    score_1[lift_col], score_1[start_col] = 0.0, windows[0, 0]
    carry_1[start_col] = _CELL + 1  # one cell, a path starting on row 0
    lift = np.zeros(n_seg, dtype=np.int64)  # statistics of the elevator cell (n, 0)
    best_before = np.empty(size - 2 * n_seg)
    take_row = np.empty(size - 2 * n_seg, dtype=bool)  # predecessor D[n-2, m-1]
    take_col = np.empty(size - 2 * n_seg, dtype=bool)  # predecessor D[n-1, m-2]

    for row in range(1, n_frames):
        leave_path = score_1[end_col] > score_1[lift_col]
        np.maximum(score_1[lift_col], score_1[end_col], out=score[lift_col])
        lift = np.where(leave_path, carry_1[end_col] + (row - 1), lift)
        np.add(score[lift_col], windows[row, 0], out=score[start_col])
        carry[start_col] = lift + (_CELL - row + 1)

        diagonal, skip_row, skip_col = score_1[one_back], score_2[one_back], score_1[two_back]
        np.maximum(diagonal, skip_row, out=best_before)
        np.maximum(best_before, skip_col, out=score[body])
        score[body].reshape(length - 1, n_seg)[...] += windows[row, 1:]
        inherited = carry[body]
        np.copyto(inherited, carry_1[one_back])
        if row > 2:
            np.greater(skip_row, diagonal, out=take_row)
            np.copyto(inherited, carry_2[one_back], where=take_row)
            np.greater(skip_col, best_before, out=take_col)
        else:
            np.greater(skip_col, diagonal, out=take_col)
        take_col[:n_seg] = False  # column m = 2
        np.copyto(inherited, carry_1[two_back], where=take_col)
        inherited += _CELL

        score, score_1, score_2 = score_2, score, score_1
        carry, carry_1, carry_2 = carry_2, carry, carry_1

    best = np.maximum(score_1[lift_col], score_1[end_col])
    end_in_lift = score_1[end_col] < score_1[lift_col]
    total = np.where(end_in_lift, lift, carry_1[end_col] + n_frames - 1)
    total_cells = (total + _CELL // 2) // _CELL
    total_cover = total - total_cells * _CELL
    # leave out the segment's trivial match with itself (score and coverage L)
    score_n = (best - length) / (total_cells + _EPS)
    cover_n = (total_cover - length) / (n_frames + _EPS)
    return 2 * score_n * cover_n / (score_n + cover_n + _EPS)


def structureness_indicator(scape: np.ndarray, low_seconds: float, high_seconds: float | None = None) -> float:
    """Maximum fitness over segments lasting ``low_seconds`` to ``high_seconds`` (MusDr's SI).

    Lengths from ``2 * low`` to ``2 * high`` frames at 2 Hz, both included, as in MusDr;
    ``high_seconds=None`` means up to the whole piece. A piece too short for the range gets 0,
    like MusDr (whose scape plot also keeps 0 where a segment does not fit).
    """
    first = int(low_seconds * SSM_RATE) - 1
    last = scape.shape[0] if high_seconds is None else int(high_seconds * SSM_RATE)
    if first >= scape.shape[0]:
        return 0.0
    return float(max(scape[first:last].max(), 0.0))


def structureness_indicators(piece: PieceLike, max_seconds: float | None = None) -> dict[str, float]:
    """``SI_short``, ``SI_mid``, ``SI_long`` of a piece (0 when it is too short or has no notes).

    ``max_seconds`` analyses only the beginning of a long piece: the scape plot costs N**4,
    so a 10-minute movement would take hours (MusDr's own SI_long stops at 128 s segments).
    """
    chroma = chroma_features(piece)
    if max_seconds is not None:
        chroma = chroma[:, : int(max_seconds * SSM_RATE)]
    n_frames = chroma.shape[1]
    shortest = int(min(low for low, _ in SI_RANGES.values()) * SSM_RATE)
    if n_frames < shortest:  # no segment fits any range (also: a piece without notes)
        return dict.fromkeys(SI_RANGES, 0.0)
    scape = fitness_scape_plot(self_similarity_matrix(chroma), lengths=range(shortest, n_frames + 1))
    return {name: structureness_indicator(scape, low, high) for name, (low, high) in SI_RANGES.items()}


# --- all of them ----------------------------------------------------------------------------


def compute_metrics(piece: PieceLike, si_max_seconds: float | None = None) -> dict[str, float]:
    """All measures of one piece, keyed by METRIC_NAMES (NaN where a measure is undefined).

    ``si_max_seconds``: see :func:`structureness_indicators`.
    """
    notes = _as_notes(piece)
    return {
        "H": pitch_class_entropy(notes, window_bars=4),
        "H1": pitch_class_entropy(notes, window_bars=1),
        "GS": groove_similarity(notes),
        **structureness_indicators(notes, max_seconds=si_max_seconds),
    }


__all__ = [
    "METRIC_NAMES",
    "SI_RANGES",
    "PieceNotes",
    "chroma_features",
    "compute_metrics",
    "fitness_scape_plot",
    "groove_similarity",
    "pitch_class_entropy",
    "self_similarity_matrix",
    "structureness_indicator",
    "structureness_indicators",
]
