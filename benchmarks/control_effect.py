"""How much the texture-control tokens change the model's predictions on real music (docs/texture.md#steering).

For held-out pieces of a dataset (``--dataset``, its ``test`` split, the first ``--window`` events of each),
the model reads each piece three times: with every bar's control tokens at their real levels, with every
register control set to ``low``, and set to ``high`` (the other two controls at their real levels). At every
real ``Note_Pitch`` position it takes the model's expected pitch (over the pitch events alone), and at
every position after a note its probability that another note follows at the same onset. It prints, per
composer, the mean of each under the three readings: how far the register tokens move the predicted
register, in semitones, when the bars before are there to predict it from.

    python benchmarks/control_effect.py --dataset data/mastery --pieces 8
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import datasets
import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from g2m_hf import control_tokens  # noqa: E402
from g2m_hf.generation import load_model, load_tokenizer  # noqa: E402
from g2m_hf.vocab import CONTROL_KINDS, NO_COMPOSER, split_event  # noqa: E402

REGISTER = CONTROL_KINDS.index("Register")
READINGS = {"real": None, "register low": 0, "register high": 2}


def predictions(model, ids: np.ndarray, pitch_ids: torch.Tensor, pitches: torch.Tensor,
                duration_ids: torch.Tensor) -> tuple[float, float]:
    """The mean expected pitch at the piece's pitch positions, and the mean probability of a pitch right after
    a note (another note at the same onset), from one full forward of ``ids``."""
    with torch.no_grad():
        log_probs = torch.log_softmax(model(torch.as_tensor(ids).unsqueeze(0)).logits[0, :-1].float(), dim=-1)  # [T-1, V]
    following = torch.as_tensor(ids[1:])
    at_pitch = torch.isin(following, pitch_ids)  # predicting a real pitch
    over_pitches = torch.softmax(log_probs[at_pitch][:, pitch_ids], dim=-1)  # [N, P] the pitch distribution alone
    after_note = torch.isin(torch.as_tensor(ids[:-1]), duration_ids)  # the position after a Note_Duration
    another = log_probs[after_note][:, pitch_ids].exp().sum(-1)  # [M]
    return float((over_pitches @ pitches).mean()), float(another.mean())


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dataset", required=True, help="dataset folder with a test split (training/build_dataset.py)")
    parser.add_argument("--model", default=None, help="model folder (default: the bundled model)")
    parser.add_argument("--pieces", type=int, default=8, help="pieces per composer (default 8)")
    parser.add_argument("--window", type=int, default=512, help="events read of each piece (default 512)")
    args = parser.parse_args()
    torch.set_grad_enabled(False)
    model, tokenizer = load_model(args.model), load_tokenizer(args.model)
    tokens = control_tokens.ControlTokens.of(tokenizer)
    vocabulary = tokenizer.event_vocabulary
    pitch_ids = torch.tensor([i for i, e in enumerate(vocabulary) if split_event(e)[0] == "Note_Pitch"])
    pitches = torch.tensor([float(split_event(vocabulary[i])[1]) for i in pitch_ids.tolist()])
    duration_ids = torch.tensor([i for i, e in enumerate(vocabulary) if split_event(e)[0] == "Note_Duration"])
    test = datasets.load_from_disk(args.dataset)["test"]
    results: dict[str, dict[str, list[tuple[float, float]]]] = {}
    for composer, row_ids in zip(test["composer"], test["input_ids"]):
        readings = results.setdefault(composer, {name: [] for name in READINGS})
        if composer == NO_COMPOSER or len(readings["real"]) >= args.pieces:
            continue
        ids = np.asarray(row_ids[: args.window])
        levels = control_tokens.bar_levels(tokenizer.ids_to_events(ids))
        for name, level in READINGS.items():
            changed = levels.copy()
            if level is not None:
                changed[:, REGISTER] = np.where(changed[:, REGISTER] >= 0, level, changed[:, REGISTER])
            readings[name].append(predictions(model, control_tokens.insert(ids, changed, tokens)[: args.window],
                                              pitch_ids, pitches, duration_ids))
    print("composer | pieces | " + " | ".join(f"expected pitch, {name}" for name in READINGS)
          + " | high - low | " + " | ".join(f"P(another note), {name}" for name in READINGS))
    for composer, readings in results.items():
        if not readings["real"]:
            continue
        means = {name: np.mean(values, axis=0) for name, values in readings.items()}
        print(f"{composer} | {len(readings['real'])} | " + " | ".join(f"{means[n][0]:.2f}" for n in READINGS)
              + f" | {means['register high'][0] - means['register low'][0]:+.2f} | "
              + " | ".join(f"{means[n][1]:.3f}" for n in READINGS))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
