"""Grader for katas/mini_gpt.py: each Case is one check, learner against reference.

Inputs are a config (a dict of GPTConfig's fields), weights named as GPT-2's parameters (random,
at scales where every part of the model matters: non-zero biases, layer norm weights away from 1)
and token ids. Every call builds its own GPT from them, so the learner's initialisation never
matters and nothing leaks from one check into another; the Hugging Face state dicts are made here
from the same weights, with Hugging Face's keys and Conv1D shapes. Sampling checks draw with a
generator seeded inside the call, on distributions whose draws float rounding cannot flip (proven
in tests/test_mini_gpt_reference.py).
"""

import math

import torch

from graders.harness import Case, cases, manual_seed

f64 = torch.float64
CONV1D = ("attn.c_attn.weight", "attn.c_proj.weight", "mlp.c_fc.weight", "mlp.c_proj.weight")


def config(V=48, block=12, L=2, H=4, C=32, **fields):
    """GPTConfig's fields; dropout and layer_norm_eps only where a check sets them, GPTConfig's defaults elsewhere."""
    return dict(vocab_size=V, block_size=block, n_layer=L, n_head=H, n_embd=C, **fields)


def weights(g, cfg, dtype=torch.float32, emb=0.5):
    """GPT-2's parameters by name, lm_head.weight the same tensor as wte.weight."""
    V, P, C = cfg["vocab_size"], cfg["block_size"], cfg["n_embd"]
    rand = lambda *shape, scale, shift=0.0: g.randn(*shape, dtype=dtype, scale=scale, shift=shift)
    norm = lambda: (rand(C, scale=0.2, shift=1.0), rand(C, scale=0.2))
    w = {"wte.weight": rand(V, C, scale=emb), "wpe.weight": rand(P, C, scale=emb)}
    for i in range(cfg["n_layer"]):
        for name, shape in (("ln_1", None), ("attn.c_attn", (3 * C, C)), ("attn.c_proj", (C, C)),
                            ("ln_2", None), ("mlp.c_fc", (4 * C, C)), ("mlp.c_proj", (C, 4 * C))):
            if shape is None:
                pair = norm()
            else:  # outputs of unit scale, and biases that matter
                pair = rand(*shape, scale=1 / math.sqrt(shape[1])), rand(shape[0], scale=0.2)
            w[f"h.{i}.{name}.weight"], w[f"h.{i}.{name}.bias"] = pair
    w["ln_f.weight"], w["ln_f.bias"] = norm()
    w["lm_head.weight"] = w["wte.weight"]
    return w


def hf_state_dict(w, old_buffers=False):
    """The same weights as a Hugging Face GPT2LMHeadModel state dict: Conv1D weights are (in, out)."""
    sd = {}
    for name, value in w.items():
        key = name if name == "lm_head.weight" else f"transformer.{name}"
        sd[key] = value.t().contiguous() if name.endswith(CONV1D) else value
        if old_buffers and name.endswith("attn.c_attn.bias"):
            P = w["wpe.weight"].shape[0]
            block = name.removesuffix("c_attn.bias")
            sd[f"transformer.{block}bias"] = torch.ones(P, P, dtype=torch.bool).tril().view(1, 1, P, P)
            sd[f"transformer.{block}masked_bias"] = torch.tensor(-1e4, dtype=value.dtype)
    return sd


def draw(g, cfg, B, T, dtype=torch.float32, emb=0.5, hf=False, old_buffers=False):
    """(config, weights, idx, targets); with hf, the weights as a Hugging Face state dict."""
    w = weights(g, cfg, dtype, emb)
    idx = g.randint(0, cfg["vocab_size"], B, T)
    targets = g.randint(0, cfg["vocab_size"], B, T)
    return cfg, hf_state_dict(w, old_buffers) if hf else w, idx, targets


def model_inputs(B=2, T=7, dtype=torch.float32, emb=0.5, hf=False, old_buffers=False, **kw):
    return lambda g: draw(g, config(**kw), B, T, dtype, emb, hf, old_buffers)


def pick(g, *choices):
    return choices[int(g.randint(0, len(choices), 1))]


def drawn_config(g):
    """A config drawn from the seed, for the hidden checks: every size and layer_norm_eps vary."""
    H, D = pick(g, 1, 2, 3, 4), pick(g, 2, 4, 6, 8)
    return config(V=pick(g, 17, 29, 40, 61), block=pick(g, 6, 9, 12), L=pick(g, 1, 2, 3), H=H, C=H * D,
                  layer_norm_eps=pick(g, 1e-5, 1e-3, 1e-2))


