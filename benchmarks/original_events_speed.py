"""Reading the original's published event data: a zip read in place, in parallel, and its cached rebuild.

The data is synthetic but in the published layout: N pieces of about 4,000 events each (a full-length
piece), pickled as the original converter does (``(events, bar_indices)`` of ``{'name', 'value'}``
dicts) under category folders inside one top-level folder of a zip. Each row is timed in this run,
in a fresh temporary cache unless it says otherwise, and compared with the cold zip build in one process:

* cold, ``num_proc`` processes   - the workers read the zip in parallel
* warm, same zip                 - the encoded rows come from the cache (no piece read)
* the unpacked folder, cold      - the same pieces as files on disk

    python benchmarks/original_events_speed.py [--pieces 400] [--num-proc 2]

On a machine shared with other jobs the parallel ratio is the noisiest one.
"""

from __future__ import annotations

import argparse
import pickle
import random
import tempfile
import time
import zipfile
from pathlib import Path

from datasets.utils.logging import disable_progress_bar

from g2m_hf import G2MTokenizer
from g2m_hf.corpus import original_event_sources
from g2m_hf.data import encode_sources

CATEGORIES = ("classical", "folk", "pop")


def synthetic_piece(rng: random.Random, bars: int) -> tuple[list[dict], list[int]]:
    """One piece as the original converter pickles it: 4/4 bars of chords on random beats."""
    events = [{"name": "Composer", "value": "None"}, {"name": "Tempo", "value": 120}, {"name": "BOS", "value": None}]
    bar_indices = []
    for _ in range(bars):
        bar_indices.append(len(events))
        events += [{"name": "Bar", "value": None}, {"name": "Time_Signature", "value": "4/4"}]
        for beat in sorted(rng.sample(range(48), 8)):
            events.append({"name": "Beat", "value": beat})
            for pitch in sorted(rng.sample(range(36, 96), 3), reverse=True):
                events += [{"name": "Note_Pitch", "value": pitch}, {"name": "Note_Duration", "value": 240}]
    events.append({"name": "EOS", "value": None})
    return events, bar_indices


def write_published_zip(path: Path, pieces: int) -> None:
    rng = random.Random(0)
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for index in range(pieces):
            member = f"pretrain_score/{CATEGORIES[index % len(CATEGORIES)]}/piece_{index:05d}.pkl"
            archive.writestr(member, pickle.dumps(synthetic_piece(rng, bars=70), protocol=5))


def timed(path: Path, tokenizer, cache: Path, num_proc: int | None) -> tuple[float, object]:
    started = time.perf_counter()
    _, report = encode_sources(original_event_sources(path), tokenizer, num_proc=num_proc, cache_dir=cache)
    return time.perf_counter() - started, report


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--pieces", type=int, default=400)
    parser.add_argument("--num-proc", type=int, default=2)
    args = parser.parse_args()
    disable_progress_bar()
    tokenizer = G2MTokenizer()

    with tempfile.TemporaryDirectory() as work:
        work = Path(work)
        published = work / "pretrain_score.zip"
        write_published_zip(published, args.pieces)
        with zipfile.ZipFile(published) as archive:
            archive.extractall(work / "unpacked")
        baseline, report = timed(published, tokenizer, work / "cache1", None)
        rows = [
            ("zip, cold, 1 process (baseline)", baseline),
            (f"zip, cold, {args.num_proc} processes", timed(published, tokenizer, work / "cache2", args.num_proc)[0]),
            ("zip, warm, same zip", timed(published, tokenizer, work / "cache1", None)[0]),
            ("unpacked folder, cold, 1 process", timed(work / "unpacked", tokenizer, work / "cache3", None)[0]),
        ]
        size = published.stat().st_size
    print(f"{report.works} pieces, {report.tokens:,} events, zip of {size / 1e6:.1f} MB, {len(report.skipped)} skipped")
    print(f"{'build':36} {'seconds':>8} {'pieces/s':>9} {'speed-up':>9}")
    for name, seconds in rows:
        print(f"{name:36} {seconds:8.2f} {report.works / seconds:9.0f} {baseline / seconds:8.1f}x")


if __name__ == "__main__":
    main()
