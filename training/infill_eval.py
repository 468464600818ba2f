"""How well rewritten bars fit their piece: bar infilling against its ceiling and its floor, on held-out pieces.

    python training/infill_eval.py --model g2m_hf/default_model --dataset data/mastery --split test \\
        --output outputs/infill_evaluation.json
    python training/infill_eval.py --model MODEL --midi a.mid b.mid --composer bach --output eval.json

Every piece with room for them gets ``--gaps`` gaps of ``--gap-bars`` bars (spread over the piece, each with
``--context-bars`` kept bars on both sides), and each gap is filled three ways:

``original``
    the real bars (the ceiling);
``infilled``
    `g2m_hf.generation.sample_infills`: the model reads the bars on both sides of the gap;
``continuation``
    the model continues the bars before the gap and writes as many bars (the floor: it never sees the
    suffix).

Each span is compared with the ``--context-bars`` bars before and after it (lower is closer):

``density_gap``
    | notes per bar of the span - notes per bar of the context |;
``range_gap``
    the mean of | lowest pitch difference | and | highest pitch difference | (semitones);
``pitch_class_distance``
    total variation distance between the span's and the context's pitch-class histograms (0..1);
``key_agreement``
    whether the span's key (Krumhansl-Kessler profiles, duration-weighted) is the context's (a share;
    higher is closer);
``boundary_distance``
    how the last infilled bar leads into the suffix: the outer voices' pitch distance (mean of top and
    bass, semitones) between the span's last onset and the first onset after it.

And the model's negative log-likelihood per event of the real span under infilling (the bars around the
gap that fit half the window) and under continuation from the same bars before the gap alone: how much
the suffix tells the model. The figures go to ``--output`` (JSON) and to the console; figures for the README and the model
card come from this script.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from g2m_hf import fileio, infill
from g2m_hf.cli import arguments
from g2m_hf.errors import G2MError
from g2m_hf.generation import infill_request, load_model, load_tokenizer, sample_infills
from g2m_hf.grammar import RemiGrammarLogitsProcessor
from g2m_hf.longform import CONTEXT_FRACTION, sample_long, training_window
from g2m_hf.metrics import PieceNotes

SYSTEMS = ("original", "infilled", "continuation")
MEASURES = ("density_gap", "range_gap", "pitch_class_distance", "key_agreement", "boundary_distance")

# Krumhansl & Kessler (1982) key profiles, from C.
_MAJOR = np.array([6.35, 2.23, 3.48, 2.33, 4.38, 4.09, 2.52, 5.19, 2.39, 3.66, 2.29, 2.88])
_MINOR = np.array([6.33, 2.68, 3.52, 5.38, 2.60, 3.53, 2.54, 4.75, 3.98, 2.69, 3.34, 3.17])


# --- measures -------------------------------------------------------------------------------------


def key_of(pitches: np.ndarray, durations: np.ndarray) -> int | None:
    """The best-correlated of the 24 keys (0-11 major from C, 12-23 minor) of the notes' duration-weighted
    pitch-class histogram; ``None`` without notes."""
    if not len(pitches):
        return None
    histogram = np.bincount(pitches % 12, weights=durations, minlength=12)
    profiles = [np.roll(profile, shift) for profile in (_MAJOR, _MINOR) for shift in range(12)]
    scores = [np.corrcoef(histogram, profile)[0, 1] if histogram.std() > 0 else 0.0 for profile in profiles]
    return int(np.argmax(scores))


def span_measures(events: Sequence[str], first: int, stop: int, context_bars: int) -> dict[str, float]:
    """`MEASURES` of bars ``first..stop-1`` (0-based) of a piece against ``context_bars`` bars on each side."""
    notes = PieceNotes.from_events(events)
    span = notes.bars(first, stop - first)
    before, after = notes.bars(first - context_bars, context_bars), notes.bars(stop, context_bars)
    context = np.concatenate([before.pitch, after.pitch])
    context_bar_count = len(before.bar_starts) + len(after.bar_starts)
    measures = {name: math.nan for name in MEASURES}
    measures["density_gap"] = abs(len(span.pitch) / (stop - first) - len(context) / max(context_bar_count, 1))
    if len(span.pitch) and len(context):
        measures["range_gap"] = (abs(int(span.pitch.min()) - int(context.min()))
                                 + abs(int(span.pitch.max()) - int(context.max()))) / 2
        span_classes = np.bincount(span.pitch % 12, minlength=12) / len(span.pitch)
        context_classes = np.bincount(context % 12, minlength=12) / len(context)
        measures["pitch_class_distance"] = float(np.abs(span_classes - context_classes).sum() / 2)
        context_durations = np.concatenate([before.duration, after.duration])
        measures["key_agreement"] = float(key_of(span.pitch, span.duration) == key_of(context, context_durations))
    if len(span.pitch) and len(after.pitch):
        last = span.pitch[span.start == span.start.max()]
        following = after.pitch[after.start == after.start.min()]
        measures["boundary_distance"] = (abs(int(last.max()) - int(following.max()))
                                         + abs(int(last.min()) - int(following.min()))) / 2
    return measures


def span_nll(model: Any, ids: np.ndarray, first: int, stop: int, tokens: infill.InfillTokens) -> dict[str, float]:
    """Mean negative log-likelihood per event of the real bars ``first..stop-1`` of ``ids``, read after the
    infilling context (the bars around the gap that fit half the model's window, as `infill_midi` builds
    it) and after the same bars before the gap without the rest: the difference is what the suffix tells
    the model."""
    budget = int(training_window(model.config) * CONTEXT_FRACTION)
    bounds = infill.bar_bounds(ids, tokens)
    span = ids[bounds[first] : bounds[stop]]
    prompt = infill.infill_context(ids, first, stop, budget, tokens)
    contexts = {"infilling": prompt, "continuation": infill.unarrange(prompt, tokens)[0]}
    result = {}
    for name, context in contexts.items():
        sequence = torch.as_tensor(np.concatenate([context, span]))[None]  # [1, T]
        with torch.no_grad():
            logits = model(sequence).logits[0, len(context) - 1 : -1].float()  # [len(span), V]
        result[name] = float(torch.nn.functional.cross_entropy(logits, sequence[0, len(context) :]))
    return result


# --- the three systems --------------------------------------------------------------------------


def continuation_spans(model: Any, tokenizer: Any, ids: np.ndarray, first: int, stop: int, samples: int,
                       seed: int, sampling: dict[str, Any]) -> list[np.ndarray]:
    """``samples`` spans the model writes after the bars before the gap alone, as many bars as the gap."""
    tokens = infill.InfillTokens.of(tokenizer)
    prefix = ids[: infill.bar_bounds(ids, tokens)[first]]
    grammar = RemiGrammarLogitsProcessor(tokenizer.event_vocabulary, max_bars=None, bars=stop)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        rows = sample_long(model, [prefix] * samples, grammar, pad_token_id=tokenizer.pad_token_id,
                           eos_token_id=tokenizer.eos_token_id, bar_token_id=tokens.bar, do_sample=True, **sampling)
    return [np.asarray(row[len(prefix) : -1], dtype=np.int64) for row in rows]  # EOS dropped


def gap_positions(num_bars: int, gap_bars: int, context_bars: int, gaps: int) -> list[int]:
    """First bars (0-based) of up to ``gaps`` gaps spread evenly over a piece, each with ``context_bars``
    bars on both sides; none when the piece is too short."""
    lowest, highest = context_bars, num_bars - context_bars - gap_bars
    if highest < lowest:
        return []
    return sorted({round(lowest + (highest - lowest) * (i + 1) / (gaps + 1)) for i in range(gaps)})


def evaluate(model: Any, tokenizer: Any, pieces: Sequence[tuple[str, np.ndarray]], gap_bars: int = 4,
             context_bars: int = 4, gaps: int = 2, samples: int = 1, seed: int = 0,
             sampling: dict[str, Any] | None = None) -> dict[str, Any]:
    """The figures of the module docstring over ``pieces`` (name, whole-piece ids)."""
    sampling = sampling or {}
    tokens = infill.InfillTokens.of(tokenizer)
    rows: dict[str, list[dict[str, float]]] = {system: [] for system in SYSTEMS}
    nll: list[dict[str, float]] = []
    used, skipped = [], []
    for index, (name, ids) in enumerate(pieces):
        bounds = infill.bar_bounds(ids, tokens)
        positions = gap_positions(len(bounds) - 1, gap_bars, context_bars, gaps)
        if not positions:
            skipped.append(name)
            continue
        used.append(name)
        for gap, first in enumerate(positions):
            stop = first + gap_bars
            gap_seed = seed + 1000 * index + gap
            request = infill_request(tokenizer, ids, (first + 1, stop))
            spans = {
                "original": [ids[bounds[first] : bounds[stop]]],
                "infilled": [tokenizer.events_to_ids(p.events[p.prompt_length : len(p.events) - (len(ids) - bounds[stop])])
                             for p in sample_infills(model, tokenizer, request, samples, gap_seed, **sampling)],
                "continuation": continuation_spans(model, tokenizer, ids, first, stop, samples, gap_seed, sampling),
            }
            for system, written in spans.items():
                for span in written:
                    whole = infill.splice(ids, first, stop, np.asarray(span, dtype=np.int64), tokens)
                    rows[system].append(span_measures(tokenizer.ids_to_events(whole), first, stop, context_bars))
            nll.append(span_nll(model, ids, first, stop, tokens))
    summary = {system: {measure: _mean([row[measure] for row in rows[system]]) for measure in MEASURES}
               for system in SYSTEMS}
    return {
        "pieces": len(used), "gaps": len(nll), "samples_per_gap": samples, "gap_bars": gap_bars,
        "context_bars": context_bars, "skipped_pieces": [Path(name).name for name in skipped], "measures": summary,
        "nll": {kind: _mean([row[kind] for row in nll]) for kind in ("infilling", "continuation")},
    }  # fmt: skip


def _mean(values: Sequence[float]) -> dict[str, float]:
    """Mean and standard error of the finite values, and how many there were."""
    finite = np.asarray([v for v in values if math.isfinite(v)], dtype=float)
    if not finite.size:
        return {"mean": math.nan, "stderr": math.nan, "n": 0}
    stderr = float(finite.std(ddof=1) / math.sqrt(finite.size)) if finite.size > 1 else math.nan
    return {"mean": round(float(finite.mean()), 4), "stderr": round(stderr, 4), "n": int(finite.size)}


# --- the script ---------------------------------------------------------------------------------


def load_pieces(args: argparse.Namespace, tokenizer: Any) -> list[tuple[str, np.ndarray]]:
    """(name, ids) of the pieces to measure: a dataset split, or MIDI files encoded with ``--composer``."""
    if args.midi:
        return [(str(path), np.asarray(tokenizer.encode_midi(path, composer=args.composer), dtype=np.int64))
                for path in args.midi]
    import datasets

    split = datasets.load_from_disk(str(args.dataset))[args.split]
    rows = split.select(range(min(len(split), args.limit))) if args.limit else split
    return [(row["source"], np.asarray(row["input_ids"], dtype=np.int64)) for row in rows]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", required=True, help="a model folder trained with infilling examples")
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--dataset", type=Path, help="a dataset folder (training/build_dataset.py)")
    source.add_argument("--midi", nargs="+", type=Path, help="MIDI files instead")
    parser.add_argument("--split", default="test", help="the dataset's held-out split (default test)")
    parser.add_argument("--composer", default=None, help="with --midi: the composer token to read them with")
    parser.add_argument("--limit", type=int, default=None, help="at most this many pieces")
    parser.add_argument("--gap-bars", type=int, default=4)
    parser.add_argument("--context-bars", type=int, default=4, help="kept bars each side a span is compared with")
    parser.add_argument("--gaps", type=int, default=2, help="gaps per piece")
    parser.add_argument("--samples", type=int, default=1, help="spans written per gap and system")
    parser.add_argument("--seed", type=int, default=0)
    arguments.add_sampling_options(parser)
    parser.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's)")
    parser.add_argument("--output", type=Path, required=True, help="the JSON file of the figures")
    return parser


def main(argv: Sequence[str] | None = None) -> dict[str, Any]:
    args = build_parser().parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    tokenizer = load_tokenizer(args.model)
    infill.InfillTokens.of(tokenizer)  # a model without infill tokens is refused before any work
    pieces = load_pieces(args, tokenizer)
    model = load_model(args.model)
    settings = {"temperature": args.temperature, "top_p": args.top_p, "style_guidance": args.style_guidance,
                "style_guidance_contrast": args.style_guidance_contrast}
    figures = evaluate(model, tokenizer, pieces, args.gap_bars, args.context_bars, args.gaps, args.samples, args.seed,
                       {key: value for key, value in settings.items() if value is not None})
    figures["model"] = str(args.model)
    figures["source"] = [str(path) for path in args.midi] if args.midi else f"{args.dataset} ({args.split})"
    fileio.write_text(args.output, json.dumps(figures, indent=1) + "\n")
    print(f"{figures['gaps']} gaps of {args.gap_bars} bars in {figures['pieces']} pieces "
          f"({len(figures['skipped_pieces'])} too short)")
    print(f"{'':22}" + "".join(f"{system:>14}" for system in SYSTEMS))
    for measure in MEASURES:
        cells = (figures["measures"][system][measure] for system in SYSTEMS)
        print(f"{measure:22}" + "".join(f"{c['mean']:>8.3f} ±{c['stderr']:<5.3f}" for c in cells))
    nll = figures["nll"]
    print(f"NLL per event of the real span: infilling {nll['infilling']['mean']:.3f}, "
          f"continuation {nll['continuation']['mean']:.3f}")
    return figures


if __name__ == "__main__":
    try:
        main()
    except G2MError as error:
        sys.exit(f"infill_eval: error: {error}")
