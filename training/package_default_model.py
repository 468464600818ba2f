"""Assemble the bundled default model (``g2m_hf/default_model``) from a pretraining and a fine-tuning run.

    python training/package_default_model.py --pretrained outputs/default_pretrain \\
        --finetuned outputs/default_finetune --reference-data data/mastery --output g2m_hf/default_model

The last step of ``training/build_default_model.sh``. It

1. copies the fine-tuned model folder's final files (weights, config, generation config, tokenizer,
   training record, recipe) - never ``checkpoint-*/``, ``runs/``, pickles or code copies - and the
   pretraining record as ``pretraining_record.json``; with ``--distilled``, the weights and the record of
   training/distill_guidance.py's run on that model instead of the fine-tuned weights; a model with texture-control tokens gets each
   composer's real bar-by-bar texture in its config (``composer_textures``, measured on the training pieces
   of ``--reference-data``), which generation follows by default;
2. draws both runs' training and validation losses into ``loss_curves.png``;
3. generates ``--pieces`` pieces per fine-tuned composer and compares them with the held-out
   reference pieces of ``--reference-data`` (its ``test`` split, which no training and no checkpoint
   selection saw; ``validation`` for a dataset without one): the paper's H, GS and SI and listening-free sanity
   measures (grammar round trip, notes per bar, empty bars, repeated-note runs), all measured by
   ``g2m_hf.evaluation``, saved as ``evaluation.json`` (the full report with plots goes to
   ``--evaluation-dir``);
   then ``--recognition-pieces`` pieces per composer at `g2m-generate`'s defaults (the same seeds for
   every composer) judged by both bundled classifiers (``--classifier``): how often each is recognised
   as its prompted composer, with 95 % intervals, and the share of their 4-bar spans copied from the
   training pieces; and ``--texture-pieces`` pieces of exactly `TEXTURE_BARS` bars per composer, whose median
   texture is compared with the real pieces' (issue 25's measure);
4. writes the model card ``README.md``: usage from the package, the two-stage recipe, the measures
   and the limits (the Hub card of ``hub_upload.model_card`` describes a Hub repository instead).
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import datasets
from transformers import GenerationConfig

from g2m_hf import G2MForCausalLM, G2MTokenizer, fileio, generate_midi
from g2m_hf.cli import arguments
from g2m_hf.control_tokens import measure_textures
from g2m_hf.controls import median_texture
from g2m_hf.evaluation import (
    CLASSIFIER_MAX_EVENTS,
    FEATURE_CLASSIFIER_FILE,
    ComposerClassifier,
    SpanIndex,
    convergence,
    default_classifier_path,
    evaluate_folders,
    feature_judge,
    folder_sanity,
    judge_excerpts,
    mean_metrics,
    measure_style,
    network_judge,
    round_trips,
    sanity_measures,
    summarise_sanity,
    write_report,
)
from g2m_hf.grammar import SPEC_GENERATION_DEFAULTS
from g2m_hf.model_card import CardSection, build_card, markdown_table
from g2m_hf.paper import PUBLISHED_METRICS, PUBLISHED_RECOGNITION, SYSTEM
from g2m_hf.plotting import plot_loss_curves
from g2m_hf.style_guidance import CONTRASTS
from g2m_hf.texture_plan import has_control_tokens
from g2m_hf.vocab import NO_COMPOSER
from training.bundle import (
    EVALUATION_JSON,
    GENERAL_MATERIAL,
    LOSS_CURVES,
    card_metadata,
    check_training_output,
    copy_model_files,
    flatness,
    format_number,
    number_table,
    read_record,
    recognition_row,
    refuse_to_replace,
    stages_table,
)
from training.common import main_guard
from training.distill_guidance import RECORD_NAME as DISTILLATION_RECORD
from training.errors import ConfigError
from training.record import RECORD_NAME

PRETRAINING_RECORD = "pretraining_record.json"
TEXTURE_BARS = 16
"""The length of the pieces whose texture the card compares with the real pieces' (issue 25's unit)."""


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = arguments.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--pretrained", required=True, type=arguments.existing_dir,
                        help="output folder of training/pretrain.py")
    parser.add_argument("--finetuned", required=True, type=arguments.existing_dir,
                        help="output folder of training/finetune.py (mode full)")
    parser.add_argument("--distilled", default=None, type=arguments.existing_dir,
                        help="output folder of training/distill_guidance.py for --finetuned: its weights are shipped "
                             "(the fine-tuned model with its style guidance distilled into it)")
    parser.add_argument("--reference-data", required=True, type=arguments.existing_dir,
                        help="the fine-tuning dataset folder (its test split is the reference)")
    parser.add_argument("--classifier", default=None, type=arguments.existing_dir,
                        help="folder of the composer classifiers (default: the bundled g2m_hf/default_classifier)")
    parser.add_argument("--recognition-pieces", type=arguments.positive_int, default=16,
                        help="pieces per composer judged by the classifiers (default 16)")
    parser.add_argument("--texture-pieces", type=arguments.positive_int, default=16,
                        help=f"pieces of exactly {TEXTURE_BARS} bars per composer whose texture the card compares with "
                             "the real pieces' (default 16)")
    parser.add_argument("--output", type=arguments.output_dir, default="g2m_hf/default_model",
                        help="the model folder to write")
    parser.add_argument("--evaluation-dir", type=arguments.output_dir, default="outputs/default_evaluation",
                        help="full evaluation report, generated and reference MIDI")
    parser.add_argument("--pieces", type=arguments.positive_int, default=6,
                        help="generated pieces per composer (default 6)")
    parser.add_argument("--max-bars", type=arguments.positive_int, default=32,
                        help="most bars per generated piece (default 32)")
    parser.add_argument("--max-events", type=arguments.positive_int, default=600,
                        help="most events per generated piece (default 600)")
    parser.add_argument("--seed", type=int, default=0, help="sampling seed")
    parser.add_argument(
        "--style-guidance", type=arguments.non_negative_float, default=1.0,
        help="the default style guidance written into generation_config.json (chosen with training/compare_style.py)",
    )
    parser.add_argument(
        "--style-guidance-contrast", choices=CONTRASTS, default="none",
        help="what that guidance pushes away from, written into generation_config.json (benchmarks/texture_guidance.py)",
    )
    parser.add_argument(
        "--texture-steering", type=arguments.non_negative_float, default=0.0,
        help="the default texture steering written into generation_config.json (benchmarks/texture_guidance.py)",
    )
    parser.add_argument("--temperature", type=arguments.positive_float, default=SPEC_GENERATION_DEFAULTS["temperature"],
                        help="the default sampling temperature written into generation_config.json (default: SPEC §5's)")
    parser.add_argument("--top-p", type=arguments.probability, default=SPEC_GENERATION_DEFAULTS["top_p"],
                        help="the default nucleus (top-p) written into generation_config.json (default: SPEC §5's)")
    parser.add_argument("--infill-evaluation", type=arguments.existing_file, default=None,
                        help="the figures of training/infill_eval.py for this model: kept in the folder, shown on the card")
    parser.add_argument("--overwrite", action="store_true", help="replace an existing model folder / report")
    return parser.parse_args(argv)


def store_composer_textures(folder: Path, reference_data: Path) -> None:
    """Measure every composer's real bar-by-bar texture on the training pieces of ``reference_data`` and store
    it in the folder's config (``composer_textures``, ``composer_registers``): what generation follows when no
    texture is asked for.
    A model without texture-control tokens gets none."""
    path = folder / "config.json"
    config = json.loads(path.read_text(encoding="utf-8"))
    if not has_control_tokens(config.get("event_vocabulary") or []):
        return
    tokenizer = G2MTokenizer.from_pretrained(folder)
    train = datasets.load_from_disk(str(reference_data))["train"]
    pieces: dict[str, list[list[str]]] = {}
    for composer, ids in zip(train["composer"], train["input_ids"]):
        if composer != NO_COMPOSER:
            pieces.setdefault(composer, []).append(tokenizer.ids_to_events(ids))
    config.update(measure_textures(pieces).to_config())
    # the file itself: save_pretrained of a config registered for remote code would copy code files in
    fileio.write_text(path, json.dumps(config, indent=2, sort_keys=True) + "\n")


def check_distilled(distilled: Path, finetuned: Path) -> None:
    """Before any work: ``distilled`` is a finished output folder of training/distill_guidance.py whose model is
    ``finetuned``'s (the same vocabulary and shape)."""
    missing = [name for name in ("config.json", "model.safetensors", DISTILLATION_RECORD) if not (distilled / name).is_file()]
    if missing:
        raise ConfigError(f"--distilled {distilled}: not a finished output folder of training/distill_guidance.py "
                          f"(missing {', '.join(missing)})")
    configs = [json.loads((folder / "config.json").read_text(encoding="utf-8")) for folder in (distilled, finetuned)]
    keys = ("event_vocabulary", "hidden_size", "num_hidden_layers", "style_adapter_layers")
    if any(configs[0].get(key) != configs[1].get(key) for key in keys):
        raise ConfigError(f"--distilled {distilled}: not a distillation of --finetuned {finetuned} "
                          f"(its {', '.join(keys)} differ)")


