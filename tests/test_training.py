"""Training room: recipes, the Trainer extras, and smoke runs of pretraining, both fine-tuning modes,
resuming, a new composer under PEFT, two-process DDP and the composer classifier.

The smoke runs use configs/smoke_*.yaml on a few music21 works (tiny models, 10 steps), with every
output and cache in temporary folders.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import datasets
import pytest
import torch
from safetensors.torch import load_file
from transformers import AutoModelForCausalLM, AutoModelForSequenceClassification, AutoTokenizer, TrainerCallback

import g2m_hf  # noqa: F401 - registers the Auto classes
from g2m_hf.controls import median_texture
from g2m_hf.vocab import CONTROL_TOKENS, INFILL_TOKENS
from training import distill_guidance, finetune, pretrain, train_classifier
from training.common import main_guard
from training.config import (
    BuildSpec,
    DataSection,
    FinetuneSection,
    apply_overrides,
    load_recipe,
    training_argument_overrides,
    typed_section,
)
from training.errors import ConfigError
from training.record import RECORD_NAME
from training.trainer import (
    EpochSeededLengthGroupedSampler,
    EpochSeededWeightedSampler,
    G2MTrainer,
    StreamSeededCollator,
    batches_consumed,
)

REPO = Path(__file__).resolve().parents[1]
SMOKE_PRETRAIN = str(REPO / "configs" / "smoke_pretrain.yaml")
SMOKE_FINETUNE = str(REPO / "configs" / "smoke_finetune.yaml")
SMOKE_CLASSIFIER = str(REPO / "configs" / "smoke_classifier.yaml")


def record(folder) -> dict:
    return json.loads((Path(folder) / RECORD_NAME).read_text())


def logged_losses(folder) -> list[float]:
    return [entry["loss"] for entry in record(folder)["log_history"] if "loss" in entry]


def mean(values) -> float:
    return sum(values) / len(values)


# --- recipes and command lines (fast) ------------------------------------------------------------


def test_overrides_parse_yaml_values_and_create_sections():
    recipe = apply_overrides(
        {"training": {"learning_rate": 1.0}},
        ["training.learning_rate=1e-4", "finetune.peft.target_modules=[q_proj, v_proj]", "tokenizer=null"],
    )
    assert recipe["training"]["learning_rate"] == pytest.approx(1e-4)
    assert recipe["finetune"]["peft"]["target_modules"] == ["q_proj", "v_proj"]
    assert recipe["tokenizer"] is None
    with pytest.raises(ConfigError, match="dotted.key=value"):
        apply_overrides({}, ["no-equals-sign"])
    with pytest.raises(ConfigError, match="not a section"):
        apply_overrides({"training": {"learning_rate": 1.0}}, ["training.learning_rate.x=1"])


def test_training_argument_flags_pass_through_and_unknown_flags_fail():
    flags = training_argument_overrides(["--push-to-hub", "--hub_model_id", "me/g2m", "--max-steps", "3"])
    assert flags == {"push_to_hub": True, "hub_model_id": "me/g2m", "max_steps": 3}
    with pytest.raises(ConfigError, match="--no-such-flag"):
        training_argument_overrides(["--no-such-flag", "1"])


@pytest.mark.parametrize("recipe_file", sorted((REPO / "configs").glob("*.yaml")), ids=lambda p: p.name)
def test_every_committed_recipe_loads_its_typed_sections(recipe_file):
    recipe = load_recipe(recipe_file)
    data = typed_section(recipe, "data", DataSection, str(recipe_file))
    finetune_section = typed_section(recipe, "finetune", FinetuneSection, str(recipe_file))
    # what the YAML says is what the run reads, key by key
    for key, value in (recipe.get("data") or {}).items():
        if key != "build" and value is not None:
            assert getattr(data, key) == value, (recipe_file.name, key)
    for key, value in ((recipe.get("data") or {}).get("build") or {}).items():
        assert isinstance(data.build, BuildSpec) and getattr(data.build, key) == value, (recipe_file.name, key)
    for key, value in (recipe.get("finetune") or {}).items():
        assert getattr(finetune_section, key) == value, (recipe_file.name, key)


def test_a_misspelt_recipe_key_is_refused_naming_the_key_and_the_file(tmp_path, capsys):
    recipe = tmp_path / "typo.yaml"
    text = Path(SMOKE_FINETUNE).read_text().replace("  balanced:", "  balnced:")
    assert "balnced" in text
    recipe.write_text(text)
    argv = ["--config", str(recipe), "--set", f"output_dir={tmp_path / 'out'}"]
    assert main_guard(finetune.main, argv) == 2
    error = capsys.readouterr().err
    assert error.count("\n") == 1 and str(recipe) in error and "finetune.balnced" in error
    assert not (tmp_path / "out").exists()  # refused before any work
    with pytest.raises(ConfigError, match=r"x\.yaml: unknown key data\.build\.composer "):
        typed_section({"data": {"build": {"composer": ["bach"]}}}, "data", DataSection, "x.yaml")
    assert typed_section({"data": {"collator": None}}, "data", DataSection, "x.yaml").collator == {}  # null: default


def test_existing_output_folder_is_not_overwritten(tmp_path):
    (tmp_path / "mine.txt").write_text("a user's file")
    argv = ["--config", SMOKE_PRETRAIN, "--set", f"output_dir={tmp_path}"]
    with pytest.raises(ConfigError, match="--resume"):
        pretrain.main(argv)
    assert (tmp_path / "mine.txt").read_text() == "a user's file"


def test_dataset_folder_composers_are_aligned_with_the_tokenizer():
    from datasets import Dataset, DatasetDict

    from g2m_hf import G2MTokenizer
    from g2m_hf.errors import DataError
    from training.datasource import align_tokenizer

    tokenizer = G2MTokenizer()
    bach, size = tokenizer.convert_tokens_to_ids("Composer_Bach"), len(tokenizer)
    rows = {"composer": ["Bach", "Haydn", "Telemann"], "input_ids": [[bach, 1], [size + 1, 2], [size, 3]]}
    splits = DatasetDict({"train": Dataset.from_dict(rows)})
    assert align_tokenizer(tokenizer, splits, "folder") == ["Telemann", "Haydn"]  # in the folder's id order
    assert tokenizer.convert_tokens_to_ids(["Composer_Telemann", "Composer_Haydn"]) == [size, size + 1]

    other = DatasetDict({"train": Dataset.from_dict({"composer": ["Bach"], "input_ids": [[bach + 1]]})})
    with pytest.raises(DataError, match="another vocabulary"):
        align_tokenizer(G2MTokenizer(), other, "folder")


# --- the Trainer extras (fast) --------------------------------------------------------------------


def tiny_model(style_adapter_layers=(0,)):
    from g2m_hf import G2MConfig, G2MForCausalLM

    config = G2MConfig(
        hidden_size=16,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=32,
        style_adapter_layers=list(style_adapter_layers),
    )
    return G2MForCausalLM(config)


def test_adapter_and_other_gradients_are_clipped_separately(tmp_path):
    from transformers import TrainingArguments

    model = tiny_model()
    args = TrainingArguments(output_dir=str(tmp_path), max_grad_norm=0.5, use_cpu=True, report_to="none")
    trainer = G2MTrainer(model=model, args=args, adapter_max_grad_norm=2.5)
    torch.manual_seed(0)
    for param in model.parameters():
        param.grad = torch.randn_like(param) * 10
    adapter = [p for n, p in model.named_parameters() if "style_adapters." in n]
    rest = [p for n, p in model.named_parameters() if "style_adapters." not in n]
    expected = torch.linalg.vector_norm(torch.stack([p.grad.norm() for p in model.parameters()]))

    reported = trainer._clip_grad_norm(model)

    def norm(params):
        return torch.linalg.vector_norm(torch.stack([p.grad.norm() for p in params])).item()

    assert norm(adapter) == pytest.approx(2.5, rel=1e-4)
    assert norm(rest) == pytest.approx(0.5, rel=1e-4)
    assert reported.item() == pytest.approx(expected.item(), rel=1e-4)  # the pre-clip norm is logged


def test_weighted_sampler_balances_and_depends_only_on_seed_and_epoch():
    weights = [1 / 9] * 9 + [1.0]  # nine pieces of one composer, one of another
    sampler = EpochSeededWeightedSampler(weights, num_samples=4000, seed=3)
    draws = list(sampler)
    assert 0.4 < draws.count(9) / len(draws) < 0.6
    assert list(sampler) == draws
    sampler.set_epoch(1)
    assert list(sampler) != draws


def test_length_grouped_sampler_pads_less_and_depends_only_on_seed_and_epoch():
    lengths = torch.randint(50, 1500, (2000,), generator=torch.Generator().manual_seed(0)).tolist()
    sampler = EpochSeededLengthGroupedSampler(4, lengths, seed=3)
    order = list(sampler)
    assert sorted(order) == list(range(2000))  # every piece once per epoch
    torch.manual_seed(123)  # the global RNG (a resumed run's is another) does not matter
    assert list(sampler) == order
    sampler.set_epoch(1)
    assert list(sampler) != order

    def padded(rows):  # positions a batch computes: 4 x its longest window (of at most 1024)
        return sum(4 * max(min(lengths[i], 1024) for i in rows[k : k + 4]) for k in range(0, len(rows), 4))

    shuffled = torch.randperm(2000, generator=torch.Generator().manual_seed(3)).tolist()
    assert padded(order) < 0.8 * padded(shuffled)


def test_stream_seeded_collator_draws_depend_on_the_batch_position_only():
    def collate(features):
        return torch.rand(len(features))  # stands for random windows / transpositions

    first = StreamSeededCollator(collate, seed=7)
    batches = [first([{}, {}]) for _ in range(4)]
    resumed = StreamSeededCollator(collate, seed=7)
    resumed.batches_drawn = 2
    torch.manual_seed(123)  # the global RNG must not matter...
    outer = torch.get_rng_state()
    assert torch.equal(resumed([{}, {}]), batches[2])
    assert torch.equal(torch.get_rng_state(), outer)  # ...nor be disturbed (dropout draws from it)
    assert not torch.equal(batches[0], batches[1])
    assert batches_consumed(global_step=5, batches_per_epoch=6, gradient_accumulation_steps=2) == 10
    assert batches_consumed(global_step=3, batches_per_epoch=6, gradient_accumulation_steps=2) == 6
    assert batches_consumed(global_step=4, batches_per_epoch=5, gradient_accumulation_steps=2) == 7


def test_stream_seeded_collator_gives_the_same_batches_with_dataloader_workers():
    from torch.utils.data import DataLoader

    def collate(features):
        return torch.rand(len(features))

    def epoch(num_workers: int, start: int) -> list[torch.Tensor]:
        collator = StreamSeededCollator(collate, seed=7)
        collator.batches_drawn = start  # as CollatorStreamCallback does at an epoch's start
        return list(DataLoader(range(10), batch_size=2, collate_fn=collator, num_workers=num_workers))

    single = epoch(0, start=5)
    assert all(torch.equal(a, b) for a, b in zip(epoch(2, start=5), single, strict=True))


# --- smoke runs -------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def data_cache(tmp_path_factory) -> str:
    """One conversion / encoding cache for all smoke runs of this module."""
    return str(tmp_path_factory.mktemp("g2m_data_cache"))


def smoke_args(config: str, output_dir, cache: str, *extra: str) -> list[str]:
    return ["--config", config, "--set", f"output_dir={output_dir}", "--set", f"data.build.cache_dir={cache}", *extra]


@pytest.fixture(scope="module")
def pretrained(tmp_path_factory, data_cache) -> Path:
    """The smoke pretraining's output folder (10 steps on a few fiddle tunes)."""
    output = tmp_path_factory.mktemp("smoke_pretrain") / "model"
    pretrain.main(smoke_args(SMOKE_PRETRAIN, output, data_cache))
    return output


