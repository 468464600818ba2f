"""Real-time factor of generation (issue 26): seconds of music made per second of waiting, loading included.

Measured in ONE run, so that the ratios hold on a shared, noisy machine:

- ``two-forward``: the guided model (``--guided-model``) on the first guidance path (the contrast rows in a
  second forward with their own key/value cache), kept here only, as the baseline (`TwoForwardGuidance`);
- ``one-forward``: the guided model on the batched path (styled and contrast rows in one forward,
  `style_guidance.py`);
- ``one-forward int8``: the same with int8 weights (`generation.quantize_int8`): the previous default;
- ``distilled int8``: the bundled model, whose guidance is distilled into its weights (one row per piece,
  `training/distill_guidance.py`), with int8 weights: ``g2m-generate``'s default.

``--guided-model`` is the model before distillation, sampled at its own generation config (guidance 2 against
the other composers): the previous bundled model, e.g. ``git worktree add /tmp/guided e504f7b`` and
``--guided-model /tmp/guided/g2m_hf/default_model`` (default: the bundled model itself, whose guidance is 1).

Part 1, the decoding step: ms per step at batch 1 and 4 (Mozart, tempo 120, 8 bars, seed 7), events per
second, and what the step is made of (the forward of B and of 2B rows, the grammar processor, the rest:
generate's own work, guidance's combination, temperature / top-p, sampling), against the step the
machine's memory bandwidth allows (every weight read once per forward; the bandwidth is measured here
with a matrix-vector product of the model's size).

Part 2, the real-time factor per composer at each model's defaults (the model's own tempo class) and at
``--tempo 120``, as ``g2m-generate`` works: load the model and tokenizer, generate, write every piece's
.mid/.txt/.png. One piece (``--bars`` bars), and ``--pieces`` pieces in one call
(batches of 4). Goal (issue 26): one piece >= 5x real time, 6 pieces in one call >= 10x.

Part 3, style: float32 and int8 pieces from the same seeds, judged by both bundled classifiers
(`evaluation.measure_style`), with their texture: do the faster weights keep the style?

Variants run interleaved (A B C A B C ...) so that a change of the machine's load hits all of them.

    nice python benchmarks/realtime.py                       # the whole run, ~20-40 minutes here
    nice python benchmarks/realtime.py --quick               # a smoke run (2 bars, one composer)
    nice python benchmarks/realtime.py --part step           # the decoding step only (also: realtime, style)
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import json
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import torch
from transformers import LogitsProcessor, LogitsProcessorList

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from g2m_hf.cli import arguments  # noqa: E402
from g2m_hf.generation import generate_midi, load_model_as, load_tokenizer, output_stem, write_piece  # noqa: E402
from g2m_hf.grammar import RemiGrammarLogitsProcessor  # noqa: E402
from g2m_hf.kv_cache import PreallocatedCache  # noqa: E402
from g2m_hf.modeling_g2m import G2MForCausalLM  # noqa: E402
from g2m_hf.style_guidance import COMPOSER_NONE  # noqa: E402


class TwoForwardGuidance(LogitsProcessor):
    """The guidance processor as it was before the batched forward (the baseline): every step runs the
    unstyled rows through the model a second time, with their own key/value cache."""

    def __init__(self, model: Any, guidance: float, unstyled_token_id: int, pad_token_id: int):
        self.model, self.guidance = model, float(guidance)
        self.unstyled_token_id, self.pad_token_id = unstyled_token_id, pad_token_id
        self._cache: Any = None
        self._attention_mask: torch.Tensor | None = None

    def _unstyled_logits(self, input_ids: torch.Tensor) -> torch.Tensor:
        batch_size = input_ids.shape[0]
        style = torch.full((batch_size,), self.unstyled_token_id, dtype=torch.long, device=input_ids.device)
        if self._attention_mask is None:
            mask = (input_ids != self.pad_token_id).long()
            first = mask.argmax(dim=-1)
            new_tokens = input_ids.clone()
            new_tokens[torch.arange(batch_size, device=input_ids.device), first] = self.unstyled_token_id
            self._cache = PreallocatedCache() if self.model.dtype == torch.float32 else None
        else:
            new_tokens = input_ids[:, self._attention_mask.shape[1] :]
            mask = torch.cat([self._attention_mask, torch.ones_like(new_tokens)], dim=1)
        output = self.model(
            new_tokens, attention_mask=mask, cache=self._cache, style_token_ids=style, use_cache=True, logits_to_keep=1
        )
        self._cache, self._attention_mask = output.cache, mask
        return output.logits[:, -1]

    @torch.no_grad()
    def __call__(self, input_ids: torch.LongTensor, scores: torch.FloatTensor) -> torch.FloatTensor:
        styled = torch.log_softmax(scores.float(), dim=-1)
        unstyled = torch.log_softmax(self._unstyled_logits(input_ids).float(), dim=-1)
        return (unstyled + self.guidance * (styled - unstyled)).to(scores.dtype)


@contextlib.contextmanager
def two_forward_guidance():
    """`G2MForCausalLM.generate` with the baseline processor instead of the batched guidance."""
    original = G2MForCausalLM._style_guidance_processors

    def processors(self, style_guidance, options, generation_config, logits_processor, kwargs):
        chosen = original(self, style_guidance, options, generation_config, logits_processor, kwargs)
        if len(chosen) == len(LogitsProcessorList(logits_processor or [])):
            return chosen  # no guidance asked for
        new = chosen[0]
        baseline = TwoForwardGuidance(self, new.guidance, self.config.event_vocabulary.index(COMPOSER_NONE),
                                      new.pad_token_id)
        return LogitsProcessorList([baseline, *chosen[1:]])

    G2MForCausalLM._style_guidance_processors = processors
    try:
        yield
    finally:
        G2MForCausalLM._style_guidance_processors = original


VARIANTS = {  # name: (model: "guided" or "distilled", weights, baseline guidance path)
    "two-forward": ("guided", "float32", True),
    "one-forward": ("guided", "float32", False),
    "one-forward int8": ("guided", "int8", False),
    "distilled int8": ("distilled", "int8", False),
}
MODELS: dict[str, str | None] = {"guided": None, "distilled": None}
"""The folders of the two models (None: the bundled one); ``--guided-model`` sets the first."""


def run_variant(name: str):
    """The variant's model folder, weights, and the guidance path it runs under."""
    model, dtype, baseline = VARIANTS[name]
    return MODELS[model], dtype, (two_forward_guidance() if baseline else contextlib.nullcontext())