def set_generation_defaults(folder: Path, args: argparse.Namespace) -> None:
    """Make the chosen style guidance (and its contrast), texture steering, temperature and top-p the folder's
    defaults (``generation_config.json``)."""
    config = GenerationConfig.from_pretrained(folder)
    config.style_guidance, config.temperature, config.top_p = args.style_guidance, args.temperature, args.top_p
    config.style_guidance_contrast, config.texture_steering = args.style_guidance_contrast, args.texture_steering
    config.save_pretrained(folder)


def scale_words(scale: float, contrast: str) -> str:
    """``style guidance 2`` (from ``Composer_None``) or ``style guidance 2 against the other composers``."""
    return f"style guidance {scale:g}" + (" against the other composers" if contrast == "composers" else "")


def teacher_words(distillation: dict[str, Any]) -> str:
    """The guidance a distilled model learnt (its ``distillation`` record)."""
    return scale_words(distillation["style_guidance"], distillation.get("style_guidance_contrast", "none"))


def guidance_words(args: argparse.Namespace, distillation: dict[str, Any] | None = None) -> str:
    """The default guidance as the card says it (`scale_words`), for a distilled model (its ``distillation``
    record) the teacher's, distilled into the weights; with the texture steering when there is one."""
    steering = f", texture steering {args.texture_steering:g}" if args.texture_steering else ""
    if distillation is not None:
        return (f"{teacher_words(distillation)} distilled into the weights (sampled at style guidance "
                f"{args.style_guidance:g}){steering}")
    return f"{scale_words(args.style_guidance, args.style_guidance_contrast)}{steering}"


