"""Common mistakes and correct variants for the layer_norm kata."""

import torch
from torch import Tensor, nn

from reference import mistake, variant
from reference.layer_norm import LayerNorm, layer_norm


def _dims(weight: Tensor) -> tuple[int, ...]:
    return tuple(range(-weight.ndim, 0))


# ---------------------------------------------------------------------------------------------
# Mistakes: layer_norm


def _unbiased_variance(x, weight, bias, eps=1e-5):
    dims = _dims(weight)
    mean = x.mean(dim=dims, keepdim=True)
    var = x.var(dim=dims, keepdim=True)  # torch.var divides by N - 1 by default
    return (x - mean) / torch.sqrt(var + eps) * weight + bias


def _eps_outside_sqrt(x, weight, bias, eps=1e-5):
    dims = _dims(weight)
    mean = x.mean(dim=dims, keepdim=True)
    var = ((x - mean) ** 2).mean(dim=dims, keepdim=True)
    return (x - mean) / (torch.sqrt(var) + eps) * weight + bias


def _no_eps(x, weight, bias, eps=1e-5):
    dims = _dims(weight)
    mean = x.mean(dim=dims, keepdim=True)
    var = ((x - mean) ** 2).mean(dim=dims, keepdim=True)
    return (x - mean) / torch.sqrt(var) * weight + bias


def _last_dim_only(x, weight, bias, eps=1e-5):
    mean = x.mean(dim=-1, keepdim=True)
    var = ((x - mean) ** 2).mean(dim=-1, keepdim=True)
    return (x - mean) / torch.sqrt(var + eps) * weight + bias


def _whole_tensor_statistics(x, weight, bias, eps=1e-5):
    mean = x.mean()
    var = ((x - mean) ** 2).mean()
    return (x - mean) / torch.sqrt(var + eps) * weight + bias


def _one_pass_float32(x, weight, bias, eps=1e-5):
    dims = _dims(weight)
    mean = x.mean(dim=dims, keepdim=True)
    var = (x * x).mean(dim=dims, keepdim=True) - mean * mean  # cancels when |mean| >> std
    return (x - mean) / torch.sqrt(var + eps) * weight + bias


def _detached_statistics(x, weight, bias, eps=1e-5):
    dims = _dims(weight)
    with torch.no_grad():
        mean = x.mean(dim=dims, keepdim=True)
        var = ((x - mean) ** 2).mean(dim=dims, keepdim=True)
    return (x - mean) / torch.sqrt(var + eps) * weight + bias


def _uses_data(x, weight, bias, eps=1e-5):
    x = x.data
    dims = _dims(weight)
    mean = x.mean(dim=dims, keepdim=True)
    var = ((x - mean) ** 2).mean(dim=dims, keepdim=True)
    return (x - mean) / torch.sqrt(var + eps) * weight + bias


def _modifies_input(x, weight, bias, eps=1e-5):
    dims = _dims(weight)
    x -= x.mean(dim=dims, keepdim=True)
    var = (x * x).mean(dim=dims, keepdim=True)
    return x / torch.sqrt(var + eps) * weight + bias


def _forgets_bias(x, weight, bias, eps=1e-5):
    dims = _dims(weight)
    mean = x.mean(dim=dims, keepdim=True)
    var = ((x - mean) ** 2).mean(dim=dims, keepdim=True)
    return (x - mean) / torch.sqrt(var + eps) * weight


def _forgets_weight(x, weight, bias, eps=1e-5):
    dims = _dims(weight)
    mean = x.mean(dim=dims, keepdim=True)
    var = ((x - mean) ** 2).mean(dim=dims, keepdim=True)
    return (x - mean) / torch.sqrt(var + eps) + bias


def _swaps_weight_and_bias(x, weight, bias, eps=1e-5):
    dims = _dims(weight)
    mean = x.mean(dim=dims, keepdim=True)
    var = ((x - mean) ** 2).mean(dim=dims, keepdim=True)
    return (x - mean) / torch.sqrt(var + eps) * bias + weight


def _everywhere(fn) -> dict:
    """fn as layer_norm and inside LayerNorm.forward: a learner's module calls their own function."""

    class _LayerNorm(LayerNorm):
        def forward(self, x):
            return fn(x, self.weight, self.bias, self.eps)

    return {"layer_norm": fn, "LayerNorm": _LayerNorm}


# ---------------------------------------------------------------------------------------------
# Mistakes: rms_norm


