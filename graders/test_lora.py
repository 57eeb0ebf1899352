"""Grader for katas/lora.py: each Case is one check, learner against reference.

Inputs are plain tensors (the base weight and bias, lora_A, lora_B, x) and the hyperparameters r
and alpha; every call builds its own nn.Linear and LoRALinear from them, so nothing the learner's
code does to a module can leak into another check. lora_B is set to random values before outputs
are compared: with B = 0 every forward would equal the base layer's, right or wrong. The public
checks' alpha is not a multiple of r, so that alpha // r shows; the hidden ones draw r and alpha
from the instructor's seed.
"""

import math
from collections import OrderedDict

import torch
from torch import nn
from torch.utils._python_dispatch import TorchDispatchMode

from graders.harness import Case, cases, manual_seed

f64 = torch.float64
R, ALPHA = 4, 10.0  # scaling 2.5: alpha // r would give 2, r / alpha 0.4, alpha / sqrt(r) 5


def public(g):
    return R, ALPHA


def drawn(g):
    """(r, alpha) from the instructor's seed: r in 2..8 and an alpha that r does not divide."""
    r = int(g.randint(2, 9))
    alpha = int(g.randint(1, 4 * r + 1))
    return r, float(alpha + 1 if alpha % r == 0 else alpha)


def layer(IN=12, OUT=7, lead=(2, 3), bias=True, dtype=torch.float32, hyper=public):
    """(weight, bias, A, B, x, r, alpha): a base layer, adapter values, an input and the
    hyperparameters; in != out by default."""
    def make(g):
        r, alpha = hyper(g)
        W = g.randn(OUT, IN, dtype=dtype, scale=1 / math.sqrt(IN))
        b = g.randn(OUT, dtype=dtype, scale=0.5) if bias else None
        A = g.randn(r, IN, dtype=dtype, scale=1 / math.sqrt(IN))
        B = g.randn(OUT, r, dtype=dtype, scale=0.5 / math.sqrt(r))
        return W, b, A, B, g.randn(*lead, IN, dtype=dtype), r, alpha
    return make


def base_layer(**kw):
    """(weight, bias, r, alpha) only: for the checks of what __init__ builds."""
    make = layer(**kw)
    return lambda g: (lambda W, b, A, B, x, r, alpha: (W, b, r, alpha))(*make(g))


def build(m, W, b, r, alpha, A=None, B=None, dropout=None):
    """The learner's LoRALinear around a fresh nn.Linear holding W and b, with A and B loaded;
    without a dropout, LoRALinear's default is used."""
    base = nn.Linear(W.shape[1], W.shape[0], bias=b is not None, device=W.device, dtype=W.dtype)
    with torch.no_grad():
        base.weight.copy_(W)
        if b is not None:
            base.bias.copy_(b)
    lora = m.LoRALinear(base, r, alpha) if dropout is None else m.LoRALinear(base, r, alpha, dropout=dropout)
    with torch.no_grad():
        for param, value in ((lora.lora_A, A), (lora.lora_B, B)):
            if value is not None:
                # A transposed layout is reported by `init`; here it should not hide the math.
                param.copy_(value if param.shape == value.shape else value.T)
    return base, lora


# ------------------------------------------------------------------------------ construction


def init(m, W, b, r, alpha):
    manual_seed(0)
    _, lora = build(m, W, b, r, alpha)
    A, B = lora.lora_A.detach(), lora.lora_B.detach()
    # The largest |A| in units of 1/sqrt(in): of r * in uniform draws, one comes within 5% of the bound.
    units = A.abs().max().item() * math.sqrt(W.shape[1])
    if units == 0:
        spread = "all zero"
    elif units < 0.95:
        spread = "narrower than +-1/sqrt(in_features)"
    elif units <= 1.0001:
        spread = "within +-1/sqrt(in_features)"
    elif units <= math.sqrt(6) * 1.0001:
        spread = "within +-sqrt(6/in_features)"
    else:
        spread = "wider than +-sqrt(6/in_features)"
    return {"lora_A shape": tuple(A.shape), "lora_B shape": tuple(B.shape),
            "lora_B all zero": bool((B == 0).all()), "lora_A values": spread}