# --- measures -------------------------------------------------------------------------------------


def evaluate(model_dir: Path, reference_data: Path, args: argparse.Namespace) -> dict[str, Any]:
    """Generate, write the reference pieces, run g2m_hf.evaluation; the summary for the card."""
    tokenizer = G2MTokenizer.from_pretrained(model_dir)
    model = G2MForCausalLM.from_pretrained(model_dir).eval()
    splits = datasets.load_from_disk(str(reference_data))
    reference_split = "test" if "test" in splits else "validation"
    references = splits[reference_split]
    composers = sorted(set(references["composer"]) - {NO_COMPOSER})

    work = Path(args.evaluation_dir)
    shutil.rmtree(work, ignore_errors=True)  # refuse_to_replace allowed it
    generated_dir, reference_dir = work / "generated", work / "reference"
    generated_dir.mkdir(parents=True)
    reference_dir.mkdir(parents=True)

    numbering: dict[str, int] = {}
    for row in references:
        n = numbering[row["composer"]] = numbering.get(row["composer"], -1) + 1
        tokenizer.decode_midi(row["input_ids"]).write(str(reference_dir / f"{row['composer']}_{n}.mid"))

    pieces = generate_midi(
        model, tokenizer, composers=composers, num_pieces=args.pieces, seed=args.seed,
        max_bars=args.max_bars, max_events=args.max_events, batch_size=args.pieces, progress=True,
    )  # fmt: skip
    checks: dict[str, list[dict[str, Any]]] = {}
    for index, piece in enumerate(pieces):
        path = generated_dir / f"{piece.composer}_{index % args.pieces}.mid"
        piece.midi.write(str(path))
        measures = sanity_measures(piece.events)
        measures["round_trip"] = round_trips(tokenizer, piece.events, path, piece.composer)
        checks.setdefault(piece.composer, []).append(measures)

    report = evaluate_folders(generated_dir, reference_dir, progress=False)
    write_report(report, work / "report", overwrite=True)
    summary = summarise(report, checks, reference_dir)
    summary["texture_controls"] = has_control_tokens(model.config.event_vocabulary or [])
    # every real piece as (composer, events), decoded once: the held-out ones and all of them (issue 25 measures
    # against all of them) for the texture, the held-out ones cut into excerpts for the judges
    real = {name: [(row["composer"], tokenizer.ids_to_events(row["input_ids"])) for row in split]
            for name, split in splits.items()}

    def real_texture(names: Sequence[str], composer: str) -> dict[str, float]:
        return median_texture([events for name in names for piece_composer, events in real[name]
                               if piece_composer == composer])

    summary["texture_pieces"] = {"pieces": args.texture_pieces, "bars": TEXTURE_BARS}
    summary["texture"] = {
        composer: {
            "generated": median_texture([piece.events for piece in generate_midi(
                model, tokenizer, [composer], num_pieces=args.texture_pieces, seed=args.seed, bars=TEXTURE_BARS)]),
            "reference": real_texture([reference_split], composer),
            "all_real": real_texture(list(real), composer),
        }
        for composer in composers
    }
    summary["reference_split"] = reference_split
    summary["recognition"] = judge_style(model, tokenizer, composers, splits["train"], real[reference_split], args)
    return summary