def drawn_inputs(B=3, hf=False):
    """Inputs for a drawn config, idx as long as its block_size."""
    def make(g):
        cfg = drawn_config(g)
        return draw(g, cfg, B, cfg["block_size"], hf=hf)
    return make


def with_ignored(make):
    """The same inputs with about a third of the targets set to -100 (never a whole row)."""
    def inputs(g):
        cfg, w, idx, targets = make(g)
        ignored = g.rand(*targets.shape) < 1 / 3
        ignored[:, 0] = False
        return cfg, w, idx, targets.masked_fill(ignored, -100)
    return inputs


def new_model(m, cfg, like):
    manual_seed(0)
    return m.GPT(m.GPTConfig(**cfg)).to(device=like.device, dtype=like.dtype)


def build(m, cfg, w):
    """The learner's GPT holding the weights w (by GPT-2's names), in eval mode."""
    model = new_model(m, cfg, w["wte.weight"])
    missing, unexpected = model.load_state_dict(w, strict=False)
    params = dict(model.named_parameters(remove_duplicate=False))
    if unexpected:
        raise LookupError(f"your GPT has no parameter named {unexpected[0]}, one of GPT-2's: use the "
                          f"lesson's names (the check state_dict lists them)")
    extra = [k for k in missing if k in params]
    if extra:
        raise LookupError(f"your GPT has a parameter {extra[0]} that GPT-2 does not have")
    return model.eval()


# ------------------------------------------------------------------------------------ structure


def parameter_count(m, cfg, w, idx, targets):
    return {"parameters": sum(p.numel() for p in new_model(m, cfg, w["wte.weight"]).parameters())}


def weight_tying(m, cfg, w, idx, targets):
    model = new_model(m, cfg, w["wte.weight"])
    return {"lm_head.weight is wte.weight": model.lm_head.weight is model.wte.weight,
            "lm_head (in_features, out_features)": (model.lm_head.in_features, model.lm_head.out_features),
            "lm_head.bias": "None" if model.lm_head.bias is None else "a tensor"}


def state_dict(m, cfg, w, idx, targets):
    sd = new_model(m, cfg, w["wte.weight"]).state_dict()
    return {"keys that are not GPT-2's parameters": sorted(set(sd) - set(w)),
            "GPT-2's parameters that are missing": sorted(set(w) - set(sd)),
            "parameters of another shape": sorted(k for k in set(sd) & set(w) if sd[k].shape != w[k].shape)}


def bad_heads(m):
    m.GPT(m.GPTConfig(**config(C=30, H=4)))
    return "constructed without an error"


# -------------------------------------------------------------------------------------- forward


def forward(m, cfg, w, idx, targets):
    logits, loss = build(m, cfg, w)(idx)
    return logits, {"loss without targets": "None" if loss is None else repr(loss)}


def with_loss(m, cfg, w, idx, targets):
    return build(m, cfg, w)(idx, targets)


def causality(m, cfg, w, idx, targets):
    """Logits of the first 4 positions, for idx and for idx with every later token changed."""
    model, later = build(m, cfg, w), idx.clone()
    later[:, 4:] = (later[:, 4:] + 1) % cfg["vocab_size"]
    return model(idx)[0][:, :4], model(later)[0][:, :4]


def dropout_train(m, cfg, w, idx, targets):
    model = build(m, cfg, w).train()
    manual_seed(0)
    return model(idx)[0]


def gradients(m, cfg, w, idx, targets):
    """The loss's gradients w.r.t. wte.weight (tied: lm_head's use too) and two weights of the blocks."""
    model = build(m, cfg, w)
    params = dict(model.named_parameters(remove_duplicate=False))
    names = ("wte.weight", "h.0.attn.c_attn.weight", f"h.{cfg['n_layer'] - 1}.mlp.c_fc.weight")
    return torch.autograd.grad(model(idx, targets)[1], [params[n] for n in names])


# --------------------------------------------------------------------------- load_hf_state_dict


def load_hf(m, cfg, sd, idx, targets):
    model = new_model(m, cfg, sd["transformer.wte.weight"]).eval()
    model.load_hf_state_dict(sd)
    return model(idx)[0]


