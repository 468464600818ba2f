"""What grouping training windows by length buys a pretraining recipe: padding and events per second.

The collator pads every batch to its longest window (`G2MDataCollator`), so a batch that draws one long
piece and three short ones computes mostly padding. `TrainingArguments(train_sampling_strategy=
"group_by_length")` batches pieces of similar length instead (within mega-batches of 50 batches). This
script draws one epoch of batches from the recipe's training split in both orders, as the Trainer would,
and prints for each the share of computed positions that are real events, then times training steps
(forward + backward + Adam, the recipe's model and window) on the same number of batches spread over the
epoch, the two orders taking turns, and prints events per second and the ratio. Needs the recipe's
dataset (training/build_dataset.py; the default recipe's data/general takes ~30 min to build).

    python benchmarks/training_padding.py [--config configs/default_pretrain.yaml --steps 24]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import torch
from torch.utils.data import RandomSampler

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # for training

from g2m_hf import G2MForCausalLM  # noqa: E402
from g2m_hf.cli import arguments  # noqa: E402
from training.common import load_tokenizer, model_config  # noqa: E402
from training.config import DataSection, load_recipe, section, typed_section  # noqa: E402
from training.datasource import lm_collators, load_training_data  # noqa: E402
from training.trainer import EpochSeededLengthGroupedSampler  # noqa: E402


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config", type=arguments.existing_file, default="configs/default_pretrain.yaml",
                        help="a pretraining recipe")
    parser.add_argument("--steps", type=arguments.positive_int, default=24, help="timed training steps per order")
    return parser.parse_args()


def batch_orders(lengths: list[int], batch_size: int, seed: int) -> dict[str, list[list[int]]]:
    """One epoch of batches (lists of row indices) in random order and grouped by length."""
    samplers = {
        "random": RandomSampler(range(len(lengths)), generator=torch.Generator().manual_seed(seed)),
        "grouped": EpochSeededLengthGroupedSampler(batch_size, lengths, seed=seed),  # the one G2MTrainer uses
    }
    orders = {}
    for name, sampler in samplers.items():
        rows = list(sampler)
        orders[name] = [rows[i : i + batch_size] for i in range(0, len(rows) - batch_size + 1, batch_size)]
    return orders


def main() -> None:
    options = parse_args()
    recipe = load_recipe(options.config)
    data_section = typed_section(recipe, "data", DataSection, options.config)
    training = section(recipe, "training")
    batch_size, seed = training["per_device_train_batch_size"], training.get("seed", 42)
    tokenizer = load_tokenizer(recipe.get("tokenizer"))
    train = load_training_data(data_section, tokenizer).splits["train"]
    collator, _ = lm_collators(tokenizer, data_section, seed=seed, process_index=0)
    orders = batch_orders(list(train["num_events"]), batch_size, seed)
    print(f"{options.config}: {len(train)} pieces, window {data_section.max_length}, batch {batch_size}")

    batches: dict[str, list[dict[str, torch.Tensor]]] = {}
    for name, order in orders.items():
        stride = max(1, len(order) // options.steps)  # timed batches spread over the epoch, not the first mega-batch
        real = computed = 0
        batches[name] = []
        for index, rows in enumerate(order):  # the whole epoch's windows: the padding figure
            batch = collator([train[row] for row in rows])
            real += int(batch["attention_mask"].sum())
            computed += batch["attention_mask"].numel()
            if index % stride == 0 and len(batches[name]) < options.steps:
                batches[name].append(batch)
        print(f"{name:8s} real events per computed position: {real / computed:.2f} ({len(order)} batches)")

    torch.manual_seed(seed)
    model = G2MForCausalLM(model_config(section(recipe, "model"), tokenizer)).train()
    optimizer = torch.optim.AdamW(model.parameters(), lr=training["learning_rate"], weight_decay=0.0)

    def step(batch: dict[str, torch.Tensor]) -> float:
        start = time.perf_counter()
        model(**batch).loss.backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        return time.perf_counter() - start

    seconds: dict[str, list[float]] = {name: [] for name in batches}
    step(batches["random"][0])  # warm-up
    rounds = min(len(timed) for timed in batches.values())
    for index in range(rounds):  # the orders take turns, so that other load slows both alike
        for name in batches:
            seconds[name].append(step(batches[name][index]))
    rates = {}
    for name in batches:
        events = sum(int(batch["attention_mask"].sum()) for batch in batches[name])
        rates[name] = events / sum(seconds[name])
        print(f"{name:8s} {rates[name]:7.0f} events/s  (median step {statistics.median(seconds[name]):.2f} s)")
    print(f"grouped / random: {rates['grouped'] / rates['random']:.2f}x events per second")


if __name__ == "__main__":
    main()
