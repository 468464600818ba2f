"""G2MTokenizer: events <-> ids on real chorales, original dictionary ids, save/load, composers, MIDI."""

from __future__ import annotations

import filecmp
import io
import json
import os
import pickle
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from transformers import AutoTokenizer

from g2m_hf import G2MTokenizer, VocabularyError
from g2m_hf.vocab import (
    BOS_TOKEN,
    DURATION_MAX,
    DURATION_STEP,
    EOS_TOKEN,
    ORIGINAL_COMPOSERS,
    PAD_TOKEN,
    PITCH_MAX,
    PITCH_MIN,
    complete_vocabulary,
    read_original_dictionary,
)
from tests.reference import original_remi

REMOTE_CODE_FILES = ("tokenization_g2m.py", "vocab.py", "errors.py")
PACKAGE_DIR = Path(__file__).resolve().parents[1] / "g2m_hf"


@pytest.fixture(scope="module")
def chorales(tmp_path_factory) -> list[Path]:
    """Three Bach chorales from the music21 corpus, written to MIDI by music21."""
    music21 = pytest.importorskip("music21")
    folder = tmp_path_factory.mktemp("chorales")
    paths = []
    for source in sorted(str(path) for path in music21.corpus.getComposer("bach") if str(path).endswith(".mxl"))[:3]:
        target = folder / (Path(source).name.removesuffix(".mxl") + ".mid")
        music21.corpus.parse(source).write("midi", fp=str(target))
        paths.append(target)
    return paths


@pytest.fixture(scope="module")
def chorale_events(chorales) -> list[list[str]]:
    """The chorales' events by the reference re-implementation of the original converter."""
    return [original_remi.midi_to_events(path, composer="Bach") for path in chorales]


@pytest.fixture()
def tok() -> G2MTokenizer:
    return G2MTokenizer()


def original_dictionary(pieces: list[list[str]]) -> tuple[dict[str, int], dict[int, str]]:
    """(event2word, word2event) built by the original rule (SPEC §2; events2words.py)."""
    events = [token for piece in pieces for token in piece]
    events += [f"Note_Pitch_{p}" for p in range(PITCH_MIN, PITCH_MAX + 1)]
    events += [f"Note_Duration_{d}" for d in range(DURATION_STEP, DURATION_MAX + 1, DURATION_STEP)]
    events += [f"Composer_{c}" for c in ORIGINAL_COMPOSERS]
    unique = sorted(set(events))
    return {e: i for i, e in enumerate(unique)}, {i: e for i, e in enumerate(unique)}


def write_pickle(path: Path, content: object) -> Path:
    with open(path, "wb") as handle:
        pickle.dump(content, handle, protocol=5)  # the original writes with the pickle5 backport
    return path


# --- vocabulary and text round trips ---------------------------------------------------------


def test_default_vocabulary_and_special_tokens(tok):
    vocabulary = complete_vocabulary()
    assert tok.event_vocabulary == vocabulary
    assert len(tok) == tok.vocab_size == len(vocabulary)
    assert (tok.pad_token, tok.bos_token, tok.eos_token) == (PAD_TOKEN, BOS_TOKEN, EOS_TOKEN)
    assert [tok.pad_token_id, tok.bos_token_id, tok.eos_token_id] == [
        vocabulary.index(PAD_TOKEN),
        vocabulary.index(BOS_TOKEN),
        vocabulary.index(EOS_TOKEN),
    ]
    assert tok.pad_token_id == len(vocabulary) - 1  # PAD last, as in the original


def test_round_trip_on_chorales(tok, chorale_events):
    vocabulary = complete_vocabulary()
    for events in chorale_events:
        ids = tok.events_to_ids(events)
        assert ids == [vocabulary.index(token) for token in events]
        # A whole piece encodes to exactly its events: nothing added, nothing split.
        assert tok(" ".join(events)).input_ids == ids
        assert tok.encode(" ".join(events)) == ids
        assert tok(events, is_split_into_words=True).input_ids == ids
        assert tok.ids_to_events(ids) == events
        assert tok.ids_to_events(torch.tensor([ids])) == events
        assert tok.decode(ids) == " ".join(events)
        assert tok.convert_ids_to_tokens(ids) == events