# --- part 1: the decoding step ----------------------------------------------------------------------


def matvec_bandwidth(parameters: int, repeats: int = 200) -> float:
    """Bytes per second of a float32 matrix-vector product reading ``parameters`` weights (the model's size)."""
    side = int(parameters**0.5)
    weight, vector = torch.randn(side, side), torch.randn(side)
    for _ in range(10):
        weight @ vector
    start = time.perf_counter()
    for _ in range(repeats):
        weight @ vector
    return weight.numel() * 4 * repeats / (time.perf_counter() - start)


def forward_ms(model, tokenizer, batch_size: int, context: int = 300, steps: int = 100) -> float:
    """ms of one cached decoding forward of ``batch_size`` rows after ``context`` tokens (no processors)."""
    ids = torch.randint(0, len(tokenizer.event_vocabulary) - 1, (batch_size, context))
    style = ids[:, 0]
    with torch.no_grad():
        cache = PreallocatedCache()
        model(ids, cache=cache, use_cache=True, style_token_ids=style, logits_to_keep=1)
        new = ids[:, -1:]
        for _ in range(5):
            model(new, cache=cache, use_cache=True, style_token_ids=style, logits_to_keep=1)
        start = time.perf_counter()
        for _ in range(steps):
            model(new, cache=cache, use_cache=True, style_token_ids=style, logits_to_keep=1)
    return (time.perf_counter() - start) / steps * 1000


def grammar_ms(tokenizer, rows: torch.Tensor) -> float:
    """ms of the grammar processor per step, replaying ``rows`` ([B, T] generated pieces) token by token."""
    grammar = RemiGrammarLogitsProcessor(tokenizer.event_vocabulary, max_bars=None)
    scores = torch.zeros(rows.shape[0], len(tokenizer.event_vocabulary))
    first = 10
    grammar(rows[:, :first], scores)
    start = time.perf_counter()
    for length in range(first + 1, rows.shape[1] + 1):
        grammar(rows[:, :length], scores)
    return (time.perf_counter() - start) / (rows.shape[1] - first) * 1000


