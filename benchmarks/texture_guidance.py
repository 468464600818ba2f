"""Guidance variants side by side: register per section, texture, and recognition (issue 25).

For every ``--variant`` it generates ``--pieces`` pieces of ``--bars`` bars per composer with the bundled
model (the same seeds for every composer and variant), and prints per composer:

- register: how many whole 8-bar sections keep the composer's register (mean pitch and share of notes
  at or above middle C inside the 10-90 % range of the real 8-bar sections: `controls.TextureReference`),
  and the mean pitch of the first and the last section;
- texture of the median piece against the median real piece (ratio): notes / bar, onsets / bar, notes /
  second; the share of notes a sixteenth or shorter, the median bar's pitch spread (standard deviation) and
  the share of notes off the metric grid (against the real); the tempo classes chosen;
- recognition by the bundled Transformer judge and the feature judge (rate per composer, and the mean).

A variant is ``NAME:KEY=VALUE,...`` with keys ``g`` (the scale), ``warmup`` (events), ``rescale`` (phi),
``kinds`` (event kinds whose values guidance chooses, ``+``-separated; ``values`` = every note
kind: Beat, Note_Pitch, Note_Duration), ``contrast`` (``none`` or ``composers``: what guidance pushes away
from), ``texture`` (``composer``: each bar under the composer's real
texture controls, the default of a model with texture-control tokens; ``free``: no control tokens),
``steer`` (the texture steering strength) and ``gains`` (steering gains changed for this variant,
``KIND:VALUE`` joined by ``+``, e.g. ``gains=spread:0+short:0``: `texture_steering.STEERING_GAINS`).
``--model`` picks another model folder (default: the bundled one); each row reports the CPU seconds per bar,
and with ``--si`` the structureness indicators SI short / mid / long (the paper's form measure, on the first
`DEFAULT_SI_MAX_SECONDS` of each piece; the real pieces' are in the model card). ``--midi-cache`` is
where the real works' MIDI conversions are kept (the build script's ``data/cache/midi`` saves converting them
again). Real pieces: the music21 corpus works of each composer
(converted once and cached). ``--output`` keeps every generated piece's events (JSON) and ``--load``
prints the table again from such files without generating, the runs of a variant and composer (several seeds)
pooled into one row.

    nice python benchmarks/texture_guidance.py --variant plain:g=2 warm:g=2,warmup=250 --pieces 4 --bars 32
    python benchmarks/texture_guidance.py --load runs/*.json
"""

from __future__ import annotations

import argparse
import contextlib
import json
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from g2m_hf import fileio, texture_steering
from g2m_hf.controls import TextureReference, composer_reference, piece_texture, section_register
from g2m_hf.evaluation import ComposerClassifier
from g2m_hf.evaluation.classifier import FEATURE_CLASSIFIER_FILE, default_classifier_path
from g2m_hf.evaluation.folders import DEFAULT_SI_MAX_SECONDS
from g2m_hf.evaluation.style import feature_judge, judge_pieces, network_judge
from g2m_hf.generation import generate_midi, load_model, load_tokenizer
from g2m_hf.metrics import structureness_indicators

COMPOSERS = ("Bach", "Beethoven", "Mozart")
NOTE_KINDS = ("Beat", "Note_Pitch", "Note_Duration")
OPTION_NAMES = {"g": "style_guidance", "warmup": "style_guidance_warmup", "rescale": "style_guidance_rescale",
                "kinds": "style_guidance_kinds", "texture": "composer_texture", "contrast": "style_guidance_contrast",
                "steer": "texture_steering", "gains": "gains"}