def test_unknown_events_and_ids_raise(tok):
    with pytest.raises(VocabularyError, match="Note_Pitch_200"):
        tok("Composer_Bach Tempo_120 Note_Pitch_200")
    with pytest.raises(VocabularyError, match="Beat_99"):
        tok.events_to_ids(["Bar_None", "Beat_99"])
    with pytest.raises(VocabularyError, match=str(len(tok))):
        tok.ids_to_events([0, len(tok)])


# --- the original dictionary.pkl ------------------------------------------------------------------


def test_original_dictionary_ids(tmp_path, chorale_events):
    event2word, word2event = original_dictionary(chorale_events)
    path = write_pickle(tmp_path / "dictionary.pkl", (event2word, word2event))

    tok = G2MTokenizer.from_original_dictionary(path)

    assert read_original_dictionary(path) == tok.event_vocabulary
    assert tok.event_vocabulary[: len(event2word)] == [word2event[i] for i in range(len(word2event))]
    assert tok.pad_token_id == len(event2word) == len(tok) - 1  # the original's read_vocab()
    for events in chorale_events:
        expected = [event2word[token] for token in events]
        assert tok.events_to_ids(events) == expected
        assert tok(" ".join(events)).input_ids == expected
    # A data-built dictionary lacks parts of the complete event space: those events are refused.
    missing = sorted(set(complete_vocabulary()) - set(event2word) - {PAD_TOKEN})
    assert missing and tok.event_vocabulary != complete_vocabulary()
    with pytest.raises(VocabularyError, match=missing[0]):
        tok.events_to_ids(missing[:1])


def test_malicious_dictionary_pickle_is_refused(tmp_path):
    marker = tmp_path / "pwned"

    class Exploit:
        def __reduce__(self):
            return os.system, (f"touch {marker}",)

    path = write_pickle(tmp_path / "evil.pkl", ({"Bar_None": 0}, Exploit()))
    with pytest.raises(VocabularyError, match=r"evil\.pkl.*forbidden global"):
        read_original_dictionary(path)
    assert not marker.exists()


@pytest.mark.parametrize(
    ("content", "reason"),
    [
        (["Bar_None", "BOS_None"], "pair of dicts"),
        (({"Bar_None": 0, "BOS_None": 2}, {0: "Bar_None", 2: "BOS_None"}), "not contiguous"),
        (({"Bar_None": 0, "BOS_None": 1}, {0: "BOS_None", 1: "Bar_None"}), "not the inverse"),
        (({"Bar_None": 0, "PAD_None": 1}, {0: "Bar_None", 1: "PAD_None"}), "already contains PAD_None"),
        (({"Bar None": 0}, {0: "Bar None"}), "without whitespace"),
    ],
)
def test_malformed_dictionary_is_refused(tmp_path, content, reason):
    path = write_pickle(tmp_path / "dictionary.pkl", content)
    with pytest.raises(VocabularyError, match=rf"dictionary\.pkl.*{reason}"):
        read_original_dictionary(path)


def test_truncated_dictionary_is_refused(tmp_path):
    path = tmp_path / "dictionary.pkl"
    path.write_bytes(pickle.dumps(({"Bar_None": 0}, {0: "Bar_None"}))[:-5])
    with pytest.raises(VocabularyError, match=r"dictionary\.pkl: not a readable dictionary pickle"):
        read_original_dictionary(path)


# --- save / load ----------------------------------------------------------------------------------