def _rms_subtracts_mean(x, weight, eps=1e-6):
    dims = _dims(weight)
    centred = x - x.mean(dim=dims, keepdim=True)
    return centred / torch.sqrt((centred**2).mean(dim=dims, keepdim=True) + eps) * weight


def _rms_eps_outside_sqrt(x, weight, eps=1e-6):
    dims = _dims(weight)
    return x / (torch.sqrt((x**2).mean(dim=dims, keepdim=True)) + eps) * weight


def _rms_last_dim_only(x, weight, eps=1e-6):
    return x / torch.sqrt((x**2).mean(dim=-1, keepdim=True) + eps) * weight


# ---------------------------------------------------------------------------------------------
# Mistakes: LayerNorm


class _LayerNormWeightZeros(LayerNorm):
    def __init__(self, normalized_shape, eps=1e-5):
        super().__init__(normalized_shape, eps)
        self.weight = nn.Parameter(torch.zeros(self.normalized_shape))


class _LayerNormBiasNotParameter(LayerNorm):
    def __init__(self, normalized_shape, eps=1e-5):
        super().__init__(normalized_shape, eps)
        del self.bias
        self.bias = torch.zeros(self.normalized_shape)  # a plain tensor: not a parameter, not in state_dict


class _LayerNormDefaultEps(LayerNorm):
    def __init__(self, normalized_shape, eps=1e-6):  # RMSNorm's default, not LayerNorm's
        super().__init__(normalized_shape, eps)


class _LayerNormIgnoresEps(LayerNorm):
    def forward(self, x):
        return layer_norm(x, self.weight, self.bias)  # always the default eps


MISTAKES = [
    mistake(
        "unbiased_variance",
        "the variance divides by N - 1 (torch.var's default) instead of N",
        **_everywhere(_unbiased_variance),
    ),
    mistake(
        "eps_outside_sqrt",
        "eps is added after the square root, sqrt(var) + eps, instead of sqrt(var + eps)",
        **_everywhere(_eps_outside_sqrt),
    ),
    mistake(
        "no_eps",
        "eps is never used, so a (nearly) constant vector is divided by (nearly) zero",
        **_everywhere(_no_eps),
    ),
    mistake(
        "last_dim_only",
        "the statistics are taken over the last dim only, not over the last weight.ndim dims",
        **_everywhere(_last_dim_only),
    ),
    mistake(
        "whole_tensor_statistics",
        "one mean and one variance are taken over the whole tensor instead of one per vector",
        **_everywhere(_whole_tensor_statistics),
    ),
    mistake(
        "one_pass_float32",
        "the variance is computed as E[x^2] - E[x]^2 in float32, "
        "which loses most digits to cancellation when the mean is large compared with the spread",
        **_everywhere(_one_pass_float32),
    ),
    mistake(
        "detached_statistics",
        "the mean and variance are computed without gradient (no_grad / detach), "
        "so the gradient w.r.t. x misses their contribution",
        **_everywhere(_detached_statistics),
    ),
    mistake(
        "uses_data",
        "the input is read through x.data, so no gradient flows back to x",
        **_everywhere(_uses_data),
    ),
    mistake(
        "modifies_input",
        "x is centred in place (x -= mean), which changes the caller's tensor",
        **_everywhere(_modifies_input),
    ),
    mistake(
        "forgets_bias",
        "the bias is never added",
        **_everywhere(_forgets_bias),
    ),
    mistake(
        "forgets_weight",
        "the normalised x is never multiplied by weight",
        **_everywhere(_forgets_weight),
    ),
    mistake(
        "swaps_weight_and_bias",
        "weight and bias are swapped: the output is multiplied by bias and shifted by weight",
        **_everywhere(_swaps_weight_and_bias),
    ),
    mistake(
        "rms_norm_subtracts_mean",
        "rms_norm subtracts the mean first, which makes it a layer norm without bias",
        rms_norm=_rms_subtracts_mean,
    ),
    mistake(
        "rms_norm_eps_outside_sqrt",
        "rms_norm adds eps after the square root, sqrt(mean(x**2)) + eps, instead of inside it",
        rms_norm=_rms_eps_outside_sqrt,
    ),
    mistake(
        "rms_norm_last_dim_only",
        "rms_norm takes the mean of squares over the last dim only, not over the last weight.ndim dims",
        rms_norm=_rms_last_dim_only,
    ),
    mistake(
        "layernorm_weight_zeros",
        "LayerNorm's weight starts as zeros instead of ones, so a fresh layer outputs only its bias",
        LayerNorm=_LayerNormWeightZeros,
    ),
    mistake(
        "layernorm_bias_not_parameter",
        "LayerNorm's bias is a plain tensor, not an nn.Parameter, "
        "so it is never trained and is missing from the state_dict",
        LayerNorm=_LayerNormBiasNotParameter,
    ),
    mistake(
        "layernorm_default_eps",
        "LayerNorm's eps defaults to 1e-6 (RMSNorm's default) instead of 1e-5",
        LayerNorm=_LayerNormDefaultEps,
    ),
    mistake(
        "layernorm_ignores_eps",
        "LayerNorm.forward does not pass self.eps to layer_norm, so the default eps is always used",
        LayerNorm=_LayerNormIgnoresEps,
    ),
]