def load_hf_in_place(m, cfg, sd, idx, targets):
    model = new_model(m, cfg, sd["transformer.wte.weight"])
    before = dict(model.named_parameters())
    given = {k: v.clone() for k, v in sd.items()}
    out = model.load_hf_state_dict(sd)
    own = {p.untyped_storage().data_ptr() for p in model.parameters()}
    return {"returns the model itself": out is model,
            "lm_head.weight is wte.weight": model.lm_head.weight is model.wte.weight,
            "the same Parameter objects as before": all(
                dict(model.named_parameters()).get(n) is p for n, p in before.items()),
            "shares a tensor with the state dict": any(v.untyped_storage().data_ptr() in own for v in sd.values()),
            "the state dict is unchanged": all(torch.equal(sd[k], v) for k, v in given.items())}


# ------------------------------------------------------------------------------------- generate


def generate(max_new_tokens, T0=3, **options):
    """The tokens model.generate returns from the first T0 tokens of idx, in eval mode, with a
    generator seeded here (and the global seed fixed, so that every draw is reproducible); options
    (temperature, top_k) are passed only where a check sets them, so that their defaults count."""
    def call(m, cfg, w, idx, targets):
        model = build(m, cfg, w)
        manual_seed(0)
        generator = torch.Generator(device=idx.device).manual_seed(int(targets[0, 0]))
        return model.generate(idx[:, :T0], max_new_tokens, generator=generator, **options)
    return call


def generate_drawn(m, cfg, w, idx, targets, max_new_tokens, T0, options):
    return generate(max_new_tokens, T0, **options)(m, cfg, w, idx, targets)


def drawn_generation(g):
    """A drawn config, temperature and top_k; a prompt 2 tokens short of block_size and 6 new tokens."""
    cfg = drawn_config(g)
    options = dict(temperature=pick(g, 0.5, 0.8, 1.3), top_k=pick(g, 2, 4, 6))
    return (*draw(g, cfg, 2, cfg["block_size"], emb=0.3), 6, cfg["block_size"] - 2, options)


def generate_no_grad(m, cfg, w, idx, targets):
    model = build(m, cfg, w)
    graded = []
    model.register_forward_hook(lambda mod, args, out: graded.append(torch.is_grad_enabled()))
    model.generate(idx[:, :3], 2, temperature=0)
    return {"forward calls": len(graded), "forward calls that record gradients": sum(graded)}


# ------------------------------------------------------------------------------------- training

STEPS, LR = 30, 0.5


def cycle_inputs(V=8):
    """A pattern: each token is followed by its successor on a random cycle through the vocabulary.
    One sequence from every start token, and the weights of a small model."""
    cfg = config(V=V, block=8, L=1, H=2, C=16)

    def make(g):
        order = g.rand(V).argsort()
        succ = torch.empty(V, dtype=torch.long)
        succ[order] = order.roll(-1)
        seq = [torch.arange(V)]
        for _ in range(cfg["block_size"]):
            seq.append(succ[seq[-1]])
        seq = torch.stack(seq, dim=1)  # (V, block_size + 1)
        return cfg, weights(g, cfg, emb=0.3), seq[:, :-1], seq[:, 1:]
    return make


def training(m, cfg, w, idx, targets):
    """STEPS steps of plain gradient descent on the pattern (torch.optim would import torch._dynamo)."""
    model = build(m, cfg, w).train()
    params = list(model.parameters())
    losses = []
    for _ in range(STEPS):
        loss = model(idx, targets)[1]
        losses.append(loss.item())
        grads = torch.autograd.grad(loss, params)
        with torch.no_grad():
            for p, grad in zip(params, grads):
                p -= LR * grad
    with torch.no_grad():
        logits, loss = model.eval()(idx, targets)
    return {"the loss fell by at least half": loss.item() <= losses[0] / 2,
            "then predicts every next token": bool((logits.argmax(-1) == targets).all())}


GEN = dict(B=2, T=7, emb=0.25, block=16)  # logits of spread ~1.4: no token is a sure draw

