"""G2MConfig / G2MModel / G2MForCausalLM / G2MForSequenceClassification as transformers models.

Numerical parity with the original network is tested in test_convert_original.py; here: padding, the
key/value cache, attention implementations, saving, Auto classes, remote code, PEFT and training hooks.
"""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from transformers import (
    AutoConfig,
    AutoModel,
    AutoModelForCausalLM,
    AutoModelForSequenceClassification,
    DynamicCache,
)

from g2m_hf import G2MConfig, G2MForCausalLM, G2MForSequenceClassification, G2MModel
from g2m_hf.errors import ModelConfigError, ModelInputError
from g2m_hf.vocab import complete_vocabulary
from tests.reference.original_model import OriginalDecoderModel, randomise

VOCAB = complete_vocabulary()
PAD = VOCAB.index("PAD_None")
COMPOSERS = [VOCAB.index(f"Composer_{name}") for name in ("Bach", "Chopin", "Mozart")]
ATTENTION = ["eager", "sdpa"]


def tiny_config(**overrides) -> G2MConfig:
    sizes = dict(hidden_size=32, num_hidden_layers=3, num_attention_heads=4, intermediate_size=64)
    return G2MConfig(**{**sizes, "style_adapter_layers": [0, 2], **overrides})


def tiny_model(attn_implementation="eager", seed=0, **overrides) -> G2MForCausalLM:
    # random weights of a trained model's scale (the init's 0.01 would hide most of the network)
    model = randomise(G2MForCausalLM(tiny_config(**overrides)), seed).eval()
    model.set_attn_implementation(attn_implementation)
    return model


def pieces(lengths, seed=1) -> list[torch.Tensor]:
    """Token sequences starting with a composer token (no padding inside)."""
    generator = torch.Generator().manual_seed(seed)
    return [
        torch.cat([torch.tensor([COMPOSERS[i % 3]]), torch.randint(0, PAD, (n - 1,), generator=generator)])
        for i, n in enumerate(lengths)
    ]


