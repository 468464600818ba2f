"""Sharing on the Hub: `g2m-push` against a loopback Hub server (tests/hub_server.py), then loading
the pushed repositories in a fresh process where g2m_hf cannot be imported."""

from __future__ import annotations

import ast
import json
import os
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from huggingface_hub import CommitOperationAdd, HfApi, ModelCard, ModelCardData, constants
from huggingface_hub.errors import RepositoryNotFoundError

from g2m_hf import G2MConfig, G2MForCausalLM, G2MTokenizer
from g2m_hf.control_tokens import add_control_tokens
from g2m_hf.model_card import CardSection, build_card
from g2m_hf.paper import PUBLISHED_METRICS, SYSTEM
from g2m_hf.remote_code import AUTO_MAPS, declare_code, declared_files
from hub_upload import build_model_card, plan_upload, push_to_hub
from hub_upload.cli import main as push_cli
from hub_upload.errors import HubPushError
from hub_upload.push import MANIFEST_NAME, PICKLE_SUFFIXES, REMOTE_CODE_ENTRY_POINTS, remote_code_files
from tests.cli import exit_code
from tests.hub_server import LoopbackHub

ALICE, BOB = LoopbackHub.USERS.items()
PROBE_IDS = [[5, 40, 0, 1, 200, 120, 150, 3]]
"""Input ids whose logits are compared between the local model and the one loaded from the Hub."""


# --- fixtures ---------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def hub(loopback_hub, tmp_path_factory):
    """The loopback Hub made the endpoint of this process (which conftest otherwise keeps offline).

    No token is ambient: tests pass one explicitly, so a missing token is a real missing token.
    """
    home = tmp_path_factory.mktemp("hf_home")
    with pytest.MonkeyPatch.context() as patch:
        # what huggingface_hub derives from HF_ENDPOINT & co at import
        for name, value in {
            "HF_HUB_OFFLINE": False, "HF_HUB_DISABLE_XET": True, "ENDPOINT": loopback_hub.url,
            "HUGGINGFACE_CO_URL_TEMPLATE": loopback_hub.url + "/{repo_id}/resolve/{revision}/{filename}",
            "HF_HUB_CACHE": str(home / "hub"), "HF_TOKEN_PATH": str(home / "token"),
        }.items():
            patch.setattr(constants, name, value)
        for name in ("HF_TOKEN", "HUGGING_FACE_HUB_TOKEN", "HF_OIDC_RESOURCE"):
            patch.delenv(name, raising=False)
        yield loopback_hub


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory) -> Path:
    """A tiny random G2MForCausalLM + G2MTokenizer folder with a training record and an evaluation report."""
    from training.record import write_training_record

    folder = tmp_path_factory.mktemp("tiny_model")
    tokenizer = G2MTokenizer()
    add_control_tokens(tokenizer)
    config = G2MConfig(
        vocab_size=len(tokenizer), hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
        intermediate_size=64, style_adapter_layers=[1], pad_token_id=tokenizer.pad_token_id,
        bos_token_id=tokenizer.bos_token_id, eos_token_id=tokenizer.eos_token_id,
        event_vocabulary=tokenizer.event_vocabulary,
        # one real "piece" of four bars (texture_plan.RealTexture): generate() plans it, in remote code too
        composer_textures={"Bach": ["160 0.10: 012 112 202 ---"]}, composer_registers={"Bach": [58.0, 64.0, 0.5, 0.7]},
    )
    torch.manual_seed(0)
    G2MForCausalLM(config).save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    write_training_record(
        folder, task="finetune", mode="full", base_model="alice/g2m-general", recipe_file="configs/tiny.yaml",
        recipe={"learning_rate": 1e-5, "warmup_steps": 500, "output_dir": "/home/me/runs/tiny", "lora": {"r": 8}},
        data={"source": "alice/music21-composers", "train_examples": 97, "validation_examples": 3,
              "train_events": 65432, "composers": {"Bach": 60, "Mozart": 40}, "new_composers": []},
        model={"class": "G2MForCausalLM", "parameters": 39387},
        run={"global_step": 120, "epochs": 3.0, "train_loss": 2.3456, "device": "cpu"},
        eval_metrics={"eval_loss": 2.5, "eval_perplexity": 12.18}, log_history=[],
    )
    (folder / "evaluation").mkdir()
    report = {"summary": {"g2m": {"H": 3.123, "GS": 0.951}, "training data": {"H": 3.3, "GS": 0.97}}}
    (folder / "evaluation" / "report.json").write_text(json.dumps(report))
    return folder