@pytest.mark.slow
def test_pretraining_learns_and_writes_a_model_folder(pretrained):
    losses = logged_losses(pretrained)
    assert len(losses) == 10 and mean(losses[-3:]) < mean(losses[:3])

    model = AutoModelForCausalLM.from_pretrained(pretrained)
    tokenizer = AutoTokenizer.from_pretrained(pretrained)
    assert type(model).__name__ == "G2MForCausalLM" and model.config.style_adapter_layers == []
    assert model.config.training_window == record(pretrained)["recipe"]["data"]["max_length"] == 256
    assert model.config.event_vocabulary == list(tokenizer.convert_ids_to_tokens(list(range(len(tokenizer)))))
    generation = model.generation_config
    assert (generation.do_sample, generation.temperature, generation.top_p, generation.top_k) == (True, 1.1, 0.99, 0)
    assert (pretrained / "model.safetensors").is_file() and not (pretrained / "training_args.bin").exists()
    assert sorted(p.name for p in pretrained.glob("checkpoint-*")) == ["checkpoint-10", "checkpoint-5"]

    info = record(pretrained)
    assert info["task"] == "pretrain" and info["run"]["global_step"] == 10 and info["run"]["world_size"] == 1
    assert info["run"]["tokens_per_second"] > 0 and info["data"]["composers"] == {
        "None": info["data"]["train_examples"]
    }
    assert info["eval"]["eval_perplexity"] == pytest.approx(torch.tensor(info["eval"]["eval_loss"]).exp().item())
    assert info["recipe"]["model"]["hidden_size"] == 32