def step_part(args) -> dict:
    tokenizer = load_tokenizer()
    results: dict[str, Any] = {}
    models = {name: load_model_as(*run_variant(name)[:2]) for name in VARIANTS}
    parameters = sum(p.numel() for p in load_model_as().parameters())
    bandwidth = matvec_bandwidth(parameters)
    limit_ms = parameters * 4 / bandwidth * 1000
    results["bandwidth"] = {"parameters": parameters, "bytes_per_second": bandwidth, "forward_limit_ms": limit_ms}
    settings = dict(bars=args.step_bars, tempo=120, seed=7)
    for batch_size in (1, 4):
        timings: dict[str, list[float]] = {name: [] for name in VARIANTS}
        events: dict[str, int] = {}
        for _ in range(args.repeats):
            for name in VARIANTS:
                *_, path = run_variant(name)
                parts: dict[str, float] = {}
                with path, timed_parts(parts):
                    sample = _generate_timed(models[name], tokenizer, batch_size, settings)
                timings[name].append(sample["seconds"] / sample["steps"] * 1000)
                if timings[name][-1] == min(timings[name]):  # the parts of the fastest repeat
                    results.setdefault("parts", {})[f"{name} B{batch_size}"] = {
                        key: value / sample["steps"] * 1000 for key, value in parts.items()}
                events[name] = sample["events"]
                results.setdefault("seconds", {}).setdefault(f"{name} B{batch_size}", []).append(sample["seconds"])
        for name in VARIANTS:
            step = min(timings[name])
            seconds = min(results["seconds"][f"{name} B{batch_size}"])
            results[f"{name} B{batch_size}"] = {"ms_per_step": step, "events_per_second": events[name] / seconds}
    pieces = generate_midi(models["one-forward"], tokenizer, ["Mozart"], num_pieces=4, **settings)
    shortest = min(len(p.events) for p in pieces)
    rows = torch.tensor([tokenizer.convert_tokens_to_ids(p.events[:shortest]) for p in pieces])
    for name in ("one-forward", "one-forward int8"):
        for batch_size in (1, 2, 4, 8):
            results[f"forward {name} B{batch_size}"] = min(forward_ms(models[name], tokenizer, batch_size)
                                                           for _ in range(args.repeats))
    for batch_size in (1, 4):
        results[f"grammar B{batch_size}"] = min(grammar_ms(tokenizer, rows[:batch_size]) for _ in range(args.repeats))
    return results


@contextlib.contextmanager
def timed_parts(parts: dict[str, float]):
    """Adds the seconds spent in the model's forward, the grammar and the whole processors list into ``parts``."""
    from transformers.generation.logits_process import LogitsProcessorList as Processors

    targets = {"forward": (G2MForCausalLM, "forward"), "grammar": (RemiGrammarLogitsProcessor, "__call__"),
               "processors": (Processors, "__call__")}
    originals = {name: getattr(owner, attribute) for name, (owner, attribute) in targets.items()}
    inside_processors = [0]

    def timed(name, function):
        @functools.wraps(function)  # generate reads the forward's signature
        def call(*args, **kwargs):
            start, inside = time.perf_counter(), inside_processors[0]
            inside_processors[0] += name == "processors"
            try:
                return function(*args, **kwargs)
            finally:
                inside_processors[0] -= name == "processors"
                seconds = time.perf_counter() - start
                parts[name] = parts.get(name, 0.0) + seconds
                if name == "forward" and inside:  # the baseline's second forward, run by its processor
                    parts["forward in processors"] = parts.get("forward in processors", 0.0) + seconds
        return call

    for name, (owner, attribute) in targets.items():
        setattr(owner, attribute, timed(name, originals[name]))
    try:
        yield parts
    finally:
        for name, (owner, attribute) in targets.items():
            setattr(owner, attribute, originals[name])


def _generate_timed(model, tokenizer, batch_size, settings) -> dict:
    """Seconds, events and decoding steps of one batch of Mozart pieces (steps: the longest piece's new events,
    as the batch decodes until its last row ends)."""
    start = time.perf_counter()
    pieces = generate_midi(model, tokenizer, ["Mozart"], num_pieces=batch_size, batch_size=batch_size, **settings)
    seconds = time.perf_counter() - start
    new = [len(p.events) - p.prompt_length for p in pieces]
    return {"seconds": seconds, "events": sum(new), "steps": max(new)}