@pytest.fixture(scope="module")
def pushed_model(hub, model_dir):
    """``alice/g2m-tiny``: the tiny model pushed once for the module."""
    result = push_to_hub(model_dir, "alice/g2m-tiny", token=ALICE[1])
    assert result.changed
    return result


def copy_folder(model_dir: Path, tmp_path: Path) -> Path:
    return Path(shutil.copytree(model_dir, tmp_path / "model"))


def repo_files(repo_id: str, token: str = ALICE[1], revision: str | None = None) -> set[str]:
    return set(HfApi(token=token).list_repo_files(repo_id, revision=revision))


def read_remote(repo_id: str, filename: str, revision: str | None = None) -> str:
    return Path(HfApi(token=ALICE[1]).hf_hub_download(repo_id, filename, revision=revision)).read_text()


def logits(model, ids=PROBE_IDS) -> list:
    with torch.no_grad():
        return model(input_ids=torch.tensor(ids)).logits[0, -1].tolist()


@pytest.fixture
def fresh_process_env(hub, monkeypatch, tmp_path):
    """Environment of `run_without_g2m_hf` processes: this Hub, online, an empty cache, no token."""
    monkeypatch.setenv("HF_ENDPOINT", hub.url)
    monkeypatch.setenv("HF_HUB_OFFLINE", "0")
    monkeypatch.setenv("HF_HUB_DISABLE_XET", "1")
    monkeypatch.setenv("HF_HOME", str(tmp_path / "empty_hf_home"))


# --- refusing folders (no network) ------------------------------------------------------------


def _add_pickle(folder: Path, name: str) -> None:
    torch.save({"weight": torch.zeros(2)}, folder / name)


def _shard_index(folder: Path, shards: list[str]) -> None:
    """Turn the folder into a sharded checkpoint whose index lists ``shards`` (the first one exists)."""
    (folder / "model.safetensors").rename(folder / shards[0])
    index = {"weight_map": {f"w{i}": shard for i, shard in enumerate(shards)}}
    (folder / "model.safetensors.index.json").write_text(json.dumps(index))


@pytest.mark.parametrize(
    "breakage, message",
    [
        (lambda f: _add_pickle(f, "pytorch_model.bin"), r"pickled weights \(pytorch_model\.bin\)"),
        (lambda f: _add_pickle(f, "model.pt"), r"pickled weights \(model\.pt\)"),
        (lambda f: (f / "config.json").unlink(), r"config\.json is missing"),
        (lambda f: (f / "tokenizer_config.json").unlink(), r"tokenizer_config\.json is missing.*tokenizer\.save"),
        (lambda f: (f / "model.safetensors").unlink(), r"no model\.safetensors"),
        (lambda f: _shard_index(f, ["model-00001-of-00002.safetensors", "model-00002-of-00002.safetensors"]),
         r"missing shards: model-00002-of-00002\.safetensors"),
        (lambda f: (f / "config.json").write_text(json.dumps({"model_type": "gpt2"})), r"'gpt2', not a g2m model"),
        (lambda f: (f / "config.json").write_text("{not json"), r"config\.json: not a readable JSON file"),
        (lambda f: (f / "adapter_config.json").write_text("{}"), r"adapter_model\.safetensors is missing"),
    ],
    ids=["bin", "pt", "no-config", "no-tokenizer", "no-weights", "missing-shard", "not-g2m", "bad-json", "adapter"],
)
def test_refuses_pickled_weights_and_incomplete_folders(model_dir, tmp_path, breakage, message):
    folder = copy_folder(model_dir, tmp_path)
    breakage(folder)
    with pytest.raises(HubPushError, match=message) as refused:
        plan_upload(folder, "alice/x")
    assert str(folder) in str(refused.value)