def scaling(m, W, b, r, alpha):
    return float(build(m, W, b, r, alpha)[1].scaling)


def frozen_base(m, W, b, r, alpha):
    base, lora = build(m, W, b, r, alpha)
    return {"self.base is the layer passed in": lora.base is base,
            "base.weight.requires_grad": base.weight.requires_grad,
            "base.bias.requires_grad": base.bias.requires_grad}


def trainable_parameters(m, W, b, r, alpha):
    _, lora = build(m, W, b, r, alpha)
    return {"parameters that require grad": sorted(n for n, p in lora.named_parameters() if p.requires_grad)}


def adapter_dtype_device(m, W, b, r, alpha):
    _, lora = build(m, W, b, r, alpha)
    return {name: f"{t.dtype} on {t.device.type}" for name, t in (("lora_A", lora.lora_A), ("lora_B", lora.lora_B))}


def bad_rank(bad):
    return lambda m, W, b, r, alpha: tuple(build(m, W, b, bad, alpha)[1].lora_B.shape)


# ----------------------------------------------------------------------------------- forward


def forward(m, W, b, A, B, x, r, alpha):
    _, lora = build(m, W, b, r, alpha, A, B)
    return lora.eval()(x)


class Computed(TorchDispatchMode):
    """The shapes of the tensors each ATen op computes; views compute nothing and are left out."""

    @classmethod
    def _should_skip_dynamo(cls):
        return False  # torch would otherwise wrap this mode for torch.compile, importing dynamo (~1 s)

    def __init__(self):
        super().__init__()
        self.shapes = set()

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        out = func(*args, **(kwargs or {}))
        if not func.is_view:
            for t in out if isinstance(out, (tuple, list)) else (out,):
                if isinstance(t, torch.Tensor):
                    self.shapes.add(tuple(t.shape[-2:]))
        return out


def forward_low_rank(m, W, b, A, B, x, r, alpha):
    """Forward goes through the rank-r bottleneck: no op in it computes a tensor of the weight's
    shape (the inputs are sized so that nothing else has that shape)."""
    _, lora = build(m, W, b, r, alpha, A, B)
    lora.eval()
    with Computed() as seen:
        lora(x)
    return {"forward computes an (out, in) or (in, out) tensor": bool(seen.shapes & {tuple(W.shape), tuple(W.T.shape)})}


def gradients(m, W, b, A, B, x, r, alpha):
    base, lora = build(m, W, b, r, alpha, A, B)
    upstream = torch.linspace(-1, 1, W.shape[0], dtype=x.dtype, device=x.device)
    (lora(x) * upstream).sum().backward()
    return lora.lora_A.grad, lora.lora_B.grad, {
        "base.weight.grad": "None" if base.weight.grad is None else "a tensor",
        "base.bias.grad": "None" if base.bias.grad is None else "a tensor"}


def train_mode(dropout):
    """LoRALinear(base, r, alpha[, dropout=...]) in train mode after torch.manual_seed(0): the same
    seed draws the same mask, so dropout must be drawn once, on x, for the LoRA branch only."""
    def call(m, W, b, A, B, x, r, alpha):
        _, lora = build(m, W, b, r, alpha, A, B, dropout=dropout)
        manual_seed(0)
        return lora.train()(x)
    return call


def dropout_base_path(m, W, b, A, B, x, r, alpha):
    """In training with dropout 0.5 and lora_B = 0, the layer must still be exactly the base layer."""
    return train_mode(0.5)(m, W, b, A, torch.zeros_like(B), x, r, alpha)


def dropout_eval(m, W, b, A, B, x, r, alpha):
    _, lora = build(m, W, b, r, alpha, A, B, dropout=0.5)
    manual_seed(0)
    return lora.eval()(x)


# ------------------------------------------------------------------------------------- merge


def merge_weights(m, W, b, A, B, x, r, alpha):
    merged = build(m, W, b, r, alpha, A, B)[1].merge()
    return merged.weight, merged.bias


def merge_matches_forward(m, W, b, A, B, x, r, alpha):
    return build(m, W, b, r, alpha, A, B)[1].eval().merge()(x)