def parse_variant(text: str) -> tuple[str, dict]:
    """``NAME:g=2,warmup=250`` -> (NAME, generate_midi keyword arguments)."""
    name, _, spec = text.partition(":")
    options = {}
    for item in filter(None, spec.split(",")):
        key, _, value = item.partition("=")
        if key not in OPTION_NAMES:
            raise argparse.ArgumentTypeError(f"{text}: unknown key {key!r} (one of {', '.join(OPTION_NAMES)})")
        if key == "kinds":
            options[OPTION_NAMES[key]] = list(NOTE_KINDS) if value == "values" else value.split("+")
        elif key == "texture":
            if value not in ("composer", "free"):
                raise argparse.ArgumentTypeError(f"{text}: texture is composer or free, not {value!r}")
            options[OPTION_NAMES[key]] = value == "composer"
        elif key == "contrast":
            options[OPTION_NAMES[key]] = value
        elif key == "gains":
            gains = dict(item.split(":") for item in value.split("+"))
            unknown = set(gains) - set(texture_steering.STEERING_GAINS)
            if unknown:
                raise argparse.ArgumentTypeError(f"{text}: unknown gains {sorted(unknown)} "
                                                 f"(of {', '.join(texture_steering.STEERING_GAINS)})")
            options[OPTION_NAMES[key]] = {kind: float(gain) for kind, gain in gains.items()}
        else:
            options[OPTION_NAMES[key]] = int(value) if key == "warmup" else float(value)
    return name, options


def generate(variants, composers, pieces, bars, seed, tempo, output=None, model_path=None) -> list[dict]:
    model, tokenizer = load_model(model_path), load_tokenizer(model_path)
    runs = []
    for name, options in variants:
        for composer in composers:
            started = time.process_time()
            keywords = {key: value for key, value in options.items() if key != "gains"}
            with steering_gains(options.get("gains", {})):
                made = generate_midi(model, tokenizer, [composer], num_pieces=pieces, seed=seed, bars=bars, tempo=tempo,
                                     batch_size=pieces, **keywords)
            events = [piece.events for piece in made]
            runs.append({"variant": name, "options": options, "composer": composer, "events": events,
                         "cpu_seconds": time.process_time() - started, "bars": bars * pieces})
            print(f"  generated {name} {composer}: {sum(map(len, events))} events, "
                  f"{runs[-1]['cpu_seconds']:.0f} CPU s", file=sys.stderr, flush=True)
            if output:  # after every set: a long run stopped half-way keeps what it made
                fileio.write_text(output, json.dumps(runs) + "\n")
    return runs


@contextlib.contextmanager
def steering_gains(gains: dict[str, float]):
    """`texture_steering.STEERING_GAINS` with ``gains`` changed, for the ``with`` block."""
    saved = dict(texture_steering.STEERING_GAINS)
    texture_steering.STEERING_GAINS.update(gains)
    try:
        yield
    finally:
        texture_steering.STEERING_GAINS.update(saved)


def pooled(runs: list[dict]) -> list[dict]:
    """One run per variant and composer: the pieces of runs at several seeds together, as the judges' figures of a
    variant already are (a sample's medians move with the seed; the goals are read over all of them)."""
    merged: dict[tuple[str, str], dict] = {}
    for run in runs:
        key = (run["variant"], run["composer"])
        if key not in merged:
            merged[key] = {**run, "events": list(run["events"])}
            continue
        merged[key]["events"] += run["events"]
        for name in ("cpu_seconds", "bars"):
            merged[key][name] = merged[key].get(name, np.nan) + run.get(name, np.nan)
    return list(merged.values())


def mean_si(pieces) -> str:
    """``short / mid / long``: the mean structureness indicators of ``pieces`` (event lists or `PieceNotes`)."""
    values = [structureness_indicators(piece, max_seconds=DEFAULT_SI_MAX_SECONDS) for piece in pieces]
    return " / ".join(f"{np.mean([v[key] for v in values]):.2f}" for key in values[0])


