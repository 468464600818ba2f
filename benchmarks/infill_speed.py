"""Infilling speed: rewriting a 4-bar gap in a 32-bar piece against writing 4 bars by continuation, same run.

The piece: 32 bars the model writes first (seeded). Infilling: `generation.sample_infills` rewrites bars
``--gap`` (default 15-18): its prompt holds the bars on both sides of the gap (half the model's window at
most), then the span is sampled under `InfillGrammarLogitsProcessor`. Baseline: the same model continues
bars 1-14 with 4 bars (`longform.sample_long`, `RemiGrammarLogitsProcessor` with an exact bar count), the
way a piece is extended without the bars after the gap. Runs alternate (baseline, infilling, ...) and the
medians are compared, per span and per event written; one thread by default.

A model without infill tokens (the bundled model until it is retrained with infilling examples) gets them
appended with fresh embedding rows: the spans it writes are then not a trained model's, but the cost per
event (the same network, grammar and cache) is what is measured, and the figures are per event too.

    .venv/bin/python benchmarks/infill_speed.py                       # the bundled model, 5 runs each
    .venv/bin/python benchmarks/infill_speed.py --model outputs/default_finetune --repeats 9
    .venv/bin/python benchmarks/infill_speed.py --quick               # a smoke run of the script
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from g2m_hf import infill
from g2m_hf.generation import generate_midi, infill_request, load_model, load_tokenizer, sample_infills
from g2m_hf.grammar import RemiGrammarLogitsProcessor
from g2m_hf.longform import sample_long


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default=None, help="model folder (default: the bundled model)")
    parser.add_argument("--composer", default="Mozart")
    parser.add_argument("--bars", type=int, default=32, help="bars of the piece (default 32)")
    parser.add_argument("--gap", default="15-18", help="the bars rewritten, from 1, inclusive (default 15-18)")
    parser.add_argument("--repeats", type=int, default=5, help="timed runs of each (default 5)")
    parser.add_argument("--threads", type=int, default=1, help="torch threads (default 1)")
    parser.add_argument("--quick", action="store_true", help="a smoke run: 12 bars, gap 5-6, 1 run each")
    args = parser.parse_args(argv)
    if args.quick:
        args.bars, args.gap, args.repeats = 12, "5-6", 1
    torch.set_num_threads(args.threads)
    tokenizer, model = load_tokenizer(args.model), load_model(args.model)
    infill.add_infill_tokens(tokenizer)
    if len(tokenizer) > model.config.vocab_size:
        model.resize_token_embeddings(len(tokenizer))
        model.config.event_vocabulary = tokenizer.event_vocabulary
        print("(the model has no infill tokens: appended with fresh rows, see the docstring)")
    print(f"torch {torch.__version__}, {torch.get_num_threads()} thread(s), load average "
          + " ".join(f"{x:.1f}" for x in os.getloadavg()))

    (piece,) = generate_midi(model, tokenizer, composers=[args.composer], bars=args.bars, seed=0)
    ids = np.asarray(tokenizer.events_to_ids(piece.events), dtype=np.int64)
    request = infill_request(tokenizer, ids, infill.parse_bars(args.gap))
    tokens = request.tokens
    bounds = infill.bar_bounds(ids, tokens)
    prefix = ids[: bounds[request.first]]
    kept = len(ids) - (bounds[request.stop] - bounds[request.first])  # events outside the gap
    print(f"piece: {args.bars} bars, {len(ids)} events; gap: bars {args.gap} ({len(ids) - kept} events)")

    def continuation(seed: int) -> int:
        grammar = RemiGrammarLogitsProcessor(tokenizer.event_vocabulary, max_bars=None, bars=request.stop)
        torch.manual_seed(seed)
        (row,) = sample_long(model, [prefix], grammar, pad_token_id=tokenizer.pad_token_id,
                             eos_token_id=tokenizer.eos_token_id, bar_token_id=tokens.bar, do_sample=True)
        return len(row) - len(prefix)  # span and EOS

    def infilling(seed: int) -> int:
        (spliced,) = sample_infills(model, tokenizer, request, num_pieces=1, seed=seed)
        return len(spliced.events) - kept + 1  # span and Infill_End

    timings: dict[str, list[tuple[float, int]]] = {"continuation": [], "infilling": []}
    with torch.inference_mode():
        for run in range(args.repeats):
            for name, write in (("continuation", continuation), ("infilling", infilling)):
                started = time.perf_counter()
                events = write(run)
                timings[name].append((time.perf_counter() - started, events))
    rows = {}
    for name, runs in timings.items():
        seconds = statistics.median(s for s, _ in runs)
        per_event = statistics.median(s / n for s, n in runs)
        rows[name] = (seconds, per_event, statistics.median(n for _, n in runs))
        print(f"{name:13} median {seconds:6.2f} s per span ({rows[name][2]:.0f} events), "
              f"{per_event * 1000:6.1f} ms per event   [runs: " + ", ".join(f"{s:.2f}s/{n}" for s, n in runs) + "]")
    ratio, ratio_event = (rows["infilling"][i] / rows["continuation"][i] for i in (0, 1))
    print(f"infilling / continuation: {ratio:.2f} per span, {ratio_event:.2f} per event "
          "(measured on a loaded machine: compare the ratios)")


if __name__ == "__main__":
    main()
