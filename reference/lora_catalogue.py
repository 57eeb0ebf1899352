"""Catalogue for the lora kata: common mistakes and correct variants.

Each mistake replaces LoRALinear or apply_lora. A replaced LoRALinear subclasses the
reference and changes one method, and comes with an apply_lora that wraps with it, as a learner's
own apply_lora would; a replaced apply_lora wraps with the reference's LoRALinear.
"""

import copy
import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from reference import mistake, variant
from reference.lora import LoRALinear


# --- LoRALinear.__init__ mistakes ---------------------------------------------------------


def _init(self, base, r, alpha, dropout, *, a_init="kaiming", b_init="zeros", a_shape=None,
          b_shape=None, like=None, freeze_weight=True, freeze_bias=True, check_r=True,
          scaling=lambda alpha, r: alpha / r, as_parameter=True):
    """The reference __init__ with one knob turned: each mistake below turns one."""
    nn.Module.__init__(self)
    if check_r and r < 1:
        raise ValueError(f"r must be >= 1, got {r}")
    self.base = base
    if freeze_weight:
        base.weight.requires_grad_(False)
    if freeze_bias and base.bias is not None:
        base.bias.requires_grad_(False)
    self.scaling = scaling(alpha, r)
    if like is None:
        like = dict(dtype=base.weight.dtype, device=base.weight.device)
    A = torch.empty(a_shape or (r, base.in_features), **like)
    B = torch.empty(b_shape or (base.out_features, r), **like)
    for t, how in ((A, a_init), (B, b_init)):
        if how == "kaiming":
            nn.init.kaiming_uniform_(t, a=math.sqrt(5))
        elif how == "kaiming_default":
            nn.init.kaiming_uniform_(t)
        elif how == "randn":
            nn.init.normal_(t)
        else:
            nn.init.zeros_(t)
    if as_parameter:
        self.lora_A = nn.Parameter(A)
        self.lora_B = nn.Parameter(B)
    else:
        self.lora_A = A.requires_grad_()
        self.lora_B = B.requires_grad_()
    self.dropout = nn.Dropout(dropout)


class _ScalingInverted(LoRALinear):
    def __init__(self, base, r, alpha, dropout=0.0):
        _init(self, base, r, alpha, dropout, scaling=lambda alpha, r: r / alpha)


