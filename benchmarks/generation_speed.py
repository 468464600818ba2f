"""Generation speed: `G2MForCausalLM.generate` against the original sampling loop, same weights, same run.

Baseline: tests/reference/original_generation.py, a faithful re-implementation of the original loop
(SPEC §5: the whole sequence through the network at every step, one piece at a time, NumPy sampling)
on tests/reference/original_model.py, the original network. Ours: `model.generate` with the key/value
cache (`PreallocatedCache` in float32), the REMI grammar processor and the SPEC §5 sampling settings, on the same
weights converted with `convert_original.model_from_original`.

Both run on random weights of a realistic scale (the full 46M-parameter decoder with adapters). To make
every piece as long as the budget (``--events``), both get a large penalty on EOS (ours through a user
logits processor, which also shows that one works; the grammar still ends each piece with EOS inside the
budget) and no bar limit.

The original's cost per step grows with the sequence length (quadratically overall), so timing it over
a whole 1200-event piece takes many minutes. It is measured like this, and the script says so:
1. the loop itself runs for the first ``--baseline-steps`` steps (every forward pass timed);
2. one step (forward over the whole sequence + the NumPy draw) is timed at a few longer lengths;
3. the time of a full piece is the sum over lengths 1..events-1 of the per-step time, interpolated
   linearly between the measured lengths. Redraws of rejected Beats (a full step each in the original)
   are left out, which favours the baseline.

Ours runs in float32, in bfloat16 (eager attention, as `generation.load_model` loads it) and in int8
(`generation.quantize_int8`), at batch 1, 4 and 8; a hand-written cached decoding loop shows how much of
the per-step time is generate's own overhead.

Run alone if possible: the machine is shared, so figures are noisy (the script prints the load average).
Two threads fighting other processes for two cores can slow down several-fold; ``--threads 1`` gives
steadier (if lower) figures on a busy machine.

    .venv/bin/python benchmarks/generation_speed.py             # full run, about 5-10 minutes
    .venv/bin/python benchmarks/generation_speed.py --threads 1 --baseline-steps 100
    .venv/bin/python benchmarks/generation_speed.py --quick     # a smoke run of the script
"""

from __future__ import annotations

import argparse
import copy
import os
import sys
import time
from pathlib import Path

import numpy as np
import torch
from torch import nn
from transformers import DynamicCache, LogitsProcessor

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from g2m_hf.convert_original import model_from_original
from g2m_hf.generation import quantize_int8
from g2m_hf.grammar import RemiGrammarLogitsProcessor
from g2m_hf.kv_cache import PreallocatedCache
from g2m_hf.vocab import complete_vocabulary
from tests.reference.original_generation import generate_events, nucleus, temperature_softmax
from tests.reference.original_model import OriginalDecoderModel, randomise

VOCAB = complete_vocabulary()
EOS = VOCAB.index("EOS_None")
PAD = VOCAB.index("PAD_None")
COMPOSER = VOCAB.index("Composer_Bach")
EOS_PENALTY = 1e4
NO_BAR_LIMIT = 10**6


class LateEOS(LogitsProcessor):
    """Lowers EOS by a large finite amount: pieces run to the budget, and EOS stays drawable when it
    is the only token the grammar allows."""

    def __call__(self, input_ids, scores):
        scores[:, EOS] -= EOS_PENALTY
        return scores


class OriginalWithLateEOS(nn.Module):
    """The original network with the same EOS penalty on its logits ([T, 1] ids -> [T, 1, V])."""

    def __init__(self, network: nn.Module):
        super().__init__()
        self.network = network

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        logits = self.network(ids)
        logits[..., EOS] -= EOS_PENALTY
        return logits


def load_average() -> str:
    return "load average " + " ".join(f"{load:.2f}" for load in os.getloadavg())


# --- baseline ---------------------------------------------------------------------------------------


def original_step_seconds(network: nn.Module, length: int, repeats: int, rng: np.random.RandomState) -> float:
    """Mean wall time of one original step (forward over `length` tokens + NumPy draw)."""
    ids = torch.tensor([COMPOSER] + rng.randint(0, PAD, size=length - 1).tolist()).unsqueeze(1)  # [T, 1]
    times = []
    with torch.no_grad():
        for _ in range(repeats):
            start = time.perf_counter()
            logits = network(ids)[-1, 0]
            nucleus(temperature_softmax(logits.numpy(), 1.1), 0.99, rng)
            times.append(time.perf_counter() - start)
    return float(np.mean(times))


