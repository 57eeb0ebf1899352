"""Greedy decoding and beam search.

A language model does not write text; it scores the next token. Decoding turns those scores
into a sequence, and the simplest rule, always take the most likely token, is not the one
that finds the most likely sequence. Beam search keeps several candidates alive instead.
Here you implement both, exactly as Hugging Face's `generate(num_beams=..., early_stopping=True)`
does, so that your answers can be checked token for token.

The model
---------
A language model here is any callable

    next_logprobs(prefixes: list[list[int]]) -> Tensor            # (len(prefixes), V)

Row i holds log p(next token | prefixes[i]) for every token of a vocabulary of size V;
each prefix is the prompt followed by the tokens generated so far. The model takes a whole
batch of prefixes at once because a real one runs them through the network together: one
call with 4 rows costs about as much as a call with 1 row, so beam search must make one
call per step with all its running prefixes, never one call per hypothesis.

Greedy decoding
---------------
    tokens = []
    repeat max_new_tokens times:
        t = argmax next_logprobs([prompt + tokens])[0]
        tokens.append(t)
        stop if t == eos_id                     # eos is part of the output

Greedy is short-sighted. With p(A) = 0.45, p(B) = 0.40 after the prompt, it takes A even when
every continuation of A is unlikely (p <= 0.35) and B is almost surely followed by C (0.9):
p(A x) <= 0.16 < p(B C) = 0.36.

Beam search
-----------
A hypothesis h is its generated tokens (never the prompt); its log-probability is the sum
of its tokens' log-probabilities (a product of probabilities; sums of logs do not underflow):

    logp(h) = sum_i log p(h_i | prompt + h_<i)

Start with one running hypothesis: empty, logp 0, and no finished ones. Each step:

    1. one call: logprobs = next_logprobs([prompt + h for h in running])     # (n, V), n <= beam_width
    2. every candidate h + [t] has logp(h) + logprobs[h, t]: n * V candidates in all.
       Rank them ALL together by logp, highest first (rank 0, 1, 2, ...).
    3. Walk the ranking:
         - a candidate ending in eos_id at rank r < beam_width is finished;
           at rank r >= beam_width it is dropped;
         - a candidate not ending in eos_id joins the new running set, until that set holds
           beam_width hypotheses (then stop walking: any eos after that has rank >= beam_width).
       Finished hypotheses leave the beam for good: they are never extended again.
    4. Stop when at least beam_width hypotheses have finished (early_stopping=True), or after
       step max_new_tokens. After that last step every running hypothesis counts as finished
       too, even when beam_width hypotheses finished in that same step (as transformers >= 4.50
       does).

Why walk a ranking instead of taking the top beam_width? Up to beam_width of the best
candidates may end in eos; they finish and free their slots, and the beam is refilled with the
next best candidates that do not end in eos, so the beam always holds beam_width hypotheses.
Why is an eos only accepted at rank < beam_width? Only the top beam_width candidates are "in
the beam"; the ones further down are backups for refilling it, not winners.

Example, beam_width = 2, ranking at some step (logp):

    rank 0  [1, eos]  -0.7     finished
    rank 1  [1, 5]    -1.6     running
    rank 2  [2, eos]  -1.7     dropped (rank >= 2)
    rank 3  [1, 4]    -1.9     running; the running set is full, the walk stops

Length penalty
--------------
Longer hypotheses have more negative log-probabilities, so comparing raw logp favours short
ones. A finished hypothesis is scored

    score(h) = logp(h) / len(h) ** length_penalty

where len(h) counts the generated tokens, eos included, and not the prompt. length_penalty = 0
compares raw logp; 1 compares the average log-probability per token; larger values favour
longer hypotheses further. (The name is Hugging Face's; it is really a length reward.)

Return at most beam_width finished hypotheses as (tokens, score), best score first.

Shapes and types
----------------
    prompt                         list[int]
    prefixes passed to the model   list[list[int]], at most beam_width of them
    next_logprobs(...)             Tensor (n, V), float
    greedy_decode(...)             list[int]                      generated tokens only
    beam_search(...)               list[tuple[list[int], float]]  generated tokens, score

Ties in the ranking can go either way; the models used to check your code have none.

References
----------
- Hugging Face transformers, `GenerationMixin._beam_search` (generation/utils.py, >= 4.50)
- Wu et al. 2016, "Google's Neural Machine Translation System", section 7: length normalisation
  (with ((5 + len) / 6) ** alpha; Hugging Face uses the plainer len ** alpha)
- Graves 2012, "Sequence Transduction with Recurrent Neural Networks" (beam search for sequences)
"""

from collections.abc import Callable

from torch import Tensor

# prefixes (each prompt + generated so far) -> (len(prefixes), V) next-token log-probabilities
NextLogprobs = Callable[[list[list[int]]], Tensor]


def greedy_decode(next_logprobs: NextLogprobs, prompt: list[int], eos_id: int, max_new_tokens: int) -> list[int]:
    """Take the most likely token at every step.

    Returns the generated tokens only (not the prompt). Stops after emitting eos_id (which is
    included) or after max_new_tokens tokens. Calls next_logprobs with one prefix per step.
    max_new_tokens < 1 -> ValueError.
    """
    raise NotImplementedError("greedy_decode: argmax of next_logprobs([prompt + tokens])[0], step by step, until eos or max_new_tokens")


def beam_search(
    next_logprobs: NextLogprobs,
    prompt: list[int],
    eos_id: int,
    beam_width: int,
    max_new_tokens: int,
    length_penalty: float = 1.0,
) -> list[tuple[list[int], float]]:
    """Beam search, as transformers' generate(num_beams=beam_width, early_stopping=True).

    Each step makes one call to next_logprobs with every running prefix (prompt + tokens),
    ranks all candidates of all running hypotheses together by logp, finishes the eos
    candidates ranked below beam_width, refills the beam with the best non-eos candidates.
    Stops once beam_width hypotheses have finished, or after max_new_tokens steps (then the
    running hypotheses count as finished too).

    Returns at most beam_width (tokens, score) pairs, best score first; tokens are the generated
    ones (no prompt), score = logp / len(tokens) ** length_penalty with eos counted in len.
    beam_width < 1 or max_new_tokens < 1 -> ValueError.
    """
    raise NotImplementedError("beam_search: rank all candidates by logp each step, finish eos at rank < beam_width, refill the beam, score by logp / len ** length_penalty")
