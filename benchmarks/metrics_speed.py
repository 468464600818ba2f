"""Speed of the SI fitness scape plot: vectorised (g2m_hf.metrics) against MusDr's cell-by-cell loops.

The baseline is tests/reference/musdr.py, a literal re-implementation of the Python scape
plot MusDr uses (one dynamic programme and one backtracking pass per segment, in Python loops). Both
run in this process on the same self-similarity matrix of N frames (2 Hz, so N = 2 x seconds); the
results are checked to be equal, then the ratio is printed. Larger N is timed for ours only, with the
baseline extrapolated by its N**4 growth. Also times `compute_metrics` on whole pieces.

    python benchmarks/metrics_speed.py [--frames 80] [--large 100 200 300]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # for tests.reference

from g2m_hf.metrics import compute_metrics, fitness_scape_plot, self_similarity_matrix  # noqa: E402
from tests.reference.musdr import fitness_scape_plot as loop_scape_plot  # noqa: E402


def repeated_chroma(n_frames: int, seed: int = 0) -> np.ndarray:
    """Chroma of a piece whose second half repeats its first, [12, n_frames], unit columns."""
    rng = np.random.default_rng(seed)
    chroma = np.eye(12)[rng.integers(0, 12, size=n_frames)].T + 0.1 * rng.random((12, n_frames))
    half = n_frames // 2
    chroma[:, half : 2 * half] = chroma[:, :half]
    return chroma / np.linalg.norm(chroma, axis=0)


def seconds(function, *args) -> tuple[float, object]:
    started = time.perf_counter()
    result = function(*args)
    return time.perf_counter() - started, result


def piece_events(n_bars: int, tempo: int, seed: int = 0) -> list[str]:
    """A random piece of n_bars 4/4 bars, 8 onsets of 1-3 notes per bar."""
    rng = np.random.default_rng(seed)
    events = ["Composer_None", f"Tempo_{tempo}", "BOS_None"]
    for _ in range(n_bars):
        events += ["Bar_None", "Time_Signature_4/4"]
        for grid in sorted(rng.choice(48, size=8, replace=False)):
            events.append(f"Beat_{grid}")
            for pitch in sorted(rng.integers(40, 90, size=int(rng.integers(1, 4))), reverse=True):
                events += [f"Note_Pitch_{pitch}", "Note_Duration_240"]
    return events + ["EOS_None"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--frames", type=int, default=80, help="N for the comparison with the loop baseline")
    parser.add_argument("--large", type=int, nargs="*", default=[100, 200, 300], help="N timed for ours only")
    args = parser.parse_args()

    ssm = self_similarity_matrix(repeated_chroma(args.frames))
    baseline, expected = seconds(loop_scape_plot, ssm)
    ours, result = seconds(fitness_scape_plot, ssm)
    assert np.allclose(result, expected, rtol=0, atol=1e-12), "vectorised scape plot differs from the loop baseline"
    print(
        f"scape plot, N={args.frames} ({args.frames / 2:g} s): MusDr loops {baseline:.2f} s, "
        f"vectorised {ours:.3f} s, ratio {baseline / ours:.0f}x (identical values)"
    )
    for n_frames in args.large:
        ssm = self_similarity_matrix(repeated_chroma(n_frames))
        took, _ = seconds(fitness_scape_plot, ssm)
        estimate = baseline * (n_frames / args.frames) ** 4
        print(
            f"scape plot, N={n_frames} ({n_frames / 2:g} s): vectorised {took:.2f} s "
            f"(loop baseline extrapolated: {estimate:.0f} s, ratio ~{estimate / took:.0f}x)"
        )
    for n_bars, tempo in ((32, 120), (64, 120), (64, 80)):
        events = piece_events(n_bars, tempo)
        took, _ = seconds(compute_metrics, events)
        print(
            f"compute_metrics, {n_bars} bars at {tempo} BPM ({len(events)} events, "
            f"{n_bars * 4 * 60 / tempo:g} s): {took:.2f} s"
        )


if __name__ == "__main__":
    main()