def test_cli_reports_a_refused_folder_in_one_line(model_dir, tmp_path, capsys):
    folder = copy_folder(model_dir, tmp_path)
    _add_pickle(folder, "pytorch_model.bin")
    with pytest.raises(SystemExit) as exit_:
        push_cli([str(folder), "--repo-id", "alice/x"])
    assert exit_.value.code == 2
    assert capsys.readouterr().err.startswith(f"g2m-push: error: {folder}: holds pickled weights")


def test_remote_code_is_flat_closed_and_named_by_auto_map(model_dir):
    plan = plan_upload(model_dir, "alice/x")
    code = {name: content for name, content in plan.files.items() if name.endswith(".py")}
    assert set(REMOTE_CODE_ENTRY_POINTS) <= set(code)
    assert code == remote_code_files()  # the installed package's files, not the folder's copies
    defined: dict[str, set[str]] = {}
    for name, path in code.items():
        tree = ast.parse(path.read_text())
        defined[name[:-3]] = {node.name for node in tree.body if isinstance(node, ast.ClassDef)}
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom) and node.level and node.module:
                assert node.level == 1 and "." not in node.module, f"{name}: not a flat relative import"
                assert f"{node.module}.py" in code, f"{name} imports .{node.module}, which is not uploaded"
    config, tokenizer_config = (
        json.loads(c if isinstance(c, bytes) else c.read_bytes())
        for c in (plan.files["config.json"], plan.files["tokenizer_config.json"])
    )
    references = [*config["auto_map"].values(), *filter(None, tokenizer_config["auto_map"]["AutoTokenizer"])]
    assert {"AutoConfig", "AutoModelForCausalLM"} <= set(config["auto_map"])
    for reference in references:
        module, _, cls = reference.partition(".")
        assert cls in defined[module], f"auto_map names {reference}, which is not defined in {module}.py"


def test_a_folder_declares_either_remote_code_or_the_package(model_dir, tmp_path):
    folder = copy_folder(model_dir, tmp_path)
    declare_code(folder, remote_code=False)  # as the bundled default model
    config, tokenizer_config = (json.loads((folder / name).read_text()) for name in AUTO_MAPS)
    assert "auto_map" not in config and "auto_map" not in tokenizer_config
    assert tokenizer_config["tokenizer_class"] == "G2MTokenizer"
    assert all(isinstance(content, Path) for content in declared_files(folder, remote_code=False).values())
    declared = declared_files(folder, remote_code=True)  # what a push uploads: the auto_map again
    for name, auto_map in AUTO_MAPS.items():
        assert json.loads(declared[name])["auto_map"] == auto_map


def test_training_record_name_is_the_one_training_writes():
    from hub_upload.model_card import TRAINING_RECORD
    from training.record import RECORD_NAME

    assert TRAINING_RECORD == RECORD_NAME


# --- pushing ---------------------------------------------------------------------------------------


