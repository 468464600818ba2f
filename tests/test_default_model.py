"""The bundled default model (g2m_hf/default_model): loads offline, stays small, writes valid music."""

from __future__ import annotations

import json

import pytest
import yaml
from safetensors.torch import load_file
from transformers import AutoModelForCausalLM, AutoTokenizer

from g2m_hf import G2MForCausalLM, G2MTokenizer, default_model_path, generate_midi

MAX_BYTES = 25 * 1024 * 1024  # the wheel's budget for the model weights
FINE_TUNED = ("Bach", "Beethoven", "Mozart")

MODEL_DIR = default_model_path()  # the package ships it: a missing model is a failure, not a skip


@pytest.fixture(scope="module")
def bundled():
    return G2MForCausalLM.from_pretrained(MODEL_DIR).eval(), G2MTokenizer.from_pretrained(MODEL_DIR)


def test_folder_is_a_small_plain_model_folder():
    names = {path.name for path in MODEL_DIR.iterdir()}
    assert {"config.json", "model.safetensors", "tokenizer.json", "generation_config.json", "README.md"} <= names
    assert not names & {"adapter_config.json", "training_args.bin", "runs"}
    assert not any(name.startswith("checkpoint-") or name.endswith((".bin", ".pt", ".pkl", ".pth")) for name in names)
    weights = MODEL_DIR / "model.safetensors"
    assert weights.stat().st_size < MAX_BYTES
    count = sum(tensor.numel() for tensor in load_file(weights).values())
    assert 1_000_000 < count < 6_000_000  # "a few M parameters"
    config = json.loads((MODEL_DIR / "config.json").read_text())
    assert config["model_type"] == "g2m" and config["event_vocabulary"]
    assert config["style_adapter_layers"], "fine-tuned in full mode: the style adapters are part of the model"
    recipe = yaml.safe_load((MODEL_DIR / "recipe.yaml").read_text())
    assert config["training_window"] == recipe["data"]["max_length"], "generation slides within the trained window"


def test_loads_with_from_pretrained_and_knows_the_composers(bundled):
    model, tokenizer = bundled
    assert set(FINE_TUNED) <= set(tokenizer.composers)
    assert model.config.event_vocabulary == tokenizer.event_vocabulary
    assert model.config.vocab_size == len(tokenizer)
    assert sum(p.numel() for p in model.parameters()) < 6_000_000


@pytest.mark.parametrize("trust_remote_code", [False, True])
def test_auto_classes_give_the_package_classes(trust_remote_code):
    # the folder has no remote-code files, so it must not name any (auto_map) for the Auto classes to follow
    tokenizer = AutoTokenizer.from_pretrained(MODEL_DIR, trust_remote_code=trust_remote_code)
    model = AutoModelForCausalLM.from_pretrained(MODEL_DIR, trust_remote_code=trust_remote_code)
    assert isinstance(tokenizer, G2MTokenizer) and isinstance(model, G2MForCausalLM)


def test_generates_a_valid_short_piece(bundled):
    model, tokenizer = bundled
    (piece,) = generate_midi(model, tokenizer, composers=["Mozart"], max_bars=3, max_events=160, seed=1)
    events = piece.events
    assert events[0] == "Composer_Mozart" and events[-1] == "EOS_None"
    assert 1 <= events.count("Bar_None") <= 3
    assert any(event.startswith("Note_Pitch") for event in events)
    # the decoded MIDI encodes back to exactly the sampled events: the grammar held
    assert tokenizer.ids_to_events(tokenizer.encode_midi(_midi_bytes(piece.midi), composer="Mozart")) == events


def _midi_bytes(midi) -> bytes:
    import io

    buffer = io.BytesIO()
    midi.write(buffer)
    return buffer.getvalue()


def test_every_composer_means_the_fine_tuned_ones(bundled):
    model, tokenizer = bundled
    assert model.config.trained_composers == list(FINE_TUNED)
    assert set(tokenizer.composers) > set(FINE_TUNED)  # Chopin and Schumann are in the vocabulary, untrained


def test_both_stages_trained_until_the_validation_loss_flattened():
    evaluation = json.loads((MODEL_DIR / "evaluation.json").read_text())
    for stage in ("pretraining", "fine-tuning"):
        measured = evaluation["convergence"][stage]
        assert measured["evaluations"] >= 5, stage
        # flattened: the last quarter of the steps took under 3 % off the loss, the last evaluation interval
        # under 0.5 % (or the loss rose: fine-tuning keeps its best checkpoint)
        assert measured["relative_change"] < 0.03, (stage, measured)
        assert measured["last_interval_change"] < 0.005, (stage, measured)
    for name in ("training_record.json", "pretraining_record.json"):
        record = json.loads((MODEL_DIR / name).read_text())
        # one schedule, evaluated all along (a resumed run continues it exactly: test_training)
        training = record["recipe"]["training"]
        steps = sorted({entry["step"] for entry in record["log_history"] if "eval_loss" in entry})
        assert steps == list(range(training["eval_steps"], training["max_steps"] + 1, training["eval_steps"])), name
        assert record["run"]["global_step"] == training["max_steps"]


def test_records_name_repository_relative_paths():
    # the records are read on other machines: no path of the machine the model was built on
    for name in ("training_record.json", "pretraining_record.json", "recipe.yaml"):
        text = (MODEL_DIR / name).read_text()
        assert "/work/" not in text and "/home/" not in text and "/tmp/" not in text, name
    record = json.loads((MODEL_DIR / "training_record.json").read_text())
    assert record["base_model"] == "outputs/default_pretrain" and record["data"]["source"] == "data/mastery"