def print_step(results: dict) -> None:
    bandwidth = results["bandwidth"]
    limit = bandwidth["forward_limit_ms"]
    print(f"\nmatrix-vector bandwidth {bandwidth['bytes_per_second'] / 1e9:.1f} GB/s: one float32 forward of "
          f"{bandwidth['parameters'] / 1e6:.1f}M parameters can take {limit:.2f} ms ({1000 / limit:.0f} events/s)")
    print("\n| path | batch | ms/step | events/s | step / two-forward | step / bandwidth limit |")
    print("|---|---|---|---|---|---|")
    for batch_size in (1, 4):
        base = results[f"two-forward B{batch_size}"]["ms_per_step"]
        for name in VARIANTS:
            r = results[f"{name} B{batch_size}"]
            print(f"| {name} | {batch_size} | {r['ms_per_step']:.2f} | {r['events_per_second']:.0f} | "
                  f"{r['ms_per_step'] / base:.2f} | {r['ms_per_step'] / limit:.1f} |")
    print("\n| part of a step | B=1 | B=2 | B=4 | B=8 |")
    print("|---|---|---|---|---|")
    for name in ("one-forward", "one-forward int8"):
        cells = " | ".join(f"{results[f'forward {name} B{b}']:.2f}" for b in (1, 2, 4, 8))
        print(f"| forward, {VARIANTS[name][1]} (ms) | {cells} |")
    print(f"| grammar processor (ms) | {results['grammar B1']:.2f} | | {results['grammar B4']:.2f} | |")
    print("\nInside generate (ms per step, the fastest repeat; the two-forward path's second forward runs "
          "inside its processor):")
    print("| path | batch | step | model forward(s) | grammar | other processors | the rest (generate, sampling) |")
    print("|---|---|---|---|---|---|---|")
    for batch_size in (1, 4):
        for name in VARIANTS:
            step = results[f"{name} B{batch_size}"]["ms_per_step"]
            p = results["parts"][f"{name} B{batch_size}"]
            inner = p.get("forward in processors", 0.0)
            others = p["processors"] - p["grammar"] - inner
            print(f"| {name} | {batch_size} | {step:.2f} | {p['forward']:.2f} | {p['grammar']:.2f} | "
                  f"{others:.2f} | {step - p['processors'] - p['forward'] + inner:.2f} |")


# --- part 2: real-time factor ----------------------------------------------------------------------


def realtime_run(name: str, composer: str, num_pieces: int, args, tempo: int | None, folder: Path) -> dict:
    """One g2m-generate-like call: load, generate, write; seconds of music over seconds of waiting."""
    folder_of_model, dtype, path = run_variant(name)
    start = time.perf_counter()
    with path:
        model, tokenizer = load_model_as(folder_of_model, dtype), load_tokenizer(folder_of_model)
        pieces = generate_midi(model, tokenizer, [composer], num_pieces=num_pieces, seed=args.seed,
                               bars=args.bars, tempo=tempo)
    taken: set[str] = set()
    for piece in pieces:
        write_piece(piece, output_stem(folder, piece.composer, taken, overwrite=True))
    seconds = time.perf_counter() - start
    music = sum(piece.midi.get_end_time() for piece in pieces)
    events = sum(len(piece.events) - piece.prompt_length for piece in pieces)
    return {"seconds": seconds, "music": music, "events": events, "rtf": music / seconds}


def realtime_part(args) -> dict:
    results: dict[str, Any] = {}
    with tempfile.TemporaryDirectory() as folder:
        warm = generate_midi(load_model_as(), load_tokenizer(), ["Bach"], bars=1, tempo=120)
        write_piece(warm[0], Path(folder) / "warm")  # imports (matplotlib...) paid before timing
        for tempo in args.tempos:
            for composer in args.composers:
                for num_pieces in (1, args.pieces):
                    for name in VARIANTS:
                        key = f"{composer} tempo={tempo or 'model'} pieces={num_pieces} {name}"
                        results[key] = realtime_run(name, composer, num_pieces, args, tempo, Path(folder))
                        r = results[key]
                        print(f"{key}: {r['events']} events, {r['seconds']:.1f} s for {r['music']:.0f} s of music: "
                              f"{r['rtf']:.1f}x", flush=True)
    return results


def print_realtime(results: dict, args) -> None:
    print("\n| composer | tempo | pieces | " + " | ".join(f"{n} RTF" for n in VARIANTS) + " | "
          + " | ".join(f"{n} / two-forward" for n in list(VARIANTS)[1:]) + " |")
    print("|---|---|---|" + "---|" * (2 * len(VARIANTS) - 1))
    for tempo in args.tempos:
        for composer in args.composers:
            for num_pieces in (1, args.pieces):
                key = f"{composer} tempo={tempo or 'model'} pieces={num_pieces}"
                rtf = [results[f"{key} {n}"]["rtf"] for n in VARIANTS]
                print(f"| {composer} | {tempo or 'model'} | {num_pieces} | " + " | ".join(f"{x:.1f}x" for x in rtf)
                      + " | " + " | ".join(f"{x / rtf[0]:.2f}" for x in rtf[1:]) + " |")


