"""Dataset build speed: a cold build (music21 conversion + encoding) against its parallel and cached rebuilds.

The selection is the first N Bach chorales and N Ryan's Mammoth tunes of the music21 corpus. Each row
is timed in this run, in a fresh temporary cache unless it says otherwise, and compared with the cold
build in one process:

* cold, ``num_proc`` processes        - parallel conversion and encoding
* warm, same selection                - the encoded rows come from the cache (no file read)
* warm conversions, other selection   - re-encoding, every music21 conversion from the cache

    python benchmarks/data_build_speed.py [--works 24] [--num-proc 2]

On a machine shared with other jobs the parallel ratio is the noisiest one.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

from datasets.utils.logging import disable_progress_bar

from g2m_hf import G2MTokenizer
from g2m_hf.corpus import corpus_sources
from g2m_hf.data import encode_sources


def timed(sources, tokenizer, cache: Path, num_proc: int | None) -> tuple[float, object]:
    started = time.perf_counter()
    _, report = encode_sources(sources, tokenizer, num_proc=num_proc, cache_dir=cache)
    return time.perf_counter() - started, report


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--works", type=int, default=24, help="works per collection")
    parser.add_argument("--num-proc", type=int, default=2)
    args = parser.parse_args()
    disable_progress_bar()
    tokenizer = G2MTokenizer()
    sources = corpus_sources(["bach"], limit=args.works) + corpus_sources(general=["ryansMammoth"], limit=args.works)

    with tempfile.TemporaryDirectory() as serial_cache, tempfile.TemporaryDirectory() as parallel_cache:
        baseline, report = timed(sources, tokenizer, Path(serial_cache), None)
        rows = [
            ("cold, 1 process (baseline)", baseline, report),
            (f"cold, {args.num_proc} processes", *timed(sources, tokenizer, Path(parallel_cache), args.num_proc)),
            ("warm, same selection", *timed(sources, tokenizer, Path(serial_cache), None)),
            ("warm conversions, other selection", *timed(sources[1:], tokenizer, Path(serial_cache), None)),
        ]
    print(f"{len(sources)} works, {report.tokens:,} tokens, {len(report.skipped)} skipped")
    print(f"{'build':36} {'seconds':>8} {'conversions':>12} {'speed-up':>9}")
    for name, seconds, row in rows:
        print(f"{name:36} {seconds:8.2f} {row.conversions:12d} {baseline / seconds:8.1f}x")


if __name__ == "__main__":
    main()