def test_model_card_metadata_and_content(pushed_model, model_dir):
    text = read_remote("alice/g2m-tiny", "README.md")
    data = ModelCard(text).data
    assert data.library_name == "transformers" and data.pipeline_tag == "text-generation"
    assert {"symbolic-music", "midi", "remi", "custom_code"} <= set(data.tags)
    assert data.license == "mit" and data.datasets == ["alice/music21-composers"]
    for composer in G2MTokenizer().composers:
        assert composer in text
    assert 'AutoModelForCausalLM.from_pretrained("alice/g2m-tiny", trust_remote_code=True)' in text
    assert "g2m-generate --model alice/g2m-tiny" in text
    # training record: recipe, data and figures; local paths left out
    for fragment in ("| learning_rate | 1e-05 |", "| lora.r | 8 |", "| run.train_loss | 2.346 |",
                     "97 training pieces", "Pieces per composer: Bach 60, Mozart 40", "| eval_perplexity | 12.18 |"):
        assert fragment in text
    assert "/home/me" not in text
    # g2m-evaluate summary as a table
    assert "|  | H | GS |" in text and "| g2m | 3.123 | 0.951 |" in text
    assert f"pitch-class entropy {PUBLISHED_METRICS[SYSTEM]['H']:.2f}, groove similarity" in text  # g2m_hf.paper
    assert text == str(build_model_card(model_dir, "alice/g2m-tiny"))  # what training scripts write too


def test_card_builder_puts_sections_in_order_under_their_headings():
    sections = [CardSection("Usage", "use it\n"), CardSection("Recognition", "| a |", level=3), CardSection("End", "x")]
    card = build_card(ModelCardData(license="mit", tags=["g2m"]), "Title", "What it is.", sections)
    assert card.data.license == "mit" and card.data.tags == ["g2m"]
    body = card.text
    assert body.startswith("\n# Title\n\nWhat it is.\n\n## Usage\n\nuse it\n\n### Recognition\n\n| a |\n")
    assert body.index("### Recognition") < body.index("## End")


def test_repush_is_idempotent(pushed_model, model_dir):
    api = HfApi(token=ALICE[1])
    commits = api.list_repo_commits("alice/g2m-tiny")
    # weights are listed as LFS files (sha256), the rest as git blobs: both must compare equal
    assert api.get_paths_info("alice/g2m-tiny", ["model.safetensors"])[0].lfs is not None
    again = push_to_hub(model_dir, "alice/g2m-tiny", token=ALICE[1])
    assert not again.changed and again.uploaded == [] and again.deleted == []
    assert again.commit_oid == commits[0].commit_id == pushed_model.commit_oid
    assert len(api.list_repo_commits("alice/g2m-tiny")) == len(commits)


def test_pickle_files_are_never_uploaded(hub, model_dir, tmp_path):
    folder = copy_folder(model_dir, tmp_path)
    markers = {name: f"pickle marker {name}".encode() for name in ("training_args.bin", "dictionary.pkl")}
    for name, marker in markers.items():
        torch.save({"marker": marker}, folder / name)
    result = push_to_hub(folder, "alice/g2m-no-pickle", token=ALICE[1])
    assert {"training_args.bin", "dictionary.pkl"} <= set(result.skipped)
    files = repo_files("alice/g2m-no-pickle")
    assert "model.safetensors" in files
    assert not [f for f in files if f.endswith(PICKLE_SUFFIXES)]
    stored = [(hub.root / "data" / "blobs" / b).read_bytes() for b in os.listdir(hub.root / "data" / "blobs")]
    assert not any(marker in blob for blob in stored for marker in markers.values())


def test_push_keeps_remote_files_it_did_not_write(hub, model_dir, tmp_path):
    repo = "alice/g2m-keep"
    api = HfApi(token=ALICE[1])
    api.create_repo(repo)
    api.create_commit(repo, [CommitOperationAdd("samples/bach.mid", b"MThd user sample"),
                             CommitOperationAdd("NOTES.md", b"written on the website")], commit_message="user files")
    folder = copy_folder(model_dir, tmp_path)
    (folder / "extra_stats.json").write_text("{}")
    first = push_to_hub(folder, repo, token=ALICE[1])
    assert "extra_stats.json" in first.uploaded
    assert json.loads(read_remote(repo, MANIFEST_NAME))["files"] == sorted(first.uploaded)

    # The folder drops a file this tool wrote: it goes; files it never wrote stay.
    (folder / "extra_stats.json").unlink()
    second = push_to_hub(folder, repo, token=ALICE[1])
    assert second.deleted == ["extra_stats.json"]
    files = repo_files(repo)
    assert {".gitattributes", "samples/bach.mid", "NOTES.md", "model.safetensors"} <= files
    assert "extra_stats.json" not in files