def test_save_pretrained_round_trip(tmp_path, tok):
    haydn = tok.add_composer("Haydn")
    tok.save_pretrained(tmp_path)

    for name in REMOTE_CODE_FILES:  # register_for_auto_class copies the class file and its relative imports
        assert filecmp.cmp(tmp_path / name, PACKAGE_DIR / name, shallow=False), name
    assert not (tmp_path / "remi.py").exists()  # MIDI codec stays out of remote code
    config = json.loads((tmp_path / "tokenizer_config.json").read_text())
    assert config["tokenizer_class"] == "PreTrainedTokenizerFast"
    assert "tokenization_g2m.G2MTokenizer" in config["auto_map"]["AutoTokenizer"]

    loaded = G2MTokenizer.from_pretrained(tmp_path)
    assert loaded.event_vocabulary == tok.event_vocabulary
    assert loaded.composers == tok.composers
    assert loaded.composer_prompt("haydn").input_ids.tolist() == [[haydn]]
    assert (loaded.pad_token_id, loaded.bos_token_id, loaded.eos_token_id, loaded.padding_side) == (
        tok.pad_token_id,
        tok.bos_token_id,
        tok.eos_token_id,
        "left",
    )

    # With g2m_hf imported, AutoTokenizer still gives the folder's declared generic class (see
    # G2MTokenizer._save_pretrained), with identical ids and padding.
    auto = AutoTokenizer.from_pretrained(tmp_path)
    text = "Composer_Haydn Tempo_120 BOS_None Bar_None Time_Signature_6/8 Beat_3 EOS_None"
    assert auto(text).input_ids == loaded(text).input_ids == tok(text).input_ids
    assert auto.padding_side == "left" and auto.pad_token_id == tok.pad_token_id


@pytest.mark.slow
def test_folder_loads_where_g2m_hf_is_missing(tmp_path, tok):
    """A plain AutoTokenizer load needs no g2m_hf and no remote code; trust_remote_code gives G2MTokenizer."""
    tok.add_composer("Haydn")
    folder = tmp_path / "tokenizer"
    tok.save_pretrained(folder)
    text = "Composer_Haydn Tempo_80 BOS_None Bar_None Time_Signature_3/8 Beat_17 Note_Pitch_108 EOS_None"
    script = f"""
import json, sys
sys.modules["g2m_hf"] = None  # g2m_hf cannot be imported in this process
from transformers import AutoTokenizer
plain = AutoTokenizer.from_pretrained({str(folder)!r})
remote = AutoTokenizer.from_pretrained({str(folder)!r}, trust_remote_code=True)
try:
    remote.encode_midi(b"MThd")
    midi_error = None
except ImportError as error:
    midi_error = str(error)
print(json.dumps({{
    "plain": [type(plain).__module__, plain({text!r}).input_ids],
    "remote": [type(remote).__module__, type(remote).__name__, remote({text!r}).input_ids, remote.composers],
    "midi_error": midi_error,
}}))
"""
    env = {**os.environ, "HF_MODULES_CACHE": str(tmp_path / "modules"), "PYTHONPATH": ""}
    run = subprocess.run(
        [sys.executable, "-c", script], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300
    )
    assert run.returncode == 0, run.stderr
    result = json.loads(run.stdout.strip().splitlines()[-1])
    ids = tok(text).input_ids

    assert result["plain"][0].startswith("transformers.") and result["plain"][1] == ids
    module, name, remote_ids, composers = result["remote"]
    assert module.startswith("transformers_modules.") and name == "G2MTokenizer"
    assert remote_ids == ids and composers == tok.composers
    assert "needs the g2m_hf package" in result["midi_error"]


# --- composers ------------------------------------------------------------------------------------


def test_composer_prompt(tok):
    assert sorted(tok.composers) == sorted(ORIGINAL_COMPOSERS)
    prompt = tok.composer_prompt(["bach", "MOZART", "Chopin"])
    assert prompt.input_ids.shape == prompt.attention_mask.shape == (3, 1)
    assert prompt.input_ids.dtype == torch.long
    assert prompt.input_ids[:, 0].tolist() == tok.convert_tokens_to_ids(
        ["Composer_Bach", "Composer_Mozart", "Composer_Chopin"]
    )
    assert prompt.attention_mask.tolist() == [[1], [1], [1]]
    assert tok.composer_prompt("Beethoven", return_tensors=None).input_ids == [
        [tok.convert_tokens_to_ids("Composer_Beethoven")]
    ]
    assert tok.composer_prompt(None).input_ids.tolist() == [[tok.convert_tokens_to_ids("Composer_None")]]


