"""g2m-convert-original: original checkpoints (written here by a re-implementation of the original
network, tests/reference/original_model.py) convert to folders whose logits match the original's."""

from __future__ import annotations

import json
import os
import pickle
import subprocess
import sys

import pytest
import torch
from transformers import AutoModelForCausalLM, AutoModelForSequenceClassification, AutoTokenizer, GenerationConfig

from g2m_hf import G2MForCausalLM, G2MForSequenceClassification
from g2m_hf.cli.convert import main as convert_cli
from g2m_hf.convert_original import convert_original_checkpoint, load_original_state_dict
from g2m_hf.errors import CheckpointError, OutputExistsError, VocabularyError
from g2m_hf.vocab import complete_vocabulary
from tests.reference.original_model import OriginalComposerClassifier, OriginalDecoderModel, randomise

EVENTS = complete_vocabulary()[:-1]  # a dictionary.pkl holds no PAD_None: the original appends it when loading
VOCAB_SIZE = len(EVENTS) + 1
TINY = dict(n_head=4, d_model=32, d_ff=64)


def write_dictionary(path, events=EVENTS):
    event2word = {event: i for i, event in enumerate(events)}
    with open(path, "wb") as handle:
        pickle.dump((event2word, {i: e for e, i in event2word.items()}), handle)
    return path


@pytest.fixture
def dictionary(tmp_path):
    return write_dictionary(tmp_path / "dictionary.pkl")


def save_original(model, path):
    torch.save(model.state_dict(), path)  # how train_score.py / finetune_adapter.py save
    return path


def original_decoder(adapters=(0, 2), n_layer=3, seed=0):
    return randomise(OriginalDecoderModel(VOCAB_SIZE, n_layer=n_layer, adapter_positions=adapters, **TINY), seed).eval()


def batch(seed=0, size=3, length=24):
    generator = torch.Generator().manual_seed(seed)
    return torch.randint(0, VOCAB_SIZE - 1, (size, length), generator=generator)


# --- parity -------------------------------------------------------------------------------------------


@pytest.mark.parametrize("adapters", [(0, 2), ()], ids=["fine-tuned", "pretrained"])
def test_converted_decoder_matches_the_original(tmp_path, dictionary, adapters):
    original = original_decoder(adapters)
    checkpoint = save_original(original, tmp_path / "ep022_loss0.434_params.pt")
    folder = convert_original_checkpoint(checkpoint, dictionary, tmp_path / "out", num_attention_heads=4)

    ids = batch()
    with torch.no_grad():
        expected = original(ids.T).transpose(0, 1)  # the original is sequence-first
        for attn in ("eager", "sdpa"):
            model = AutoModelForCausalLM.from_pretrained(folder, attn_implementation=attn).eval()
            assert type(model) is G2MForCausalLM and model.config.style_adapter_layers == list(adapters)
            assert model.config.training_window == 2400  # the original's windows: generation slides within them
            assert (model(ids).logits - expected).abs().max().item() < 1e-5


def test_post_layer_norm_checkpoints_convert_with_the_option(tmp_path, dictionary, capsys):
    """The original code's default (pre_lnorm=False) has the same keys as pre-LN: the option decides, and
    converting with the wrong one gives a model that computes something else (hence the documented choice)."""
    original = randomise(
        OriginalDecoderModel(VOCAB_SIZE, n_layer=3, adapter_positions=(1,), pre_lnorm=False, **TINY)
    ).eval()
    checkpoint = save_original(original, tmp_path / "post_ln.pt")
    args = ["--checkpoint", checkpoint, "--dictionary", dictionary, "--num-heads", "4"]
    assert convert_cli([str(a) for a in [*args, "--output", tmp_path / "post", "--layer-norm", "post"]]) == 0
    assert convert_cli([str(a) for a in [*args, "--output", tmp_path / "pre"]]) == 0  # the default: pre-LN
    ids = batch()
    with torch.no_grad():
        expected = original(ids.T).transpose(0, 1)
        post = AutoModelForCausalLM.from_pretrained(tmp_path / "post").eval()
        assert post.config.pre_layer_norm is False
        assert (post(ids).logits - expected).abs().max().item() < 1e-5
        wrong = AutoModelForCausalLM.from_pretrained(tmp_path / "pre").eval()
        assert (wrong(ids).logits - expected).abs().max().item() > 1e-2

    classifier = randomise(OriginalComposerClassifier(VOCAB_SIZE, n_layer=2, pre_lnorm=False, **TINY)).eval()
    folder = convert_original_checkpoint(save_original(classifier, tmp_path / "post_cls.pt"), dictionary,
                                         tmp_path / "post_cls", num_attention_heads=4, pre_layer_norm=False)
    with torch.no_grad():
        converted = AutoModelForSequenceClassification.from_pretrained(folder).eval()
        assert (converted(ids[:, 1:]).logits - classifier(ids[:, 1:])).abs().max().item() < 1e-5