class CrashAfterSaving(TrainerCallback):
    """Simulates a run killed right after its checkpoint at ``step``."""

    def __init__(self, step: int):
        self.step = step

    def on_save(self, args, state, control, **kwargs):
        if state.global_step == self.step:
            raise KeyboardInterrupt("simulated interruption")


@pytest.mark.slow
def test_resumed_run_equals_uninterrupted_run(pretrained, tmp_path, data_cache):
    argv = smoke_args(SMOKE_PRETRAIN, tmp_path / "run", data_cache)
    with pytest.raises(KeyboardInterrupt):
        pretrain.main(argv, callbacks=[CrashAfterSaving(5)])
    assert not (tmp_path / "run" / "model.safetensors").exists()
    pretrain.main([*argv, "--resume"])

    run = record(tmp_path / "run")["run"]
    assert run["resumed_from"].endswith("checkpoint-5") and run["legs"] == 2
    last_leg = [e for e in record(tmp_path / "run")["log_history"] if "train_runtime" in e and "loss" not in e][-1]
    assert run["train_runtime_s"] > last_leg["train_runtime"]  # the first leg's time is counted too
    assert logged_losses(tmp_path / "run")[-5:] == logged_losses(pretrained)[-5:]
    uninterrupted, resumed = (
        load_file(pretrained / "model.safetensors"),
        load_file(tmp_path / "run" / "model.safetensors"),
    )
    for name, tensor in uninterrupted.items():
        torch.testing.assert_close(resumed[name], tensor, rtol=0, atol=1e-6)


class GradientNorms(TrainerCallback):
    """Records the style-adapter and other gradient norms after clipping, before each optimizer step."""

    def __init__(self):
        self.adapter, self.rest = [], []

    def on_pre_optimizer_step(self, args, state, control, model=None, **kwargs):
        for group, is_adapter in ((self.adapter, True), (self.rest, False)):
            grads = [
                p.grad
                for n, p in model.named_parameters()
                if p.grad is not None and ("style_adapters." in n) == is_adapter
            ]
            group.append(torch.linalg.vector_norm(torch.stack([g.norm() for g in grads])).item())


@pytest.mark.slow
def test_full_finetuning_adds_adapters_clips_them_apart_and_learns(pretrained, tmp_path, data_cache):
    norms = GradientNorms()
    output = tmp_path / "full"
    best = ["--load_best_model_at_end", "--metric_for_best_model", "eval_loss", "--greater_is_better", "false"]
    finetune.main(
        smoke_args(SMOKE_FINETUNE, output, data_cache, "--set", f"finetune.pretrained={pretrained}", *best),
        callbacks=[norms],
    )
    info = record(output)
    assert info["mode"] == "full" and info["base_model"] == str(pretrained)
    assert set(info["data"]["composers"]) == {"Bach", "Mozart"}
    # the kept weights are the best checkpoint's (the default model's recipe relies on it)
    periodic = [e["eval_loss"] for e in info["log_history"] if "eval_loss" in e][:-1]  # the last is the final one
    assert len(periodic) == 2 and info["eval"]["eval_loss"] == pytest.approx(min(periodic), abs=1e-5)
    losses = logged_losses(output)
    assert mean(losses[-3:]) < mean(losses[:3])
    assert max(norms.rest) <= 0.5 + 1e-4 and max(norms.adapter) <= 2.5 + 1e-4
    assert max(entry.get("grad_norm", 0) for entry in info["log_history"]) > 0.5  # clipping was active

    model = AutoModelForCausalLM.from_pretrained(output)
    assert model.config.style_adapter_layers == [0] and model.config.trained_composers == ["Bach", "Mozart"]
    base = load_file(pretrained / "model.safetensors")
    tuned = load_file(output / "model.safetensors")
    assert any(name.startswith("model.style_adapters.0.") for name in tuned) and not any(
        "style_adapters" in n for n in base
    )
    assert not torch.equal(base["model.embed_tokens.weight"], tuned["model.embed_tokens.weight"])  # all weights train


