"""How well the texture knobs are obeyed: each control at each level, measured on the bars it asked for.

For every control (density, polyphony, register) and level (low, mid, high) it generates ``--pieces`` pieces of
``--bars`` bars per composer with that knob set (the other two follow the composer, as by default) and the
same seeds for every level, then classes every generated bar as the control tokens do (`controls.bar_classes`)
and prints per control:

- the share of bars that land on the requested level, per level and overall (chance: about a third);
- the share within one level of it (a bar asked to be low that came out high is the failure a listener hears);
- the median measured value per level (notes per quarter note, notes per onset, mean MIDI pitch): it must
  rise with the level;
- the Spearman correlation between requested level and measured value over all bars.

    python benchmarks/control_obedience.py --pieces 2 --bars 8
    python benchmarks/control_obedience.py --pieces 2 --bars 8 --style-guidance 1    # the model alone
    python benchmarks/control_obedience.py --pieces 2 --bars 8 --texture-steering 0  # the tokens alone
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
import torch
from scipy.stats import spearmanr

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from g2m_hf.controls import BAR_CLASS_LEVELS, bar_classes, bar_values
from g2m_hf.generation import generate_midi, load_model_as, load_tokenizer, trained_composers

KINDS = ("density", "polyphony", "register")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", help="model folder (default: the bundled model)")
    parser.add_argument("--pieces", type=int, default=2, help="pieces per composer and level")
    parser.add_argument("--bars", type=int, default=8)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--dtype", default="int8")
    parser.add_argument("--style-guidance", type=float, default=None, help="default: the model's generation config")
    parser.add_argument("--texture-steering", type=float, default=None, help="default: the model's generation config")
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    tokenizer, model = load_tokenizer(args.model), load_model_as(args.model, args.dtype)
    composers = trained_composers(tokenizer, args.model)
    started = time.perf_counter()
    print("control | level | bars | on the level | within one level | median value | per composer on the level")
    for kind in KINDS:
        requested, measured_levels, values = [], [], []
        for level_index, level in enumerate(BAR_CLASS_LEVELS):
            pieces = generate_midi(model, tokenizer, composers, num_pieces=args.pieces, seed=args.seed, bars=args.bars,
                                   batch_size=args.pieces * len(composers), style_guidance=args.style_guidance,
                                   texture_steering=args.texture_steering, **{kind: level})
            per_composer = {}
            level_bars = []
            for piece in pieces:
                classes = bar_classes(piece.events)[kind]
                sounding = classes >= 0
                level_bars.append(classes[sounding])
                values.append(bar_values(piece.events)[kind][sounding])
                per_composer.setdefault(piece.composer, []).append(classes[sounding] == level_index)
            got = np.concatenate(level_bars)
            requested.append(np.full(len(got), level_index))
            measured_levels.append(got)
            median = float(np.median(np.concatenate(values[-len(pieces):]))) if len(got) else float("nan")
            rates = ", ".join(f"{c} {np.mean(np.concatenate(r)):.2f}" for c, r in per_composer.items())
            print(f"{kind} | {level} | {len(got)} | {np.mean(got == level_index):.2f} | "
                  f"{np.mean(np.abs(got - level_index) <= 1):.2f} | {median:.1f} | {rates}", flush=True)
        asked, got, value = np.concatenate(requested), np.concatenate(measured_levels), np.concatenate(values)
        rho = spearmanr(asked, value).statistic
        print(f"{kind} | all | {len(got)} | {np.mean(got == asked):.2f} | {np.mean(np.abs(got - asked) <= 1):.2f} | "
              f"Spearman rho {rho:.2f} | ", flush=True)
    print(f"({time.perf_counter() - started:.0f} s; {args.pieces} pieces of {args.bars} bars per composer and level, "
          f"{args.dtype}, style guidance {args.style_guidance or 'of the model'}, texture steering "
          f"{'of the model' if args.texture_steering is None else args.texture_steering}, seed {args.seed})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