def judge_style(
    model: Any, tokenizer: G2MTokenizer, composers: list[str], train: Any,
    references: Sequence[tuple[str, list[str]]], args: argparse.Namespace,
) -> dict:
    """`measure_style` at g2m-generate's defaults, judged by both bundled classifiers, with copied spans; and the
    same judges on the held-out ``references`` ((composer, events) pairs) cut into excerpts of
    `evaluation.EXCERPT_BARS` bars (``real``: how often they recognise the composers' own music)."""
    folder = Path(args.classifier) if args.classifier else default_classifier_path()
    judges = {
        "network": network_judge(ComposerClassifier.from_pretrained(folder)),
        "features": feature_judge(folder / FEATURE_CLASSIFIER_FILE),
    }
    training_pieces = SpanIndex.from_ids(train["input_ids"], tokenizer)
    result = measure_style(
        model, tokenizer, composers, judges, pieces_per_composer=args.recognition_pieces, seed=args.seed,
        training_pieces=training_pieces, batch_size=args.recognition_pieces,
    )  # fmt: skip
    result["real"] = judge_excerpts(references, judges, composers)
    return result


def summarise(report: dict[str, Any], checks: dict[str, list[dict[str, Any]]], reference_dir: Path) -> dict[str, Any]:
    """Per set (generated / reference) and composer: mean H, GS, SI; per composer the sanity measures."""
    return {
        "metrics": mean_metrics(report),
        "paper": PUBLISHED_METRICS[SYSTEM],
        "generated_sanity": summarise_sanity(checks),
        "reference_sanity": folder_sanity(reference_dir),
        "skipped": report["skipped"],
    }


# --- model card -----------------------------------------------------------------------------------