@pytest.fixture(scope="module")
def peft_adapter(pretrained, tmp_path_factory, data_cache) -> Path:
    output = tmp_path_factory.mktemp("smoke_peft") / "adapter"
    finetune.main(
        smoke_args(SMOKE_FINETUNE, output, data_cache, "--mode", "peft", "--set", f"finetune.pretrained={pretrained}")
    )
    return output


def prompt(tokenizer) -> torch.Tensor:
    events = ["Tempo_120", "BOS_None", "Bar_None", "Time_Signature_4/4", "Beat_0", "Note_Pitch_60", "Note_Duration_480"]
    return torch.tensor([tokenizer.convert_tokens_to_ids(["Composer_Bach", *events])])


@pytest.mark.slow
def test_peft_finetuning_saves_a_small_adapter_that_loads_and_merges(pretrained, peft_adapter):
    from peft import PeftModel

    info = record(peft_adapter)
    assert info["mode"] == "peft" and info["model"]["trainable_parameters"] < info["model"]["parameters"] / 2
    assert (peft_adapter / "adapter_model.safetensors").is_file() and not (peft_adapter / "model.safetensors").exists()
    saved = load_file(peft_adapter / "adapter_model.safetensors")
    assert any("lora_A" in name for name in saved) and any("style_adapters" in name for name in saved)
    # of the frozen embedding, only the fine-tuned composers' rows (Bach, Mozart) are in the adapter
    assert [tuple(v.shape) for k, v in saved.items() if "embed_tokens" in k] == [(2, 32)]

    model, tokenizer = finetune.load_peft_model(peft_adapter)
    model.eval()
    ids = prompt(tokenizer)
    with torch.no_grad():
        adapted = model(ids).logits
        with model.disable_adapter():
            plain = model(ids).logits
        merged = model.merge_and_unload()(ids).logits
    assert not torch.allclose(adapted, plain)
    torch.testing.assert_close(merged, adapted, atol=1e-5, rtol=1e-5)

    # PEFT's own loader, on a base loaded with the recipe's adapter layers
    base = AutoModelForCausalLM.from_pretrained(pretrained, style_adapter_layers=[0])
    with torch.no_grad():
        again = PeftModel.from_pretrained(base, peft_adapter).eval()(ids).logits
    torch.testing.assert_close(again, adapted)


@pytest.mark.slow
def test_new_composer_under_peft_trains_its_token_and_adapters_switch(pretrained, peft_adapter, tmp_path, data_cache):
    output = tmp_path / "haydn"
    haydn_data = ["--set", "data.build.composers=[haydn]", "--set", "data.build.limit=2"]
    peft = ["--mode", "peft", "--max_steps", "4", "--set", f"finetune.pretrained={pretrained}"]
    finetune.main(smoke_args(SMOKE_FINETUNE, output, data_cache, *peft, *haydn_data))
    info = record(output)
    assert info["data"]["new_composers"] == ["Haydn"] and info["data"]["composers"] == {"Haydn": 1}
    tokenizer = AutoTokenizer.from_pretrained(output)
    haydn = tokenizer.convert_tokens_to_ids("Composer_Haydn")
    assert haydn == len(tokenizer) - 1 == info["model"]["vocab_size"] - 1
    assert json.loads((output / "adapter_config.json").read_text())["trainable_token_indices"] == {
        "embed_tokens": [haydn]
    }

    model, g2m_tokenizer = finetune.load_peft_model(output, adapter_name="haydn")
    model.load_adapter(str(peft_adapter), adapter_name="bach_mozart")
    model.eval()
    ids = prompt(g2m_tokenizer)
    ids[0, 0] = haydn
    outputs = {}
    with torch.no_grad():
        for name in ("haydn", "bach_mozart", "haydn"):
            model.set_adapter(name)
            outputs.setdefault(name, []).append(model(ids).logits)
    torch.testing.assert_close(outputs["haydn"][0], outputs["haydn"][1])
    assert not torch.allclose(outputs["haydn"][0], outputs["bach_mozart"][0])
    # PEFT keeps the trained Haydn row apart from the (resized, frozen) embedding it started from
    saved = load_file(output / "adapter_model.safetensors")
    (row,) = [v for k, v in saved.items() if k.endswith("trainable_tokens_delta")]
    (embedding,) = [v for k, v in saved.items() if k.endswith("token_adapter.base_layer.weight")]
    assert not torch.allclose(row[0], embedding[haydn])
    torch.testing.assert_close(
        embedding[:haydn], load_file(pretrained / "model.safetensors")["model.embed_tokens.weight"]
    )


def run_script(command: list[str], cwd: Path, **env: str) -> None:
    """Run a training command in a fresh process (as a user would) and require it to succeed."""
    done = subprocess.run(
        command, cwd=cwd, env={**os.environ, **env}, capture_output=True, text=True, timeout=600, check=False
    )
    assert done.returncode == 0, done.stderr[-4000:]


