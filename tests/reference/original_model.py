"""A faithful re-implementation of the ORIGINAL Generality-to-Mastery networks (SPEC §3 and §6).

Reference only: parity tests fill it with random weights, save its state dict the way the original
training scripts do (`torch.save(model.state_dict())`), convert it, and compare logits; the benchmarks
time it as the baseline. Module names reproduce the original state-dict keys exactly. Tensors are
sequence-first ([T, B, d]) as in the original, which uses `nn.MultiheadAttention(batch_first=False)`.
"""

from __future__ import annotations

import math

import torch
from torch import nn


def original_init(module: nn.Module) -> None:
    """Linear / Embedding weights N(0, 0.01), biases 0, LayerNorm weights N(1, 0.01) (applied last, to all)."""
    if isinstance(module, (nn.Linear, nn.Embedding)):
        nn.init.normal_(module.weight, 0.0, 0.01)
    elif isinstance(module, nn.LayerNorm):
        nn.init.normal_(module.weight, 1.0, 0.01)
    if isinstance(getattr(module, "bias", None), torch.Tensor):
        nn.init.zeros_(module.bias)


class WordEmbedding(nn.Module):
    """Lookup (padding row = PAD) times sqrt(d_model); d_word_embed == d_model, so no projection."""

    def __init__(self, vocab_size: int, d_model: int, pad_index: int):
        super().__init__()
        self.scale = d_model**0.5
        self.emb_lookup = nn.Embedding(vocab_size, d_model, padding_idx=pad_index)

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        return self.emb_lookup(tokens) * self.scale


class PositionalEmbedding(nn.Module):
    """Concatenated sinusoids; `inv_freq` is a (saved) buffer in the original."""

    def __init__(self, d_model: int):
        super().__init__()
        self.register_buffer("inv_freq", 1 / (10000 ** (torch.arange(0.0, d_model, 2.0) / d_model)))

    def forward(self, length: int, batch_size: int) -> torch.Tensor:
        angles = torch.outer(torch.arange(length, dtype=torch.float, device=self.inv_freq.device), self.inv_freq)
        return torch.cat([angles.sin(), angles.cos()], dim=-1)[:, None, :].expand(-1, batch_size, -1)  # [T, B, d]


class Layer(nn.Module):
    """pre_lnorm: x = x + MHA(LN1(x)); x = x + FFN(LN2(x)). Otherwise (post-LN, the original code's default):
    x = LN1(x + MHA(x)); x = LN2(x + FFN(x)). FFN = Linear, ReLU, Dropout, Linear, Dropout."""

    def __init__(self, d_model: int, n_head: int, d_ff: int, dropout: float, pre_lnorm: bool = True):
        super().__init__()
        self.pre_lnorm = pre_lnorm
        self.self_attn = nn.MultiheadAttention(d_model, n_head, dropout=dropout, bias=False)
        self.ffn = nn.Sequential(
            nn.Linear(d_model, d_ff), nn.ReLU(), nn.Dropout(dropout), nn.Linear(d_ff, d_model), nn.Dropout(dropout)
        )
        self.layernorm1 = nn.LayerNorm(d_model)
        self.layernorm2 = nn.LayerNorm(d_model)

    def forward(self, x, attn_mask=None, key_padding_mask=None):
        if not self.pre_lnorm:
            x = self.layernorm1(x + self.self_attn(x, x, x, attn_mask=attn_mask, key_padding_mask=key_padding_mask)[0])
            return self.layernorm2(x + self.ffn(x))
        normed = self.layernorm1(x)
        x = x + self.self_attn(normed, normed, normed, attn_mask=attn_mask, key_padding_mask=key_padding_mask)[0]
        return x + self.ffn(self.layernorm2(x))


class GatedStyleAdapter(nn.Module):
    """x + linear2(GELU(linear1([x ; cond])))."""

    def __init__(self, d_model: int):
        super().__init__()
        self.linear1 = nn.Linear(2 * d_model, 2 * d_model)
        self.gelu = nn.GELU()
        self.linear2 = nn.Linear(2 * d_model, d_model)

    def forward(self, x, cond):
        return self.linear2(self.gelu(self.linear1(torch.cat([x, cond.expand(x.size(0), -1, -1)], dim=-1)))) + x


