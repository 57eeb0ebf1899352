"""Reference solution: greedy decoding and beam search over a next-token model."""

from collections.abc import Callable

import torch
from torch import Tensor

# prefixes (each prompt + generated so far) -> (len(prefixes), V) next-token log-probabilities
NextLogprobs = Callable[[list[list[int]]], Tensor]


def _check_at_least_one(name: str, value: int) -> None:
    if value < 1:
        raise ValueError(f"{name} must be >= 1, got {value}")


def greedy_decode(next_logprobs: NextLogprobs, prompt: list[int], eos_id: int, max_new_tokens: int) -> list[int]:
    _check_at_least_one("max_new_tokens", max_new_tokens)
    tokens: list[int] = []
    for _ in range(max_new_tokens):
        token = int(next_logprobs([prompt + tokens])[0].argmax())
        tokens.append(token)
        if token == eos_id:
            break
    return tokens


def beam_search(
    next_logprobs: NextLogprobs,
    prompt: list[int],
    eos_id: int,
    beam_width: int,
    max_new_tokens: int,
    length_penalty: float = 1.0,
) -> list[tuple[list[int], float]]:
    _check_at_least_one("beam_width", beam_width)
    _check_at_least_one("max_new_tokens", max_new_tokens)
    running: list[tuple[list[int], float]] = [([], 0.0)]  # (generated tokens, logp)
    finished: list[tuple[list[int], float]] = []
    for step in range(1, max_new_tokens + 1):
        logprobs = next_logprobs([prompt + tokens for tokens, _ in running])  # (n, V), one batched call
        vocab = logprobs.shape[-1]
        past = torch.tensor([logp for _, logp in running], dtype=logprobs.dtype)  # (n,)
        totals = past[:, None] + logprobs  # (n, V): logp of every candidate
        order = totals.flatten().argsort(descending=True).tolist()  # all n*V candidates, best first
        new_running: list[tuple[list[int], float]] = []
        for rank, flat in enumerate(order):
            beam, token = divmod(flat, vocab)
            candidate = (running[beam][0] + [token], totals[beam, token].item())
            if token == eos_id:
                # Only an eos among the beam_width best candidates may finish; the rest of the
                # ranking exists only to refill the running set.
                if rank < beam_width:
                    finished.append(candidate)
            else:
                new_running.append(candidate)
                if len(new_running) == beam_width:
                    break  # any eos after this point has rank >= beam_width
        running = new_running
        if step == max_new_tokens:
            finished += running  # out of steps: what is still running counts as finished
        elif len(finished) >= beam_width or not running:
            break  # early_stopping=True: beam_width finished hypotheses are enough
    # Length penalty: divide by len ** length_penalty (len counts eos, not the prompt); the
    # log-probabilities are negative, so a larger penalty favours longer hypotheses.
    scored = [(tokens, logp / len(tokens) ** length_penalty) for tokens, logp in finished]
    scored.sort(key=lambda hyp: hyp[1], reverse=True)
    return scored[:beam_width]