def merge_leaves_module(m, W, b, A, B, x, r, alpha):
    """merge() must not change the LoRA module: its forward afterwards is what it was."""
    _, lora = build(m, W, b, r, alpha, A, B)
    lora.eval().merge()
    return lora(x)


def merge_independent(m, W, b, A, B, x, r, alpha):
    _, lora = build(m, W, b, r, alpha, A, B)
    merged = lora.merge()
    own = {t.untyped_storage().data_ptr() for t in lora.state_dict().values()}
    return {"a new nn.Linear": type(merged) is nn.Linear and merged is not lora.base,
            "shares a tensor with the LoRA module": any(
                t.untyped_storage().data_ptr() in own for t in merged.state_dict().values())}


def merge_no_bias(m, W, b, A, B, x, r, alpha):
    merged = build(m, W, None, r, alpha, A, B)[1].merge()
    return merged.weight, {"merged bias": "None" if merged.bias is None else "a tensor"}


# -------------------------------------------------------------------------------- apply_lora


class Tiny(nn.Module):
    """Two pre-norm blocks and a head: names that tell exact matching from its look-alikes."""

    class Head(nn.Linear):
        """A subclass of nn.Linear: never wrapped."""

    def __init__(self, device):
        super().__init__()
        self.blocks = nn.ModuleList()
        for _ in range(2):
            block = nn.Module()
            block.ln = nn.LayerNorm(8, device=device)
            block.attn = nn.Module()
            block.attn.q = nn.Linear(8, 8, device=device)
            block.attn.proj = nn.Linear(8, 8, device=device)
            block.mlp = nn.Module()
            block.mlp.fc = nn.Linear(8, 16, device=device)
            block.mlp.c_proj = nn.Linear(16, 8, device=device)
            self.blocks.append(block)
        self.out = nn.Module()
        self.out.proj = Tiny.Head(8, 8, device=device)
        self.head = Tiny.Head(8, 3, device=device)

    def forward(self, x):
        for block in self.blocks:
            h = block.ln(x)
            x = x + block.attn.proj(block.attn.q(h))
            x = x + block.mlp.c_proj(torch.relu(block.mlp.fc(h)))
        return self.head(x + self.out.proj(x))


def wrapped(model) -> list:
    return sorted(name for name, mod in model.named_modules() if hasattr(mod, "lora_A") and hasattr(mod, "base"))


def apply(targets):
    def call(m, x):
        manual_seed(0)
        model = Tiny(x.device)
        out = m.apply_lora(model, targets, r=R, alpha=ALPHA)
        return {"returns the model it was given": out is model, "wrapped": wrapped(model)}
    return call


def apply_trainable(m, x):
    manual_seed(0)
    model = m.apply_lora(Tiny(x.device), ["q", "fc"], r=R, alpha=ALPHA)
    trainable = [(name, p.numel()) for name, p in model.named_parameters() if p.requires_grad]
    return {"trainable tensors": len(trainable), "trainable numbers": sum(n for _, n in trainable),
            "all of them lora_A or lora_B": all(name.rpartition(".")[2] in ("lora_A", "lora_B") for name, _ in trainable)}


def apply_train_mode(m, x, r, alpha, dropout):
    """The model's output in train mode after apply_lora(model, ["q", "fc"], r, alpha[, dropout]), with
    every lora_A and lora_B set to random values (however they were initialised): each wrapped layer
    must use r, alpha and the dropout given."""
    manual_seed(0)
    model = Tiny(x.device)
    kw = {} if dropout is None else {"dropout": dropout}
    model = m.apply_lora(model, ["q", "fc"], r=r, alpha=alpha, **kw)
    manual_seed(1)
    with torch.no_grad():
        for name, p in model.named_parameters():
            if name.rpartition(".")[2] in ("lora_A", "lora_B"):
                p.normal_(0, 0.3)
    manual_seed(2)
    return model.train()(x)


STEPS, LR = 20, 0.2


def two_layers(device):
    return nn.Sequential(OrderedDict(q=nn.Linear(8, 8, device=device), out=nn.Linear(8, 4, device=device)))