def metrics_markdown(evaluation: dict[str, Any]) -> str:
    """The H / GS / SI table (generated and held-out real pieces, next to the paper) and the sanity table."""
    columns = ["H", "GS", "SI_short", "SI_mid", "SI_long"]
    rows = [[name, values["pieces"], *(values[c] for c in columns)] for name, values in evaluation["metrics"].items()]
    rows.append(["paper: Generality-to-Mastery (SPEC §7)", "-", *(evaluation["paper"][c] for c in columns)])
    metrics = number_table(["pieces", "n", *columns], rows)
    keys = ["bars", "notes_per_bar", "empty_bar_fraction", "longest_same_pitch_run"]
    sanity_rows = [
        [f"generated {c}", v["pieces"], f"{v['round_trip']}/{v['pieces']}", *(v[k] for k in keys)]
        for c, v in evaluation["generated_sanity"].items()
    ] + [[f"reference {c}", v["pieces"], "-", *(v[k] for k in keys)] for c, v in evaluation["reference_sanity"].items()]
    sanity = number_table(["pieces", "n", "MIDI round trip", *keys], sanity_rows)
    return metrics + "\n\n" + sanity


JUDGES = {"network": "Transformer classifier (SPEC §6)", "features": "feature classifier"}


def recognition_markdown(
    recognition: dict[str, Any], args: argparse.Namespace, distillation: dict[str, Any] | None = None
) -> str:
    """How often the bundled classifiers recognise the prompted composer, beside the paper's figures."""
    settings = recognition["settings"]
    composers = list(recognition["described"])
    real = recognition["real"]

    rows = [recognition_row(JUDGES[name], summary) for name, summary in recognition["recognition"].items()]
    rows += [recognition_row(f"{JUDGES[name]}, real held-out music ({real['bars']}-bar excerpts)", summary)
             for name, summary in real["recognition"].items()]
    paper = [PUBLISHED_RECOGNITION.get(c) for c in composers]
    known = [value for value in paper if value is not None]
    mean = format_number(sum(known) / len(known))
    rows.append(["paper (its own classifier, SPEC §7)", *(format_number(v) for v in paper), mean])
    table = markdown_table(["judge", *composers, "mean [95 % interval]"], rows)
    copied = recognition["copied_spans"]
    return f"""{settings['pieces_per_composer']} pieces per composer as `g2m-generate` makes them by default (temperature
{args.temperature:g}, top-p {args.top_p:g} and {guidance_words(args, distillation)} from the generation config; the model ends each piece), the same
seeds under every composer prompt, judged by the two bundled classifiers (`g2m_hf.default_classifier_path()`,
whose card states their held-out accuracy). Both judges were read when these defaults were chosen
(`benchmarks/texture_guidance.py` on other seeds), so both have had a say in them:

{table}
{real_words(real)}
Memorisation: {copied['copied']} of the generated pieces' {copied['spans']} four-bar spans (any key) occur in the
fine-tuning pieces."""


def real_words(real: dict[str, Any]) -> str:
    """What the real-music rows of the recognition table are, and why they are there."""
    return f"""
The "real held-out music" rows ask the same judges about the held-out real pieces, cut into excerpts of
{real['bars']} bars ({', '.join(f'{c} {n}' for c, n in real['excerpts'].items())} excerpts; the Transformer classifier
reads at most the first {CLASSIFIER_MAX_EVENTS} events of a piece, a few dozen bars): a judge that recognises the composer's
own music that often cannot be expected to recognise generated music more often.
"""


REAL_SETS = {"reference": "held-out", "all_real": "all"}
"""The real pieces the card's texture is compared with: the held-out test split, and every piece of the
composer in the dataset (issue 25's measure; the held-out Beethoven and Mozart are a handful of pieces)."""


