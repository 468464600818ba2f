"""The bundled models (g2m_hf/default_model and its base, g2m_hf/default_base_model): load offline,
stay small, write valid music, and were trained until their validation loss flattened."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml
from safetensors.torch import load_file
from transformers import AutoModelForCausalLM, AutoTokenizer

from g2m_hf import G2MForCausalLM, G2MTokenizer, default_base_model_path, default_model_path, generate_midi
from g2m_hf.controls import bar_values, median_texture, piece_texture, section_register
from g2m_hf.evaluation import (
    FEATURE_CLASSIFIER_FILE,
    ComposerClassifier,
    default_classifier_path,
    feature_judge,
    judge_pieces,
    network_judge,
)
from g2m_hf.generation import load_model_as, trained_composers
from g2m_hf.texture_steering import SPREAD_LIMIT, STEERING_GAINS

MAX_BYTES = 25 * 1024 * 1024  # the wheel's budget for the model weights
FINE_TUNED = ("Bach", "Beethoven", "Mozart")
PIECES = 12  # 16-bar pieces per composer that the distilled model is judged on
NOTES_PER_BAR = (0.75, 1.33)  # the texture bounds it is held to (docs/speed.md): notes per bar against the composer's
SHORT_SHARE = 0.2  # real pieces (all of them, as issue 25 measures), and the share of notes a sixteenth or shorter

MODEL_DIR = default_model_path()  # the package ships both: a missing model is a failure, not a skip
BASE_DIR = default_base_model_path()
REPOSITORY = Path(__file__).resolve().parents[1]
BOTH = pytest.mark.parametrize("folder", [MODEL_DIR, BASE_DIR], ids=["default", "base"])


@pytest.fixture(scope="module")
def bundled():
    return G2MForCausalLM.from_pretrained(MODEL_DIR).eval(), G2MTokenizer.from_pretrained(MODEL_DIR)


@BOTH
def test_folder_is_a_small_plain_model_folder(folder):
    names = {path.name for path in folder.iterdir()}
    assert {"config.json", "model.safetensors", "tokenizer.json", "generation_config.json", "README.md",
            "evaluation.json", "loss_curves.png", "recipe.yaml", "training_record.json"} <= names
    assert not names & {"adapter_config.json", "training_args.bin", "runs"}
    assert not any(name.startswith("checkpoint-") or name.endswith((".bin", ".pt", ".pkl", ".pth")) for name in names)
    weights = folder / "model.safetensors"
    assert weights.stat().st_size < MAX_BYTES
    count = sum(tensor.numel() for tensor in load_file(weights).values())
    assert 1_000_000 < count < 6_000_000  # "a few M parameters"
    config = json.loads((folder / "config.json").read_text())
    assert config["model_type"] == "g2m" and config["event_vocabulary"]
    recipe = yaml.safe_load((folder / "recipe.yaml").read_text())
    assert config["training_window"] == recipe["data"]["max_length"], "generation slides within the trained window"
    # the default model was fine-tuned in full mode (its style adapters are part of it); its base has none
    assert bool(config["style_adapter_layers"]) == (folder == MODEL_DIR)


def test_the_fine_tuning_recipe_starts_from_the_bundled_base():
    recipe = yaml.safe_load((REPOSITORY / "configs" / "default_finetune.yaml").read_text())
    assert (REPOSITORY / recipe["finetune"]["pretrained"]).resolve() == BASE_DIR.resolve()
    window = yaml.safe_load((BASE_DIR / "recipe.yaml").read_text())["data"]["max_length"]
    assert recipe["data"]["max_length"] == window, "fine-tuning keeps the window the base was pretrained on"


def test_the_composer_model_was_fine_tuned_from_the_bundled_base():
    # the default model's stage 1 is the base that ships: the same pretraining run and recipe
    record = json.loads((MODEL_DIR / "training_record.json").read_text())
    assert record["base_model"] == "g2m_hf/default_base_model" and record["recipe"]["data"]["max_length"] == 1024
    pretraining = json.loads((MODEL_DIR / "pretraining_record.json").read_text())
    assert pretraining == json.loads((BASE_DIR / "training_record.json").read_text())


def test_loads_with_from_pretrained_and_knows_the_composers(bundled):
    model, tokenizer = bundled
    assert set(FINE_TUNED) <= set(tokenizer.composers)
    assert model.config.event_vocabulary == tokenizer.event_vocabulary
    assert model.config.vocab_size == len(tokenizer)
    assert sum(p.numel() for p in model.parameters()) < 6_000_000


def test_the_base_offers_only_the_unstyled_condition():
    # g2m-generate --composer all and the app offer what a model was fine-tuned on: the base, none
    assert trained_composers(G2MTokenizer.from_pretrained(BASE_DIR), BASE_DIR) == ["None"]
    assert trained_composers(G2MTokenizer.from_pretrained(MODEL_DIR), MODEL_DIR) == list(FINE_TUNED)


@BOTH
@pytest.mark.parametrize("trust_remote_code", [False, True])
def test_auto_classes_give_the_package_classes(folder, trust_remote_code):
    # the folder has no remote-code files, so it must not name any (auto_map) for the Auto classes to follow
    tokenizer = AutoTokenizer.from_pretrained(folder, trust_remote_code=trust_remote_code)
    model = AutoModelForCausalLM.from_pretrained(folder, trust_remote_code=trust_remote_code)
    assert isinstance(tokenizer, G2MTokenizer) and isinstance(model, G2MForCausalLM)


@pytest.mark.parametrize("folder, composer", [(MODEL_DIR, "Mozart"), (BASE_DIR, None)], ids=["default", "base"])
def test_generates_a_valid_short_piece(folder, composer):
    model, tokenizer = G2MForCausalLM.from_pretrained(folder).eval(), G2MTokenizer.from_pretrained(folder)
    (piece,) = generate_midi(model, tokenizer, composers=[composer], max_bars=3, max_events=160, seed=1)
    events = piece.events
    assert events[0] == f"Composer_{composer}" and events[-1] == "EOS_None"
    assert 1 <= events.count("Bar_None") <= 3
    assert any(event.startswith("Note_Pitch") for event in events)
    # the decoded MIDI encodes back to exactly the sampled events: the grammar held
    assert tokenizer.ids_to_events(tokenizer.encode_midi(_midi_bytes(piece.midi), composer=composer)) == events


@pytest.mark.parametrize("dtype, bound", [("bfloat16", 0.01), ("int8", 0.03)])
def test_lower_precision_weights_predict_what_float32_predicts(bundled, dtype, bound):
    # docs/benchmarks.md (--dtype int8): the faster weights keep the bundled model's next-token distributions
    model, tokenizer = bundled
    (piece,) = generate_midi(model, tokenizer, composers=["Bach"], max_events=300, seed=0)
    ids = torch.tensor([tokenizer.convert_tokens_to_ids(piece.events)])  # [1, T]
    with torch.inference_mode():
        p = model(ids, use_cache=False).logits.float().softmax(-1)  # [1, T, V]
        q = load_model_as(dtype=dtype)(ids, use_cache=False).logits.float().softmax(-1)
    total_variation = float(0.5 * (p - q).abs().sum(-1).mean())
    assert total_variation < bound, total_variation


def _midi_bytes(midi) -> bytes:
    import io

    buffer = io.BytesIO()
    midi.write(buffer)
    return buffer.getvalue()


def test_every_composer_means_the_fine_tuned_ones(bundled):
    model, tokenizer = bundled
    assert model.config.trained_composers == list(FINE_TUNED)
    assert set(tokenizer.composers) > set(FINE_TUNED)  # Chopin and Schumann are in the vocabulary, untrained


@pytest.mark.parametrize(
    "folder, stages",
    [(MODEL_DIR, {"pretraining": "pretraining_record.json", "fine-tuning": "training_record.json"}),
     (BASE_DIR, {"pretraining": "training_record.json"})],
    ids=["default", "base"],
)
def test_every_stage_trained_until_the_validation_loss_flattened(folder, stages):
    evaluation = json.loads((folder / "evaluation.json").read_text())
    assert set(evaluation["convergence"]) == set(stages)
    for stage, name in stages.items():
        measured = evaluation["convergence"][stage]
        assert measured["evaluations"] >= 5, stage
        # flattened: the last quarter of the steps took under 3 % off the loss, the last evaluation interval
        # under 0.5 % (or the loss rose: fine-tuning keeps its best checkpoint)
        assert measured["relative_change"] < 0.03, (stage, measured)
        assert measured["last_interval_change"] < 0.005, (stage, measured)
        record = json.loads((folder / name).read_text())
        # one schedule, evaluated all along (a resumed run continues it exactly: test_training)
        training = record["recipe"]["training"]
        steps = sorted({entry["step"] for entry in record["log_history"] if "eval_loss" in entry})
        assert steps == list(range(training["eval_steps"], training["max_steps"] + 1, training["eval_steps"])), name
        assert record["run"]["global_step"] == training["max_steps"]


@BOTH
def test_records_name_repository_relative_paths(folder):
    # the records are read on other machines: no path of the machine the model was built on
    for path in folder.glob("*.json"):
        text = path.read_text()
        assert "/work/" not in text and "/home/" not in text and "/tmp/" not in text, path.name
    assert "/work/" not in (folder / "recipe.yaml").read_text()
    record = json.loads((folder / "training_record.json").read_text())
    source = "data/mastery + general pieces of data/general" if folder == MODEL_DIR else "data/general"
    assert record["data"]["source"] == source and not Path(record.get("base_model") or "x").is_absolute()


STEERED_APART = {"register": 1.0, "polyphony": 0.3}
"""How much further apart steering puts a knob's low and high bars than the control tokens alone (semitones,
notes per onset; benchmarks/control_obedience.py: register 5.8 against 2.7, polyphony 0.8 against 0.1)."""


@pytest.mark.parametrize("kind", ["density", "polyphony", "register"])
def test_the_bundled_model_obeys_a_low_and_a_high_texture_knob(bundled, kind):
    # benchmarks/control_obedience.py measures every control and level; here, same seeds: at the defaults (texture
    # steering on) low below high, and register and polyphony further apart than with the control tokens alone
    model, tokenizer = bundled
    assert model.generation_config.texture_steering > 0
    medians: dict[tuple[str, float | None], float] = {}
    for steering in (None, 0.0):
        for level in ("low", "high"):
            pieces = generate_midi(model, tokenizer, ["Bach", "Mozart"], num_pieces=2, seed=2, bars=8,
                                   texture_steering=steering, **{kind: level})  # 32 bars per level
            values = np.concatenate([bar_values(piece.events)[kind] for piece in pieces])
            medians[level, steering] = float(np.nanmedian(values))
    assert medians["low", None] < medians["high", None], medians
    if kind in STEERED_APART:
        steered, free = (medians["high", s] - medians["low", s] for s in (None, 0.0))
        assert steered > free + STEERED_APART[kind], medians


def test_the_bundled_models_pieces_end_without_a_pile_of_notes(bundled):
    # where the length masked Bar, the model piled notes on the last grid steps of the last bar (on average 4-6
    # notes on the last onset, up to 9, most of them 32nd notes); EOS now takes the model's wish to close the bar
    model, tokenizer = bundled
    last_onsets = []
    for piece in generate_midi(model, tokenizer, list(FINE_TUNED), num_pieces=4, seed=11, bars=8):
        starts = [note.start for instrument in piece.midi.instruments for note in instrument.notes]
        last_onsets.append(sum(abs(start - max(starts)) < 1e-3 for start in starts))
    assert np.mean(last_onsets) < 3.5 and max(last_onsets) <= 6, last_onsets


def test_the_bundled_model_keeps_a_long_pieces_bars_gathered(bundled, monkeypatch):
    # issue 25: the register tilt alone scattered Beethoven's bars over several octaves as a piece went on
    # (each bar's pitches spread about 15 semitones, real bars 9); the spread term gathers what no real bar has
    model, tokenizer = bundled

    def spreads() -> list[float]:
        pieces = generate_midi(model, tokenizer, ["Beethoven"], num_pieces=2, seed=1, bars=32)
        return [piece_texture(piece.events)["pitch_spread"] for piece in pieces]

    gathered = spreads()
    monkeypatch.setitem(STEERING_GAINS, "spread", 0.0)
    scattered = spreads()
    assert max(gathered) < SPREAD_LIMIT + 0.5 and np.mean(gathered) < np.mean(scattered) - 1, (gathered, scattered)


def test_the_bundled_model_keeps_every_section_in_the_composers_register(bundled, monkeypatch):
    # issue 25: 7 of 8 sections of every 64-bar piece in the composer's real register range; bar by bar, a plan's run
    # of low bars sank whole sections, and a section-scale measure now holds them (docs/texture.md#section-register)
    model, tokenizer = bundled
    low, high, share_low, share_high = model.config.composer_registers["Mozart"]  # the real 8-bar sections' ranges

    def kept() -> list[bool]:
        pieces = generate_midi(model, tokenizer, ["Mozart"], num_pieces=2, seed=0, bars=32, batch_size=2)
        return [low <= section.mean_pitch <= high and share_low <= section.high_share <= share_high
                for piece in pieces for section in section_register(piece.events)]

    held = kept()
    monkeypatch.setitem(STEERING_GAINS, "section", 0.0)
    monkeypatch.setitem(STEERING_GAINS, "section_share", 0.0)
    assert len(held) == 8 and all(held) and not all(kept()), held


def test_the_bundled_model_is_distilled_and_recognised_and_textured_without_guidance(bundled):
    # issue 26: style guidance (against the other composers) distilled into the weights, so the model samples one row
    # per piece; its pieces at the defaults must still be recognised and keep the real texture (issue 25's bounds)
    model, tokenizer = bundled
    record = json.loads((MODEL_DIR / "distillation_record.json").read_text())
    assert (record["style_guidance"], record["style_guidance_contrast"]) == (2.0, "composers")
    assert model.generation_config.style_guidance == 1.0 and record["held_out_kl"]["after"] < record["held_out_kl"]["before"] / 3
    folder = default_classifier_path()
    judges = {"network": network_judge(ComposerClassifier.from_pretrained(folder)),
              "features": feature_judge(folder / FEATURE_CLASSIFIER_FILE)}
    pieces = [piece for composer in FINE_TUNED
              for piece in generate_midi(model, tokenizer, [composer], num_pieces=PIECES, seed=5, bars=16)]
    recognition = judge_pieces([p.composer for p in pieces], [p.events for p in pieces], judges, list(FINE_TUNED))
    card = json.loads((MODEL_DIR / "evaluation.json").read_text())
    real = card["recognition"]["real"]["recognition"]  # the same judges on 16-bar excerpts of held-out real pieces
    features = recognition["features"]
    assert features["mean"] >= 0.75 and min(e["rate"] for e in features["per_composer"].values()) >= 0.6, features
    # issue 25's goal (0.85) is measured over 216 pieces (docs/texture.md#short-surplus); 36 pieces' mean moves by
    # about 0.1 between seeds, so they must not rule it out (its 95 % interval reaches it) and must be recognised
    # no less often than real held-out music
    network = recognition["network"]
    assert network["mean_ci95"][1] >= 0.85 and network["mean"] >= real["network"]["mean"], (network, real["network"])
    assert min(e["rate"] for e in network["per_composer"].values()) >= 0.6, network
    for composer in FINE_TUNED:
        made = median_texture([p.events for p in pieces if p.composer == composer])
        reference = card["texture"][composer]["all_real"]  # the median of the composer's real pieces
        ratio = made["notes_per_bar"] / reference["notes_per_bar"]
        assert NOTES_PER_BAR[0] <= ratio <= NOTES_PER_BAR[1], (composer, made, reference)
        assert abs(made["short_share"] - reference["short_share"]) <= SHORT_SHARE, (composer, made, reference)