def left_pad(rows: list[torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
    width = max(len(r) for r in rows)
    ids = torch.full((len(rows), width), PAD)
    mask = torch.zeros(len(rows), width, dtype=torch.long)
    for i, row in enumerate(rows):
        ids[i, width - len(row) :], mask[i, width - len(row) :] = row, 1
    return ids, mask


# --- configuration ----------------------------------------------------------------------------------


def test_config_defaults_are_the_paper_model():
    config = G2MConfig()
    assert (config.hidden_size, config.num_hidden_layers, config.num_attention_heads) == (512, 12, 8)
    assert (config.intermediate_size, config.style_adapter_layers) == (2048, [1, 3, 5, 7, 9])
    assert config.vocab_size == len(VOCAB) and config.pad_token_id == PAD
    assert VOCAB[config.bos_token_id] == "BOS_None" and VOCAB[config.eos_token_id] == "EOS_None"
    assert config.tie_word_embeddings is False and config.model_type == "g2m"
    restored = G2MConfig.from_dict(tiny_config(style_adapter_layers=[], event_vocabulary=VOCAB).to_dict())
    assert restored.style_adapter_layers == [] and restored.event_vocabulary == VOCAB


@pytest.mark.parametrize(
    "overrides, reason",
    [
        (dict(style_adapter_layers=[3]), "do not exist"),
        (dict(num_attention_heads=5), "multiple"),
        (dict(event_vocabulary=["a", "b"]), "event_vocabulary"),
        (dict(pad_token_id=10_000), "outside the vocabulary"),
    ],
)
def test_config_refuses_inconsistent_values(overrides, reason):
    with pytest.raises(ModelConfigError, match=reason):
        tiny_config(**overrides)


def test_full_size_parameter_counts_match_the_original():
    with torch.device("meta"):  # shapes only: no memory, no init
        with_adapters = G2MForCausalLM(G2MConfig())
        without = G2MForCausalLM(G2MConfig(style_adapter_layers=[]))
        original = OriginalDecoderModel(len(VOCAB), adapter_positions=(1, 3, 5, 7, 9))
    count = with_adapters.num_parameters()
    assert count == sum(p.numel() for p in original.parameters())
    assert 45.5e6 < count < 46.5e6 and 37.5e6 < without.num_parameters() < 38.5e6


def test_init_follows_the_original():
    torch.manual_seed(0)
    model = G2MForCausalLM(tiny_config(hidden_size=128, intermediate_size=256))
    layer = model.model.layers[0]
    adapter = model.model.style_adapters["0"]
    for weight in (model.model.embed_tokens.weight, layer.mlp.fc1.weight, adapter.linear1.weight):
        assert abs(weight.std().item() - 0.01) < 0.001 and abs(weight.mean().item()) < 0.001
    assert abs(layer.input_layernorm.weight.mean().item() - 1) < 0.005
    assert 0.007 < layer.input_layernorm.weight.std().item() < 0.013
    for bias in (model.lm_head.bias, layer.mlp.fc2.bias, layer.input_layernorm.bias):
        assert torch.all(bias == 0)


# --- padding, style condition, cache ------------------------------------------------------------------


@pytest.mark.parametrize("attn", ATTENTION)
def test_left_padding_gives_the_unpadded_logits(attn):
    model = tiny_model(attn)
    rows = pieces([9, 5, 7])
    ids, mask = left_pad(rows)
    with torch.no_grad():
        batched = model(ids, attention_mask=mask).logits
        for i, row in enumerate(rows):
            alone = model(row[None]).logits[0]
            assert torch.allclose(batched[i, -len(row) :], alone, atol=1e-5)


def test_style_condition_is_each_rows_scaled_composer_embedding():
    model = tiny_model()
    ids, mask = left_pad(pieces([7, 3, 5]))
    seen = []
    hook = model.model.style_adapters["2"].register_forward_hook(lambda module, args, out: seen.append(args[1]))
    with torch.no_grad():
        model(ids, attention_mask=mask)
    hook.remove()
    composers = torch.tensor(COMPOSERS)
    expected = model.model.embed_tokens(composers) * model.config.hidden_size**0.5
    assert seen[0].shape == (3, 1, 32) and torch.equal(seen[0][:, 0], expected)
    assert len(model.model.style_adapters) == 2 and len(tiny_model(style_adapter_layers=[]).model.style_adapters) == 0


@pytest.mark.parametrize("attn", ATTENTION)
def test_cached_decoding_equals_one_full_forward(attn):
    model = tiny_model(attn)
    rows = pieces([12, 8])
    ids, mask = left_pad(rows)
    prompt = 5
    with torch.no_grad():
        full = model(ids, attention_mask=mask).logits
        out = model(ids[:, :prompt], attention_mask=mask[:, :prompt], use_cache=True)
        assert isinstance(out.cache, DynamicCache)
        steps = [out.logits]
        style = ids[torch.arange(2), mask.argmax(-1)]  # each row's composer token
        for t in range(prompt, ids.shape[1]):
            out = model(ids[:, t : t + 1], attention_mask=mask[:, : t + 1], cache=out.cache, style_token_ids=style)
            steps.append(out.logits)
    cached = torch.cat(steps, dim=1)
    real = mask.bool()
    assert torch.allclose(cached[real], full[real], atol=1e-5)


@pytest.mark.parametrize("attn", ATTENTION)
def test_decoding_after_a_right_padded_prompt_never_sees_the_padding(attn):
    # a right-padded prompt needs no mask itself (causal), but the steps after it do: the cache must
    # not remember it as free of padding
    model = tiny_model(attn)
    long, short = pieces([6, 4])
    prompt = torch.stack([long, torch.cat([short, torch.full((2,), PAD)])])
    prompt_mask = torch.tensor([[1] * 6, [1] * 4 + [0] * 2])
    new = torch.tensor([[long[2]], [short[2]]])
    with torch.no_grad():
        out = model(prompt, attention_mask=prompt_mask, use_cache=True)
        step = model(new, attention_mask=torch.cat([prompt_mask, torch.ones(2, 1, dtype=torch.long)], 1),
                     cache=out.cache, style_token_ids=prompt[:, 0]).logits[:, -1]
        alone = [model(torch.cat([row, token])[None]).logits[0, -1] for row, token in ((long, new[0]), (short, new[1]))]
    assert torch.allclose(step, torch.stack(alone), atol=1e-5)


def test_cached_step_without_style_token_is_refused():
    model = tiny_model()
    ids = pieces([6])[0][None]
    with torch.no_grad():
        out = model(ids[:, :4], use_cache=True)
        with pytest.raises(ModelInputError, match="style_token_ids"):
            model(ids[:, 4:5], cache=out.cache)
        with pytest.raises(ModelInputError, match="attention_mask"):
            model(ids[:, 4:5], cache=out.cache, attention_mask=torch.ones(1, 1), style_token_ids=ids[:, 0])
    with pytest.warns(FutureWarning, match="past_key_values"):  # the transformers 4 name still works
        step = model(ids[:, 4:5], past_key_values=out.cache, style_token_ids=ids[:, 0])
    assert step.logits.shape == (1, 1, len(VOCAB))


@pytest.mark.parametrize("attn", ATTENTION)
def test_generate_with_left_padding_and_cache(attn):
    """generate() keeps each row's composer condition while decoding from the cache."""
    model = tiny_model(attn)
    ids, mask = left_pad(pieces([3, 1, 2]))
    settings = dict(do_sample=False, max_new_tokens=6, remi_grammar=False, pad_token_id=PAD, eos_token_id=None)
    with torch.no_grad():
        cached = model.generate(ids, attention_mask=mask, output_logits=True, return_dict_in_generate=True, **settings)
        uncached = model.generate(ids, attention_mask=mask, use_cache=False, **settings)
        # each row alone, unpadded, in one forward: what the cached, padded, batched steps must reproduce
        full_mask = torch.cat([mask, torch.ones(3, 6, dtype=torch.long)], dim=1).bool()
        alone = [model(row[m][None]).logits[0, -7:-1] for row, m in zip(cached.sequences, full_mask, strict=True)]
    assert torch.equal(cached.sequences, uncached)
    step_logits = torch.stack(cached.logits, dim=1)  # [B, 6, V]
    assert torch.allclose(step_logits, torch.stack(alone), atol=1e-5)


# --- outputs, loss, attention implementations --------------------------------------------------------


def test_loss_ignores_padding_and_minus_100():
    model = tiny_model()
    ids, mask = left_pad(pieces([7, 4]))
    labels = ids.clone()
    with torch.no_grad():
        out = model(ids, attention_mask=mask, labels=labels)
        logits = out.logits[:, :-1].reshape(-1, len(VOCAB))
        targets = labels[:, 1:].reshape(-1)
        keep = targets != PAD
        expected = F.cross_entropy(logits[keep], targets[keep])
        explicit = model(ids, attention_mask=mask, labels=labels.masked_fill(labels == PAD, -100)).loss
    assert torch.allclose(out.loss, expected, atol=1e-6) and torch.allclose(explicit, expected, atol=1e-6)


def test_hidden_states_and_attentions():
    model = tiny_model("sdpa")  # attention weights fall back to eager, the only one that computes them
    ids, mask = left_pad(pieces([6, 4]))
    with torch.no_grad():
        out = model(ids, attention_mask=mask, output_hidden_states=True, output_attentions=True)
        sdpa = model(ids, attention_mask=mask).logits
    assert len(out.hidden_states) == 4 and out.hidden_states[-1].shape == (2, 6, 32)
    assert len(out.attentions) == 3 and out.attentions[0].shape == (2, 4, 6, 6)
    weights = out.attentions[1][1, :, 2:]  # the real queries of the padded row
    assert torch.allclose(weights.sum(-1), torch.ones(4, 4)) and torch.all(weights[..., :2] == 0)
    assert torch.all(torch.triu(out.attentions[0][0], diagonal=1) == 0)  # causal
    assert torch.allclose(out.logits[mask.bool()], sdpa[mask.bool()], atol=1e-5)
    assert isinstance(model(ids, return_dict=False), tuple)


@pytest.mark.parametrize("attn", ATTENTION)
def test_bf16_autocast_with_left_padding(attn):
    """The additive mask follows autocast's dtype (SDPA refuses a float32 mask with bf16 scores)."""
    model = tiny_model(attn)
    ids, mask = left_pad(pieces([9, 4]))
    with torch.no_grad():
        reference = model(ids, attention_mask=mask).logits[mask.bool()]
        with torch.autocast("cpu", dtype=torch.bfloat16):
            logits = model(ids, attention_mask=mask).logits[mask.bool()]
    assert logits.dtype == torch.bfloat16 and torch.isfinite(logits).all()
    assert (logits.float() - reference).abs().max() < 0.02 * reference.abs().max()


def test_gradient_checkpointing_gives_the_same_gradients():
    ids, mask = left_pad(pieces([8, 6]))
    grads = []
    for checkpointing in (False, True):
        model = tiny_model(hidden_dropout_prob=0.0, attention_dropout=0.0).train()
        if checkpointing:
            model.activation_checkpointing_enable()
        model(ids, attention_mask=mask, labels=ids).loss.backward()
        grads.append(torch.cat([p.grad.flatten() for p in model.parameters() if p.grad is not None]))
    assert model.model.layers[0].gradient_checkpointing
    assert torch.allclose(grads[0], grads[1], atol=1e-6)


def test_dropout_is_active_in_training_only():
    model = tiny_model()
    ids = pieces([6])[0][None]
    with torch.no_grad():
        assert torch.equal(model(ids).logits, model(ids).logits)
        model.train()
        assert not torch.equal(model(ids).logits, model(ids).logits)
        assert model(ids).cache is None  # no cache is built in training


# --- saving, Auto classes, remote code ----------------------------------------------------------------


@pytest.mark.parametrize("adapters", [[0, 2], []])
def test_safetensors_round_trip(tmp_path, adapters):
    model = tiny_model(style_adapter_layers=adapters)
    model.save_pretrained(tmp_path)
    assert (tmp_path / "model.safetensors").exists() and not (tmp_path / "pytorch_model.bin").exists()
    loaded = AutoModelForCausalLM.from_pretrained(tmp_path, attn_implementation="eager").eval()
    assert type(loaded) is G2MForCausalLM and loaded.config.style_adapter_layers == adapters
    ids, mask = left_pad(pieces([7, 5]))
    with torch.no_grad():
        assert torch.equal(model(ids, attention_mask=mask).logits, loaded(ids, attention_mask=mask).logits)


def test_auto_classes_are_registered():
    sizes = dict(hidden_size=32, num_hidden_layers=2, num_attention_heads=4, style_adapter_layers=[1])
    config = AutoConfig.for_model("g2m", **sizes)
    assert type(config) is G2MConfig
    assert type(AutoModel.from_config(config)) is G2MModel
    assert type(AutoModelForCausalLM.from_config(config)) is G2MForCausalLM
    assert type(AutoModelForSequenceClassification.from_config(config)) is G2MForSequenceClassification


@pytest.mark.slow
def test_saved_folder_loads_as_remote_code_without_g2m_hf(tmp_path, run_without_g2m_hf):
    model = tiny_model()
    folder = tmp_path / "model"
    model.save_pretrained(folder)
    auto_map = AutoConfig.from_pretrained(folder).auto_map
    assert auto_map["AutoModelForCausalLM"] == "modeling_g2m.G2MForCausalLM"
    ids, mask = left_pad(pieces([5, 3]))
    result = run_without_g2m_hf(f"""
import json, torch
from transformers import AutoModelForCausalLM
model = AutoModelForCausalLM.from_pretrained({str(folder)!r}, trust_remote_code=True).eval()
ids, mask = torch.tensor({ids.tolist()}), torch.tensor({mask.tolist()})
with torch.no_grad():
    logits = model(ids, attention_mask=mask).logits
print(json.dumps({{"module": type(model).__module__, "logits": logits.tolist()}}))
""")
    assert result["module"].startswith("transformers_modules.")
    with torch.no_grad():
        expected = model(ids, attention_mask=mask).logits
    real = mask.bool()  # padding positions have no defined output (SDPA leaves them 0, eager does not)
    assert torch.allclose(torch.tensor(result["logits"])[real], expected[real], atol=1e-5)


# --- PEFT ---------------------------------------------------------------------------------------------


def test_peft_lora_with_style_adapters_to_save(tmp_path):
    from peft import LoraConfig, PeftModel, get_peft_model

    model = tiny_model()
    ids, mask = left_pad(pieces([6, 4]))
    with torch.no_grad():
        before = model(ids, attention_mask=mask).logits
    peft_config = LoraConfig(r=4, target_modules=["q_proj", "v_proj", "fc1", "fc2"], modules_to_save=["style_adapters"])
    peft_model = get_peft_model(model, peft_config)
    trainable = {name for name, p in peft_model.named_parameters() if p.requires_grad}
    assert any("style_adapters" in n and "linear1" in n for n in trainable)
    assert any("lora_A" in n for n in trainable) and not any("embed_tokens" in n for n in trainable)
    with torch.no_grad():  # LoRA B starts at zero and the copied adapters equal the originals
        assert torch.allclose(peft_model(input_ids=ids, attention_mask=mask).logits, before, atol=1e-6)
        peft_model.base_model.model.model.style_adapters.modules_to_save["default"]["0"].linear2.bias.add_(1.0)
        changed = peft_model(input_ids=ids, attention_mask=mask).logits
    assert not torch.allclose(changed, before, atol=1e-3)
    peft_model.save_pretrained(tmp_path)
    reloaded = PeftModel.from_pretrained(tiny_model(), tmp_path).eval()
    with torch.no_grad():
        assert torch.allclose(reloaded(input_ids=ids, attention_mask=mask).logits, changed, atol=1e-6)


# --- composer classifier ------------------------------------------------------------------------------


def test_sequence_classification_pools_the_first_real_token():
    labels = ["Bach", "Beethoven", "Chopin", "Mozart"]
    config = tiny_config(style_adapter_layers=[], id2label=dict(enumerate(labels)))
    model = randomise(G2MForSequenceClassification(config)).eval()
    rows = [row[1:] for row in pieces([9, 5, 7])]  # the classifier reads pieces without the composer token
    left_ids, left_mask = left_pad(rows)
    right_ids = torch.stack([torch.cat([r, torch.full((9 - len(r) - 1,), PAD)]) for r in rows])
    targets = torch.tensor([0, 3, 1])
    with torch.no_grad():
        left = model(left_ids, attention_mask=left_mask, labels=targets)
        right = model(right_ids)  # padding found from PAD ids, as the original does
        alone = torch.cat([model(r[None]).logits for r in rows])
    assert left.logits.shape == (3, 4) and model.config.num_labels == 4
    assert torch.allclose(left.logits, alone, atol=1e-5) and torch.allclose(right.logits, alone, atol=1e-5)
    assert torch.allclose(left.loss, F.cross_entropy(alone, targets), atol=1e-5)
    # bidirectional: the first position sees later tokens
    changed = rows[0].clone()
    changed[-1] = (changed[-1] + 1) % PAD
    with torch.no_grad():
        assert not torch.allclose(model(changed[None]).logits, alone[:1], atol=1e-4)
