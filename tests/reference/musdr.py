"""Loop-by-loop re-implementation of MusDr's SI pipeline (reference for tests and benchmarks).

MusDr (slSeanWU/MusDr) computes the structureness indicator with Müller's FMP code
(``mueller_audio_tools/ssm_features.py`` and ``scapeplot.py``, run by ``run_python_scapeplot.py``):

* the self-similarity matrix: dot products of chroma under 12 cyclic shifts, each smoothed
  along diagonals (16 frames, forward and backward, at 7 relative tempi 0.5..2), the maximum
  of all; then a relative threshold (top 25 % kept, scaled to 0..1, the rest -2) and a
  diagonal of 1;
* the fitness scape plot: per segment, an accumulated score matrix by dynamic programming,
  a backtracking pass that collects the optimal path family, then the fitness.

This file follows those steps literally, cell by cell and shift by shift, with the same
predecessor order, rounding and edge rules, so that the vectorised ``g2m_hf.metrics`` can be
checked against it on small inputs. Slow by design; never used by the package.
"""

from __future__ import annotations

import numpy as np

_EPS = 1e-16
TEMPO_RATIOS = np.exp(np.linspace(np.log(0.5), np.log(2.0), 7))
SMOOTH = 16
KEEP = 0.25
PENALTY = -2.0


# --- self-similarity matrix ---------------------------------------------------------------------


def _resampling(n_out: int, n_in: int) -> np.ndarray:
    positions = np.around(np.arange(1, n_out + 1) / n_out * n_in, 0) - 1
    return np.maximum(positions, np.zeros(n_out)).astype(np.int64)


def diagonal_filter(similarity: np.ndarray, backward: bool) -> np.ndarray:
    """Mean over SMOOTH cells along paths of every tempo ratio, maximised over the ratios."""
    n = similarity.shape[0]
    best = np.zeros((n, n))
    for ratio in TEMPO_RATIOS:
        m = int(np.ceil(n / ratio))
        stretched = similarity[:, _resampling(m, n)]
        padded = np.zeros((n + SMOOTH, m + SMOOTH))
        total = np.zeros((n, m))
        if backward:
            padded[SMOOTH:, SMOOTH:] = stretched
            for step in range(SMOOTH):
                total = total + padded[SMOOTH - step : n + SMOOTH - step, SMOOTH - step : m + SMOOTH - step]
        else:
            padded[:n, :m] = stretched
            for step in range(SMOOTH):
                total = total + padded[step : n + step, step : m + step]
        total = total / SMOOTH
        best = np.maximum(best, total[:, _resampling(n, m)])
    return best


def self_similarity_matrix(chroma: np.ndarray) -> np.ndarray:
    """MusDr's thresholded, transposition- and tempo-invariant SSM of a [12, N] chroma."""
    n_bins = chroma.shape[0]
    enhanced = None
    for shift in range(n_bins):
        shifted = np.zeros_like(chroma)
        shifted[shift:] = chroma[: n_bins - shift]
        shifted[:shift] = chroma[n_bins - shift :]
        similarity = np.dot(shifted.T, chroma)
        both = np.maximum(diagonal_filter(similarity, False), diagonal_filter(similarity, True))
        enhanced = both if enhanced is None else np.maximum(both, enhanced)
    out = enhanced.copy()
    n_below = int(np.round(out.size * (1 - KEEP)))
    out[out < np.sort(out.flatten("F"))[n_below]] = 0
    zero, positive = np.where(out == 0), np.where(out > 0)
    low = np.min(out[positive]) if len(positive[0]) else 0
    high = np.max(out)
    if high > low:
        out = (out - low) / (high - low)
        out[zero] = PENALTY
    for n in range(out.shape[0]):
        out[n, n] = 1
    return out


# --- fitness scape plot ---------------------------------------------------------------------------


def accumulated_score(segment_ssm: np.ndarray) -> np.ndarray:
    """D with an elevator column 0; column m >= 1 is segment frame m - 1. segment_ssm: [N, L]."""
    n_rows, n_cols = segment_ssm.shape[0], segment_ssm.shape[1] + 1
    score = np.full((n_rows, n_cols), -np.inf)
    score[0, 0] = 0.0
    score[0, 1] = segment_ssm[0, 0]
    for n in range(1, n_rows):
        score[n, 0] = max(score[n - 1, 0], score[n - 1, n_cols - 1])
        score[n, 1] = score[n, 0] + segment_ssm[n, 0]
        for m in range(2, n_cols):
            # row n - 2 is row -1 (the still-empty last row) when n == 1, as in FMP
            best = max(score[n - 1, m - 1], score[n - 1, m - 2], score[n - 2, m - 1])
            score[n, m] = segment_ssm[n, m - 1] + best
    return score


def path_family(score: np.ndarray) -> list[list[tuple[int, int]]]:
    """Backtrack D into the optimal family of paths, each a list of (row, segment frame)."""
    n_rows, n_cols = score.shape
    family: list[list[tuple[int, int]]] = []
    path: list[tuple[int, int]] = []
    n = n_rows - 1
    if score[n, n_cols - 1] < score[n, 0]:
        m = 0
    else:
        m = n_cols - 1
        path.append((n, n_cols - 2))
    cell = (n, m)
    while n > 0 or m > 0:
        if n == 0:
            cell = (0, m - 1)
        elif m == 0:
            if score[n - 1, n_cols - 1] > score[n - 1, 0]:
                cell = (n - 1, n_cols - 1)
                if path:
                    family.append(path[::-1])
                path = [(n - 1, n_cols - 2)]
            else:
                cell = (n - 1, 0)
        elif m == 1:
            cell = (n, 0)
        else:
            candidates = [(n - 1, m - 1)]
            if n > 2:
                candidates.append((n - 2, m - 1))
            if m > 2:
                candidates.append((n - 1, m - 2))
            best = -np.inf
            for candidate in candidates:
                if best < score[candidate]:
                    best, cell = score[candidate], candidate
            path.append((cell[0], cell[1] - 1))
        n, m = cell
    family.append(path[::-1])
    return family[::-1]


def segment_fitness(ssm: np.ndarray, start: int, length: int) -> float:
    """Fitness of one segment, FMP's ``compute_fitness`` on the backtracked path family."""
    n_frames = ssm.shape[0]
    score = accumulated_score(ssm[:, start : start + length])
    family = path_family(score)
    best = max(score[-1, 0], score[-1, -1])
    width = family[0][-1][1] + 1
    n_cells = sum(len(path) for path in family)
    coverage = sum(path[-1][0] - path[0][0] + 1 for path in family)
    score_n = (best - width) / (n_cells + _EPS)
    coverage_n = (coverage - width) / (n_frames + _EPS)
    return 2 * score_n * coverage_n / (score_n + coverage_n + _EPS)


def fitness_scape_plot(ssm: np.ndarray) -> np.ndarray:
    """Start-duration matrix: ``[length - 1, start]`` -> fitness, zeros where no segment fits."""
    n_frames = ssm.shape[0]
    scape = np.zeros((n_frames, n_frames))
    for length in range(1, n_frames + 1):
        for start in range(n_frames - length + 1):
            scape[length - 1, start] = segment_fitness(ssm, start, length)
    return scape
