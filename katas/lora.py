"""Kata: LoRA, fine-tuning a big layer by training a small low-rank correction beside it.

Fine-tuning every weight of a large model costs, per task, a full copy of the weights, their
gradients and the optimizer's state. LoRA (Hu et al. 2021, "LoRA: Low-Rank Adaptation of Large
Language Models", https://arxiv.org/abs/2106.09685) observes that the change a fine-tune makes
to a weight matrix has a low "intrinsic rank". So it freezes the pretrained weight W0 and learns
the change as the product of two thin matrices.

The math
--------
    W = W0 + (alpha / r) * B @ A

    W0   (out, in)   the pretrained nn.Linear's weight, frozen (requires_grad False); its bias too
    A    (r, in)     lora_A: projects the input down to r dimensions
    B    (out, r)    lora_B: projects it back up to out dimensions
    r                the rank, r << min(in, out). For a 4096 x 4096 layer and r = 8 that is
                     2 * 4096 * 8 = 65k trainable numbers instead of 16.7M.
    alpha / r        `scaling`. With alpha fixed, changing r barely changes the size of the
                     update, so a learning rate tuned for one r mostly carries over to another.

Shapes
------
A layer maps x (..., in) to (..., out). Forward never forms the (out, in) matrix B @ A (the grader
watches the shapes of the tensors it computes); it goes through the rank-r bottleneck, which is
cheaper when r is small:

    h = base(x) + (dropout(x) @ A.T @ B.T) * scaling
        base(x)            (..., out)   x @ W0.T + b0: exactly the pretrained layer
        dropout(x) @ A.T   (..., r)
        ... @ B.T          (..., out)

Dropout regularises the adapter only: it is applied to the LoRA branch's input, and the base path
always sees the clean x. (The base is not being trained; dropping its inputs, or its output, would
only add noise to a layer that already works.)

Initialisation
--------------
As in Hugging Face peft (src/peft/tuners/lora/layer.py, reset_lora_parameters):
- B = 0, so at step 0 the adapted layer is exactly the pretrained one: fine-tuning starts from the
  model you had, not from a perturbed one.
- nn.init.kaiming_uniform_(A, a=math.sqrt(5)): the init nn.Linear gives its own weight, uniform in
  +-1/sqrt(in). A must not be zero as well: the gradient of B is scaling * grad_h^T (x A^T), zero
  while A is zero, and the gradient of A is zero while B is. With both zero nothing would move.
- A and B take the base weight's dtype and device: a float64 (or CUDA) layer gets float64 (or
  CUDA) adapters.

Merging
-------
After training, W0 + scaling * B @ A is just another (out, in) matrix. Folded into a plain
nn.Linear, the fine-tuned layer costs at inference exactly what the base layer cost. `merge`
returns such a layer as a NEW module with tensors of its own (a copy of the bias too), in the base
weight's dtype and on its device, and leaves the LoRA module as it was, so you can keep training
it, or merge again.

Applying LoRA to a model
------------------------
Layers are picked by attribute name, like peft's `target_modules` (["q_proj", "v_proj"] in a
Llama). `apply_lora` walks model.named_modules(); every module whose type is exactly nn.Linear
(a subclass may have a forward of its own, so it is left alone) and whose attribute name, the
last part of its qualified name ("blocks.0.attn.q_proj" -> "q_proj"), is in the list is replaced,
on its parent, by a LoRALinear wrapping it. Every other parameter of the model is frozen, so only
the adapters train. A target that names no nn.Linear is almost always a typo: raise ValueError
rather than silently train nothing.

    model = apply_lora(model, ["q_proj", "v_proj"], r=8, alpha=16)
    opt = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-3)

Useful: nn.Parameter, nn.init.kaiming_uniform_, nn.init.zeros_, nn.Dropout, Tensor.requires_grad_,
torch.no_grad, nn.Module.named_modules, nn.Module.get_submodule, setattr.

Run `kata check lora` (or `pytest graders/test_lora.py`) to see how you are doing, and
`kata hint lora` when stuck.
"""

import math

import torch
from torch import Tensor, nn


class LoRALinear(nn.Module):
    """A frozen nn.Linear plus a trainable low-rank update: base(x) + scaling * B A dropout(x)."""

    def __init__(self, base: nn.Linear, r: int, alpha: float, dropout: float = 0.0):
        """Wrap `base` (kept as self.base, not copied) and freeze its weight and bias.

        Sets:
            self.base     the given nn.Linear, weight and bias with requires_grad False
            self.lora_A   nn.Parameter (r, in_features), kaiming_uniform_(a=math.sqrt(5))
            self.lora_B   nn.Parameter (out_features, r), zeros
                          (both in base.weight's dtype and on its device)
            self.scaling  alpha / r
            self.dropout  nn.Dropout(dropout), used on the LoRA branch's input only

        Raises ValueError if r < 1.
        """
        raise NotImplementedError("build the frozen base, lora_A, lora_B, scaling and dropout")

    def forward(self, x: Tensor) -> Tensor:
        """x (..., in_features) -> (..., out_features):
        base(x) + (dropout(x) @ lora_A.T @ lora_B.T) * scaling."""
        raise NotImplementedError("add the scaled low-rank branch to the base layer's output")

    def merge(self) -> nn.Linear:
        """A new, independent nn.Linear with weight base.weight + scaling * lora_B @ lora_A and a
        copy of base's bias (no bias if base has none), in base.weight's dtype and on its device.
        self is left unchanged."""
        raise NotImplementedError("fold scaling * lora_B @ lora_A into a copy of the base layer")


def apply_lora(
    model: nn.Module, target_modules: list[str], r: int, alpha: float, dropout: float = 0.0
) -> nn.Module:
    """Wrap, in place, every module of type exactly nn.Linear whose attribute name (the last part
    of its qualified name) is in target_modules in a LoRALinear(module, r, alpha, dropout); freeze
    every other parameter; return the model.

    Raises ValueError if a name in target_modules matches no nn.Linear.
    """
    raise NotImplementedError("replace the targeted nn.Linear modules and freeze everything else")