class Decoder(nn.Module):
    def __init__(self, n_layer, n_head, d_model, d_ff, dropout, adapter_positions, pre_lnorm=True):
        super().__init__()
        self.drop = nn.Dropout(dropout)
        self.layers = nn.ModuleList([Layer(d_model, n_head, d_ff, dropout, pre_lnorm) for _ in range(n_layer)])
        self.pos_emb = PositionalEmbedding(d_model)
        self.adapters = nn.ModuleDict({str(p): GatedStyleAdapter(d_model) for p in adapter_positions})

    def forward(self, dec_input):  # [T, B, d]
        length, batch_size, _ = dec_input.shape
        causal = torch.triu(torch.ones(length, length, dtype=torch.bool, device=dec_input.device), diagonal=1)
        cond = dec_input[0:1]  # the embedded composer token, after embedding dropout, before positions
        x = self.drop(dec_input) + self.pos_emb(length, batch_size)
        for i, layer in enumerate(self.layers):
            x = layer(x, attn_mask=causal)
            if str(i) in self.adapters:
                x = self.adapters[str(i)](x, cond)
        return self.drop(x)  # no final LayerNorm


class OriginalDecoderModel(nn.Module):
    """The original `VanillaTransformer`: token ids [T, B] -> logits [T, B, V]."""

    def __init__(self, vocab_size, n_layer=12, n_head=8, d_model=512, d_ff=2048, dropout=0.1, adapter_positions=(),
                 pre_lnorm=True):
        super().__init__()
        self.word_emb = WordEmbedding(vocab_size, d_model, pad_index=vocab_size - 1)
        self.emb_dropout = nn.Dropout(dropout)
        self.decoder = Decoder(n_layer, n_head, d_model, d_ff, dropout, adapter_positions, pre_lnorm)
        self.dec_out_proj = nn.Linear(d_model, vocab_size)
        self.apply(original_init)

    def forward(self, dec_input):
        return self.dec_out_proj(self.decoder(self.emb_dropout(self.word_emb(dec_input))))


class Encoder(nn.Module):
    def __init__(self, n_layer, n_head, d_model, d_ff, dropout, pre_lnorm=True):
        super().__init__()
        self.drop = nn.Dropout(dropout)
        self.layers = nn.ModuleList([Layer(d_model, n_head, d_ff, dropout, pre_lnorm) for _ in range(n_layer)])
        self.pos_emb = PositionalEmbedding(d_model)

    def forward(self, enc_input, key_padding_mask):  # [T, B, d], [B, T] True at padding
        length, batch_size, _ = enc_input.shape
        x = self.drop(enc_input + self.pos_emb(length, batch_size))
        for layer in self.layers:
            x = layer(x, key_padding_mask=key_padding_mask)
        return x


class OriginalComposerClassifier(nn.Module):
    """The original `ComposerClassifier`: token ids [B, T] (no composer token) -> logits [B, classes]."""

    def __init__(self, vocab_size, num_classes=4, n_layer=6, n_head=8, d_model=512, d_ff=2048, dropout=0.1,
                 pre_lnorm=True):
        super().__init__()
        self.pad_index = vocab_size - 1
        self.word_emb = WordEmbedding(vocab_size, d_model, pad_index=self.pad_index)
        self.emb_dropout = nn.Dropout(dropout)
        self.encoder = Encoder(n_layer, n_head, d_model, d_ff, dropout, pre_lnorm)
        self.cls_head = nn.Linear(d_model, num_classes)
        self.apply(original_init)

    def forward(self, tokens):
        embedded = self.emb_dropout(self.word_emb(tokens)).transpose(0, 1)  # [T, B, d]
        return self.cls_head(self.encoder(embedded, key_padding_mask=tokens == self.pad_index)[0])


def randomise(model: nn.Module, seed: int = 0) -> nn.Module:
    """Give every parameter a distinct random value of a realistic scale (so a wrong mapping cannot pass)."""
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, parameter in model.named_parameters():
            noise = torch.randn(parameter.shape, generator=generator)
            if "layernorm" in name and name.endswith("weight"):
                parameter.copy_(1.0 + 0.1 * noise)
            else:
                parameter.copy_(noise / math.sqrt(parameter.shape[-1]))
    return model