def fine_tune(m, x):
    """A tiny regression task whose answer is a rank-2 change of the layer q: LoRA on q alone must
    drive the loss down while every pretrained weight stays bitwise identical."""
    manual_seed(0)
    model = two_layers(x.device)
    with torch.no_grad():
        teacher = two_layers(x.device)
        teacher.load_state_dict(model.state_dict())
        teacher.q.weight += 0.5 * torch.randn(8, 2, device=x.device) @ torch.randn(2, 8, device=x.device)
        y = teacher(x)
    pretrained = {k: v.clone() for k, v in model.state_dict().items()}
    model = m.apply_lora(model, ["q"], r=R, alpha=ALPHA)
    params = [p for p in model.parameters() if p.requires_grad]
    losses = []
    for _ in range(STEPS):
        loss = (model(x) - y).pow(2).mean()
        losses.append(loss.item())
        if params:  # plain gradient descent: torch.optim would import torch._dynamo (seconds)
            grads = torch.autograd.grad(loss, params)
            with torch.no_grad():
                for p, grad in zip(params, grads):
                    p -= LR * grad
    now = {k.replace(".base.", "."): v for k, v in model.state_dict().items()}
    return {"loss fell to under a tenth": losses[-1] < losses[0] / 10,
            "pretrained weights bitwise unchanged": all(
                k in now and torch.equal(now[k], v) for k, v in pretrained.items())}


def model_input(g):
    return (g.randn(32, 8),)


def model_train_mode(dropout):
    return lambda g: (g.randn(32, 8), R, ALPHA, dropout)


def model_train_mode_hidden(g):
    """Hyperparameters and a dropout probability in 0.1 .. 0.6 from the instructor's seed."""
    return (g.randn(32, 8), *drawn(g), round(0.1 + 0.5 * g.rand().item(), 2))


