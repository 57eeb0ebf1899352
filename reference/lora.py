"""Reference solution: LoRA, low-rank adaptation of a frozen nn.Linear."""

import math

import torch
from torch import Tensor, nn


class LoRALinear(nn.Module):
    def __init__(self, base: nn.Linear, r: int, alpha: float, dropout: float = 0.0):
        super().__init__()
        if r < 1:
            raise ValueError(f"r must be >= 1, got {r}")
        self.base = base
        # Only the adapter trains: the pretrained weight and bias stay exactly as they were.
        self.base.weight.requires_grad_(False)
        if self.base.bias is not None:
            self.base.bias.requires_grad_(False)
        self.scaling = alpha / r
        like = dict(dtype=base.weight.dtype, device=base.weight.device)
        self.lora_A = nn.Parameter(torch.empty(r, base.in_features, **like))
        # nn.Linear's own default: uniform in +-1/sqrt(in_features).
        nn.init.kaiming_uniform_(self.lora_A, a=math.sqrt(5))
        # B = 0 makes the adapted layer start as exactly the base layer.
        self.lora_B = nn.Parameter(torch.zeros(base.out_features, r, **like))
        self.dropout = nn.Dropout(dropout)

    def forward(self, x: Tensor) -> Tensor:
        # Two thin matmuls (in -> r -> out) instead of forming the (out, in) update.
        return self.base(x) + (self.dropout(x) @ self.lora_A.T @ self.lora_B.T) * self.scaling

    def merge(self) -> nn.Linear:
        base = self.base
        merged = nn.Linear(
            base.in_features,
            base.out_features,
            bias=base.bias is not None,
            device=base.weight.device,
            dtype=base.weight.dtype,
        )
        with torch.no_grad():
            merged.weight.copy_(base.weight + self.scaling * (self.lora_B @ self.lora_A))
            if base.bias is not None:
                merged.bias.copy_(base.bias)
        return merged


def apply_lora(
    model: nn.Module, target_modules: list[str], r: int, alpha: float, dropout: float = 0.0
) -> nn.Module:
    targets = set(target_modules)
    # Collect first: replacing children while named_modules() walks them would be unsafe,
    # and a bad target name must fail before the model is touched.
    hits = [
        name
        for name, module in model.named_modules()
        if type(module) is nn.Linear and name.rpartition(".")[2] in targets
    ]
    missing = targets - {name.rpartition(".")[2] for name in hits}
    if missing:
        raise ValueError(f"no nn.Linear named {sorted(missing)} in the model")
    for p in model.parameters():
        p.requires_grad_(False)
    for name in hits:
        parent_name, _, attr = name.rpartition(".")
        parent = model.get_submodule(parent_name)
        setattr(parent, attr, LoRALinear(getattr(parent, attr), r, alpha, dropout))
    return model
