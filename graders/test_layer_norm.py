"""Grader for katas/layer_norm.py: each Case is one check, learner against reference."""

import torch
from torch import nn

from graders.harness import Case, cases

f64 = torch.float64


def ln_inputs(*lead, shape=(8,), dtype=torch.float32, scale=1.0, shift=0.5):
    """x (*lead, *shape) with mean ~shift and spread ~scale; weight around 1 and bias around 0, both random."""
    def make(g):
        x = g.randn(*lead, *shape, dtype=dtype, scale=scale, shift=shift)
        return x, g.randn(*shape, dtype=dtype, scale=0.5, shift=1.0), g.randn(*shape, dtype=dtype, scale=0.5)
    return make


def rms_inputs(*lead, shape=(8,), dtype=torch.float32, scale=1.0, shift=0.0):
    def make(g):
        return g.randn(*lead, *shape, dtype=dtype, scale=scale, shift=shift), g.randn(*shape, dtype=dtype, scale=0.5, shift=1.0)
    return make


def with_constant_rows(g):
    x, w, b = ln_inputs(4, shape=(8,))(g)
    x[1] = 3.0  # a constant vector: var = 0, so only eps keeps the division finite
    x[3] = -0.25
    return x, w, b


def with_eps(make):
    """Adds an eps drawn from the seed, between 1e-6 and 1e-3, to the inputs."""
    def inputs(g):
        return (*make(g), 10 ** -(3 + 3 * float(g.rand(1))))
    return inputs


def with_upstream(make):
    """Adds a random upstream gradient, shaped like x, to the inputs."""
    def inputs(g):
        args = make(g)
        return (*args, g.randn(*args[0].shape, dtype=args[0].dtype))
    return inputs


def _grads(fn, tensors, upstream):
    """Gradients of sum(fn(*tensors) * upstream) w.r.t. every tensor; zeros where none flows."""
    leaves = [t.detach().clone().requires_grad_() for t in tensors]
    out = fn(*leaves)
    grads = torch.autograd.grad((out * upstream).sum(), leaves, allow_unused=True)
    return tuple(torch.zeros_like(t) if d is None else d for t, d in zip(leaves, grads))


def ln_grads(m, x, weight, bias, upstream):
    return _grads(m.layer_norm, (x, weight, bias), upstream)


def rms_grads(m, x, weight, upstream):
    return _grads(m.rms_norm, (x, weight), upstream)


def ln_leaves_input(m, x, weight, bias):
    own = x.clone()  # the learner gets a copy, so the check can show what happened to it
    return m.layer_norm(own, weight, bias), own


def module_init(m):
    a, b = m.LayerNorm(8), m.LayerNorm((3, 4), eps=1e-3)
    return a.weight, a.bias, b.weight, b.bias


def module_parameters(m):
    layer = m.LayerNorm((3, 4))
    params = tuple(sorted((name, tuple(p.shape)) for name, p in layer.named_parameters()))
    return params, tuple(sorted(layer.state_dict()))


def _learner_layer(m, weight, bias, **eps):
    layer = m.LayerNorm(tuple(weight.shape), **eps).to(device=weight.device, dtype=weight.dtype)
    with torch.no_grad():
        layer.weight.copy_(weight)
        layer.bias.copy_(bias)
    return layer


def module_forward(m, x, weight, bias, upstream):
    layer = _learner_layer(m, weight, bias, eps=1e-5)
    y = layer(x)
    (y * upstream).sum().backward()
    grad = lambda p: torch.zeros_like(p) if p.grad is None else p.grad
    return y, grad(layer.weight), grad(layer.bias)


def module_eps(m, x, weight, bias):
    layer = _learner_layer(m, weight, bias, eps=1e-2)
    return layer(x), layer.eps


def module_default_eps(m, x, weight, bias):
    return _learner_layer(m, weight, bias)(x)  # eps left at LayerNorm's default


def module_state_dict(m, x, weight, bias):
    # torch.nn.LayerNorm -> the learner's LayerNorm -> torch.nn.LayerNorm; only torch's
    # parameters are used, never its forward (which this kata forbids).
    theirs = nn.LayerNorm(tuple(weight.shape), device=weight.device, dtype=weight.dtype)
    with torch.no_grad():
        theirs.weight.copy_(weight)
        theirs.bias.copy_(bias)
    mine = m.LayerNorm(tuple(weight.shape)).to(device=weight.device, dtype=weight.dtype)
    mine.load_state_dict(theirs.state_dict())
    back = nn.LayerNorm(tuple(weight.shape), device=weight.device, dtype=weight.dtype)
    back.load_state_dict(mine.state_dict())
    return mine(x), back.weight, back.bias