def texture_markdown(texture: dict[str, Any]) -> str:
    """The median generated piece's texture against the median real piece's of each `REAL_SETS`, per composer."""
    keys = [("notes_per_bar", "notes / bar"), ("onsets_per_bar", "onsets / bar"), ("notes_per_second", "notes / s")]
    rows = []
    for composer, sets in texture.items():
        made = sets["generated"]
        for name, label in REAL_SETS.items():
            real = sets[name]
            rows.append([composer, label, *(f"{made[k]:.1f} vs {real[k]:.1f} (x{made[k] / real[k]:.2f})" for k, _ in keys),
                         f"{made['short_share']:.2f} vs {real['short_share']:.2f}",
                         f"{made['pitch_spread']:.1f} vs {real['pitch_spread']:.1f}",
                         f"{made['tempo']:.0f} vs {real['tempo']:.0f}"])
    return markdown_table(["composer", "real pieces", *(name for _, name in keys), "notes a 16th or shorter",
                           "pitch spread in a bar (semitones)", "tempo class"], rows)


INFILL_EVALUATION = "infill_evaluation.json"
"""The infilling figures in the folder (`training/infill_eval.py`), read by tests/test_infill.py."""


def infill_markdown(figures: dict[str, Any]) -> str:
    """The infilling figures: each way of filling a gap against the bars around it, and the real span's NLL."""
    names = {"density_gap": "notes / bar gap", "range_gap": "pitch range gap", "pitch_class_distance":
             "pitch-class distance", "key_agreement": "same key (higher: closer)",
             "boundary_distance": "leap into the next bar (semitones)"}
    rows = [[names[measure], *(f"{figures['measures'][system][measure]['mean']:.2f}" for system in
                               ("original", "infilled", "continuation"))] for measure in names]
    nll = figures["nll"]
    return f"""`training/infill_eval.py` on the held-out pieces: {figures['gaps']} gaps of {figures['gap_bars']} bars in
{figures['pieces']} pieces, each filled by the real bars (the ceiling), by infilling (the model reads both sides)
and by continuation from the bars before the gap (the floor), compared with the {figures['context_bars']} bars on
each side (lower is closer):

{markdown_table(["measure", "real bars", "infilled", "continuation"], rows)}

The real span's negative log-likelihood per event: {nll['infilling']['mean']:.3f} with infilling (the model reads
the bars after the gap too) against {nll['continuation']['mean']:.3f} by continuation."""


def distillation_markdown(distillation: dict[str, Any]) -> str:
    """The third stage as the card's training list says it: the teacher, the run, the KL it took off."""
    kl = distillation["held_out_kl"]
    return f"""3. **Guidance distillation** - the fine-tuned model, frozen at {teacher_words(distillation)}, taught
   a copy of itself to predict its guided distribution without guidance (`training/distill_guidance.py`:
   {distillation['steps']} steps of {distillation['batch_size']} windows, {distillation['seconds'] / 60:.0f} min; KL from the
   guided teacher on the validation windows {kl['before']:.3f} -> {kl['after']:.3f} nats per event). These are the
   weights shipped: they sample the guided style with one row per piece instead of one per composer
   (`distillation_record.json`)."""