# --- part 3: style of the faster weights ----------------------------------------------------------


def style_part(args) -> dict:
    """Recognition (both bundled judges) and texture of float32 and int8 pieces, same seeds, one-forward guidance."""
    from g2m_hf.evaluation import FEATURE_CLASSIFIER_FILE, ComposerClassifier, default_classifier_path
    from g2m_hf.evaluation.style import feature_judge, measure_style, network_judge

    folder = default_classifier_path()
    judges = {"network": network_judge(ComposerClassifier.from_pretrained(folder)),
              "features": feature_judge(folder / FEATURE_CLASSIFIER_FILE)}
    tokenizer = load_tokenizer()
    results = {}
    for dtype in ("float32", "int8"):
        start = time.perf_counter()
        results[dtype] = measure_style(load_model_as(dtype=dtype), tokenizer, args.composers, judges,
                                       pieces_per_composer=args.style_pieces, seed=args.seed, bars=args.bars,
                                       batch_size=args.style_pieces)
        results[dtype]["seconds"] = time.perf_counter() - start
    return results


def print_style(results: dict, args) -> None:
    print(f"\n{args.style_pieces} pieces per composer, {args.bars} bars, seed {args.seed}, guidance at the default")
    print("| weights | composer | network judge | feature judge | notes/bar | onsets/bar | <=16th | seconds |")
    print("|---|---|---|---|---|---|---|---|")
    for dtype, r in results.items():
        for composer in args.composers:
            rates = [r["recognition"][judge]["per_composer"][composer]["rate"] for judge in ("network", "features")]
            d = r["described"][composer]
            print(f"| {dtype} | {composer} | {rates[0]:.2f} | {rates[1]:.2f} | {d['notes_per_bar']:.1f} | "
                  f"{d['onsets_per_bar']:.1f} | {d['dur_16th_or_less']:.2f} | {r['seconds']:.0f} |")
        means = [r["recognition"][judge]["mean"] for judge in ("network", "features")]
        print(f"| {dtype} | mean | {means[0]:.2f} | {means[1]:.2f} | | | | |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--part", nargs="+", choices=("step", "realtime", "style"), default=["step", "realtime", "style"])
    parser.add_argument("--composers", nargs="+", default=["Bach", "Beethoven", "Mozart"])
    parser.add_argument("--bars", type=int, default=16)
    parser.add_argument("--pieces", type=int, default=6)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--tempos", nargs="+", default=["model", "120"], help="'model': the model's choice")
    parser.add_argument("--step-bars", type=int, default=8)
    parser.add_argument("--style-pieces", type=int, default=8, help="pieces per composer judged per weight type")
    parser.add_argument("--repeats", type=int, default=2, help="repeats of each step measure (the best is kept)")
    parser.add_argument("--threads", type=int, default=1, help="torch threads (1: steadier on a busy machine)")
    parser.add_argument("--guided-model", type=arguments.existing_dir, default=None,
                        help="the model before distillation (default: the bundled model)")
    parser.add_argument("--output", type=Path, help="also write every figure to this JSON file")
    parser.add_argument("--quick", action="store_true", help="a smoke run of the script")
    args = parser.parse_args()
    args.tempos = [None if t == "model" else int(t) for t in args.tempos]
    MODELS["guided"] = args.guided_model
    if args.quick:
        args.composers, args.bars, args.pieces, args.step_bars, args.repeats = ["Mozart"], 2, 2, 1, 1
        args.style_pieces = 2
        args.tempos = [120]
    torch.set_num_threads(args.threads)
    print(f"load average {os.getloadavg()}, torch threads {torch.get_num_threads()}: figures measured on a "
          "shared machine; the ratios are the result")
    results: dict[str, Any] = {"settings": {k: v for k, v in vars(args).items() if k != "output"}}
    if "step" in args.part:
        results["step"] = step_part(args)
        print_step(results["step"])
    if "realtime" in args.part:
        results["realtime"] = realtime_part(args)
        print_realtime(results["realtime"], args)
    if "style" in args.part:
        results["style"] = style_part(args)
        print_style(results["style"], args)
    if args.output:
        args.output.write_text(json.dumps(results, indent=1, default=str))


if __name__ == "__main__":
    main()