def test_private_repo_needs_its_owners_token(hub, model_dir):
    repo = "alice/g2m-private"
    push_to_hub(model_dir, repo, private=True, token=ALICE[1])
    assert HfApi(token=ALICE[1]).model_info(repo).private
    for token in (False, BOB[1]):  # anonymous, and another user
        with pytest.raises(RepositoryNotFoundError):
            HfApi(token=token).hf_hub_download(repo, "config.json")
    with pytest.raises(HubPushError, match="no Hugging Face token"):
        push_to_hub(model_dir, repo, private=True)
    with pytest.raises(HubPushError, match="alice/g2m-private: cannot .*write access"):
        push_to_hub(model_dir, repo, token=BOB[1])


def test_cli_pushes_to_a_branch_and_opens_a_pull_request(hub, model_dir, tmp_path, capsys):
    repo = "alice/g2m-branches"
    env = {**os.environ, "HF_ENDPOINT": hub.url, "HF_TOKEN": ALICE[1], "HF_HUB_OFFLINE": "0",
           "HF_HUB_DISABLE_XET": "1", "HF_HOME": str(tmp_path / "hf_home")}
    done = subprocess.run(
        [sys.executable, "-m", "hub_upload", str(model_dir), "--repo-id", repo, "--revision", "dev",
         "--commit-message", "tiny model on dev"],
        env=env, capture_output=True, text=True, timeout=300,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert f"Pushed {len(plan_upload(model_dir, repo).files)} file(s) to {repo}" in done.stdout
    api = HfApi(token=ALICE[1])
    assert repo_files(repo) == {".gitattributes"}  # main untouched
    assert "model.safetensors" in repo_files(repo, revision="dev")
    assert api.list_repo_commits(repo, revision="dev")[0].title == "tiny model on dev"

    card = tmp_path / "card.md"
    card.write_text("---\nlicense: mit\nlibrary_name: transformers\n---\n\n# Written by hand\n")
    push_cli([str(model_dir), "--repo-id", repo, "--create-pr", "--token", ALICE[1], "--model-card", str(card)])
    assert "Pull request: " in capsys.readouterr().out
    refs = api.list_repo_refs(repo, include_pull_requests=True)
    assert [ref.ref for ref in refs.pull_requests] == ["refs/pr/1"]
    assert "model.safetensors" in repo_files(repo, revision="refs/pr/1")
    assert read_remote(repo, "README.md", revision="refs/pr/1") == card.read_text()
    assert repo_files(repo) == {".gitattributes"}


# --- loading where g2m_hf is not installed ------------------------------------------------------


@pytest.mark.slow
def test_pushed_model_loads_and_generates_without_g2m_hf(pushed_model, model_dir, fresh_process_env,
                                                          run_without_g2m_hf):
    expected = logits(G2MForCausalLM.from_pretrained(model_dir))
    result = run_without_g2m_hf(f"""
import json, sys, torch
from transformers import AutoModelForCausalLM, AutoTokenizer
tokenizer = AutoTokenizer.from_pretrained("alice/g2m-tiny", trust_remote_code=True)
model = AutoModelForCausalLM.from_pretrained("alice/g2m-tiny", trust_remote_code=True)
torch.manual_seed(0)
prompt = tokenizer.composer_prompt(["Bach"], return_tensors="pt")
out = model.generate(**prompt, do_sample=True, max_new_tokens=24)
with torch.no_grad():
    logits = model(input_ids=torch.tensor({PROBE_IDS})).logits[0, -1]
try:
    AutoTokenizer.from_pretrained("alice/g2m-private", trust_remote_code=True)
    private = "loaded"
except OSError as error:
    private = type(error).__name__
print(json.dumps({{
    "tokenizer": type(tokenizer).__name__, "model": type(model).__module__ + "." + type(model).__name__,
    "events": tokenizer.ids_to_events(out[0]),
    "max_diff": (logits - torch.tensor({expected})).abs().max().item(),
    "g2m_hf_modules": [m for m in sys.modules if m.split(".")[0] == "g2m_hf" and sys.modules[m] is not None],
    "private": private,
}}))
""")
    assert result["g2m_hf_modules"] == []
    assert result["tokenizer"] == "G2MTokenizer"
    assert result["model"].startswith("transformers_modules.") and result["model"].endswith(".G2MForCausalLM")
    assert result["max_diff"] < 1e-5
    assert result["events"][0] == "Composer_Bach" and len(result["events"]) > 3
    # the texture plan of the config: the piece's tempo class, and its first bar's levels after the signature
    assert result["events"][1] == "Tempo_160"
    signature = next(i for i, token in enumerate(result["events"]) if token.startswith("Time_Signature_"))
    assert result["events"][signature + 1 : signature + 4] == ["Density_low", "Polyphony_mid", "Register_high"]
    assert result["private"] == "OSError"


@pytest.mark.slow
def test_pushed_peft_adapter_loads_on_its_base_without_g2m_hf(pushed_model, model_dir, tmp_path, fresh_process_env,
                                                             run_without_g2m_hf):
    from peft import LoraConfig, get_peft_model

    base = G2MForCausalLM.from_pretrained(model_dir)
    base_logits = logits(base)
    peft_model = get_peft_model(
        base, LoraConfig(r=4, target_modules=["q_proj", "v_proj"], modules_to_save=["style_adapters"])
    )
    torch.manual_seed(1)
    with torch.no_grad():  # LoRA B starts at zero: move every trainable weight so the adapter matters
        for parameter in peft_model.parameters():
            if parameter.requires_grad:
                parameter.add_(torch.randn_like(parameter) * 0.1)
    peft_model.eval()
    expected = logits(peft_model)
    assert max(abs(a - b) for a, b in zip(expected, base_logits, strict=True)) > 1e-3
    peft_model.save_pretrained(tmp_path / "adapter")
    # Name the base by its Hub id only now: PEFT looks a Hub id up (on huggingface.co) while saving.
    adapter_config = tmp_path / "adapter" / "adapter_config.json"
    adapter_config.write_text(json.dumps({**json.loads(adapter_config.read_text()),
                                          "base_model_name_or_path": "alice/g2m-tiny"}))

    result = push_to_hub(tmp_path / "adapter", "alice/g2m-tiny-lora", token=ALICE[1])
    assert not [f for f in result.uploaded if f.endswith(".py")]  # adapters carry no code
    card = ModelCard(read_remote("alice/g2m-tiny-lora", "README.md"))
    assert card.data.library_name == "peft" and card.data.base_model == "alice/g2m-tiny"

    result = run_without_g2m_hf(f"""
import json, torch
from peft import PeftModel
from transformers import AutoModelForCausalLM
base = AutoModelForCausalLM.from_pretrained("alice/g2m-tiny", trust_remote_code=True)
model = PeftModel.from_pretrained(base, "alice/g2m-tiny-lora").eval()
with torch.no_grad():
    logits = model(input_ids=torch.tensor({PROBE_IDS})).logits[0, -1]
print(json.dumps({{"max_diff": (logits - torch.tensor({expected})).abs().max().item()}}))
""")
    assert result["max_diff"] < 1e-5


# --- network and Hub failures: one line naming the endpoint or repository and what to do -------


def closed_port_url() -> str:
    """The URL of a loopback port nothing listens on (bound, then closed)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return f"http://127.0.0.1:{probe.getsockname()[1]}"


def test_cli_against_an_unreachable_hub_prints_one_line(model_dir, tmp_path):
    dead = closed_port_url()
    env = {**os.environ, "HF_ENDPOINT": dead, "HF_TOKEN": ALICE[1], "HF_HUB_OFFLINE": "0", "HF_HOME": str(tmp_path)}
    done = subprocess.run([sys.executable, "-m", "hub_upload", str(model_dir), "--repo-id", "alice/x"],
                          env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 2 and done.stdout == ""
    assert done.stderr.count("\n") == 1, done.stderr  # no traceback
    assert done.stderr.startswith(f"g2m-push: error: alice/x: cannot create the repository: cannot reach {dead} (")
    assert "check the network connection and the endpoint (HF_ENDPOINT)" in done.stderr


def test_a_hub_that_does_not_answer_times_out(hub, model_dir):
    with socket.socket() as silent:  # accepts connections, never answers
        silent.bind(("127.0.0.1", 0))
        silent.listen(8)
        url = f"http://127.0.0.1:{silent.getsockname()[1]}"
        started = time.perf_counter()
        with pytest.raises(HubPushError) as error:
            push_to_hub(model_dir, "alice/x", token=ALICE[1], endpoint=url, timeout=0.5)
    assert time.perf_counter() - started < 30
    assert str(error.value) == (
        f"alice/x: cannot create the repository: {url} did not answer within 0.5 s; "
        "try again later or allow more time (--timeout)"
    )


def test_refused_credentials_say_what_to_do(hub, model_dir):
    with pytest.raises(HubPushError, match=r"^alice/x: cannot create the repository: .*401.*hf auth login"):
        push_to_hub(model_dir, "alice/x", token="hf_not_a_token")
    with pytest.raises(HubPushError, match=r"^alice/x: cannot create the repository: .*403.*write access"):
        push_to_hub(model_dir, "alice/x", token=BOB[1])


def test_push_refuses_a_repository_holding_another_kind_of_model(hub, model_dir):
    repo = "alice/a-gpt2"
    api = HfApi(token=ALICE[1])
    api.create_repo(repo)
    api.create_commit(repo, [CommitOperationAdd("config.json", b'{"model_type": "gpt2"}')], commit_message="gpt2")
    with pytest.raises(HubPushError, match=r"^alice/a-gpt2: holds a gpt2 model .*not a G2M model; push to another"):
        push_to_hub(model_dir, repo, token=ALICE[1])
    assert repo_files(repo) == {".gitattributes", "config.json"}


def test_loading_a_missing_foreign_or_unreachable_hub_model_is_one_line(hub, model_dir, capsys, monkeypatch):
    from g2m_hf.cli.generate import main as generate_cli
    from g2m_hf.errors import ModelNotFoundError
    from g2m_hf.generation import load_tokenizer

    api = HfApi(token=ALICE[1])
    api.create_repo("alice/not-g2m")
    api.create_commit("alice/not-g2m", [CommitOperationAdd("config.json", b'{"model_type": "gpt2"}')],
                      commit_message="gpt2")
    expected = {
        "alice/does-not-exist": f"no such model on {hub.url} (or a private one: log in with `hf auth login`",
        "alice/not-g2m": "holds a 'gpt2' model (config.json model_type), not a G2M model",
    }
    for repo, reason in expected.items():
        assert exit_code(generate_cli, ["--model", repo, "--output-dir", model_dir / "unused"]) == 2
        error = capsys.readouterr().err
        assert error.startswith(f"g2m-generate: error: {repo}: {reason}") and error.count("\n") == 1
    assert not (model_dir / "unused").exists()
    monkeypatch.setattr(constants, "ENDPOINT", closed_port_url())
    with pytest.raises(ModelNotFoundError, match=r"^alice/x: cannot reach http://127.0.0.1:\d+ \(.*\(HF_ENDPOINT\)"):
        load_tokenizer("alice/x")
