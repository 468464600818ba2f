"""Where does style guidance push the pitch? A diagnosis of the register collapse (issue 25).

For pieces generated earlier (a JSON file of `texture_guidance.py --output`), every pitch the piece
holds is scored again as generation saw it: in the context `longform` would have given (the piece head
plus the most recent bars, at most the training window), under the composer prompt (styled) and under
``Composer_None`` (unstyled). Per 8-bar section it prints the expected pitch of the next note (the
distributions restricted to pitch events) under the styled model, the unstyled model and plain guidance
at scale ``--scale``, and the share of that next note's probability at or above middle C under each;
and, after every note, the probability that another note follows at the same onset (the polyphony
decision) under each.

If guidance pushed the register down, the guided expectation would sit below the styled one, and the
gap would grow once the prompt's opening left the window.

    python benchmarks/guidance_push.py runs.json --variant plain --composer Mozart
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from g2m_hf.controls import MIDDLE_C, SECTION_BARS
from g2m_hf.data import context_start, prefixed_window
from g2m_hf.generation import load_model, load_tokenizer
from g2m_hf.longform import CONTEXT_FRACTION, training_window
from g2m_hf.vocab import BAR_TOKEN, split_event


@torch.no_grad()
def pitch_expectations(model, tokenizer, ids: np.ndarray, scale: float) -> tuple[list, list]:
    """Per pitch event (position, bar, [actual, E styled, E unstyled, E guided, P>=C4 styled, unstyled, guided]);
    per event after a note (bar, [P(another note at this onset) styled, unstyled, guided])."""
    vocabulary = tokenizer.event_vocabulary
    pitch_ids = np.array([i for i, t in enumerate(vocabulary) if split_event(t)[0] == "Note_Pitch"])
    pitch_values = torch.tensor([int(split_event(vocabulary[i])[1]) for i in pitch_ids], dtype=torch.float)
    none = tokenizer.convert_tokens_to_ids("Composer_None")
    bar_id = tokenizer.convert_tokens_to_ids(BAR_TOKEN)
    bars = np.flatnonzero(ids == bar_id)
    window = training_window(model.config)
    duration_ids = {i for i, t in enumerate(vocabulary) if split_event(t)[0] == "Note_Duration"}
    pitch_set = set(pitch_ids.tolist())
    rows, choices, done = [], [], 0
    end = min(window, len(ids))
    while done < len(ids):
        start = context_start(end, bars, window) if end > window else 0
        context = prefixed_window(ids[:end], start)
        offset = end - len(context)  # piece position of context[k] is offset + k (for k >= prefix)
        logits = {}
        for name, first in (("styled", context[0]), ("unstyled", none)):
            tokens = torch.tensor(np.concatenate([[first], context[1:]]))[None]
            logits[name] = torch.log_softmax(model(tokens, style_token_ids=tokens[:, 0]).logits[0].float(), -1)
        guided = logits["unstyled"] + scale * (logits["styled"] - logits["unstyled"])
        for k in range(len(context) - 1):
            position = offset + k + 1
            if position <= done:
                continue
            if ids[position - 1] in duration_ids:  # after a note: is the next event another note at this onset?
                chord = [float(torch.softmax(scores[k], -1)[pitch_ids].sum()) for scores in (logits["styled"], logits["unstyled"], guided)]
                choices.append((int(np.searchsorted(bars, position) - 1), np.array(chord)))
            if ids[position] not in pitch_set:
                continue
            figures = [float(split_event(vocabulary[ids[position]])[1])]
            shares = []
            for scores in (logits["styled"], logits["unstyled"], guided):
                p = torch.softmax(scores[k, pitch_ids], -1)
                figures.append(float((p * pitch_values).sum()))
                shares.append(float(p[pitch_values >= MIDDLE_C].sum()))
            rows.append((position, int(np.searchsorted(bars, position) - 1), np.array(figures + shares)))
        done = end - 1
        if end == len(ids):
            break
        end = min(end + int(window * (1 - CONTEXT_FRACTION)), len(ids))
    return rows, choices


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("runs", nargs="+", help="JSON files of benchmarks/texture_guidance.py --output")
    parser.add_argument("--variant", default="plain")
    parser.add_argument("--composer", default="Mozart")
    parser.add_argument("--scale", type=float, default=2.0, help="the guidance scale to score (default 2)")
    parser.add_argument("--pieces", type=int, default=2)
    args = parser.parse_args()
    torch.set_num_threads(1)
    model, tokenizer = load_model(), load_tokenizer()
    runs = [run for path in args.runs for run in json.loads(Path(path).read_text())]
    chosen = [p for r in runs if r["variant"] == args.variant and r["composer"] == args.composer for p in r["events"]]
    print(f"{args.composer}, variant {args.variant}, {min(len(chosen), args.pieces)} pieces; guided = scale {args.scale}")
    print("piece  bars    notes  actual  E styled  E unstyled  E guided  guided-styled  P>=C4 styled  unstyled  guided"
          "  P(chord note) styled  unstyled  guided")
    for index, events in enumerate(chosen[: args.pieces]):
        ids = np.array(tokenizer.events_to_ids(events))
        rows, choices = pitch_expectations(model, tokenizer, ids, args.scale)
        sections = np.array([bar // SECTION_BARS for _, bar, _ in rows])
        table = np.stack([figures for *_, figures in rows])
        chord_sections = np.array([bar // SECTION_BARS for bar, _ in choices])
        chords = np.stack([figures for _, figures in choices])
        for section in np.unique(sections):
            mean = table[sections == section].mean(axis=0)
            chord = chords[chord_sections == section].mean(axis=0)
            print(f"{index:5d}  {section * SECTION_BARS:3d}-{section * SECTION_BARS + SECTION_BARS - 1:<3d}  "
                  f"{(sections == section).sum():5d}  {mean[0]:6.1f}  {mean[1]:8.1f}  {mean[2]:10.1f}  {mean[3]:8.1f}  "
                  f"{mean[3] - mean[1]:13.1f}  {mean[4]:12.2f}  {mean[5]:8.2f}  {mean[6]:6.2f}  "
                  f"{chord[0]:20.2f}  {chord[1]:8.2f}  {chord[2]:6.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