test_case = cases([
    Case("init", init, base_layer(IN=64, OUT=10, hyper=lambda g: (8, ALPHA)), upcast=False,
         what="LoRALinear(nn.Linear(64, 10), r=8, alpha=10): its freshly initialised lora_A and lora_B"),
    Case("scaling", scaling, base_layer(), upcast=False, what="LoRALinear(nn.Linear(12, 7), r=4, alpha=10).scaling"),
    Case("frozen_base", frozen_base, base_layer(), upcast=False, what="the base layer after LoRALinear(base, r=4, alpha=10)"),
    Case("trainable_parameters", trainable_parameters, base_layer(), upcast=False,
         what="the names of LoRALinear's parameters that require grad"),
    Case("adapter_dtype_device", adapter_dtype_device, base_layer(dtype=f64), upcast=False,
         what="the dtype and device of lora_A and lora_B around a float64 base layer"),
    Case("rank_zero", bad_rank(0), base_layer(), upcast=False, what="LoRALinear(base, r=0, alpha=10)"),
    Case("rank_negative", bad_rank(-2), base_layer(), upcast=False, what="LoRALinear(base, r=-2, alpha=10)"),
    Case("forward", forward, layer(), what="LoRALinear(nn.Linear(12, 7), r=4, alpha=10)(x), x (2, 3, 12), lora_B random"),
    Case("forward_square", forward, layer(IN=9, OUT=9, lead=(5,)),
         what="LoRALinear(nn.Linear(9, 9), r=4, alpha=10)(x), lora_B random"),
    Case("forward_rank_one", forward, layer(hyper=lambda g: (1, ALPHA)),
         what="LoRALinear(nn.Linear(12, 7), r=1, alpha=10)(x), lora_B random: rank 1 is a rank like any other"),
    Case("forward_float64", forward, layer(IN=10, OUT=10, lead=(3,), dtype=f64),
         what="a float64 LoRALinear(nn.Linear(10, 10), r=4, alpha=10)(x), lora_B random"),
    Case("forward_low_rank", forward_low_rank, layer(), upcast=False,
         what="the tensors LoRALinear(nn.Linear(12, 7), r=4, alpha=10)(x (2, 3, 12)) computes on the way"),
    Case("gradients", gradients, layer(IN=10, OUT=6, lead=(4,)),
         what="(lora_A.grad, lora_B.grad, the base layer's grads) after a backward through LoRALinear"),
    Case("dropout_default", train_mode(None), layer(), upcast=False,
         what="LoRALinear(base, r=4, alpha=10) in train mode, dropout left at its default"),
    Case("dropout_base_path", dropout_base_path, layer(), upcast=False,
         what="LoRALinear(base, r=4, alpha=10, dropout=0.5) in train mode with lora_B = 0 (must equal base(x))"),
    Case("dropout_train", train_mode(0.5), layer(), upcast=False,
         what="LoRALinear(base, r=4, alpha=10, dropout=0.5) in train mode after torch.manual_seed(0)"),
    Case("dropout_eval", dropout_eval, layer(), upcast=False,
         what="LoRALinear(base, r=4, alpha=10, dropout=0.5) in eval mode"),
    Case("merge_weights", merge_weights, layer(), what="(weight, bias) of LoRALinear(...).merge()"),
    Case("merge_float64", merge_weights, layer(dtype=f64), what="(weight, bias) of merge() on a float64 LoRALinear"),
    Case("merge_matches_forward", merge_matches_forward, layer(),
         what="LoRALinear(...).merge()(x), which must equal the LoRA layer's own output"),
    Case("merge_leaves_module", merge_leaves_module, layer(), what="the LoRA layer's output after calling merge()"),
    Case("merge_independent", merge_independent, layer(), upcast=False, what="the layer LoRALinear(...).merge() returns"),
    Case("merge_no_bias", merge_no_bias, layer(bias=False),
         what="(weight, bias) of merge() on a LoRALinear around nn.Linear(12, 7, bias=False)"),
    Case("apply_targets", apply(["q", "proj", "fc"]), model_input, upcast=False,
         what="apply_lora(model, ['q', 'proj', 'fc'], r=4, alpha=10) on a model with blocks.{0,1}.attn.{q,proj}, "
              "blocks.{0,1}.mlp.{fc,c_proj}, and out.proj and head (subclasses of nn.Linear)"),
    Case("apply_trainable", apply_trainable, model_input, upcast=False,
         what="the trainable parameters after apply_lora(model, ['q', 'fc'], r=4, alpha=10)"),
    Case("apply_unknown_target", apply(["q", "k"]), model_input, upcast=False,
         what="apply_lora(model, ['q', 'k'], ...) on a model with no layer named k"),
    Case("apply_not_a_linear", apply(["ln"]), model_input, upcast=False,
         what="apply_lora(model, ['ln'], ...) where ln is a LayerNorm"),
    Case("apply_subclass_only", apply(["q", "head"]), model_input, upcast=False,
         what="apply_lora(model, ['q', 'head'], ...) where head is a subclass of nn.Linear"),
    Case("apply_dropout", apply_train_mode, model_train_mode(0.5), upcast=False,
         what="the model in train mode after apply_lora(model, ['q', 'fc'], r=4, alpha=10, dropout=0.5), lora_B random"),
    Case("apply_dropout_default", apply_train_mode, model_train_mode(None), upcast=False,
         what="the model in train mode after apply_lora(model, ['q', 'fc'], r=4, alpha=10), dropout left at its "
              "default, lora_B random"),
    Case("fine_tune", fine_tune, lambda g: (g.randn(64, 8),), upcast=False,
         what="20 gradient-descent steps after apply_lora(model, ['q'], r=4, alpha=10) on a low-rank regression task"),
    # hidden: r, alpha and dropout from the instructor's seed
    Case("scaling_hidden", scaling, base_layer(hyper=drawn), upcast=False, hidden=True,
         what="LoRALinear(...).scaling for hidden r and alpha"),
    Case("forward_hidden", forward, layer(IN=16, OUT=5, lead=(3, 2), hyper=drawn), hidden=True,
         what="LoRALinear(...)(x) for hidden inputs, r and alpha"),
    Case("merge_hidden", merge_matches_forward, layer(IN=6, OUT=11, lead=(4,), hyper=drawn), hidden=True,
         what="LoRALinear(...).merge()(x) for hidden inputs, r and alpha"),
    Case("apply_hidden", apply_train_mode, model_train_mode_hidden, upcast=False, hidden=True,
         what="the model in train mode after apply_lora(model, ['q', 'fc'], r, alpha, dropout) for hidden r, "
              "alpha and dropout"),
])
