"""Catalogue for the lora kata: common mistakes and correct variants.

Each mistake replaces LoRALinear or apply_lora. A replaced LoRALinear subclasses the
reference and changes one method; a replaced apply_lora still wraps with the reference's
LoRALinear.
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
          scaling=None, as_parameter=True):
    """The reference __init__ with one knob turned: each mistake below turns one."""
    nn.Module.__init__(self)
    if check_r and r < 1:
        raise ValueError(f"r must be >= 1, got {r}")
    self.base = base
    if freeze_weight:
        base.weight.requires_grad_(False)
    if freeze_bias and base.bias is not None:
        base.bias.requires_grad_(False)
    self.r = r
    self.alpha = alpha
    self.scaling = alpha / r if scaling is None else scaling
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
        _init(self, base, r, alpha, dropout, scaling=r / alpha)


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


def _apply(model, target_modules, r, alpha, dropout, *, matches, freeze="before", check=True):
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
        setattr(parent, attr, LoRALinear(getattr(parent, attr), r, alpha, dropout))
    if freeze == "after":
        for p in model.parameters():
            p.requires_grad_(False)
    return model


def _exact(name, m, t):
    return type(m) is nn.Linear and name.rpartition(".")[2] == t


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


MISTAKES = [
    mistake("scaling_inverted", "the scaling is r / alpha instead of alpha / r",
            LoRALinear=_ScalingInverted),
    mistake("no_scaling", "forward adds the LoRA branch without multiplying it by scaling = alpha / r",
            LoRALinear=_NoScaling),
    mistake("a_zero_b_random",
            "lora_A starts at zero and lora_B random: the roles are swapped (B is the zero one, "
            "so the layer starts as the base while A still gets gradients)",
            LoRALinear=_AZeroBRandom),
    mistake("a_gaussian",
            "lora_A is drawn from a standard normal instead of kaiming_uniform_(a=sqrt(5)), so its "
            "entries are far larger than 1/sqrt(in_features)",
            LoRALinear=_AGaussian),
    mistake("kaiming_default_a",
            "kaiming_uniform_ is called without a=sqrt(5), so lora_A is drawn from +-sqrt(6/in_features) "
            "instead of +-1/sqrt(in_features)",
            LoRALinear=_KaimingDefaultA),
    mistake("factors_transposed",
            "lora_A is stored as (in_features, r) and lora_B as (r, out_features) instead of "
            "(r, in_features) and (out_features, r)",
            LoRALinear=_FactorsTransposed),
    mistake("ignores_base_dtype",
            "lora_A and lora_B are created in the default dtype instead of the base layer's dtype and device",
            LoRALinear=_IgnoresBaseDtype),
    mistake("plain_tensors",
            "lora_A and lora_B are plain tensors, not nn.Parameters, so the module does not register "
            "them and no optimizer sees them",
            LoRALinear=_PlainTensors),
    mistake("base_not_frozen", "the base layer is not frozen: its weight and bias still require grad",
            LoRALinear=_BaseNotFrozen),
    mistake("bias_not_frozen", "only base.weight is frozen; base.bias still requires grad",
            LoRALinear=_BiasNotFrozen),
    mistake("no_rank_check", "r < 1 does not raise ValueError", LoRALinear=_NoRankCheck),
    mistake("delta_not_transposed",
            "forward multiplies x by lora_B @ lora_A instead of its transpose, which only fits "
            "when in_features == out_features",
            LoRALinear=_DeltaNotTransposed),
    mistake("dropout_on_output",
            "dropout is applied to the whole output, so the frozen base path is dropped too",
            LoRALinear=_DropoutOnOutput),
    mistake("dropout_before_base",
            "x goes through dropout before both paths, so the base layer sees dropped inputs",
            LoRALinear=_DropoutBeforeBase),
    mistake("dropout_after_lora",
            "dropout is applied to the LoRA branch's output instead of its input x",
            LoRALinear=_DropoutAfterLora),
    mistake("no_dropout", "forward never applies self.dropout", LoRALinear=_NoDropout),
    mistake("dropout_in_eval",
            "F.dropout is called without training=self.training, so it keeps dropping inputs in eval mode",
            LoRALinear=_DropoutInEval),
    mistake("forward_drops_bias", "forward computes x @ base.weight.T and forgets base.bias",
            LoRALinear=_ForwardDropsBias),
    mistake("merge_in_place",
            "merge adds the update into self.base.weight in place and returns self.base, so the "
            "LoRA module changes (and now counts its update twice)",
            LoRALinear=_MergeInPlace),
    mistake("merge_no_scaling", "merge adds lora_B @ lora_A without multiplying it by scaling",
            LoRALinear=_MergeNoScaling),
    mistake("merge_shares_bias",
            "the merged Linear reuses the base's bias Parameter instead of a copy, so the two layers "
            "are not independent",
            LoRALinear=_MergeSharesBias),
    mistake("merge_always_bias",
            "merge builds nn.Linear(in, out) with a bias even when the base has none, leaving a random bias",
            LoRALinear=_MergeAlwaysBias),
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


class _DeltaWeightStateDict(LoRALinear):
    def _delta(self) -> Tensor:
        return self.scaling * (self.lora_B @ self.lora_A)  # (out, in)

    def forward(self, x: Tensor) -> Tensor:
        return self.base(x) + F.linear(self.dropout(x), self._delta())

    def merge(self) -> nn.Linear:
        base = self.base
        merged = nn.Linear(base.in_features, base.out_features, bias=base.bias is not None,
                           device=base.weight.device, dtype=base.weight.dtype)
        state = {k: v.detach().clone() for k, v in base.state_dict().items()}
        state["weight"] = state["weight"] + self._delta().detach()
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
    variant("f_linear", "computes both paths with torch.nn.functional.linear", LoRALinear=_FLinear),
    variant("einsum_addmm",
            "computes the LoRA branch with torch.einsum and the merged weight with torch.addmm",
            LoRALinear=_EinsumAddmm),
    variant("delta_weight_state_dict",
            "forms the (out, in) update scaling * B @ A, applies it with F.linear, and merges by "
            "loading a state dict into a fresh nn.Linear",
            LoRALinear=_DeltaWeightStateDict),
    variant("deepcopy_merge", "merges into a deep copy of the base layer", LoRALinear=_DeepcopyMerge),
    variant("apply_recursive",
            "walks named_children recursively and freezes with model.requires_grad_(False)",
            apply_lora=_apply_recursive),
]