# ---------------------------------------------------------------------------------------------
# Variants


def _one_pass_float64(x, weight, bias, eps=1e-5):
    # E[x^2] - E[x]^2 cancels badly in float32; float64 has enough digits to spare.
    dims = _dims(weight)
    x64 = x.double()
    mean = x64.mean(dim=dims, keepdim=True)
    var = (x64 * x64).mean(dim=dims, keepdim=True) - mean * mean
    y = (x64 - mean) / torch.sqrt(var + eps) * weight.double() + bias.double()
    return y.to(x.dtype)


def _var_mean(x, weight, bias, eps=1e-5):
    var, mean = torch.var_mean(x, dim=_dims(weight), unbiased=False, keepdim=True)
    return (x - mean) / torch.sqrt(var + eps) * weight + bias


def _rsqrt_layer_norm(x, weight, bias, eps=1e-5):
    dims = _dims(weight)
    centred = x - x.mean(dim=dims, keepdim=True)
    return centred * torch.rsqrt(centred.pow(2).mean(dim=dims, keepdim=True) + eps) * weight + bias


def _rsqrt_rms_norm(x, weight, eps=1e-6):
    return x * torch.rsqrt(x.pow(2).mean(dim=_dims(weight), keepdim=True) + eps) * weight


def _flatten_layer_norm(x, weight, bias, eps=1e-5):
    # Fold the normalised dims into one, normalise over it, unfold.
    flat = x.reshape(*x.shape[: x.ndim - weight.ndim], weight.numel())
    mean = flat.sum(dim=-1, keepdim=True) / flat.shape[-1]
    centred = flat - mean
    var = (centred * centred).sum(dim=-1, keepdim=True) / flat.shape[-1]
    y = centred / (var + eps).sqrt()
    return y.reshape(x.shape) * weight + bias


def _vector_norm_rms_norm(x, weight, eps=1e-6):
    dims = _dims(weight)
    n = weight.numel()
    norm = torch.linalg.vector_norm(x, dim=dims, keepdim=True)
    return x / torch.sqrt(norm * norm / n + eps) * weight


class _LayerNormRegistered(nn.Module):
    def __init__(self, normalized_shape, eps=1e-5):
        super().__init__()
        shape = torch.Size([normalized_shape] if isinstance(normalized_shape, int) else normalized_shape)
        self.eps = eps
        self.register_parameter("weight", nn.Parameter(torch.empty(shape)))
        self.register_parameter("bias", nn.Parameter(torch.empty(shape)))
        nn.init.ones_(self.weight)
        nn.init.zeros_(self.bias)

    def forward(self, x):
        return layer_norm(x, self.weight, self.bias, eps=self.eps)


VARIANTS = [
    variant(
        "one_pass_float64",
        "computes var = E[x^2] - E[x]^2 in float64 and casts the result back to x's dtype",
        layer_norm=_one_pass_float64,
    ),
    variant(
        "var_mean",
        "gets both statistics from torch.var_mean(..., unbiased=False)",
        layer_norm=_var_mean,
    ),
    variant(
        "rsqrt",
        "multiplies by torch.rsqrt(var + eps) instead of dividing by the square root",
        layer_norm=_rsqrt_layer_norm,
        rms_norm=_rsqrt_rms_norm,
    ),
    variant(
        "flatten_normalised_dims",
        "reshapes the normalised dims into one, normalises over it with sums, and reshapes back",
        layer_norm=_flatten_layer_norm,
    ),
    variant(
        "vector_norm_rms",
        "rms_norm gets the mean of squares from torch.linalg.vector_norm",
        rms_norm=_vector_norm_rms_norm,
    ),
    variant(
        "registered_parameters",
        "LayerNorm creates empty parameters with register_parameter and fills them with nn.init",
        LayerNorm=_LayerNormRegistered,
    ),
]