def test_converted_classifier_matches_the_original(tmp_path, dictionary):
    original = randomise(OriginalComposerClassifier(VOCAB_SIZE, n_layer=2, **TINY)).eval()
    folder = convert_original_checkpoint(
        save_original(original, tmp_path / "classifier.pt"), dictionary, tmp_path / "out", num_attention_heads=4
    )
    ids = batch(size=3, length=20)
    ids[1, 12:] = VOCAB_SIZE - 1  # right padding with PAD, as the original's collate does
    model = AutoModelForSequenceClassification.from_pretrained(folder).eval()
    with torch.no_grad():
        difference = (model(ids).logits - original(ids)).abs().max().item()
    assert type(model) is G2MForSequenceClassification and difference < 1e-5
    assert model.config.id2label == {0: "Bach", 1: "Chopin", 2: "Mozart", 3: "Beethoven"}


# --- the written folder -------------------------------------------------------------------------------


def test_folder_contents(tmp_path, dictionary):
    checkpoint = save_original(original_decoder(), tmp_path / "ep022.pt")
    folder = convert_original_checkpoint(checkpoint, dictionary, tmp_path / "out", num_attention_heads=4)
    names = set(os.listdir(folder))
    assert {"config.json", "model.safetensors", "generation_config.json", "tokenizer.json", "README.md"} <= names
    assert {"configuration_g2m.py", "modeling_g2m.py", "vocab.py", "errors.py"} <= names  # remote code
    assert not any(name.endswith((".bin", ".pt", ".pkl")) for name in names)

    config = json.loads((folder / "config.json").read_text())
    assert config["num_hidden_layers"] == 3 and config["hidden_size"] == 32 and config["intermediate_size"] == 64
    assert config["event_vocabulary"] == EVENTS + ["PAD_None"] and config["pad_token_id"] == VOCAB_SIZE - 1
    assert config["auto_map"]["AutoModelForCausalLM"] == "modeling_g2m.G2MForCausalLM"

    tokenizer = AutoTokenizer.from_pretrained(folder)
    assert [tokenizer.convert_ids_to_tokens(i) for i in range(VOCAB_SIZE)] == EVENTS + ["PAD_None"]
    generation = GenerationConfig.from_pretrained(folder)
    assert (generation.do_sample, generation.temperature, generation.top_p, generation.top_k) == (True, 1.1, 0.99, 0)
    # the 1200-event limit is generate()'s default (grammar.SPEC_MAX_LENGTH), not saved: a saved max_length
    # would make transformers warn at every call that passes max_new_tokens
    assert generation.max_length is None and generation.pad_token_id == VOCAB_SIZE - 1
    assert EVENTS[generation.eos_token_id] == "EOS_None" and EVENTS[generation.bos_token_id] == "BOS_None"
    card = (folder / "README.md").read_text()
    assert "ep022.pt" in card and "style adapters after layers: [0, 2]" in card


def test_wrapped_state_dict_is_accepted(tmp_path, dictionary):
    original = original_decoder(adapters=(1,), n_layer=2)
    checkpoint = tmp_path / "wrapped.pt"
    torch.save({"model": original.state_dict(), "epoch": 3}, checkpoint)
    assert load_original_state_dict(checkpoint).keys() == original.state_dict().keys()
    folder = convert_original_checkpoint(checkpoint, dictionary, tmp_path / "out", num_attention_heads=4)
    assert json.loads((folder / "config.json").read_text())["style_adapter_layers"] == [1]


# --- refusals -----------------------------------------------------------------------------------------


class _Exploit:
    def __reduce__(self):
        return (os.system, ("echo pwned",))