test_case = cases([
    Case("parameter_count", parameter_count, model_inputs(), upcast=False,
         what="the number of parameters of GPT(vocab_size=48, block_size=12, n_layer=2, n_head=4, n_embd=32)"),
    Case("weight_tying", weight_tying, model_inputs(), upcast=False, what="lm_head of a new GPT"),
    Case("state_dict", state_dict, model_inputs(), upcast=False,
         what="the state_dict of a new GPT against GPT-2's parameter names and shapes"),
    Case("n_embd_not_divisible", bad_heads, lambda g: (), upcast=False, what="GPT(GPTConfig(n_embd=30, n_head=4))"),
    Case("forward", forward, model_inputs(), what="GPT(...)(idx) with idx (2, 7), block_size 12"),
    Case("forward_full_block", forward, model_inputs(B=1, T=12), what="GPT(...)(idx) with idx (1, 12) = block_size"),
    Case("forward_float64", forward, model_inputs(dtype=f64), tol="float64", what="a float64 GPT(...)(idx)"),
    Case("forward_eps", forward, model_inputs(layer_norm_eps=1e-2), what="GPT(...)(idx) with layer_norm_eps=1e-2"),
    Case("forward_quiet", forward, model_inputs(emb=5e-4),
         what="GPT(...)(idx) with embeddings of size ~5e-4, where the default layer_norm_eps matters"),
    Case("too_long", forward, model_inputs(B=1, T=13), what="GPT(...)(idx) with idx (1, 13), block_size 12"),
    Case("causality", causality, model_inputs(T=9),
         what="the logits of positions 0-3, for idx and for idx with tokens 4-8 changed"),
    Case("loss", with_loss, model_inputs(), what="GPT(...)(idx, targets): (logits, loss)"),
    Case("loss_ignore_index", with_loss, with_ignored(model_inputs(B=3, T=8)),
         what="GPT(...)(idx, targets) with some targets -100"),
    Case("gradients", gradients, model_inputs(), tol="grads",
         what="the gradients of the loss w.r.t. wte.weight, h.0.attn.c_attn.weight and h.1.mlp.c_fc.weight"),
    Case("dropout_eval", forward, model_inputs(dropout=0.2), what="GPT(..., dropout=0.2) in eval mode"),
    Case("dropout_train", dropout_train, model_inputs(dropout=0.2), upcast=False,
         what="the logits of GPT(..., dropout=0.2) in train mode after torch.manual_seed(0)"),
    Case("load_hf", load_hf, model_inputs(hf=True),
         what="the logits after load_hf_state_dict of a Hugging Face GPT2LMHeadModel state dict"),
    Case("load_hf_old_buffers", load_hf, model_inputs(hf=True, old_buffers=True),
         what="the logits after load_hf_state_dict of a state dict with attn.bias and attn.masked_bias"),
    Case("load_hf_in_place", load_hf_in_place, model_inputs(hf=True), upcast=False,
         what="the model and the state dict after load_hf_state_dict"),
    Case("greedy", generate(8, temperature=0), model_inputs(T=3, block=16),
         upcast=False, what="generate(idx (2, 3), 8, temperature=0)"),
    Case("generate_no_grad", generate_no_grad, model_inputs(), upcast=False,
         what="whether the forward calls of generate(idx, 2, temperature=0) record gradients"),
    Case("sample", generate(8), model_inputs(**GEN), upcast=False,
         what="generate(idx (2, 3), 8, generator=a seeded torch.Generator)"),
    Case("sample_temperature", generate(8, temperature=2.0), model_inputs(**GEN), upcast=False,
         what="generate(idx (2, 3), 8, temperature=2.0, generator=a seeded torch.Generator)"),
    Case("top_k", generate(10, temperature=2.0, top_k=3), model_inputs(**GEN), upcast=False,
         what="generate(idx (2, 3), 10, temperature=2.0, top_k=3, generator=a seeded torch.Generator)"),
    Case("top_k_above_vocab", generate(6, top_k=60), model_inputs(**GEN), upcast=False,
         what="generate(idx (2, 3), 6, top_k=60, generator=...) with vocab_size 48"),
    Case("crop", generate(6, temperature=0, T0=7), model_inputs(block=8), upcast=False,
         what="generate(idx (2, 7), 6, temperature=0) with block_size 8"),
    Case("training", training, cycle_inputs(), upcast=False,
         what=f"{STEPS} steps of gradient descent (lr {LR}) on sequences that follow a fixed cycle through 8 tokens"),
    Case("forward_hidden", with_loss, drawn_inputs(), hidden=True,
         what="GPT(...)(idx, targets) for a config of hidden sizes and layer_norm_eps"),
    Case("loss_hidden", with_loss, with_ignored(drawn_inputs(B=2)), hidden=True,
         what="GPT(...)(idx, targets) with some targets -100, for a hidden config"),
    Case("load_hf_hidden", load_hf, drawn_inputs(B=2, hf=True), hidden=True,
         what="the logits after load_hf_state_dict, for a hidden config"),
    Case("generate_hidden", generate_drawn, drawn_generation, upcast=False, hidden=True,
         what="generate(idx, 6, temperature=..., top_k=..., generator=...) past block_size, for a hidden config"),
])
