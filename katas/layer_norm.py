"""Kata: layer normalisation (and its lighter cousin, RMSNorm).

Why normalise
-------------
Deep stacks of layers are hard to train when the scale of the activations drifts from layer to
layer: some blow up, others shrink, and the gradients follow. Layer normalisation (Ba, Kiros &
Hinton, 2016, "Layer Normalization", arXiv:1607.06450) fixes the scale of every token's vector on
its own: subtract the vector's mean, divide by its standard deviation, then let the model pick the
scale and offset it wants back with two learned vectors. Unlike batch normalisation it needs no
statistics over the batch, so it behaves the same in training and inference, for a batch of one,
and for sequences of any length. Every Transformer block uses it: the original one after each
sub-layer (post-LN, "Attention Is All You Need", 2017), GPT-2 and most models since before each
sub-layer (pre-LN) plus once more before the output head.

The math
--------
Take x of shape (..., *S), where S = weight.shape are the trailing "normalised" dims (usually
S = (C,), the model width) and N = prod(S) is how many numbers each vector has. Over those last
len(S) dims, for every leading index separately:

    mean = (1/N) * sum x                          (..., 1, ..., 1)  one per vector
    var  = (1/N) * sum (x - mean)**2              (..., 1, ..., 1)  divide by N, NOT by N - 1
    y    = (x - mean) / sqrt(var + eps) * weight + bias             (..., *S), same as x

Four details matter, and each one is a classic bug:

* The variance is the BIASED one (divide by N). torch.var divides by N - 1 by default; with
  N = 8 that makes every output sqrt(7/8) ~ 6% too small. This is a normaliser, not an estimator.
* eps goes INSIDE the square root: sqrt(var + eps), not sqrt(var) + eps. The two agree only
  when var >> eps; for a quiet vector (std ~ 1e-3, var ~ 1e-6 < eps = 1e-5) they differ by a
  factor of 3. torch, TensorFlow and the pretrained checkpoints trained with them use the inside
  form, so the weights you will load expect it. Leaving eps out divides by zero on a constant vector.
* "Normalise over the last weight.ndim dims", not always over the last one: with
  weight.shape == (H, D) the statistics are taken over H * D numbers together.
* weight multiplies, bias adds, and both have shape S, broadcast over the leading dims.

Shapes, for a batch of sequences:  x (B, T, C), weight (C,), bias (C,) -> y (B, T, C);
the mean and var are (B, T, 1) when computed with keepdim=True, so they broadcast back.

Numerics. The two-pass form above (first the mean, then the mean of the centred squares) is
accurate. The one-pass form var = E[x**2] - E[x]**2 subtracts two large, nearly equal numbers
when |mean| >> std and loses most digits in float32 (it can even go negative); it is fine in
float64, which is how the one-pass form is safely used.

Autograd. layer_norm must be differentiable w.r.t. x, weight and bias by autograd, through the
mean and variance too: the gradient w.r.t. x is NOT just weight / sqrt(var + eps), because
moving one element of x moves the mean and the variance of its vector. So never compute the
statistics on x.detach(), x.data or under torch.no_grad(), and never modify x in place
(x -= mean changes the caller's tensor).

RMSNorm
-------
Zhang & Sennrich (2019, "Root Mean Square Layer Normalization", arXiv:1910.07467) noticed that the
re-centring does little; dropping it saves work. LLaMA, T5, Mistral and most recent LLMs use it:

    rms = sqrt((1/N) * sum x**2 + eps)            (..., 1, ..., 1)  eps inside the root again
    y   = x / rms * weight                        (..., *S)

No mean is subtracted (x**2, not (x - mean)**2) and there is no bias. Its eps defaults to 1e-6
here, as in the first LLaMA.

The module
----------
LayerNorm(normalized_shape, eps) owns the two parameters, named exactly as torch.nn.LayerNorm
names them so that a state_dict moves between the two in both directions:

    weight  nn.Parameter of ones,  shape normalized_shape     (starts as the identity scale)
    bias    nn.Parameter of zeros, shape normalized_shape     (starts with no shift)
    eps     a plain float attribute

An int normalized_shape C means (C,). forward(x) is layer_norm(x, weight, bias, eps).

Rules: do not call torch's own normalisation (F.layer_norm, torch.layer_norm, nn.LayerNorm,
F.rms_norm, nn.RMSNorm, group_norm, instance_norm, batch_norm): build it from mean, sqrt and
arithmetic. Inputs are float32 or float64 and the output has x's dtype; weight.ndim >= 1.

Reference implementations to compare with afterwards: torch.nn.functional.layer_norm, and
LlamaRMSNorm in Hugging Face transformers (models/llama/modeling_llama.py).
"""

import torch
from torch import Tensor, nn


def layer_norm(x: Tensor, weight: Tensor, bias: Tensor, eps: float = 1e-5) -> Tensor:
    """Layer normalisation over the last weight.ndim dims of x.

    x: (..., *S); weight, bias: S, where S = x.shape[-weight.ndim:].
    Returns (x - mean) / sqrt(var + eps) * weight + bias, shape and dtype of x, with mean and the
    biased variance (divide by N = prod(S)) taken over those dims. Differentiable by autograd;
    x is not modified.
    """
    raise NotImplementedError("layer_norm: centre, divide by sqrt(biased var + eps), scale and shift")


def rms_norm(x: Tensor, weight: Tensor, eps: float = 1e-6) -> Tensor:
    """RMS normalisation over the last weight.ndim dims of x.

    x: (..., *S); weight: S. Returns x / sqrt(mean(x**2) + eps) * weight, shape and dtype of x.
    """
    raise NotImplementedError("rms_norm: divide by sqrt(mean of squares + eps), then scale")


class LayerNorm(nn.Module):
    """A layer-norm layer whose state_dict is interchangeable with torch.nn.LayerNorm's.

    Parameters weight (ones) and bias (zeros) of shape normalized_shape; attribute eps.
    """

    def __init__(self, normalized_shape: int | tuple[int, ...], eps: float = 1e-5):
        raise NotImplementedError("LayerNorm.__init__: call super().__init__(), store eps, create weight and bias")

    def forward(self, x: Tensor) -> Tensor:
        """x: (..., *normalized_shape) -> same shape."""
        raise NotImplementedError("LayerNorm.forward: apply layer_norm with this layer's parameters")
