"""Training-step speed of G2MForCausalLM against the original network (tests/reference/original_model.py).

One step = forward + cross-entropy + backward, dropout on, on the same weights and the same batch.
Prints tokens/s of the original, of G2M with eager attention and with SDPA, and the ratios, all measured
in this run. The default (width 512 as the paper, 4 layers, 512 tokens, batch 2) takes about a minute on
two CPU cores; `--full` is the paper's shape (12 layers, 2400-token windows, batch 4).

    python benchmarks/forward_speed.py [--layers 4 --seq-len 512 --batch-size 2 --steps 3] [--full]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import torch
import torch.nn.functional as F

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # for tests.reference

from g2m_hf import G2MConfig, G2MForCausalLM  # noqa: E402
from g2m_hf.convert_original import rename_original_state_dict  # noqa: E402
from g2m_hf.vocab import complete_vocabulary  # noqa: E402
from tests.reference.original_model import OriginalDecoderModel  # noqa: E402

PAPER_ADAPTERS = (1, 3, 5, 7, 9)


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--layers", type=int, default=4)
    parser.add_argument("--seq-len", type=int, default=512)
    parser.add_argument("--batch-size", type=int, default=2)
    parser.add_argument("--steps", type=int, default=3, help="timed rounds (after one warm-up round)")
    parser.add_argument("--full", action="store_true", help="the paper's shape: 12 layers, 2400 tokens, batch 4")
    args = parser.parse_args()
    if args.full:
        args.layers, args.seq_len, args.batch_size = 12, 2400, 4
    return args


def time_interleaved(steps: dict[str, callable], rounds: int) -> dict[str, float]:
    """Median seconds per step of each function, after one warm-up call each.

    The functions take turns within every round, so that load from other processes on a shared machine
    slows them alike instead of skewing the ratios.
    """
    durations: dict[str, list[float]] = {name: [] for name in steps}
    for round_index in range(rounds + 1):
        for name, step in steps.items():
            start = time.perf_counter()
            step()
            if round_index:  # round 0 warms up
                durations[name].append(time.perf_counter() - start)
    return {name: statistics.median(values) for name, values in durations.items()}


def main() -> None:
    args = parse_args()
    torch.manual_seed(0)
    vocab_size = len(complete_vocabulary())
    pad = vocab_size - 1
    adapters = tuple(i for i in PAPER_ADAPTERS if i < args.layers)
    original = OriginalDecoderModel(vocab_size, n_layer=args.layers, adapter_positions=adapters).train()
    config = G2MConfig(num_hidden_layers=args.layers, style_adapter_layers=list(adapters))
    weights = rename_original_state_dict(original.state_dict())
    g2m = {}
    for attn in ("eager", "sdpa"):
        g2m[attn] = G2MForCausalLM(config)
        g2m[attn].load_state_dict(weights)
        g2m[attn].set_attn_implementation(attn)
        g2m[attn].train()

    ids = torch.randint(0, pad, (args.batch_size, args.seq_len + 1))
    inputs, targets = ids[:, :-1], ids[:, 1:]  # the original's dec_inp / dec_tgt

    def original_step():
        original.zero_grad(set_to_none=True)
        logits = original(inputs.T)  # [T, B, V]
        F.cross_entropy(logits.reshape(-1, vocab_size), targets.T.reshape(-1), ignore_index=pad).backward()

    def g2m_step(model: G2MForCausalLM):
        def step():
            model.zero_grad(set_to_none=True)
            model(input_ids=inputs, labels=inputs).loss.backward()

        return step

    tokens = args.batch_size * args.seq_len
    print(
        f"training step, d_model 512, {args.layers} layers, adapters {list(adapters)}, batch {args.batch_size} x "
        f"{args.seq_len} tokens, {torch.get_num_threads()} threads, median of {args.steps} interleaved steps"
    )
    seconds = time_interleaved(
        {"original (reference)": original_step, "g2m eager": g2m_step(g2m["eager"]), "g2m sdpa": g2m_step(g2m["sdpa"])},
        args.steps,
    )
    baseline = seconds["original (reference)"]
    for name, value in seconds.items():
        print(f"  {name:22s} {tokens / value:10.0f} tokens/s   x{baseline / value:.2f} vs original")
    print(f"  sdpa / eager speed-up: x{seconds['g2m eager'] / seconds['g2m sdpa']:.2f}")


if __name__ == "__main__":
    main()
