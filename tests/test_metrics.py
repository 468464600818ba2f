"""The objective metrics (g2m_hf/metrics.py) on pieces built event by event, with known values."""

from __future__ import annotations

import math

import numpy as np
import pytest

from g2m_hf.metrics import (
    METRIC_NAMES,
    PENALTY,
    PieceNotes,
    chroma_features,
    compute_metrics,
    fitness_scape_plot,
    groove_similarity,
    pitch_class_entropy,
    self_similarity_matrix,
    structureness_indicator,
    structureness_indicators,
)
from tests.reference import musdr


def piece(bars, tempo=120, signature="4/4", duration=240):
    """REMI events of bars given as ``[(grid, [pitches]), ...]`` (one Beat per grid, ascending)."""
    events = ["Composer_None", f"Tempo_{tempo}", "BOS_None"]
    for bar in bars:
        events += ["Bar_None", f"Time_Signature_{signature}"]
        for grid, pitches in bar:
            events.append(f"Beat_{grid}")
            for pitch in sorted(pitches, reverse=True):
                events += [f"Note_Pitch_{pitch}", f"Note_Duration_{duration}"]
    return events + ["EOS_None"]


def random_bars(n_bars, seed, notes_per_bar=8):
    rng = np.random.default_rng(seed)
    bars = []
    for _ in range(n_bars):
        grids = sorted(rng.choice(48, size=notes_per_bar, replace=False).tolist())
        bars.append([(grid, rng.integers(40, 90, size=int(rng.integers(1, 4))).tolist()) for grid in grids])
    return bars


def binary_entropy(p):
    return -(p * math.log2(p) + (1 - p) * math.log2(1 - p))


# --- reading events ----------------------------------------------------------------------------------


def test_notes_are_placed_like_the_original_decoder():
    events = (
        "Composer_Bach Tempo_80 Note_Pitch_50 BOS_None "  # nothing is placed before the first bar
        "Bar_None Time_Signature_3/4 Beat_6 Note_Pitch_62 Note_Duration_120 Note_Pitch_55 "
        "Bar_None Time_Signature_4/4 Note_Pitch_60 Note_Duration_480 Beat_47 Note_Pitch_64 Note_Duration_40 "
        "Bar_None Time_Signature_6/8 "  # a closing empty bar is dropped
        "EOS_None Bar_None Time_Signature_4/4 Beat_0 Note_Pitch_70"  # after EOS: ignored
    ).split()
    notes = PieceNotes.from_events(events)
    assert notes.tempo == 80 and notes.bar_starts.tolist() == [0, 1440]
    assert notes.pitch.tolist() == [62, 55, 60, 64]
    assert notes.bar.tolist() == [0, 0, 1, 1] and notes.grid.tolist() == [6, 6, 0, 47]
    assert notes.start.tolist() == [240, 240, 1440, 1440 + 47 * 40]
    assert notes.duration.tolist() == [120, 40, 480, 40]  # no Note_Duration: one Beat step
    assert notes.seconds == pytest.approx((1440 + 47 * 40 + 40) / 480 * 60 / 80)


# --- H ------------------------------------------------------------------------------------------------


def test_entropy_of_a_single_pitch_class_is_zero():
    events = piece([[(0, [48, 60]), (12, [72]), (24, [84, 36])]] * 6)
    assert pitch_class_entropy(events) == 0.0
    assert pitch_class_entropy(events, window_bars=1) == 0.0


def test_entropy_of_twelve_equally_used_pitch_classes_is_log2_12():
    events = piece([[(grid * 4, [60 + (grid + shift) % 12]) for grid in range(12)] for shift in range(7)])
    assert pitch_class_entropy(events) == pytest.approx(math.log2(12), abs=1e-12)
    assert pitch_class_entropy(events, window_bars=1) == pytest.approx(math.log2(12), abs=1e-12)


def test_entropy_is_the_mean_over_sliding_windows_with_notes():
    c, d = [(0, [60])], [(0, [62])]
    # windows of 4 bars: CCCC -> 0 bits, CCCD -> H(1/4); single bars are pure
    assert pitch_class_entropy(piece([c, c, c, c, d])) == pytest.approx(binary_entropy(0.25) / 2)
    assert pitch_class_entropy(piece([c, c, c, c, d]), window_bars=1) == 0.0
    # windows without notes do not count; a piece shorter than the window is one window
    both = [(0, [60, 62])]
    assert pitch_class_entropy(piece([both] + [[]] * 6 + [[(0, [67])]])) == pytest.approx((1.0 + 0.0) / 2)
    assert pitch_class_entropy(piece([c, d])) == pytest.approx(1.0)
    assert math.isnan(pitch_class_entropy(piece([[], []])))


# --- GS -----------------------------------------------------------------------------------------------


def test_groove_of_identical_bars_is_one():
    assert groove_similarity(piece([[(0, [60]), (12, [64]), (30, [67])]] * 9)) == 1.0


def test_groove_counts_positions_where_exactly_one_bar_has_an_onset():
    full, half, other = [(0, [60]), (12, [62]), (24, [64]), (36, [65])], [(0, [60]), (12, [67])], [(6, [60])]
    assert groove_similarity(piece([full, half])) == pytest.approx(1 - 2 / 48)
    # pairs: full-half 2, full-other 5, half-other 3 differing positions
    assert groove_similarity(piece([full, half, other])) == pytest.approx(1 - (2 + 5 + 3) / 3 / 48)
    assert math.isnan(groove_similarity(piece([full])))


