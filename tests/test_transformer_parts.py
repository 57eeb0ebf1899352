"""The multi_head_attention and transformer_layer references against the torch modules they mirror.

MultiHeadAttention.from_torch against nn.MultiheadAttention, EncoderLayer.from_torch and
DecoderLayer.from_torch against nn.TransformerEncoderLayer and nn.TransformerDecoderLayer, in eval
mode (torch's layers also drop attention weights in training), on float64 so that any difference
in the math shows. Every tensor is randomised first: torch initialises biases to zero and norms to
ones and zeros, which would hide a bias left out or two norms swapped.
"""

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from reference.multi_head_attention import MultiHeadAttention
from reference.transformer_layer import DecoderLayer, EncoderLayer

f64 = torch.float64
B, L, S, D_MODEL, N_HEADS, D_FF = 3, 4, 6, 12, 3, 20


def randomised(module, seed=0):
    """module with every parameter redrawn: weights around 0 (norm weights around 1), biases nonzero."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in module.named_parameters():
            shift = 1.0 if ".norm" in f".{name}" and name.endswith("weight") else 0.0
            scale = p.shape[-1] ** -0.5 if p.ndim == 2 else 0.3
            p.copy_(torch.randn(p.shape, generator=g, dtype=p.dtype) * scale + shift)
    return module.eval()


def inputs(*shape, seed=1):
    return torch.randn(shape, generator=torch.Generator().manual_seed(seed), dtype=f64)


def padding_mask(B, S):
    """(B, S), True = a real token: sequence 0 is full, the others end early."""
    lengths = torch.tensor([S] + [S - 1 - i % (S - 1) for i in range(B - 1)])
    return torch.arange(S)[None, :] < lengths[:, None]


def torch_mha(bias=True):
    return randomised(nn.MultiheadAttention(D_MODEL, N_HEADS, bias=bias, batch_first=True, dtype=f64))


# (name, this kata's mask, torch's keyword arguments for the same thing); torch's bool masks mean
# True = blocked, and a per-sequence attn_mask is (B * n_heads, L, S), sequence-major.
def mask_cases():
    g = torch.Generator().manual_seed(2)
    shared = torch.rand(L, S, generator=g) < 0.6
    shared[:, 0] = True
    per_batch = torch.rand(B, 1, L, S, generator=g) < 0.6
    per_batch[..., 0] = True
    pad = padding_mask(B, S)
    return [
        ("none", None, {}),
        ("shared", shared, {"attn_mask": ~shared}),
        ("per_batch", per_batch, {"attn_mask": (~per_batch).expand(B, N_HEADS, L, S).reshape(B * N_HEADS, L, S)}),
        ("padding", pad[:, None, None, :], {"key_padding_mask": ~pad}),
    ]


@pytest.mark.parametrize("bias", [True, False])
@pytest.mark.parametrize("name, mask, theirs", mask_cases(), ids=[c[0] for c in mask_cases()])
def test_multi_head_attention_is_torchs(bias, name, mask, theirs):
    mha = torch_mha(bias)
    ours = MultiHeadAttention.from_torch(mha)
    query, key, value = inputs(B, L, D_MODEL, seed=3), inputs(B, S, D_MODEL, seed=4), inputs(B, S, D_MODEL, seed=5)
    want = mha(query, key, value, need_weights=False, **theirs)[0]
    torch.testing.assert_close(ours(query, key, value, mask), want, rtol=1e-10, atol=1e-12)


def test_multi_head_self_attention_is_torchs_fast_path():
    """Without gradients torch's eval-mode module takes its fused kernel; the answer is the same."""
    mha = torch_mha()
    ours = MultiHeadAttention.from_torch(mha)
    x = inputs(B, L, D_MODEL)
    with torch.no_grad():
        torch.testing.assert_close(ours(x, x, x), mha(x, x, x, need_weights=False)[0], rtol=1e-10, atol=1e-12)