@pytest.mark.slow
def test_torchrun_runs_two_cpu_processes_on_a_built_dataset_folder(tmp_path, data_cache):
    from training import build_dataset

    folder = tmp_path / "dataset"
    music21 = ["--music21", "--general", "ryansMammoth", "--limit", "24", "--num-proc", "1"]
    assert build_dataset.main([*music21, "--cache-dir", data_cache, "--output", str(folder)]) == 0

    output = tmp_path / "ddp"
    torchrun = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2"]
    script = [str(REPO / "training" / "pretrain.py"), "--config", SMOKE_PRETRAIN, "--set", f"output_dir={output}"]
    dataset = ["--set", "data.build=null", "--set", f"data.dataset={folder}", "--max_steps", "2"]
    run_script([*torchrun, *script, *dataset], tmp_path, OMP_NUM_THREADS="1")
    info = record(output)
    assert info["run"]["world_size"] == 2 and info["run"]["global_step"] == 2
    assert info["run"]["effective_batch_size"] == 2 * 4 * 2
    assert info["data"]["source"] == str(folder)


@pytest.mark.slow
def test_classifier_trains_and_loads_with_auto_classes(tmp_path, data_cache):
    output = tmp_path / "classifier"
    metrics = train_classifier.main(smoke_args(SMOKE_CLASSIFIER, output, data_cache))
    info = record(output)
    assert info["task"] == "classifier" and info["eval"]["labels"] == ["Bach", "Mozart"]
    counts = info["eval"]["confusion_matrix"]
    assert sum(map(sum, counts)) == info["data"]["validation_examples"] == 2
    correct = sum(counts[i][i] for i in range(len(counts)))
    assert metrics["eval_accuracy"] == pytest.approx(correct / 2) and "eval_perplexity" not in metrics
    assert (output / train_classifier.CONFUSION_MATRIX_PNG).stat().st_size > 0

    model = AutoModelForSequenceClassification.from_pretrained(output)
    tokenizer = AutoTokenizer.from_pretrained(output)
    assert model.config.id2label == {0: "Bach", 1: "Mozart"}
    ids = prompt(tokenizer)[:, 1:]  # the classifier reads a piece without its composer token
    with torch.no_grad():
        assert model(input_ids=ids).logits.shape == (1, 2)


@pytest.mark.slow
def test_push_to_hub_flags_pass_through_and_upload_the_finished_folder(loopback_hub, tmp_path, data_cache, monkeypatch):
    from huggingface_hub import HfApi, constants

    from tests.hub_server import LoopbackHub

    user, token = next(iter(LoopbackHub.USERS.items()))
    script = [str(REPO / "training" / "pretrain.py"), *smoke_args(SMOKE_PRETRAIN, tmp_path / "m", data_cache)]
    push = ["--max_steps", "2", "--push_to_hub", "--hub_model_id", f"{user}/g2m-smoke", "--hub_token", token]
    hub = {"HF_ENDPOINT": loopback_hub.url, "HF_HUB_OFFLINE": "0", "HF_HUB_DISABLE_XET": "1"}
    run_script([sys.executable, *script, *push], tmp_path, HF_HOME=str(tmp_path / "hf_home"), **hub)

    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", False)
    api = HfApi(endpoint=loopback_hub.url, token=token)
    files = set(api.list_repo_files(f"{user}/g2m-smoke"))
    assert {"model.safetensors", "tokenizer.json", "training_record.json", "README.md"} <= files
    assert not any(name.endswith((".bin", ".pt")) or name.startswith("checkpoint-") for name in files)
    card = Path(api.hf_hub_download(f"{user}/g2m-smoke", "README.md", cache_dir=str(tmp_path / "dl"))).read_text()
    assert "Generality-to-Mastery" in card  # hub_upload.model_card's card, not the Trainer's generic one


# --- issue 13: general pieces mixed into fine-tuning, the bundled judges' packaging ------------------


def _dataset_folder(folder: Path, cache: str, composers=(), general=False, test_fraction: float = 0.0) -> Path:
    from g2m_hf import G2MTokenizer
    from g2m_hf.corpus import corpus_sources
    from g2m_hf.data import build_dataset

    sources = corpus_sources(list(composers), general=general, limit=4)
    build_dataset(sources, G2MTokenizer(), folder, cache_dir=cache, num_proc=1, test_fraction=test_fraction)
    return folder


@pytest.mark.slow
def test_finetuning_mixes_general_pieces_for_style_guidance(pretrained, tmp_path, data_cache):
    general = _dataset_folder(tmp_path / "general", data_cache, general=["ryansMammoth"])
    output = tmp_path / "mixed"
    finetune.main(smoke_args(SMOKE_FINETUNE, output, data_cache, "--set", f"finetune.pretrained={pretrained}",
                             "--set", f"finetune.general_dataset={general}", "--set", "finetune.general_share=0.5"))
    info = record(output)
    import datasets

    general_pieces = len(datasets.load_from_disk(str(general))["train"])
    assert info["data"]["composers"]["None"] == general_pieces >= 2
    assert set(info["data"]["composers"]) == {"Bach", "Mozart", "None"}
    assert "general pieces of" in info["data"]["source"]
    assert AutoModelForCausalLM.from_pretrained(output).config.trained_composers == ["Bach", "Mozart"]
    composers_only = _dataset_folder(tmp_path / "bach", data_cache, composers=("bach",))
    with pytest.raises(ConfigError, match="no general"):  # a composer-only dataset has nothing to mix in
        finetune.main(smoke_args(SMOKE_FINETUNE, tmp_path / "none", data_cache, "--set", f"finetune.pretrained={pretrained}",
                                 "--set", f"finetune.general_dataset={composers_only}"))