def test_prompts_pad_on_the_left(tok):
    """Prompts of unequal length pad on the left with PAD (what batched generation needs)."""
    bach, tempo = tok.convert_tokens_to_ids(["Composer_Bach", "Tempo_120"])
    batch = tok.pad({"input_ids": [[bach], [bach, tempo]]}, return_tensors="pt")
    assert batch.input_ids.tolist() == [[tok.pad_token_id, bach], [bach, tempo]]
    assert batch.attention_mask.tolist() == [[0, 1], [1, 1]]
    batch = tok(["Composer_Bach", "Composer_Bach Tempo_120"], padding=True, return_tensors="pt")
    assert batch.input_ids.tolist() == [[tok.pad_token_id, bach], [bach, tempo]]


def test_unknown_composer_lists_the_known_ones(tok):
    with pytest.raises(VocabularyError) as caught:
        tok.composer_prompt(["Bach", "Vivaldi"])
    assert "Vivaldi" in str(caught.value)
    assert all(name in str(caught.value) for name in tok.composers)


def test_add_composer_keeps_old_ids(tok):
    before = tok.event_vocabulary
    haydn = tok.add_composer("Haydn")
    assert haydn == len(before) == len(tok) - 1
    assert tok.event_vocabulary == before + ["Composer_Haydn"]
    assert tok.add_composer("haydn") == haydn and len(tok) == len(before) + 1  # idempotent, any case
    assert tok.add_composer("bach") == before.index("Composer_Bach")
    assert tok.composers[-1] == "Haydn"
    assert tok("Composer_Haydn Tempo_120").input_ids == [haydn, before.index("Tempo_120")]
    assert tok.composer_prompt("HAYDN").input_ids.tolist() == [[haydn]]
    for bad in ("C P E Bach", "C_P_E_Bach", ""):
        with pytest.raises(VocabularyError):
            tok.add_composer(bad)
    assert len(tok) == len(before) + 1
    tok.add_tokens(["Foo_1"])  # takes the next id, which add_composer must not hand out again
    with pytest.raises(VocabularyError, match="add_tokens"):
        tok.add_composer("Vivaldi")


# --- MIDI (through g2m_hf.remi) -------------------------------------------------------------------


def test_encode_and_decode_midi(tok, chorales):
    from g2m_hf import remi

    path = chorales[0]
    ids = tok.encode_midi(path, composer="bach")
    assert ids == tok.events_to_ids(remi.midi_to_events(path, composer="Bach"))
    assert ids[0] == tok.convert_tokens_to_ids("Composer_Bach")
    assert tok.encode_midi(path.read_bytes(), composer="Bach") == ids
    with open(path, "rb") as handle:
        assert tok.encode_midi(handle, composer="Bach") == ids
    assert tok.encode_midi(path)[0] == tok.convert_tokens_to_ids("Composer_None")

    notes = sum(token.startswith("Note_Pitch_") for token in tok.ids_to_events(ids))
    midi = tok.decode_midi(ids)
    assert sum(len(instrument.notes) for instrument in midi.instruments) == notes
    padded = torch.tensor([[tok.pad_token_id] * 3 + ids])  # a left-padded [1, T] generate() row
    again = tok.decode_midi(padded)
    assert [(n.pitch, n.start, n.end) for n in again.instruments[0].notes] == [
        (n.pitch, n.start, n.end) for n in midi.instruments[0].notes
    ]


def test_encode_midi_matches_original_dictionary_ids(tmp_path, chorales, chorale_events):
    event2word, word2event = original_dictionary(chorale_events)
    tok = G2MTokenizer.from_original_dictionary(write_pickle(tmp_path / "dictionary.pkl", (event2word, word2event)))
    for path, events in zip(chorales, chorale_events):
        assert tok.encode_midi(path, composer="Bach") == [event2word[token] for token in events]


def test_encode_midi_errors_name_the_file(chorales):
    vocabulary = [token for token in complete_vocabulary() if token != "Beat_0"]
    tok = G2MTokenizer(vocab=vocabulary)
    with pytest.raises(VocabularyError, match=rf"{chorales[0].name}.*Beat_0"):
        tok.encode_midi(chorales[0], composer="Bach")
    with pytest.raises(VocabularyError, match="Vivaldi"):
        tok.encode_midi(io.BytesIO(chorales[0].read_bytes()), composer="Vivaldi")
