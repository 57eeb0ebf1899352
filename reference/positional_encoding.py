"""Reference solution: sinusoidal positional encoding and rotary position embedding (RoPE)."""

import torch
from torch import Tensor


def sinusoidal_encoding(seq_len: int, d_model: int, base: float = 10000.0) -> Tensor:
    if seq_len < 1:
        raise ValueError(f"seq_len must be at least 1, got {seq_len}")
    if d_model < 2 or d_model % 2:
        raise ValueError(f"d_model must be even and at least 2, got {d_model}")
    # float64 keeps the angle exact to far below float32's resolution at every position.
    position = torch.arange(seq_len, dtype=torch.float64)[:, None]  # (T, 1)
    two_i = torch.arange(0, d_model, 2, dtype=torch.float64)  # (d/2,): 0, 2, 4, ...
    angle = position / base ** (two_i / d_model)  # (T, d/2): one frequency per pair
    pe = torch.empty(seq_len, d_model, dtype=torch.float64)
    pe[:, 0::2] = torch.sin(angle)  # even features: sin
    pe[:, 1::2] = torch.cos(angle)  # odd features: cos of the same angle
    return pe.float()


def rope_cos_sin(positions: Tensor, head_dim: int, base: float = 10000.0) -> tuple[Tensor, Tensor]:
    if head_dim < 2 or head_dim % 2:
        raise ValueError(f"head_dim must be even and at least 2, got {head_dim}")
    # Hugging Face's Llama computes exactly this in float32; pretrained checkpoints were run with it.
    inv_freq = 1.0 / base ** (torch.arange(0, head_dim, 2, device=positions.device).float() / head_dim)  # (D/2,)
    angles = positions.float()[:, None] * inv_freq[None, :]  # (T, D/2)
    # Rotate-half layout: feature j and feature j + D/2 share frequency j.
    angles = torch.cat((angles, angles), dim=-1)  # (T, D)
    return angles.cos(), angles.sin()


def _rotate_half(x: Tensor) -> Tensor:
    half = x.shape[-1] // 2
    return torch.cat((-x[..., half:], x[..., :half]), dim=-1)


def apply_rope(x: Tensor, cos: Tensor, sin: Tensor) -> Tensor:
    # Casting first keeps a bfloat16 x in bfloat16; float32 tables would promote the result.
    cos, sin = cos.to(x.dtype), sin.to(x.dtype)
    return x * cos + _rotate_half(x) * sin