def test_balanced_finetuning_refuses_another_batch_order_before_any_work(tmp_path):
    argv = ["--config", SMOKE_FINETUNE, "--set", f"output_dir={tmp_path / 'out'}", "--set",
            f"finetune.pretrained={tmp_path / 'not_loaded'}", "--train_sampling_strategy", "group_by_length"]
    with pytest.raises(ConfigError, match="train_sampling_strategy 'group_by_length' cannot order balanced"):
        finetune.main(argv)
    assert not (tmp_path / "out").exists()


def test_composer_balanced_weights_give_general_pieces_their_share():
    from g2m_hf.data import composer_balanced_weights

    labels = ["Bach"] * 6 + ["Mozart"] * 2 + ["None"] * 12
    weights = composer_balanced_weights(labels, unlabelled_share=0.25)
    share = {name: sum(w for w, label in zip(weights, labels) if label == name) for name in ("Bach", "Mozart", "None")}
    assert share == pytest.approx({"Bach": 0.375, "Mozart": 0.375, "None": 0.25})


@pytest.mark.slow
def test_the_judges_are_trained_fitted_packaged_and_measured_on_unseen_pieces(tmp_path, data_cache):
    from g2m_hf.evaluation import FEATURE_CLASSIFIER_FILE, ComposerClassifier, FeatureComposerClassifier
    from training import fit_feature_classifier, package_default_classifier

    data = _dataset_folder(tmp_path / "data", data_cache, composers=("bach", "mozart"), test_fraction=0.25)
    network = tmp_path / "network"
    train_classifier.main(smoke_args(SMOKE_CLASSIFIER, network, data_cache, "--set", "data.build=null",
                                     "--set", f"data.dataset={data}", "--set", "classifier.max_events=300",
                                     "--set", "classifier.validation_excerpt_bars=4"))
    features = tmp_path / "features.safetensors"
    assert fit_feature_classifier.main(["--dataset", str(data), "--output", str(features)]) == 0
    fitted = features.read_bytes()
    with pytest.raises(SystemExit) as refused:  # never replaced without --overwrite, checked before any work
        fit_feature_classifier.main(["--dataset", str(data), "--output", str(features)])
    assert refused.value.code == 2 and features.read_bytes() == fitted
    assert fit_feature_classifier.main(["--dataset", str(data), "--output", str(features), "--overwrite"]) == 0
    bundle = tmp_path / "bundle"
    package_default_classifier.main(["--classifier", str(network), "--features", str(features),
                                     "--data", str(data), "--output", str(bundle)])
    held_out = json.loads((bundle / "evaluation.json").read_text())
    import datasets

    test_pieces = len(datasets.load_from_disk(str(data))["test"])
    assert test_pieces >= 2  # at least one piece of each composer
    assert held_out["split"] == "test" and held_out["pieces"] == test_pieces
    for summary in held_out["judges"].values():
        assert sum(map(sum, summary["confusion_matrix"])) == test_pieces
    classifier = ComposerClassifier.from_pretrained(bundle)
    assert classifier.max_events == 300 and classifier.labels == ["Bach", "Mozart"]
    assert FeatureComposerClassifier.load(bundle / FEATURE_CLASSIFIER_FILE).labels == ["Bach", "Mozart"]
    card = (bundle / "README.md").read_text()
    assert "Held-out accuracy by piece" in card and "Held-out accuracy by 16-bar excerpt" in card
    cut = held_out["excerpts"]
    assert cut["bars"] == 16 and set(cut["recognition"]) == {"network", "features"}
    assert sum(cut["excerpts"].values()) == sum(map(sum, cut["recognition"]["network"]["confusion_matrix"])) > 0
    assert all((bundle / name).stat().st_size > 0 for name in package_default_classifier.CONFUSION_PNG.values())
    with pytest.raises(ConfigError, match="already holds files"):  # never replaced without --overwrite
        package_default_classifier.main(["--classifier", str(network), "--features", str(features),
                                         "--data", str(data), "--output", str(bundle)])


