"""How much does the composer token change the model's predictions of real music? A diagnostic.

    python training/composer_token_effect.py --model g2m_hf/default_model --data data/mastery --split test

Every piece of the split is scored (its first ``--events`` events, mean negative log-likelihood in nats
per event) once with its own composer token and once with each other token the model was fine-tuned on,
and with ``Composer_None``. Rows: the piece's composer; columns: the token it was scored with. A token
that steers strongly gives a clearly lower loss on the diagonal; equal columns mean the prompt hardly
matters, and the style comes from the music itself once a few bars are given.

A second table asks whether the condition reaches the style adapters at all: at each adapter, on the
hidden states of the same pieces, how large the adapter's update is under ``Composer_None`` and how
much it changes when the composer's embedding is given instead (each relative to the hidden state's
norm, averaged over positions). Near-zero differences mean the adapters ignore the composer.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

import datasets
import torch

from g2m_hf.cli import arguments
from g2m_hf.errors import G2MError
from g2m_hf.generation import load_model, load_tokenizer, trained_composers
from g2m_hf.vocab import NO_COMPOSER


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = arguments.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default=None, help="model folder or Hub id (default: the bundled model)")
    parser.add_argument("--data", required=True, help="dataset folder from training/build_dataset.py")
    parser.add_argument("--split", default="test", help="the split to score (default test)")
    parser.add_argument("--events", type=arguments.positive_int, default=512, help="events of each piece scored (default 512)")
    args = parser.parse_args(argv)
    if not (Path(args.data) / "dataset_dict.json").is_file():
        parser.error(f"--data {args.data}: not a dataset folder")
    if args.events < 8:
        parser.error(f"--events {args.events}: must be at least 8")
    return args


@torch.no_grad()
def piece_loss(model, ids: list[int], token_id: int) -> float:
    """Mean next-event negative log-likelihood of ``ids`` with its first (composer) token replaced."""
    input_ids = torch.tensor([[token_id, *ids[1:]]])  # [1, T]
    return float(model(input_ids, labels=input_ids).loss)


@torch.no_grad()
def adapter_response(model, pieces: list[list[int]], token_ids: list[int]) -> dict[int, list[float]]:
    """Per style adapter: the mean relative size of its update under the last of ``token_ids``, then of the
    change of that update under each other token, on the hidden states the adapter sees in ``pieces``."""
    base = model.model
    seen: dict[int, list[torch.Tensor]] = {}
    hooks = [
        base.style_adapters[layer].register_forward_pre_hook(
            lambda module, inputs, layer=layer: seen.setdefault(layer, []).append(inputs[0][0])  # [T, d]
        )
        for layer in model.config.style_adapter_layers
    ]
    try:
        for ids in pieces:
            base(torch.tensor([ids]), style_token_ids=torch.tensor([token_ids[-1]]))
    finally:
        for hook in hooks:
            hook.remove()
    styles = base._scale(base.embed_tokens(torch.tensor(token_ids)))  # [K, d]
    response = {}
    for layer, states in seen.items():
        hidden = torch.cat(states)  # [N, d]
        norm = hidden.norm(dim=-1)  # [N]
        updates = [base.style_adapters[layer](hidden, style) - hidden for style in styles]  # K x [N, d]
        reference = updates[-1]
        sizes = [float((reference.norm(dim=-1) / norm).mean())]
        sizes += [float(((update - reference).norm(dim=-1) / norm).mean()) for update in updates[:-1]]
        response[layer] = sizes
    return response


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        tokenizer, model = load_tokenizer(args.model), load_model(args.model)
        composers = trained_composers(tokenizer, args.model)
        split = datasets.load_from_disk(args.data)[args.split]
    except (G2MError, KeyError) as error:
        print(f"composer_token_effect: error: {error}", file=sys.stderr)
        return 2
    tokens = [*composers, NO_COMPOSER]
    token_ids = [tokenizer.convert_tokens_to_ids(tokenizer.composer_token(name)) for name in tokens]
    print(f"{args.split} pieces, first {args.events} events, nats per event; rows: the piece's composer")
    print("composer (pieces) | " + " | ".join(f"token {name}" for name in tokens))
    for composer in composers:
        rows = [ids[: args.events] for c, ids in zip(split["composer"], split["input_ids"]) if c == composer]
        if not rows:
            continue
        losses = [sum(piece_loss(model, ids, token) for ids in rows) / len(rows) for token in token_ids]
        print(f"{composer} ({len(rows)}) | " + " | ".join(f"{loss:.3f}" for loss in losses))
    if model.config.style_adapter_layers:
        pieces = [ids[: args.events] for ids in split["input_ids"]]
        print("\nstyle adapters: |update| / |hidden| under token None, then |change of the update| / |hidden| per token")
        print("adapter after layer | None | " + " | ".join(f"{name} - None" for name in composers))
        for layer, sizes in adapter_response(model, pieces, token_ids).items():
            print(f"{layer} | " + " | ".join(f"{size:.3f}" for size in sizes))
    return 0


if __name__ == "__main__":
    sys.exit(main())
