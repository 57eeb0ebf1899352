"""The positional_encoding reference against what it mirrors.

RoPE against Hugging Face's Llama (LlamaRotaryEmbedding, apply_rotary_pos_emb), bit for bit, since
pretrained checkpoints were run with exactly those tables; the lesson's claim about the two layouts
against GPT-J's interleaved rotation; the sinusoidal table against the paper's formula in float64.
The models are built from tiny configs: nothing is downloaded.
"""

import math

import pytest
import torch
from transformers import LlamaConfig
from transformers.models.gptj import modeling_gptj
from transformers.models.llama.modeling_llama import LlamaRotaryEmbedding, apply_rotary_pos_emb

from reference.positional_encoding import apply_rope, rope_cos_sin, sinusoidal_encoding


def llama_rotary(head_dim, base):
    config = LlamaConfig(hidden_size=2 * head_dim, num_attention_heads=2, head_dim=head_dim,
                         rope_parameters={"rope_type": "default", "rope_theta": base})
    return LlamaRotaryEmbedding(config)


TABLES = [(8, 10000.0, torch.arange(6)), (6, 500.0, torch.arange(9, 13)),
          (32, 10000.0, torch.arange(4090, 4098)), (16, 1e6, torch.tensor([3, 0, 7, 7, 1]))]


@pytest.mark.parametrize("head_dim, base, positions", TABLES)
def test_rope_cos_sin_is_llamas(head_dim, base, positions):
    x = torch.zeros(1, len(positions), head_dim)
    cos, sin = llama_rotary(head_dim, base)(x, positions[None])
    ours = rope_cos_sin(positions, head_dim, base)
    assert ours[0].dtype == torch.float32 and ours[1].dtype == torch.float32
    assert torch.equal(ours[0], cos[0]) and torch.equal(ours[1], sin[0])


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64, torch.bfloat16])
def test_apply_rope_is_llamas(dtype):
    g = torch.Generator().manual_seed(0)
    B, H, T, D = 2, 3, 5, 8
    q = torch.randn(B, H, T, D, generator=g).to(dtype)
    k = torch.randn(B, H, T, D, generator=g).to(dtype)
    positions = torch.arange(7, 7 + T)
    cos, sin = llama_rotary(D, 10000.0)(q, positions.expand(B, T))  # (B, T, D), in q's dtype
    q_hf, k_hf = apply_rotary_pos_emb(q, k, cos, sin)  # unsqueeze_dim=1: over the heads
    tables = rope_cos_sin(positions, D)  # float32, cast by apply_rope as Llama's forward casts them
    assert apply_rope(q, *tables).dtype == dtype
    assert torch.equal(apply_rope(q, *tables), q_hf) and torch.equal(apply_rope(k, *tables), k_hf)


def test_layouts_agree_up_to_a_permutation_of_the_features():
    """GPT-J's interleaved rotation of q equals rotate-half on q's features reordered (the even ones
    first, then the odd ones), reordered the same way: converting a checkpoint means permuting the
    rows of its query and key projections. Without the permutation the two disagree."""
    g = torch.Generator().manual_seed(1)
    B, T, H, D = 2, 6, 2, 8
    q = torch.randn(B, T, H, D, generator=g)  # GPT-J's (batch, seq, heads, head_dim)
    sincos = modeling_gptj.create_sinusoidal_positions(T, D)
    sin, cos = sincos[:, : D // 2], sincos[:, D // 2:]  # (T, D/2) each
    interleaved = modeling_gptj.apply_rotary_pos_emb(q, sin[None], cos[None])

    perm = torch.cat((torch.arange(0, D, 2), torch.arange(1, D, 2)))
    rotate_half = apply_rope(q.transpose(1, 2)[..., perm], torch.cat((cos, cos), -1), torch.cat((sin, sin), -1))
    torch.testing.assert_close(rotate_half, interleaved.transpose(1, 2)[..., perm])
    unpermuted = apply_rope(q.transpose(1, 2), torch.cat((cos, cos), -1), torch.cat((sin, sin), -1))
    assert (unpermuted - interleaved.transpose(1, 2)).abs().max() > 0.1


def paper_table(seq_len, d_model, base):
    """Section 3.5 of "Attention Is All You Need", one entry at a time, in float64."""
    pe = torch.empty(seq_len, d_model, dtype=torch.float64)
    for p in range(seq_len):
        for i in range(d_model // 2):
            angle = p / base ** (2 * i / d_model)
            pe[p, 2 * i], pe[p, 2 * i + 1] = math.sin(angle), math.cos(angle)
    return pe


@pytest.mark.parametrize("seq_len, d_model, base",
                         [(12, 8, 10000.0), (10, 6, 100.0), (1, 2, 10000.0), (4096, 16, 10000.0)])
def test_sinusoidal_is_the_papers(seq_len, d_model, base):
    table = sinusoidal_encoding(seq_len, d_model, base)
    assert table.dtype == torch.float32 and table.shape == (seq_len, d_model)
    # Within float32's rounding of the exact values: half an ulp of numbers below 1 is at most 2^-25.
    assert (table.double() - paper_table(seq_len, d_model, base)).abs().max() <= 2.0**-25


@pytest.mark.parametrize("call", [lambda: sinusoidal_encoding(0, 8), lambda: sinusoidal_encoding(4, 7),
                                  lambda: sinusoidal_encoding(4, 0), lambda: rope_cos_sin(torch.arange(3), 5),
                                  lambda: rope_cos_sin(torch.arange(3), 0)])
def test_bad_sizes_raise_value_error(call):
    with pytest.raises(ValueError):
        call()