def table(runs: list[dict], references: dict[str, TextureReference], judges: dict, si: bool = False) -> None:
    variants = list(dict.fromkeys(run["variant"] for run in runs))
    print("variant | composer | pieces | sections kept (of all) | pieces keeping >= 7/8 | mean pitch first..last section "
          "| notes/bar (xreal) | onsets/bar (xreal) | notes/s (xreal) | <=16th (real) | pitch spread (real) "
          "| off-grid (real) | tempo classes | "
          + " | ".join(f"{judge} recognition" for judge in judges) + " | CPU s / bar" + (" | SI short / mid / long" if si else ""))
    for variant in variants:
        chosen = [run for run in runs if run["variant"] == variant]
        composers = [run["composer"] for run in chosen for _ in run["events"]]
        events = [piece for run in chosen for piece in run["events"]]
        recognition = judge_pieces(composers, events, judges, list(COMPOSERS))
        for run in chosen:
            reference, composer = references[run["composer"]], run["composer"]
            kept = [reference.sections_kept(piece) for piece in run["events"]]
            keeping = sum(k * 8 >= 7 * n for k, n in kept if n)
            first = np.mean([section_register(p)[0].mean_pitch for p in run["events"] if section_register(p)])
            last = np.mean([section_register(p)[-1].mean_pitch for p in run["events"] if section_register(p)])
            textures = [piece_texture(piece) for piece in run["events"]]
            median = {key: float(np.nanmedian([t[key] for t in textures])) for key in textures[0]}
            real = reference.texture
            tempi = " ".join(f"{int(t)}x{n}" for t, n in zip(*np.unique([t["tempo"] for t in textures], return_counts=True)))
            rates = [
                f"{summary['per_composer'][composer]['rate']:.2f} (mean {summary['mean']:.2f})"
                for summary in recognition.values()
            ]
            print(f"{variant} | {composer} | {len(run['events'])} | {sum(k for k, _ in kept)}/{sum(n for _, n in kept)} | "
                  f"{keeping} | {first:.0f}..{last:.0f} (real {reference.mean_pitch[0]:.0f}-{reference.mean_pitch[1]:.0f}) | "
                  + " | ".join(f"{median[key]:.1f} (x{median[key] / real[key]:.2f})"
                               for key in ("notes_per_bar", "onsets_per_bar", "notes_per_second"))
                  + f" | {median['short_share']:.2f} ({real['short_share']:.2f}) | {median['pitch_spread']:.1f} "
                  f"({real['pitch_spread']:.1f}) | {median['off_grid_share']:.2f} ({real['off_grid_share']:.2f}) | "
                  f"{tempi} (real {int(real['tempo'])}) | "
                  + " | ".join(rates) + f" | {run['cpu_seconds'] / run.get('bars', np.nan):.2f}"
                  + (f" | {mean_si(run['events'])}" if si else ""))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--variant", nargs="+", type=parse_variant, default=[("plain", {})])
    parser.add_argument("--composer", nargs="+", default=list(COMPOSERS))
    parser.add_argument("--pieces", type=int, default=4)
    parser.add_argument("--bars", type=int, default=64)
    parser.add_argument("--tempo", type=int, default=None, help="fix the tempo class (default: the model chooses)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--model", help="model folder (default: the bundled model)")
    parser.add_argument("--si", action="store_true", help="also the structureness indicators of every piece")
    parser.add_argument("--midi-cache", help="folder of the real works' MIDI conversions (default: the datasets cache)")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--corpus-limit", nargs="+", default=[], metavar="[COMPOSER=]N",
                        help="at most N real works per composer (COMPOSER=N: for that composer; default: all)")
    parser.add_argument("--output", help="JSON file for the generated events")
    parser.add_argument("--load", nargs="+", help="JSON files of earlier runs: print their table, generate nothing")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    if args.load:
        runs = pooled([run for path in args.load for run in json.loads(Path(path).read_text())])
    else:
        runs = generate(args.variant, args.composer, args.pieces, args.bars, args.seed, args.tempo, args.output,
                        args.model)
    limits = dict(item.rpartition("=")[::2] for item in args.corpus_limit)  # {"": N, "Bach": N, ...}
    references = {
        c: composer_reference(c, int(limits.get(c, limits.get("", 0))) or None, args.midi_cache)
        for c in dict.fromkeys(run["composer"] for run in runs)
    }
    for composer, reference in references.items():
        print(f"real {composer}: {reference.pieces} pieces, {reference.sections} sections; mean pitch "
              f"{reference.mean_pitch[0]:.1f}-{reference.mean_pitch[1]:.1f}, share >= C4 {reference.high_share[0]:.2f}-"
              f"{reference.high_share[1]:.2f}; median piece " + ", ".join(f"{k} {v:.2f}" for k, v in reference.texture.items())
              + f"; their own sections keeping the register {reference.kept_sections}/{reference.sections}, 64-bar "
              f"openings keeping it in >= 7/8 {reference.kept_openings[0]}/{reference.kept_openings[1]}")
    judges = {
        "network": network_judge(ComposerClassifier.from_pretrained(default_classifier_path())),
        "features": feature_judge(default_classifier_path() / FEATURE_CLASSIFIER_FILE),
    }
    table(runs, references, judges, args.si)
    return 0


if __name__ == "__main__":
    sys.exit(main())