def test_multi_head_attention_from_torch_keeps_dtype_and_mode_and_owns_its_tensors():
    mha = torch_mha()
    ours = MultiHeadAttention.from_torch(mha)
    assert not ours.training and MultiHeadAttention.from_torch(mha.train()).training
    assert {p.dtype for p in ours.parameters()} == {f64}
    x = inputs(B, L, D_MODEL)
    before = ours(x, x, x)
    with torch.no_grad():
        for p in mha.parameters():
            p.add_(1.0)
    assert torch.equal(ours(x, x, x), before)


def torch_layer(cls, norm_first, activation, eps=1e-3):
    layer = cls(D_MODEL, N_HEADS, D_FF, dropout=0.1, activation=activation, layer_norm_eps=eps,
                batch_first=True, norm_first=norm_first, dtype=f64)
    return randomised(layer)


ACTIVATIONS = ["gelu", "relu", F.gelu, F.relu]
OPTIONS = [pytest.param(norm_first, activation, id=f"{'pre' if norm_first else 'post'}-{getattr(activation, '__name__', activation)}")
           for norm_first in (False, True) for activation in ACTIVATIONS]


@pytest.mark.parametrize("norm_first, activation", OPTIONS)
@pytest.mark.parametrize("grad", [True, False], ids=["grad", "no_grad"])
def test_encoder_layer_is_torchs(norm_first, activation, grad):
    layer = torch_layer(nn.TransformerEncoderLayer, norm_first, activation)
    ours = EncoderLayer.from_torch(layer)
    x, pad = inputs(B, S, D_MODEL), padding_mask(B, S)
    with torch.set_grad_enabled(grad):  # without gradients torch takes its fused eval-mode kernel
        torch.testing.assert_close(ours(x, pad), layer(x, src_key_padding_mask=~pad), rtol=1e-10, atol=1e-12)
        torch.testing.assert_close(ours(x), layer(x), rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("norm_first, activation", OPTIONS)
def test_decoder_layer_is_torchs(norm_first, activation):
    layer = torch_layer(nn.TransformerDecoderLayer, norm_first, activation)
    ours = DecoderLayer.from_torch(layer)
    x, memory, pad = inputs(B, L, D_MODEL, seed=6), inputs(B, S, D_MODEL, seed=7), padding_mask(B, S)
    causal = ~torch.ones(L, L, dtype=torch.bool).tril()  # torch: True = blocked
    want = layer(x, memory, tgt_mask=causal, memory_key_padding_mask=~pad)
    torch.testing.assert_close(ours(x, memory, pad), want, rtol=1e-10, atol=1e-12)
    torch.testing.assert_close(ours(x, memory), layer(x, memory, tgt_mask=causal), rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("cls, ours", [(nn.TransformerEncoderLayer, EncoderLayer), (nn.TransformerDecoderLayer, DecoderLayer)])
def test_layer_from_torch_keeps_options_dtype_and_mode_and_owns_its_tensors(cls, ours):
    layer = torch_layer(cls, True, "relu", eps=0.05)
    new = ours.from_torch(layer)
    assert not new.training and ours.from_torch(layer.train()).training
    assert {p.dtype for p in new.parameters()} == {f64}
    assert new.norm_first and new.norm1.eps == 0.05 and new.dropout1.p == 0.1
    theirs = {t.untyped_storage().data_ptr() for t in layer.state_dict().values()}
    assert not any(t.untyped_storage().data_ptr() in theirs for t in new.state_dict().values())


@pytest.mark.parametrize("cls, ours", [(nn.TransformerEncoderLayer, EncoderLayer), (nn.TransformerDecoderLayer, DecoderLayer)])
@pytest.mark.parametrize("activation", [F.silu, lambda x: F.gelu(x, approximate="tanh")], ids=["silu", "tanh_gelu"])
def test_layer_from_torch_refuses_other_activations(cls, ours, activation):
    with pytest.raises(ValueError):
        ours.from_torch(torch_layer(cls, False, activation))