class _ScalingFloorDivision(LoRALinear):
    def __init__(self, base, r, alpha, dropout=0.0):
        _init(self, base, r, alpha, dropout, scaling=lambda alpha, r: alpha // r)


class _ScalingSqrtR(LoRALinear):
    def __init__(self, base, r, alpha, dropout=0.0):
        _init(self, base, r, alpha, dropout, scaling=lambda alpha, r: alpha / math.sqrt(r))


class _AZeroBRandom(LoRALinear):
    def __init__(self, base, r, alpha, dropout=0.0):
        _init(self, base, r, alpha, dropout, a_init="zeros", b_init="kaiming")


class _AGaussian(LoRALinear):
    def __init__(self, base, r, alpha, dropout=0.0):
        _init(self, base, r, alpha, dropout, a_init="randn")


class _KaimingDefaultA(LoRALinear):
    def __init__(self, base, r, alpha, dropout=0.0):
        _init(self, base, r, alpha, dropout, a_init="kaiming_default")


class _FactorsTransposed(LoRALinear):
    def __init__(self, base, r, alpha, dropout=0.0):
        _init(self, base, r, alpha, dropout,
              a_shape=(base.in_features, r), b_shape=(r, base.out_features))

    def forward(self, x):
        return self.base(x) + (self.dropout(x) @ self.lora_A @ self.lora_B) * self.scaling

    def merge(self):
        merged = copy.deepcopy(self.base)
        with torch.no_grad():
            merged.weight += self.scaling * (self.lora_A @ self.lora_B).T
        return merged


class _IgnoresBaseDtype(LoRALinear):
    def __init__(self, base, r, alpha, dropout=0.0):
        _init(self, base, r, alpha, dropout, like={})


class _PlainTensors(LoRALinear):
    def __init__(self, base, r, alpha, dropout=0.0):
        _init(self, base, r, alpha, dropout, as_parameter=False)


class _BaseNotFrozen(LoRALinear):
    def __init__(self, base, r, alpha, dropout=0.0):
        _init(self, base, r, alpha, dropout, freeze_weight=False, freeze_bias=False)


class _BiasNotFrozen(LoRALinear):
    def __init__(self, base, r, alpha, dropout=0.0):
        _init(self, base, r, alpha, dropout, freeze_bias=False)


class _NoRankCheck(LoRALinear):
    def __init__(self, base, r, alpha, dropout=0.0):
        _init(self, base, r, alpha, dropout, check_r=False)


# --- LoRALinear.forward mistakes ----------------------------------------------------------


class _NoScaling(LoRALinear):
    def forward(self, x):
        return self.base(x) + self.dropout(x) @ self.lora_A.T @ self.lora_B.T


class _DeltaNotTransposed(LoRALinear):
    def forward(self, x):
        return self.base(x) + (self.dropout(x) @ (self.lora_B @ self.lora_A)) * self.scaling


class _ForwardFormsDelta(LoRALinear):
    def forward(self, x):
        return self.base(x) + self.dropout(x) @ (self.scaling * self.lora_B @ self.lora_A).T


class _DropoutOnOutput(LoRALinear):
    def forward(self, x):
        return self.dropout(self.base(x) + (x @ self.lora_A.T @ self.lora_B.T) * self.scaling)


class _DropoutBeforeBase(LoRALinear):
    def forward(self, x):
        x = self.dropout(x)
        return self.base(x) + (x @ self.lora_A.T @ self.lora_B.T) * self.scaling


class _DropoutAfterLora(LoRALinear):
    def forward(self, x):
        return self.base(x) + self.dropout(x @ self.lora_A.T @ self.lora_B.T) * self.scaling


class _NoDropout(LoRALinear):
    def forward(self, x):
        return self.base(x) + (x @ self.lora_A.T @ self.lora_B.T) * self.scaling


class _DropoutInEval(LoRALinear):
    def forward(self, x):
        h = F.dropout(x, self.dropout.p)  # training defaults to True: still dropping in eval()
        return self.base(x) + (h @ self.lora_A.T @ self.lora_B.T) * self.scaling


class _ForwardDropsBias(LoRALinear):
    def forward(self, x):
        return x @ self.base.weight.T + (self.dropout(x) @ self.lora_A.T @ self.lora_B.T) * self.scaling


# --- LoRALinear.merge mistakes ------------------------------------------------------------


class _MergeInPlace(LoRALinear):
    def merge(self):
        with torch.no_grad():
            self.base.weight += self.scaling * (self.lora_B @ self.lora_A)
        return self.base


class _MergeNoScaling(LoRALinear):
    def merge(self):
        merged = copy.deepcopy(self.base)
        with torch.no_grad():
            merged.weight += self.lora_B @ self.lora_A
        return merged


class _MergeSharesBias(LoRALinear):
    def merge(self):
        base = self.base
        merged = nn.Linear(base.in_features, base.out_features, bias=False,
                           device=base.weight.device, dtype=base.weight.dtype)
        with torch.no_grad():
            merged.weight.copy_(base.weight + self.scaling * (self.lora_B @ self.lora_A))
        merged.bias = base.bias
        return merged


class _MergeDefaultDtype(LoRALinear):
    def merge(self):
        base = self.base
        merged = nn.Linear(base.in_features, base.out_features, bias=base.bias is not None)
        with torch.no_grad():
            merged.weight.copy_(base.weight + self.scaling * (self.lora_B @ self.lora_A))
            if base.bias is not None:
                merged.bias.copy_(base.bias)
        return merged


class _MergeAlwaysBias(LoRALinear):
    def merge(self):
        base = self.base
        merged = nn.Linear(base.in_features, base.out_features,
                           device=base.weight.device, dtype=base.weight.dtype)
        with torch.no_grad():
            merged.weight.copy_(base.weight + self.scaling * (self.lora_B @ self.lora_A))
            if base.bias is not None:
                merged.bias.copy_(base.bias)
        return merged


# --- apply_lora mistakes ------------------------------------------------------------------


def _apply(model, target_modules, r, alpha, dropout, *, matches, freeze="before", check=True, pass_dropout=True,
           wrap=LoRALinear):
    """The reference apply_lora with one knob turned: each mistake below turns one."""
    targets = set(target_modules)
    hits = [(name, t) for name, m in model.named_modules() for t in targets if matches(name, m, t)]
    if check and targets - {t for _, t in hits}:
        raise ValueError(f"no nn.Linear named {sorted(targets - {t for _, t in hits})}")
    if freeze == "before":
        for p in model.parameters():
            p.requires_grad_(False)
    for name in dict.fromkeys(name for name, _ in hits):
        parent_name, _, attr = name.rpartition(".")
        parent = model.get_submodule(parent_name)
        extra = (dropout,) if pass_dropout else ()
        setattr(parent, attr, wrap(getattr(parent, attr), r, alpha, *extra))
    if freeze == "after":
        for p in model.parameters():
            p.requires_grad_(False)
    return model


def _exact(name, m, t):
    return type(m) is nn.Linear and name.rpartition(".")[2] == t


def _own(cls) -> dict:
    """A LoRALinear and the reference's apply_lora wrapping with it: a learner's apply_lora uses
    the learner's own LoRALinear."""
    def apply_lora(model, target_modules, r, alpha, dropout=0.0):
        return _apply(model, target_modules, r, alpha, dropout, matches=_exact, wrap=cls)
    return dict(LoRALinear=cls, apply_lora=apply_lora)


def _apply_substring(model, target_modules, r, alpha, dropout=0.0):
    return _apply(model, target_modules, r, alpha, dropout,
                  matches=lambda name, m, t: type(m) is nn.Linear and t in name)


def _apply_isinstance(model, target_modules, r, alpha, dropout=0.0):
    return _apply(model, target_modules, r, alpha, dropout,
                  matches=lambda name, m, t: isinstance(m, nn.Linear) and name.rpartition(".")[2] == t)


def _apply_full_name(model, target_modules, r, alpha, dropout=0.0):
    return _apply(model, target_modules, r, alpha, dropout,
                  matches=lambda name, m, t: type(m) is nn.Linear and name == t)


def _apply_no_freeze(model, target_modules, r, alpha, dropout=0.0):
    return _apply(model, target_modules, r, alpha, dropout, matches=_exact, freeze=None)


def _apply_freezes_lora(model, target_modules, r, alpha, dropout=0.0):
    return _apply(model, target_modules, r, alpha, dropout, matches=_exact, freeze="after")


def _apply_silent_missing(model, target_modules, r, alpha, dropout=0.0):
    return _apply(model, target_modules, r, alpha, dropout, matches=_exact, check=False)


def _apply_drops_dropout(model, target_modules, r, alpha, dropout=0.0):
    return _apply(model, target_modules, r, alpha, dropout, matches=_exact, pass_dropout=False)


MISTAKES = [
    mistake("scaling_inverted", "the scaling is r / alpha instead of alpha / r",
            **_own(_ScalingInverted)),
    mistake("scaling_floor_division",
            "the scaling is alpha // r, a floor division, instead of alpha / r: it is wrong whenever r "
            "does not divide alpha", **_own(_ScalingFloorDivision)),
    mistake("scaling_sqrt_r",
            "the scaling is alpha / sqrt(r), rsLoRA's, instead of LoRA's alpha / r", **_own(_ScalingSqrtR)),
    mistake("no_scaling", "forward adds the LoRA branch without multiplying it by scaling = alpha / r",
            **_own(_NoScaling)),
    mistake("a_zero_b_random",
            "lora_A starts at zero and lora_B random: the roles are swapped (B is the zero one, "
            "so the layer starts as the base while A still gets gradients)",
            **_own(_AZeroBRandom)),
    mistake("a_gaussian",
            "lora_A is drawn from a standard normal instead of kaiming_uniform_(a=sqrt(5)), so its "
            "entries are far larger than 1/sqrt(in_features)",
            **_own(_AGaussian)),
    mistake("kaiming_default_a",
            "kaiming_uniform_ is called without a=sqrt(5), so lora_A is drawn from +-sqrt(6/in_features) "
            "instead of +-1/sqrt(in_features)",
            **_own(_KaimingDefaultA)),
    mistake("factors_transposed",
            "lora_A is stored as (in_features, r) and lora_B as (r, out_features) instead of "
            "(r, in_features) and (out_features, r)",
            **_own(_FactorsTransposed)),
    mistake("ignores_base_dtype",
            "lora_A and lora_B are created in the default dtype instead of the base layer's dtype and device",
            **_own(_IgnoresBaseDtype)),
    mistake("plain_tensors",
            "lora_A and lora_B are plain tensors, not nn.Parameters, so the module does not register "
            "them and no optimizer sees them",
            **_own(_PlainTensors)),
    mistake("base_not_frozen", "the base layer is not frozen: its weight and bias still require grad",
            **_own(_BaseNotFrozen)),
    mistake("bias_not_frozen", "only base.weight is frozen; base.bias still requires grad",
            **_own(_BiasNotFrozen)),
    mistake("no_rank_check", "r < 1 does not raise ValueError", **_own(_NoRankCheck)),
    mistake("delta_not_transposed",
            "forward multiplies x by lora_B @ lora_A instead of its transpose, which only fits "
            "when in_features == out_features",
            **_own(_DeltaNotTransposed)),
    mistake("forward_forms_delta",
            "forward forms the (out, in) matrix scaling * lora_B @ lora_A and multiplies x by it, instead of "
            "going through the rank-r bottleneck (x @ lora_A.T, then @ lora_B.T), which is what makes LoRA "
            "cheap when r is small",
            **_own(_ForwardFormsDelta)),
    mistake("dropout_on_output",
            "dropout is applied to the whole output, so the frozen base path is dropped too",
            **_own(_DropoutOnOutput)),
    mistake("dropout_before_base",
            "x goes through dropout before both paths, so the base layer sees dropped inputs",
            **_own(_DropoutBeforeBase)),
    mistake("dropout_after_lora",
            "dropout is applied to the LoRA branch's output instead of its input x",
            **_own(_DropoutAfterLora)),
    mistake("no_dropout", "forward never applies self.dropout", **_own(_NoDropout)),
    mistake("dropout_in_eval",
            "F.dropout is called without training=self.training, so it keeps dropping inputs in eval mode",
            **_own(_DropoutInEval)),
    mistake("forward_drops_bias", "forward computes x @ base.weight.T and forgets base.bias",
            **_own(_ForwardDropsBias)),
    mistake("merge_in_place",
            "merge adds the update into self.base.weight in place and returns self.base, so the "
            "LoRA module changes (and now counts its update twice)",
            **_own(_MergeInPlace)),
    mistake("merge_no_scaling", "merge adds lora_B @ lora_A without multiplying it by scaling",
            **_own(_MergeNoScaling)),
    mistake("merge_shares_bias",
            "the merged Linear reuses the base's bias Parameter instead of a copy, so the two layers "
            "are not independent",
            **_own(_MergeSharesBias)),
    mistake("merge_default_dtype",
            "merge builds its nn.Linear in the default dtype and device instead of base.weight's, so a "
            "float64 (or CUDA) layer merges into a float32 CPU one",
            **_own(_MergeDefaultDtype)),
    mistake("merge_always_bias",
            "merge builds nn.Linear(in, out) with a bias even when the base has none, leaving a random bias",
            **_own(_MergeAlwaysBias)),
    mistake("apply_substring_match",
            "apply_lora wraps a Linear when a target is a substring of its name (so 'proj' also wraps "
            "'c_proj') instead of comparing the attribute name exactly",
            apply_lora=_apply_substring),
    mistake("apply_isinstance",
            "apply_lora tests isinstance(module, nn.Linear), so subclasses of nn.Linear are wrapped too",
            apply_lora=_apply_isinstance),
    mistake("apply_full_name",
            "apply_lora compares the full qualified name (e.g. 'blocks.0.attn.q') with the targets "
            "instead of its last part",
            apply_lora=_apply_full_name),
    mistake("apply_no_freeze",
            "apply_lora leaves the parameters outside the adapters trainable",
            apply_lora=_apply_no_freeze),
    mistake("apply_freezes_lora",
            "apply_lora freezes every parameter after wrapping, so lora_A and lora_B are frozen too",
            apply_lora=_apply_freezes_lora),
    mistake("apply_silent_missing",
            "a target name that matches no nn.Linear is silently ignored instead of raising ValueError",
            apply_lora=_apply_silent_missing),
    mistake("apply_drops_dropout",
            "apply_lora does not pass dropout on to LoRALinear, so the wrapped layers never drop anything",
            apply_lora=_apply_drops_dropout),
]


# --- variants -----------------------------------------------------------------------------


class _FLinear(LoRALinear):
    def forward(self, x: Tensor) -> Tensor:
        h = F.linear(self.dropout(x), self.lora_A)  # (..., r)
        return F.linear(x, self.base.weight, self.base.bias) + self.scaling * F.linear(h, self.lora_B)


class _EinsumAddmm(LoRALinear):
    def forward(self, x: Tensor) -> Tensor:
        h = torch.einsum("...i,ri->...r", F.dropout(x, self.dropout.p, self.training), self.lora_A)
        return self.base(x) + self.scaling * torch.einsum("...r,or->...o", h, self.lora_B)

    def merge(self) -> nn.Linear:
        base = self.base
        merged = nn.Linear(base.in_features, base.out_features, bias=base.bias is not None,
                           device=base.weight.device, dtype=base.weight.dtype)
        with torch.no_grad():
            torch.addmm(base.weight, self.lora_B, self.lora_A, alpha=self.scaling, out=merged.weight)
            if base.bias is not None:
                merged.bias.copy_(base.bias)
        return merged


class _StateDictMerge(LoRALinear):
    def merge(self) -> nn.Linear:
        base = self.base
        merged = nn.Linear(base.in_features, base.out_features, bias=base.bias is not None,
                           device=base.weight.device, dtype=base.weight.dtype)
        state = {k: v.detach().clone() for k, v in base.state_dict().items()}
        state["weight"] = state["weight"] + self.scaling * (self.lora_B @ self.lora_A).detach()
        merged.load_state_dict(state)
        return merged


class _DeepcopyMerge(LoRALinear):
    def merge(self) -> nn.Linear:
        merged = copy.deepcopy(self.base)
        with torch.no_grad():
            merged.weight.add_(self.lora_B @ self.lora_A, alpha=self.scaling)
        return merged


def _apply_recursive(model, target_modules, r, alpha, dropout=0.0):
    targets = set(target_modules)
    sites = []  # (parent, attribute name)

    def walk(parent):
        for attr, child in parent.named_children():
            if type(child) is nn.Linear and attr in targets:
                sites.append((parent, attr))
            else:
                walk(child)

    walk(model)
    found = {attr for _, attr in sites}
    if found != targets:
        raise ValueError(f"no nn.Linear named {sorted(targets - found)}")
    model.requires_grad_(False)
    for parent, attr in sites:
        setattr(parent, attr, LoRALinear(getattr(parent, attr), r, alpha, dropout))
    return model


VARIANTS = [
    variant("f_linear", "computes both paths with torch.nn.functional.linear", **_own(_FLinear)),
    variant("einsum_addmm",
            "computes the LoRA branch with torch.einsum and the merged weight with torch.addmm",
            **_own(_EinsumAddmm)),
    variant("state_dict_merge", "merges by loading a state dict into a fresh nn.Linear",
            **_own(_StateDictMerge)),
    variant("deepcopy_merge", "merges into a deep copy of the base layer", **_own(_DeepcopyMerge)),
    variant("apply_recursive",
            "walks named_children recursively and freezes with model.requires_grad_(False)",
            apply_lora=_apply_recursive),
]


# Mutants of the reference that no check can fail (graders/mutate.py), and why. A base layer on the
# meta device, which every machine has, would tell, but most arithmetic on meta tensors (a matmul,
# x * 2, normal_) imports torch._dynamo, which a sandbox cannot.
_DEVICE = ("the same on the CPU, the only device every machine has; on a GPU the {} would land on the CPU, "
           "which grading with --device cuda catches")
EQUIVALENT = {
    "LoRALinear.__init__:drop:14f2959f": _DEVICE.format("adapters"),
    "LoRALinear.merge:drop:47b86f08": _DEVICE.format("merged layer"),
}