def card_sections(
    pretraining: dict[str, Any], finetuning: dict[str, Any], evaluation: dict[str, Any], args: argparse.Namespace,
    distillation: dict[str, Any] | None = None,
) -> list[CardSection]:
    """The default model's own sections of the card: the training stages, measures, limits."""
    stages = stages_table({"pretraining": pretraining, "fine-tuning": finetuning})
    composers = ", ".join(f"{name} {count}" for name, count in finetuning["data"]["composers"].items())
    minutes = sum(record["run"]["train_runtime_s"] for record in (pretraining, finetuning)) / 60
    minutes += distillation["seconds"] / 60 if distillation else 0.0
    distilled = f"\n{distillation_markdown(distillation)}" if distillation else ""
    window = finetuning["recipe"]["data"]["max_length"]
    reference = evaluation.get("reference_split", "validation")
    training = f"""This is the model `g2m-generate` and `g2m-demo` use when no `--model` is given
(`g2m_hf.default_model_path()`). It was trained on one machine with 2 shared CPU cores, from the
music21 corpus only, by `training/build_default_model.sh` (recipes `configs/default_pretrain.yaml`
and `configs/default_finetune.yaml`):

1. **Generality** - pretraining from scratch on {GENERAL_MATERIAL}. This stage ships too, as the base
   to fine-tune other composers from (`g2m_hf.default_base_model_path()`).
2. **Mastery** - full fine-tuning (all weights) on Bach, Beethoven and Mozart (training pieces:
   {composers}), with new gated style adapters after layers 1 and 3 and composer-balanced batches.
   The {reference} pieces of this split were held out from training and serve as the reference below.{distilled}

{stages}

Losses are cross-entropy in nats per event on {window}-event windows (validation: every validation piece
from its start). `loss_curves.png` shows both runs; `training_record.json` (fine-tuning) and
`pretraining_record.json` keep the full logs and recipes. Each stage is one cosine schedule (fine-tuning
keeps its best checkpoint). Over the last quarter of each stage's steps the validation loss went
{flatness(evaluation['convergence'])}."""
    measures = f"""{args.pieces} pieces per composer, at most {args.max_bars} bars / {args.max_events} events, the model's
default sampling (temperature {args.temperature:g}, top-p {args.top_p:g}, with the REMI grammar and
{guidance_words(args, distillation)}), seed {args.seed},
against the held-out {reference} pieces decoded from their events (H: pitch-class entropy over 4 bars, GS: groove similarity, SI:
structureness, as in `g2m-evaluate`):

{metrics_markdown(evaluation)}

The paper's figures come from a 12-layer, 512-wide model trained for days on GPUs on a large
piano corpus and measure full-length pieces; these pieces are short ({args.max_bars} bars at most), so
SI (which looks for repetition over tens of seconds) is not comparable."""
    generated, real = evaluation["metrics"]["generated all"], evaluation["metrics"]["reference all"]
    pitch = (  # the measured difference, whichever way it goes (a tenth of a bit is within the pieces' spread)
        "their pitch content is more scattered than the real pieces' (higher H)" if generated["H"] > real["H"] + 0.1
        else "their pitch content is about as focused as the real pieces' (H)"
    )
    limits = f"""- A very small model (4 layers, 256 wide) trained for {minutes:.0f} minutes on 2 CPU cores: its
  validation losses level off by the end of their schedules (figures above), but it is far from the
  paper's quality. Compare the generated and reference rows above: pieces have a valid bar structure and
  {pitch}, but they show little long-range form (low SI).
- Beethoven and Mozart are represented by a few dozen string quartet and sonata movements of the
  music21 corpus (no piano sonatas to speak of), Bach mostly by four-part chorales; the styles it
  learns are those of these scores rendered on piano.
- Only Bach, Beethoven and Mozart were fine-tuned. The vocabulary also has `Composer_Chopin` and
  `Composer_Schumann` (the complete default vocabulary), whose embeddings were never trained:
  prompting them gives unconditioned-quality output at best.
- Trained on windows of {window} events: longer pieces are generated with a sliding window of that length."""
    planned = """Every bar is written under texture-control tokens (density, polyphony, register: `g2m_hf.control_tokens`);
with no knob set, as here, each piece follows real training pieces of its composer bar by bar, at the tempo
class and the share of short notes of the first (`config.composer_textures`, measured on the training pieces
when this folder was packaged).""" if evaluation.get("texture_controls") else "The model chooses its texture and tempo class itself."
    made = evaluation["texture_pieces"]
    texture = f"""{planned} The median of {made['pieces']} generated pieces of {made['bars']} bars per composer (the defaults, seed
{args.seed}) against the median real piece, held-out or any of the composer's in the dataset
(`g2m_hf.controls.median_texture`; a tempo class: the most common):

{texture_markdown(evaluation['texture'])}"""
    return [
        CardSection("Training", training),
        CardSection("Measures", measures, level=3),
        CardSection("Texture", texture, level=3),
        CardSection("Composer recognition", recognition_markdown(evaluation["recognition"], args, distillation), level=3),
        *([CardSection("Infilling", infill_markdown(evaluation["infilling"]), level=3)]
          if "infilling" in evaluation else []),
        CardSection("Limits", limits, level=3),
    ]


