"""PUBLIC checks for week 5, a subset of the hidden suite: `grader check week5 week5.ipynb`.

The judge rebuilds every input from plan.py and computes each reference itself (float64
attention with torch's scaled_dot_product_attention, reference.py). The hidden suite grades
these checks unchanged."""

from __future__ import annotations

import numpy as np
import pytest

from grader.config import public_module
from grader.judge.answers import to_array

plan = public_module(__file__, "plan")
reference = public_module(__file__, "reference")
ATTN_TOL, max_diff, reference_head = reference.ATTN_TOL, reference.max_diff, reference.reference_head


@pytest.fixture(scope="session")
def corpus(data_dir):
    return plan.corpus(str(data_dir))


@pytest.mark.check(points=1, category="correctness")
def test_encode_decode(answers, corpus):
    """encode/decode round-trip the text; the vocabulary is the corpus's sorted characters."""
    text, chars, ids = corpus
    got = answers.get("encode_decode")
    assert got["chars"] == chars, (f"your vocabulary has {len(got['chars'])} characters, the corpus has "
                                   f"{len(chars)}: build it as sorted(set(text)) from the whole text")
    assert np.array_equal(to_array(got["ids"], "ids"), ids[:500]), "encode(s, stoi) != [stoi[c] for c in s]"
    assert got["decoded"] == text[:500], "decode(encode(s)) does not give s back"


@pytest.mark.check(points=2, category="correctness")
def test_get_batch(answers):
    """get_batch: (B, T) long windows, y is x shifted by one, in range, uses the generator."""
    p = plan.GET_BATCH
    B, T = p["batch_size"], p["block_size"]
    got = answers.get("get_batch")
    x = to_array(got["x"], "x", shape=(B, T))
    y = to_array(got["y"], "y", shape=(B, T))
    assert got["dtypes"] == ["torch.int64", "torch.int64"], f"dtypes {got['dtypes']}; expected torch.long"
    assert np.array_equal(x[:, 1:] - x[:, :-1], np.ones((B, T - 1))), "x is not a contiguous window of data"
    assert np.array_equal(y, x + 1), "y must be x shifted by one position (the next token), y[:, t] = data[i+t+1]"
    assert x.min() >= 0 and y.max() <= p["n"] - 1, f"window out of range: start {x.min()}, end {y.max()}"
    assert np.array_equal(to_array(got["x_again"], "x_again"), x), \
        "the same seeded generator gave different batches: pass generator= to torch.randint"


@pytest.mark.check(points=3, category="correctness")
def test_attention_matches_sdpa(answers, measure):
    """One Head equals torch's causal scaled_dot_product_attention with the same weights (T < block_size)."""
    got = answers.get("head_sdpa")
    out = answers.array("head_sdpa", "out", shape=(plan.HEAD["B"], plan.HEAD["T"], plan.HEAD["head_size"]))
    want = reference_head(plan.head_input(), got["wq"], got["wk"], got["wv"])
    err = measure(max_diff(out, want), target=f"≤ {ATTN_TOL:g}")
    assert err <= ATTN_TOL, (f"max |your Head - causal SDPA| = {err:.3g}. Scale by head_size ** -0.5 "
                             "(not n_embd), mask with tril[:T, :T] (diagonal 0), softmax over dim -1")


@pytest.mark.check(points=3, category="correctness")
def test_causality(answers, corpus, measure):
    """The full GPT in eval mode: changing tokens at positions >= t leaves the logits before t unchanged."""
    vocab = len(corpus[1])
    shape = (len(plan.CAUSAL_CUTS), plan.UNIT["block_size"], vocab)
    a = answers.array("causality", "a", shape=shape)
    b = answers.array("causality", "b", shape=shape)
    leak = max(float(np.abs(a[r, :cut] - b[r, :cut]).max()) for r, cut in enumerate(plan.CAUSAL_CUTS))
    measure(leak, target="≤ 1e-5")
    assert leak <= 1e-5, f"logits before position t changed by {leak:.3g} when only tokens >= t changed: the model sees the future"
    assert max(float(np.abs(a[r, cut:] - b[r, cut:]).max()) for r, cut in enumerate(plan.CAUSAL_CUTS)) > 0, \
        "logits ignore the input tokens"


def generate_runs(answers, vocab: int) -> dict:
    """The generate probe's four runs, with what every correct generate shows: (B, T + n) ids in the
    vocabulary, the prompt kept, the same torch seed giving the same samples."""
    got = answers.get("generate")
    idx = plan.rng("small").integers(0, vocab, size=(3, 6))[:2, :3]
    runs = {k: to_array(got[k], k, shape=(2, 3 + 20)) for k in ("sampled", "sampled_again", "greedy_1", "greedy_2")}
    for name, out in runs.items():
        assert np.array_equal(out[:, :3], idx), f"{name}: the prompt is not kept at the start"
        assert out.min() >= 0 and out.max() < vocab, f"{name}: token ids outside the vocabulary"
    assert np.array_equal(runs["sampled"], runs["sampled_again"]), "same torch seed, different samples"
    return runs


@pytest.mark.check(points=2, category="correctness")
def test_generate(answers, corpus):
    """generate runs past block_size (context cropped), keeps the prompt, returns (B, T + n) ids."""
    runs = generate_runs(answers, len(corpus[1]))
    assert np.array_equal(runs["greedy_1"], runs["greedy_2"]), "top_k=1 must pick the argmax whatever the seed"