def test_a_classifier_starts_from_a_pretrained_model_and_is_chosen_on_excerpts(pretrained, tmp_path, data_cache):
    import numpy as np
    from transformers import EvalPrediction

    from g2m_hf import G2MTokenizer
    from g2m_hf.errors import DataError

    tokenizer = G2MTokenizer.from_pretrained(pretrained)
    heads = {"id2label": {0: "Bach", 1: "Mozart"}, "label2id": {"Bach": 0, "Mozart": 1}, "classifier_max_events": 300}
    model = train_classifier.build_classifier({"hidden_dropout_prob": 0.0}, tokenizer, str(pretrained), heads)
    base = AutoModelForCausalLM.from_pretrained(pretrained).model.state_dict()
    encoder = model.model.state_dict()
    assert encoder.keys() == base.keys() and all(torch.equal(encoder[k], base[k]) for k in base)
    assert model.config.hidden_dropout_prob == 0.0 and model.config.classifier_max_events == 300
    assert model.config.id2label == {0: "Bach", 1: "Mozart"} and model.score.out_features == 2
    with pytest.raises(ConfigError, match="hidden_size"):  # the shape is the pretrained model's
        train_classifier.build_classifier({"hidden_size": 64}, tokenizer, str(pretrained), heads)
    with pytest.raises(ConfigError, match="no G2M model at"):
        train_classifier.build_classifier({}, tokenizer, str(tmp_path / "missing"), heads)
    for setting, message in (("validation_excerpt_bars=0", "whole number of bars"),
                             ("validation_excerpt_bars=four", "whole number of bars"),
                             (f"init_from={tmp_path / 'missing'}", "is not a folder")):
        with pytest.raises(ConfigError, match=message):  # refused before the data is read or a step is run
            train_classifier.main(smoke_args(SMOKE_CLASSIFIER, tmp_path / "refused", data_cache,
                                             "--set", f"classifier.{setting}"))
        assert not (tmp_path / "refused").exists()
    other = G2MTokenizer.from_pretrained(pretrained)
    other.add_composer("Zappa")
    with pytest.raises(ConfigError, match="event vocabulary"):
        train_classifier.build_classifier({}, other, str(pretrained), heads)

    data = _dataset_folder(tmp_path / "data", data_cache, composers=("bach", "mozart"), test_fraction=0.25)
    pieces = datasets.load_from_disk(str(data))["test"]
    cut = train_classifier.validation_excerpts(pieces, tokenizer, 4)
    assert len(cut) > len(pieces) and set(cut["composer"]) == set(pieces["composer"])
    for ids in cut["input_ids"]:
        events = tokenizer.ids_to_events(ids)
        assert events.count("Bar_None") == 4 and events[0].startswith("Composer_")
    with pytest.raises(DataError, match="no validation piece has 100000 bars"):
        train_classifier.validation_excerpts(pieces, tokenizer, 100000)

    # 8 Bach excerpts right, 1 of 2 Mozart: pooled 0.9, balanced (0.5 + 1) / 2
    logits = np.array([[1.0, 0.0]] * 8 + [[1.0, 0.0], [0.0, 1.0]])
    metrics = train_classifier.accuracy(EvalPrediction(predictions=logits, label_ids=np.array([0] * 8 + [1, 1])))
    assert metrics == pytest.approx({"accuracy": 0.9, "balanced_accuracy": 0.75})


def test_the_packaged_model_samples_with_the_chosen_defaults(tmp_path):
    import argparse

    from transformers import GenerationConfig

    from g2m_hf.grammar import SPEC_GENERATION_DEFAULTS
    from training.package_default_model import set_generation_defaults

    GenerationConfig(**SPEC_GENERATION_DEFAULTS).save_pretrained(tmp_path)
    chosen = argparse.Namespace(style_guidance=2.5, style_guidance_contrast="composers", texture_steering=1.5,
                                temperature=0.9, top_p=0.9)
    set_generation_defaults(tmp_path, chosen)
    written = GenerationConfig.from_pretrained(tmp_path)
    assert (written.style_guidance, written.temperature, written.top_p, written.top_k) == (2.5, 0.9, 0.9, 0)
    assert (written.style_guidance_contrast, written.texture_steering) == ("composers", 1.5)


def test_the_stage_table_names_every_dataset_a_stage_trained_on():
    from training.bundle import dataset_names, stages_table

    assert dataset_names("data/mastery + general pieces of data/general") == "mastery + general"
    assert dataset_names("/abs/data/general") == "general" and dataset_names("my_midi") == "my_midi"
    record = json.loads((Path(g2m_hf.default_model_path()) / RECORD_NAME).read_text())
    record["data"]["source"] = "data/mastery + general pieces of data/general"
    assert "| fine-tuning | mastery + general |" in stages_table({"fine-tuning": record})