@pytest.mark.parametrize(
    "content, reason",
    [
        (b"not a checkpoint at all", "not a readable PyTorch checkpoint"),
        ("exploit", "not a readable PyTorch checkpoint"),
        ({"epoch": 3}, "not a state dict"),
        ("linear", "not an original Generality-to-Mastery checkpoint"),
    ],
)
def test_non_checkpoints_are_refused(tmp_path, dictionary, content, reason):
    path = tmp_path / "bad.pt"
    if content == "exploit":
        with open(path, "wb") as handle:
            pickle.dump(_Exploit(), handle, protocol=2)
    elif content == "linear":
        torch.save(torch.nn.Linear(3, 2).state_dict(), path)
    elif isinstance(content, bytes):
        path.write_bytes(content)
    else:
        torch.save(content, path)
    with pytest.raises(CheckpointError, match=reason) as error:
        convert_original_checkpoint(path, dictionary, tmp_path / "out")
    assert str(path) in str(error.value) and not (tmp_path / "out").exists()


def test_unknown_parameters_are_refused(tmp_path, dictionary):
    state = original_decoder().state_dict()
    state["decoder.layers.0.extra.weight"] = torch.zeros(2)
    torch.save(state, tmp_path / "odd.pt")
    with pytest.raises(CheckpointError, match="unexpected parameter 'decoder.layers.0.extra.weight'"):
        convert_original_checkpoint(tmp_path / "odd.pt", dictionary, tmp_path / "out")


def test_vocabulary_mismatch_is_refused(tmp_path):
    checkpoint = save_original(original_decoder(), tmp_path / "ep.pt")
    smaller = write_dictionary(tmp_path / "other.pkl", EVENTS[:-3])
    with pytest.raises(CheckpointError, match=f"{VOCAB_SIZE} token ids but the dictionary has {VOCAB_SIZE - 3}"):
        convert_original_checkpoint(checkpoint, smaller, tmp_path / "out")
    (tmp_path / "broken.pkl").write_bytes(b"\x80\x04junk")
    with pytest.raises(VocabularyError):
        convert_original_checkpoint(checkpoint, tmp_path / "broken.pkl", tmp_path / "out")
    assert not (tmp_path / "out").exists()


def test_existing_output_is_kept_unless_overwrite(tmp_path, dictionary):
    checkpoint = save_original(original_decoder(), tmp_path / "ep.pt")
    output = tmp_path / "out"
    output.mkdir()
    (output / "notes.txt").write_text("mine")
    with pytest.raises(OutputExistsError, match="overwrite"):
        convert_original_checkpoint(checkpoint, dictionary, output)
    assert os.listdir(output) == ["notes.txt"]
    convert_original_checkpoint(checkpoint, dictionary, output, overwrite=True, num_attention_heads=4)
    assert (output / "model.safetensors").exists() and (output / "notes.txt").read_text() == "mine"


# --- command line -------------------------------------------------------------------------------------


def test_cli_reports_errors_without_traceback(tmp_path, dictionary, capsys):
    (tmp_path / "bad.pt").write_bytes(b"junk")
    args = ["--checkpoint", str(tmp_path / "bad.pt"), "--dictionary", str(dictionary), "--output", str(tmp_path / "o")]
    assert convert_cli(args) == 2
    err = capsys.readouterr().err
    assert err.startswith("g2m-convert-original: error:") and "bad.pt" in err and "Traceback" not in err


@pytest.mark.slow
def test_module_command_end_to_end(tmp_path, dictionary):
    """`python -m g2m_hf.cli.convert` on a full-width (d_model 512) fine-tuned checkpoint."""
    original = randomise(OriginalDecoderModel(VOCAB_SIZE, n_layer=2, adapter_positions=(1,))).eval()
    checkpoint = save_original(original, tmp_path / "ep022.pt")
    output = tmp_path / "converted"
    command = [
        sys.executable,
        "-m",
        "g2m_hf.cli.convert",
        "--checkpoint",
        str(checkpoint),
        "--dictionary",
        str(dictionary),
        "--output",
        str(output),
    ]
    done = subprocess.run(command, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert f"wrote {output}" in done.stdout

    ids = batch(length=16)
    model = AutoModelForCausalLM.from_pretrained(output).eval()
    assert model.config.num_attention_heads == 8 and model.config.hidden_size == 512
    with torch.no_grad():
        assert (model(ids).logits - original(ids.T).transpose(0, 1)).abs().max().item() < 1e-5
