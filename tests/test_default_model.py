"""The bundled default model (g2m_hf/default_model): loads offline, stays small, writes valid music."""

from __future__ import annotations

import json

import pytest
from safetensors.torch import load_file

from g2m_hf import G2MForCausalLM, G2MTokenizer, default_model_path, generate_midi
from transformers import AutoModelForCausalLM, AutoTokenizer

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
