"""The mini_gpt reference against what it mirrors, and the grader's inputs against what they claim.

The reference against Hugging Face's GPT2LMHeadModel: the same parameter count, the same logits
once its state dict is loaded, the same loss (Hugging Face shifts the labels inside, the kata's
targets come shifted). The grader's Hugging Face state dicts have exactly the real model's keys and
shapes. The generation checks are tie-free: every draw the reference makes wins by a margin far
above float rounding, so any correct order of float operations draws the same tokens. The models
are built from tiny configs with random weights: nothing is downloaded.
"""

import pytest
import torch
from transformers import GPT2Config, GPT2LMHeadModel

from graders import test_mini_gpt as grader
from graders.harness import Gen, kata_cases, seed_for
from reference import mini_gpt
from reference.mini_gpt import GPT, GPTConfig

CONFIGS = [dict(V=48, block=12, L=2, H=4, C=32), dict(V=21, block=6, L=3, H=3, C=18, layer_norm_eps=1e-3)]


def hf_model(cfg, dtype=torch.float32):
    c = GPTConfig(**cfg)
    config = GPT2Config(vocab_size=c.vocab_size, n_positions=c.block_size, n_embd=c.n_embd,
                        n_layer=c.n_layer, n_head=c.n_head, layer_norm_epsilon=c.layer_norm_eps,
                        resid_pdrop=0.0, embd_pdrop=0.0, attn_pdrop=0.0, bos_token_id=0, eos_token_id=0)
    torch.manual_seed(0)
    model = GPT2LMHeadModel(config).to(dtype).eval()
    with torch.no_grad():  # GPT-2's init leaves biases at 0 and norms at 1, which would hide mistakes
        for p in model.parameters():
            p.add_(torch.randn_like(p), alpha=0.2)
    return model


def ours(cfg, dtype=torch.float32):
    return GPT(GPTConfig(**cfg)).to(dtype).eval()