def write_card(output: Path, sections: list[CardSection], parameters: int) -> None:
    """README.md: card metadata, what the model is and how to use it, then ``sections``."""
    usage = f"""A composer-conditioned Transformer decoder ({parameters / 1e6:.1f}M parameters) that writes solo piano
music as REMI events (bars, beats, pitches, durations), trained after the Generality-to-Mastery
recipe: pretraining on a general corpus, then fine-tuning with gated style adapters. It ships inside
the `g2m_hf` package, so it works offline:

```python
from g2m_hf import G2MForCausalLM, G2MTokenizer, default_model_path, generate_midi

model = G2MForCausalLM.from_pretrained(default_model_path()).eval()
tokenizer = G2MTokenizer.from_pretrained(default_model_path())
(piece,) = generate_midi(model, tokenizer, composers=["Bach"], max_bars=32)
piece.midi.write("bach.mid")
```

or `g2m-generate --composer Bach Beethoven Mozart` / `g2m-demo` on the command line. Each bar follows the
composer's real texture unless you set it (`generate_midi(..., density="low", register="high")`,
`g2m-generate --density low`), and bars in the middle of a piece can be rewritten
(`g2m-infill piece.mid --bars 9-12 --composer mozart`)."""
    build_card(card_metadata(), "g2m_hf default model", usage, sections).save(output / "README.md")


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    pretrained, finetuned, output = Path(args.pretrained), Path(args.finetuned), Path(args.output)
    refuse_to_replace(output, "the bundled model", args.overwrite)
    refuse_to_replace(Path(args.evaluation_dir), "the evaluation report (or give another --evaluation-dir)", args.overwrite)
    check_training_output(pretrained, "training/pretrain.py")
    check_training_output(finetuned, "training/finetune.py (mode full)")
    distilled = None if args.distilled is None else Path(args.distilled)
    if distilled is not None:
        check_distilled(distilled, finetuned)
    with fileio.atomic_directory(output, replace=True) as stage:  # the bundled folder is replaced only when all is done
        copy_model_files(finetuned, stage)
        if distilled is not None:  # the fine-tuning's records and recipe, the distilled weights
            for name in ("model.safetensors", DISTILLATION_RECORD):
                shutil.copy2(distilled / name, stage / name)
        shutil.copy2(pretrained / RECORD_NAME, stage / PRETRAINING_RECORD)
        set_generation_defaults(stage, args)
        store_composer_textures(stage, Path(args.reference_data))
        pretraining, finetuning = read_record(stage / PRETRAINING_RECORD), read_record(stage / RECORD_NAME)
        distillation = None if distilled is None else read_record(stage / DISTILLATION_RECORD)
        plot_loss_curves(
            {"pretraining (general corpus)": pretraining["log_history"],
             "fine-tuning (Bach, Beethoven, Mozart)": finetuning["log_history"]},
            stage / LOSS_CURVES,
        )  # fmt: skip
        evaluation = evaluate(stage, Path(args.reference_data), args)
        if args.infill_evaluation:
            shutil.copy2(args.infill_evaluation, stage / INFILL_EVALUATION)
            evaluation["infilling"] = json.loads(Path(args.infill_evaluation).read_text(encoding="utf-8"))
        evaluation["convergence"] = {"pretraining": convergence(pretraining), "fine-tuning": convergence(finetuning)}
        (stage / EVALUATION_JSON).write_text(json.dumps(evaluation, indent=1) + "\n", encoding="utf-8")
        write_card(stage, card_sections(pretraining, finetuning, evaluation, args, distillation), finetuning["model"]["parameters"])
    print(metrics_markdown(evaluation))
    print(f"wrote {output}")
    return 0


if __name__ == "__main__":
    sys.exit(main_guard(main))