GRADS = "the gradients (w.r.t. x, weight, bias, in that order) of sum({} * g), g random"

test_case = cases([
    Case("layer_norm_basic", "layer_norm", ln_inputs(2, 3)),
    Case("layer_norm_quiet", "layer_norm", ln_inputs(4, scale=1e-3, shift=2e-3),
         what="layer_norm of vectors whose std is about 1e-3 (var below eps)"),
    Case("layer_norm_constant_rows", "layer_norm", with_constant_rows,
         what="layer_norm of a batch in which two vectors are constant"),
    Case("layer_norm_2d_weight", "layer_norm", ln_inputs(2, shape=(4, 6)),
         what="layer_norm over the last 2 dims (weight and bias (4, 6))"),
    Case("layer_norm_large_mean", "layer_norm", ln_inputs(3, shape=(16,), shift=1000.0), tol="large_mean",
         what="layer_norm of float32 vectors whose mean (~1000) is far larger than their std (~1)"),
    Case("layer_norm_float64", "layer_norm", ln_inputs(2, shape=(3, 5), dtype=f64, scale=1e-3, shift=0.01), tol="float64"),
    Case("layer_norm_leaves_input", ln_leaves_input, ln_inputs(3),
         what="(layer_norm(x, weight, bias), x afterwards)"),
    Case("layer_norm_grads", ln_grads, tol="grads", inputs=with_upstream(ln_inputs(3)), what=GRADS.format("layer_norm(x, weight, bias)")),
    Case("layer_norm_grads_2d_weight", ln_grads, tol="grads", inputs=with_upstream(ln_inputs(2, shape=(3, 4))),
         what=GRADS.format("layer_norm(x, weight, bias)") + " with a (3, 4) weight"),
    Case("rms_norm_basic", "rms_norm", rms_inputs(2, 3, shift=1.0)),
    Case("rms_norm_quiet", "rms_norm", rms_inputs(4, scale=1e-3),
         what="rms_norm of vectors whose rms is about 1e-3 (mean square equal to eps)"),
    Case("rms_norm_2d_weight", "rms_norm", rms_inputs(2, shape=(4, 6), shift=0.5),
         what="rms_norm over the last 2 dims (weight (4, 6))"),
    Case("rms_norm_float64", "rms_norm", rms_inputs(3, shape=(2, 5), dtype=f64, shift=0.5), tol="float64"),
    Case("rms_norm_grads", rms_grads, tol="grads", inputs=with_upstream(rms_inputs(3, shift=0.5)),
         what="the gradients (w.r.t. x, weight) of sum(rms_norm(x, weight) * g), g random"),
    Case("LayerNorm_init", module_init, lambda g: (), upcast=False,
         what="the weight and bias of fresh LayerNorm(8) and LayerNorm((3, 4), eps=1e-3)"),
    Case("LayerNorm_parameters", module_parameters, lambda g: (), upcast=False,
         what="the named parameters (name, shape) and the state_dict keys of LayerNorm((3, 4))"),
    Case("LayerNorm_forward", module_forward, with_upstream(ln_inputs(2, shape=(3, 4))),
         what="LayerNorm((3, 4)) with random weight and bias: its output y on x and the gradients of "
              "sum(y * g) w.r.t. weight and bias"),
    Case("LayerNorm_eps", module_eps, ln_inputs(4, scale=1e-2),
         what="(LayerNorm(8, eps=1e-2)(x), its eps) for x whose std is about 1e-2"),
    Case("LayerNorm_default_eps", module_default_eps, ln_inputs(4, scale=3e-3, shift=0.01),
         what="LayerNorm(8) with its default eps and random weight and bias, on x whose std is about 3e-3 "
              "(var about eps)"),
    Case("LayerNorm_state_dict", module_state_dict, ln_inputs(2, shape=(3, 4)),
         what="a torch.nn.LayerNorm's state_dict loaded into your LayerNorm((3, 4)) (its output on x) and "
              "yours loaded back into a torch.nn.LayerNorm (its weight and bias)"),
    Case("layer_norm_hidden", "layer_norm", with_eps(ln_inputs(3, shape=(2, 5), scale=3e-3, shift=-0.01)), hidden=True),
    Case("layer_norm_grads_hidden", ln_grads, tol="grads", inputs=with_upstream(ln_inputs(2, 2, shape=(6,), scale=0.1)), hidden=True,
         what=GRADS.format("layer_norm(x, weight, bias)")),
    Case("rms_norm_hidden", "rms_norm", with_eps(rms_inputs(2, shape=(3, 4), scale=2e-3, shift=1e-3)), hidden=True),
])