@pytest.mark.slow
def test_a_finetuned_model_is_packaged_with_its_card_evaluation_and_defaults(pretrained, tmp_path, data_cache):
    from transformers import GenerationConfig

    from training import package_default_model

    finetuned = tmp_path / "full"
    finetune.main(smoke_args(SMOKE_FINETUNE, finetuned, data_cache, "--set", f"finetune.pretrained={pretrained}",
                             "--set", "data.collator.infill_rate=0.5", "--set", "data.collator.control_rate=0.75"))
    reference = _dataset_folder(tmp_path / "data", data_cache, composers=("bach", "mozart"), test_fraction=0.25)
    distilled = tmp_path / "distilled"  # the build script ships the fine-tuned model with its guidance distilled
    assert distill_guidance.main(["--model", str(finetuned), "--dataset", str(reference), "--output", str(distilled),
                                  "--steps", "2", "--batch-size", "1", "--style-guidance", "2",
                                  "--style-guidance-contrast", "composers"]) == 0
    bundle, report = tmp_path / "bundle", tmp_path / "evaluation"
    argv = ["--pretrained", str(pretrained), "--finetuned", str(finetuned), "--distilled", str(distilled),
            "--reference-data", str(reference), "--output", str(bundle), "--evaluation-dir", str(report),
            "--pieces", "1", "--recognition-pieces", "1", "--texture-pieces", "1", "--max-bars", "2", "--max-events", "80",
            "--style-guidance", "1", "--style-guidance-contrast", "composers", "--temperature", "0.9", "--top-p", "0.9"]
    with pytest.raises(ConfigError, match=r"--distilled .*: not a finished output folder of training/distill_guidance"):
        package_default_model.main([*argv[:4], "--distilled", str(finetuned), *argv[6:]])  # before any work
    assert not bundle.exists()
    assert package_default_model.main(argv) == 0
    names = {path.name for path in bundle.iterdir()}
    assert {"model.safetensors", "config.json", "README.md", "evaluation.json", "loss_curves.png",
            "pretraining_record.json", "training_record.json", "generation_config.json",
            distill_guidance.RECORD_NAME} <= names
    assert not any(name.startswith(("checkpoint-", ".")) or name.endswith(".py") for name in names)
    shipped, fine_tuned = load_file(bundle / "model.safetensors"), load_file(finetuned / "model.safetensors")
    assert all(torch.equal(tensor, load_file(distilled / "model.safetensors")[name]) for name, tensor in shipped.items())
    assert not all(torch.equal(tensor, fine_tuned[name]) for name, tensor in shipped.items())
    assert json.loads((bundle / "training_record.json").read_text()) == json.loads((finetuned / RECORD_NAME).read_text())
    generation = GenerationConfig.from_pretrained(bundle)
    assert (generation.style_guidance, generation.temperature, generation.top_p) == (1.0, 0.9, 0.9)
    assert generation.style_guidance_contrast == "composers"  # what a user who raises the scale pushes against
    # the texture controls: appended after the infill tokens, and each composer's real textures in the config
    config = g2m_hf.G2MConfig.from_pretrained(bundle)
    assert config.event_vocabulary[-len(CONTROL_TOKENS) - len(INFILL_TOKENS) :] == [*INFILL_TOKENS, *CONTROL_TOKENS]
    train = datasets.load_from_disk(str(reference))["train"]
    assert sorted(config.composer_textures) == sorted(set(train["composer"]))
    assert [len(lines) for _, lines in sorted(config.composer_textures.items())] == [
        train["composer"].count(composer) for composer in sorted(config.composer_textures)]
    # and the register ranges steering keeps their sections in: mean pitch, then share at or above middle C
    assert config.composer_registers and set(config.composer_registers) <= set(config.composer_textures)
    assert all(30 < low <= high < 100 and 0 <= share_low <= share_high <= 1
               for low, high, share_low, share_high in config.composer_registers.values())
    evaluation = json.loads((bundle / "evaluation.json").read_text())
    assert evaluation["reference_split"] == "test"
    assert set(evaluation["recognition"]["recognition"]) == {"network", "features"}
    card = (bundle / "README.md").read_text()
    assert "temperature 0.9, top-p 0.9" in card and "### Composer recognition" in card
    assert "**Guidance distillation**" in card and "style guidance 2 against the other composers distilled" in card
    real = evaluation["recognition"]["real"]  # the same judges on 16-bar excerpts of the held-out real pieces
    assert set(real["excerpts"]) == {"Bach", "Mozart"} and real["excerpts"]["Mozart"] > 0  # (the chorale: too short)
    assert real["recognition"]["network"]["per_composer"]["Mozart"]["pieces"] == real["excerpts"]["Mozart"]
    assert "real held-out music (16-bar excerpts)" in card
    # texture against the held-out pieces and against every piece of the composer (issue 25's measure)
    splits = datasets.load_from_disk(str(reference))
    every = [row for split in splits.values() for row in split if row["composer"] == "Mozart"]
    held_out = splits["test"]["composer"].count("Mozart")
    assert 0 < held_out < len(every) and "| Mozart | all |" in card
    assert evaluation["texture_pieces"] == {"pieces": 1, "bars": 16}  # issue 25's unit: pieces of exactly 16 bars
    mozart = evaluation["texture"]["Mozart"]
    tokenizer = g2m_hf.G2MTokenizer.from_pretrained(bundle)
    assert mozart["all_real"] == pytest.approx(median_texture([tokenizer.ids_to_events(row["input_ids"]) for row in every]))
    assert mozart["all_real"] != mozart["reference"]
    before = (bundle / "README.md").stat().st_mtime_ns
    with pytest.raises(ConfigError, match="already holds files"):  # refused before any work, nothing touched
        package_default_model.main(argv)
    assert (bundle / "README.md").stat().st_mtime_ns == before


@pytest.mark.slow
def test_a_pretrained_model_is_packaged_as_the_base_with_its_card_and_curves(pretrained, tmp_path):
    from training import package_base_model

    base = tmp_path / "base"
    assert package_base_model.main(["--pretrained", str(pretrained), "--output", str(base)]) == 0
    names = {path.name for path in base.iterdir()}
    assert {"model.safetensors", "config.json", "tokenizer.json", "generation_config.json", "README.md",
            "evaluation.json", "loss_curves.png", RECORD_NAME, "recipe.yaml"} <= names
    assert not any(name.startswith(("checkpoint-", ".", "runs")) or name.endswith((".py", ".bin")) for name in names)
    assert load_file(base / "model.safetensors").keys() == load_file(pretrained / "model.safetensors").keys()
    evaluation = json.loads((base / "evaluation.json").read_text())
    record = json.loads((pretrained / RECORD_NAME).read_text())
    evaluated = {entry["step"] for entry in record["log_history"] if "eval_loss" in entry}
    assert evaluation["convergence"]["pretraining"]["evaluations"] == len(evaluated) >= 2
    card = (base / "README.md").read_text()
    assert "default_base_model_path()" in card and "finetune.pretrained=" in card and "### Limits" in card
    packaged = AutoModelForCausalLM.from_pretrained(base)
    assert isinstance(packaged, g2m_hf.G2MForCausalLM) and packaged.config.trained_composers == []
    before = (base / "README.md").stat().st_mtime_ns
    with pytest.raises(ConfigError, match="already holds files"):  # refused before any work, nothing touched
        package_base_model.main(["--pretrained", str(pretrained), "--output", str(base)])
    assert (base / "README.md").stat().st_mtime_ns == before
    with pytest.raises(ConfigError, match=r"not a finished output folder of training/pretrain\.py"):
        package_base_model.main(["--pretrained", str(tmp_path), "--output", str(tmp_path / "other")])
    assert not (tmp_path / "other").exists()