def baseline(network: nn.Module, events: int, steps: int, lengths: list[int], repeats: int) -> dict:
    """Time the original loop's first `steps` steps, then single steps at `lengths`; extrapolate."""
    run = generate_events(
        OriginalWithLateEOS(network), VOCAB, composer="Bach", max_bars=NO_BAR_LIMIT, max_events=events,
        temperature=1.1, top_p=0.99, seed=0, max_steps=steps,
    )
    step_times = np.array(run.step_seconds)  # step i sees a sequence of about i + 2 tokens
    points = {1: float(np.mean(step_times[: max(1, steps // 10)]))}
    points[steps] = float(np.mean(step_times[-max(1, steps // 10) :]))
    rng = np.random.RandomState(0)
    for length in lengths:
        points[length] = original_step_seconds(network, length, repeats, rng)
    xs = np.array(sorted(points))
    ys = np.array([points[x] for x in xs])
    estimated = float(np.interp(np.arange(1, events), xs, ys).sum())
    return {
        "direct_tokens": len(run.ids or []) - 1,
        "direct_seconds": run.seconds,
        "direct_forward_passes": run.forward_passes,
        "rejected_beats": run.rejected_beats,
        "points": points,
        "estimated_seconds": estimated,
        "tokens_per_second": (events - 1) / estimated,
    }


# --- ours -------------------------------------------------------------------------------------------


def ours(model, batch_size: int, events: int, seed: int = 0) -> dict:
    """`model.generate` for `batch_size` pieces of up to `events` events from a composer prompt."""
    prompt = torch.full((batch_size, 1), COMPOSER)
    torch.manual_seed(seed)
    start = time.perf_counter()
    out = model.generate(
        prompt, max_new_tokens=events - 1, max_events=events, max_bars=NO_BAR_LIMIT, logits_processor=[LateEOS()]
    )
    seconds = time.perf_counter() - start
    generated = int((out[:, 1:] != PAD).sum())
    return {"seconds": seconds, "tokens": generated, "tokens_per_second": generated / seconds, "ids": out}


def bare_loop(model, events: int, seed: int = 0) -> dict:
    """A hand-written cached decoding loop (no grammar, no generate): the floor for per-step overhead."""
    torch.manual_seed(seed)
    ids = torch.tensor([[COMPOSER]])
    cache = PreallocatedCache() if model.dtype == torch.float32 else DynamicCache()  # as generate chooses
    start = time.perf_counter()
    with torch.inference_mode():
        step_input = ids
        for _ in range(events - 1):
            out = model(step_input, cache=cache, use_cache=True, style_token_ids=ids[:, 0])
            probs = (out.logits[:, -1].float() / 1.1).softmax(-1)
            step_input = torch.multinomial(probs, 1)  # [1, 1]
    seconds = time.perf_counter() - start
    return {"seconds": seconds, "tokens_per_second": (events - 1) / seconds}


def grammar_milliseconds_per_step(ids: torch.Tensor) -> float:
    """The grammar processor alone, replayed over a generated piece (incremental updates)."""
    processor = RemiGrammarLogitsProcessor(VOCAB, max_bars=NO_BAR_LIMIT, max_length=ids.shape[1])
    scores = torch.zeros(ids.shape[0], len(VOCAB))
    start = time.perf_counter()
    for length in range(1, ids.shape[1]):
        processor(ids[:, :length], scores)
    return 1000 * (time.perf_counter() - start) / (ids.shape[1] - 1)


def int8_agreement(fp32_model, int8_model, ids: torch.Tensor) -> tuple[float, float]:
    """Top-1 agreement and mean total-variation distance of next-token distributions, teacher-forced."""
    with torch.inference_mode():
        p = fp32_model(ids, use_cache=False).logits.softmax(-1)
        q = int8_model(ids, use_cache=False).logits.softmax(-1)
    top1 = float((p.argmax(-1) == q.argmax(-1)).float().mean())
    tv = float(0.5 * (p - q).abs().sum(-1).mean())
    return top1, tv


# --- report -----------------------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=1200, help="events per piece (default 1200, SPEC §5)")
    parser.add_argument("--baseline-steps", type=int, default=200, help="original loop steps timed directly")
    parser.add_argument("--baseline-lengths", type=int, nargs="+", default=[400, 600, 900, 1200])
    parser.add_argument("--repeats", type=int, default=2, help="timed original steps per length")
    parser.add_argument("--batch-sizes", type=int, nargs="+", default=[4, 8])
    parser.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's choice)")
    parser.add_argument("--quick", action="store_true", help="tiny smoke run: 120 events, short baseline")
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    if args.quick:
        args.events, args.baseline_steps, args.baseline_lengths, args.repeats = 120, 20, [60, 120], 1
        args.batch_sizes = [4]
    lengths = [n for n in args.baseline_lengths if args.baseline_steps < n <= args.events]

    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, {load_average()}")
    torch.manual_seed(0)
    network = randomise(OriginalDecoderModel(len(VOCAB), adapter_positions=(1, 3, 5, 7, 9)), seed=0).eval()
    model = model_from_original(network.state_dict(), VOCAB)  # the same weights as a G2MForCausalLM
    print(f"model: {sum(p.numel() for p in model.parameters()) / 1e6:.1f}M parameters, {args.events} events per piece")

    base = baseline(network, args.events, args.baseline_steps, lengths, args.repeats)
    print(
        f"\nbaseline (original loop, fp32, batch 1): {base['direct_forward_passes']} steps run directly in "
        f"{base['direct_seconds']:.1f}s ({base['rejected_beats']} Beat redraws); one step timed at lengths "
        + ", ".join(f"{n}: {s * 1000:.0f} ms" for n, s in sorted(base["points"].items()))
    )
    print(
        f"  -> estimated {base['estimated_seconds']:.0f}s for a {args.events}-event piece, "
        f"{base['tokens_per_second']:.2f} tokens/s (sum of interpolated step times; redraws not counted)"
    )

    rows = []
    runs = {"float32": model, "bfloat16": copy.deepcopy(model).to(torch.bfloat16)}
    runs["bfloat16"].set_attn_implementation("eager")  # as generation.load_model does for bfloat16
    runs["int8 (dynamic)"] = quantize_int8(copy.deepcopy(model))
    results = {}
    for name, variant in runs.items():
        results[name] = ours(variant, 1, args.events)
        rows.append((f"generate, {name}, batch 1", results[name]))
    reference_ids = results["float32"]["ids"]
    for batch_size in args.batch_sizes:
        rows.append((f"generate, float32, batch {batch_size}", ours(model, batch_size, args.events)))
        rows.append((f"generate, bfloat16, batch {batch_size}", ours(runs["bfloat16"], batch_size, args.events)))
    bare = {name: bare_loop(runs[name], args.events) for name in ("float32", "bfloat16")}

    print(f"\nours ({load_average()}):")
    print(f"  {'run':34s} {'tokens':>7s} {'seconds':>8s} {'tokens/s':>9s} {'vs original':>12s}")
    for label, result in rows:
        ratio = result["tokens_per_second"] / base["tokens_per_second"]
        speed = result["tokens_per_second"]
        print(f"  {label:34s} {result['tokens']:7d} {result['seconds']:8.1f} {speed:9.1f} {ratio:11.1f}x")
    for name, result in bare.items():
        ratio = results[name]["tokens_per_second"] / result["tokens_per_second"]
        speed = result["tokens_per_second"]
        print(f"  bare cached loop, {name}: {speed:.1f} tokens/s (generate reaches {ratio:.0%} of it)")
    one = {name: results[name]["tokens_per_second"] for name in ("float32", "bfloat16")}
    for label, result in rows:
        for name, single in one.items():
            if label.startswith(f"generate, {name}, batch") and not label.endswith("batch 1"):
                print(f"  {label}: {result['tokens_per_second'] / single:.1f}x the throughput of batch 1")
    print(f"  grammar processor alone: {grammar_milliseconds_per_step(reference_ids):.2f} ms per step (batch 1)")
    top1, tv = int8_agreement(model, runs["int8 (dynamic)"], reference_ids)
    print(f"  int8 vs fp32 next-token distributions over the fp32 piece: top-1 agreement {top1:.1%}, mean TV {tv:.3f}")


if __name__ == "__main__":
    main()