def test_groove_samples_a_fixed_set_of_pairs_when_there_are_many():
    a, b = [(0, [60]), (24, [60])], [(0, [60]), (12, [60]), (36, [60])]
    bars = [a if i % 3 else b for i in range(60)]  # 1770 pairs
    n_a, n_b = 40, 20
    differing_pairs = n_a * n_b  # each a-b pair differs in 3 positions
    exact = 1 - differing_pairs * 3 / 48 / (60 * 59 / 2)
    events = piece(bars)
    assert groove_similarity(events, max_pairs=10**6) == pytest.approx(exact)
    sampled = groove_similarity(events)
    assert sampled == groove_similarity(events) and abs(sampled - exact) < 0.01
    assert groove_similarity(events, seed=1) != sampled


# --- SI -----------------------------------------------------------------------------------------------


def test_chroma_follows_the_notes_at_two_frames_per_second():
    c_then_e = piece([[(0, [60])]] * 4 + [[(0, [64])]] * 4, duration=1920)  # whole notes
    chroma = chroma_features(c_then_e)
    assert chroma.shape == (12, 32)  # 8 bars of 2 s at 120 BPM
    assert np.allclose(np.linalg.norm(chroma, axis=0), 1.0)
    assert chroma[0, 2:6].min() > 0.99 and chroma[4, 26:30].min() > 0.99
    assert chroma_features(piece([[(0, [60])]] * 4 + [[(0, [64])]] * 4, tempo=80, duration=1920)).shape == (12, 48)


def test_self_similarity_matrix_equals_musdr_step_by_step():
    rng = np.random.default_rng(5)
    chroma = rng.random((12, 30)) * (rng.random((12, 30)) < 0.3)
    chroma[:, 18:] = np.roll(chroma[:, 3:15], 4, axis=0)  # a transposed repeat
    chroma[:, 7] = 0.0  # a silent frame
    chroma /= np.maximum(np.linalg.norm(chroma, axis=0), 1e-9)
    np.testing.assert_array_equal(self_similarity_matrix(chroma), musdr.self_similarity_matrix(chroma))


def test_self_similarity_keeps_a_quarter_of_the_cells():
    rng = np.random.default_rng(0)
    chroma = rng.random((12, 40))
    chroma /= np.linalg.norm(chroma, axis=0)
    ssm = self_similarity_matrix(chroma)
    assert np.all(np.diag(ssm) == 1.0)
    kept = ssm[ssm != PENALTY]
    assert kept.min() >= 0.0 and kept.max() <= 1.0
    assert abs(len(kept) / ssm.size - 0.25) < 0.03


@pytest.mark.parametrize("ties", [False, True])
def test_scape_plot_equals_the_cell_by_cell_musdr_computation(ties):
    rng = np.random.default_rng(1)
    chroma = np.eye(12)[rng.integers(0, 12, size=24)].T + 0.1 * rng.random((12, 24))  # one main class per frame
    chroma[:, 12:] = chroma[:, :12]  # a repeat, so that path families have several paths
    chroma /= np.linalg.norm(chroma, axis=0)
    ssm = self_similarity_matrix(chroma)
    if ties:  # coarse values make equal candidate scores, where the predecessor order matters
        ssm = np.where(ssm == PENALTY, PENALTY, np.round(ssm * 2) / 2)
        np.fill_diagonal(ssm, 1.0)
    expected = musdr.fitness_scape_plot(ssm)
    assert expected.max() > 0.2
    np.testing.assert_allclose(fitness_scape_plot(ssm), expected, rtol=0, atol=1e-12)


def test_structureness_ranges_follow_musdr_indexing():
    n = 40
    scape = np.zeros((n, n))
    scape[:, 0] = np.arange(1, n + 1) / 100  # the fitness of length L is L / 100
    assert structureness_indicator(scape, 3, 8) == pytest.approx(0.16)  # lengths 6..16 frames
    assert structureness_indicator(scape, 8, 15) == pytest.approx(0.30)  # 16..30
    assert structureness_indicator(scape, 15) == pytest.approx(0.40)  # 30..N
    assert structureness_indicator(scape[:5, :5], 3, 8) == 0.0  # no segment of 3 s fits


def test_a_repeated_section_is_structured_and_random_notes_are_not():
    section = random_bars(8, seed=1)
    transposed = [[(grid, [p + 3 for p in pitches]) for grid, pitches in bar] for bar in section]
    repeated = structureness_indicators(piece(section * 2))
    repeated_in_another_key = structureness_indicators(piece(section + transposed))
    scattered = structureness_indicators(piece(random_bars(16, seed=2)))
    for name in ("SI_mid", "SI_long"):
        assert repeated[name] > 0.4 and repeated_in_another_key[name] > 0.4
        assert scattered[name] < 0.2
    assert repeated["SI_short"] > scattered["SI_short"] + 0.1


def test_pieces_too_short_or_silent_have_zero_structure():
    assert structureness_indicators(piece([[(0, [60])]])) == dict.fromkeys(("SI_short", "SI_mid", "SI_long"), 0.0)
    assert structureness_indicators(piece([[], []])) == dict.fromkeys(("SI_short", "SI_mid", "SI_long"), 0.0)


def test_compute_metrics_gives_every_measure():
    metrics = compute_metrics(piece(random_bars(12, seed=4)))
    assert tuple(metrics) == METRIC_NAMES
    assert all(isinstance(value, float) and math.isfinite(value) for value in metrics.values())
    assert 0 < metrics["H1"] < metrics["H"] < math.log2(12) and 0 < metrics["GS"] < 1