@pytest.mark.parametrize("kw", CONFIGS)
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_logits_equal_hugging_faces(kw, dtype):
    cfg = grader.config(**kw)
    hf = hf_model(cfg, dtype)
    model = ours(cfg, dtype).load_hf_state_dict(hf.state_dict())
    idx = torch.randint(0, cfg["vocab_size"], (3, cfg["block_size"]), generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        expected = hf(idx).logits
        got, loss = model(idx)
    assert loss is None and got.dtype == dtype
    torch.testing.assert_close(got, expected)
    assert model.lm_head.weight is model.wte.weight


@pytest.mark.parametrize("kw", CONFIGS)
def test_parameter_count_equals_hugging_faces_and_the_lessons_formula(kw):
    cfg = grader.config(**kw)
    V, P, L, C = cfg["vocab_size"], cfg["block_size"], cfg["n_layer"], cfg["n_embd"]
    count = sum(p.numel() for p in ours(cfg).parameters())
    assert count == sum(p.numel() for p in hf_model(cfg).parameters())
    assert count == V * C + P * C + L * (12 * C**2 + 13 * C) + 2 * C


def test_loss_equals_hugging_faces_with_the_shift_outside():
    cfg = grader.config()
    hf = hf_model(cfg)
    model = ours(cfg).load_hf_state_dict(hf.state_dict())
    g = torch.Generator().manual_seed(2)
    seq = torch.randint(0, cfg["vocab_size"], (2, 10), generator=g)
    labels = seq.masked_fill(torch.rand(seq.shape, generator=g) < 0.3, -100)
    labels[:, 1] = seq[:, 1]  # at least one real target per row
    with torch.no_grad():
        expected = hf(seq, labels=labels).loss  # Hugging Face shifts: position t is scored against labels[t + 1]
        _, loss = model(seq[:, :-1], targets=labels[:, 1:])
    torch.testing.assert_close(loss, expected)


@pytest.mark.parametrize("old_buffers", [False, True])
def test_the_graders_state_dicts_are_hugging_faces(old_buffers):
    """Same keys and shapes as a real GPT2LMHeadModel (plus the buffers older versions kept), and the
    real model given the grader's weights computes what the reference given them by name computes."""
    cfg = grader.config()
    w = grader.weights(Gen(3), cfg)
    sd = grader.hf_state_dict(w, old_buffers)
    hf = hf_model(cfg)
    real = {k: tuple(v.shape) for k, v in hf.state_dict().items()}
    buffers = {k: v for k, v in sd.items() if k.endswith((".attn.bias", ".attn.masked_bias"))}
    assert {k: tuple(v.shape) for k, v in sd.items() if k not in buffers} == real
    assert len(buffers) == (2 * cfg["n_layer"] if old_buffers else 0)
    hf.load_state_dict({k: v for k, v in sd.items() if k not in buffers})
    idx = torch.randint(0, cfg["vocab_size"], (2, cfg["block_size"]), generator=torch.Generator().manual_seed(4))
    with torch.no_grad():
        torch.testing.assert_close(grader.build(mini_gpt, cfg, w)(idx)[0], hf(idx).logits)


# ------------------------------------------------------------------------------- tie-freeness

MARGIN = 1e-4  # relative: float32 rounding moves a logit by ~1e-6 and a probability by ~1e-7 of itself


class Recording(GPT):
    """The reference, keeping each generate call's arguments and the last-position logits of every step."""

    runs = []

    def forward(self, idx, targets=None):
        logits, loss = super().forward(idx, targets)
        self.steps.append(logits[:, -1].detach())
        return logits, loss

    def generate(self, idx, max_new_tokens, temperature=1.0, top_k=None, generator=None):
        self.steps = []
        state = None if generator is None else generator.get_state()
        out = super().generate(idx, max_new_tokens, temperature, top_k, generator)
        Recording.runs.append((self.steps, temperature, top_k, state, out[:, idx.shape[1]:]))
        return out


def draw_margins(steps, temperature, top_k, state, drawn):
    """The smallest relative gap, over the steps, between the winning token and the next best.

    torch.multinomial(probs, 1) on the CPU is argmax(probs / q) with q ~ Exp(1) drawn from the
    generator (q = empty_like(probs).exponential_()); this replays it and checks the replay."""
    gen = None if state is None else torch.Generator().set_state(state)
    gaps = []
    for step, logits in enumerate(steps):
        if temperature == 0:
            score = logits.double()
        else:
            logits = logits / temperature
            if top_k is not None:
                kth = logits.topk(min(top_k, logits.shape[-1])).values[:, [-1]]
                logits = logits.masked_fill(logits < kth, float("-inf"))
            probs = logits.softmax(dim=-1).float()
            score = probs.double() / torch.empty_like(probs).exponential_(1, generator=gen).double()
        best = score.topk(2).values
        assert torch.equal(score.argmax(dim=-1), drawn[:, step]), "the replay is not what torch.multinomial drew"
        gap = best[:, 0] - best[:, 1]
        gaps.append((gap if temperature == 0 else gap / best[:, 0]).min().item())
    return min(gaps)


def generation_margins(hidden):
    module = type(mini_gpt)("recording")
    module.GPT, module.GPTConfig = Recording, GPTConfig
    margins = {}
    for case in kata_cases("mini_gpt"):
        if case.hidden != hidden or not case.call.__qualname__.startswith("generate"):
            continue
        Recording.runs = []
        case.invoke(module, case.inputs(Gen(seed_for("mini_gpt", case.name, case.hidden))))
        margins[case.name] = min(draw_margins(*run) for run in Recording.runs)
    return margins


@pytest.mark.parametrize("hidden", [False, True])
def test_generation_checks_are_tie_free(hidden):
    margins = generation_margins(hidden)
    assert len(margins) >= (1 if hidden else 7) and min(margins.values()) > MARGIN, margins
