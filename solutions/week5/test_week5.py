"""TRUSTED checks for week 5: the judge rebuilds every input from plan.py and computes every
reference itself (float64 attention with torch's scaled_dot_product_attention, parameter counts
from the architecture's formula, the val loss from held-out targets, n-gram sample metrics)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch.nn import functional as F
from week5_reference import gpt_param_count

from grader.config import public_module
from grader.judge.answers import to_array, to_number
from grader.judge.samples import TextReference, median_text_metrics
from grader.report.charts import write_curve

plan = public_module(__file__, "plan")  # builds every input (solutions/week5/plan.py sends them all)
reference = public_module(__file__, "reference")
ATTN_TOL, f64, max_diff, reference_head = reference.ATTN_TOL, reference.f64, reference.max_diff, reference.reference_head
public = public_module(__file__, "test_public")  # its checks are graded here unchanged, in this order
corpus = public.corpus


# ---------------------------------------------------------------------------------- data
test_encode_decode = public.test_encode_decode


@pytest.mark.check(points=1, category="correctness")
def test_train_val_split(answers):
    """train_val_split keeps the order: first 90% train, last 10% val."""
    train = answers.array("train_val_split", "train")
    val = answers.array("train_val_split", "val")
    assert np.array_equal(train, np.arange(90)) and np.array_equal(val, np.arange(90, 100)), \
        f"split of arange(100) gave train {train[:5]}... ({len(train)}), val ({len(val)}); expected 90/10 in order"


test_get_batch = public.test_get_batch


@pytest.mark.check(points=1, category="correctness")
def test_bigram_model(answers, corpus):
    """BigramLanguageModel: (B, T, V) logits, cross-entropy loss, generate appends tokens."""
    vocab = len(corpus[1])
    got = answers.get("bigram")
    logits = answers.array("bigram", "logits", shape=(3, 6, vocab))
    idx = plan.rng("small").integers(0, vocab, size=(3, 6))
    want = F.cross_entropy(f64(logits).view(-1, vocab), torch.as_tensor(np.roll(idx, -1, axis=1)).view(-1))
    loss = to_number(got["loss"], "loss")
    assert abs(loss - float(want)) < 1e-4, f"loss {loss:.5f}, cross-entropy of your logits {float(want):.5f}"
    assert got["loss_without_targets_is_none"] is True, "forward(idx) without targets must return loss None"
    assert got["generated_shape"] == [3, 7], f"generate(idx (3, 2), 5) gave shape {got['generated_shape']}"


# ---------------------------------------------------------------------------------- attention
test_attention_matches_sdpa = public.test_attention_matches_sdpa


@pytest.mark.check(points=2, category="correctness")
def test_attention_weights(answers):
    """Attention weights: each row sums to one and the strict upper triangle is exactly zero."""
    wei = answers.array("head_weights", shape=(plan.ATTN_T, plan.ATTN_T))
    rows = np.abs(wei.sum(axis=1) - 1).max()
    upper = np.abs(np.triu(wei, k=1)).max()
    assert rows < 1e-5, f"attention rows sum to {wei.sum(axis=1).round(3)}: softmax over the last dim"
    assert upper == 0.0, f"position t attends to later positions (max weight {upper:.3g}): mask the future"


@pytest.mark.check(points=2, category="correctness")
def test_multihead(answers):
    """MultiHeadAttention concatenates its heads on the channel dim and projects back to n_embd."""
    got = answers.get("multihead")
    m = plan.MHA
    out = answers.array("multihead", "out", shape=(m["B"], m["T"], m["n_embd"]))
    x = plan.mha_input()
    heads = [reference_head(x, h["wq"], h["wk"], h["wv"]) for h in got["heads"]]
    assert len(heads) == m["num_heads"], f"{len(heads)} heads, expected {m['num_heads']}"
    want = torch.cat(heads, dim=-1) @ f64(got["proj_w"]).T + f64(got["proj_b"])
    err = max_diff(out, want)
    assert err <= ATTN_TOL, f"max |output - proj(cat(heads))| = {err:.3g}"


@pytest.mark.check(points=1, category="correctness")
def test_feedforward(answers):
    """FeedForward keeps the shape, acts on each position alone, and is non-linear."""
    got = answers.get("feedforward")
    out = to_array(got["out"], "out", shape=(2, 6, plan.UNIT["n_embd"]))
    bumped = to_array(got["out_bumped"], "out_bumped", shape=out.shape)
    changed = np.abs(bumped - out).max(axis=(0, 2)) > 1e-6
    assert changed.tolist() == [i == 3 for i in range(6)], f"changing position 3 changed positions {np.where(changed)[0]}"
    assert np.abs(to_array(got["out_double"], "out_double") - 2 * out).max() > 1e-4, "FeedForward is linear: add the ReLU"


@pytest.mark.check(points=2, category="correctness")
def test_block_prenorm(answers):
    """Block is causal and pre-norm: Block(x + c) == Block(x) + c (LayerNorm before each sub-layer)."""
    got = answers.get("block")
    T = plan.UNIT["block_size"]
    out = to_array(got["out"], "out", shape=(2, T, plan.UNIT["n_embd"]))
    shifted = to_array(got["out_shifted"], "out_shifted", shape=out.shape)
    future = to_array(got["out_future_changed"], "out_future_changed", shape=out.shape)
    leak = np.abs(future[:, :9] - out[:, :9]).max()
    assert leak <= 1e-5, f"changing positions >= 9 changed Block outputs before 9 by {leak:.3g}"
    err = np.abs(shifted - (out + 3.0)).max()
    assert err <= 1e-3, (f"Block(x + 3) - Block(x) differs from 3 by {err:.3g}: use pre-norm residuals, "
                         "x = x + sa(ln1(x)); x = x + ffwd(ln2(x))")


test_causality = public.test_causality


@pytest.mark.check(points=1, category="correctness")
def test_dropout_eval(answers):
    """Dropout is off in eval() (two forwards identical) and on in train() (dropout=0.5: they differ)."""
    got = answers.get("dropout")
    e1, e2 = (to_array(v, "eval") for v in got["eval"])
    t1, t2 = (to_array(v, "train") for v in got["train"])
    assert np.array_equal(e1, e2), "two forwards in eval() mode differ: use nn.Dropout modules (off in eval)"
    assert not np.array_equal(t1, t2), "two forwards in train() mode with dropout=0.5 are identical: apply dropout"


test_generate = public.test_generate


@pytest.mark.check(points=2, category="correctness")
def test_param_count(answers, corpus):
    """Parameter counts match the lecture architecture (10,788,929 for the lecture config at vocab 65)."""
    vocab = len(corpus[1])
    got = answers.get("param_count")
    want = [gpt_param_count(vocab, **c) for c in (plan.LECTURE, plan.SMALL, plan.UNIT)]
    got = [int(to_number(v, "count")) for v in got] if isinstance(got, list) else got
    assert got == want, f"parameter counts {got}, expected {want} (lecture, small, unit configs)"


# ---------------------------------------------------------------------------------- training
@pytest.fixture(scope="session")
def scored(answers, corpus, thresholds):
    _, chars, ids = corpus
    cfg = plan.SMALL if thresholds["train_source"] == "train" else plan.LECTURE
    _, val_y = plan.val_windows(plan.split(ids)[1], cfg["block_size"])
    logits = answers.array("train_and_score", "val_logits", shape=(*val_y.shape, len(chars)))
    loss = F.cross_entropy(f64(logits).view(-1, len(chars)), torch.as_tensor(val_y).reshape(-1))
    return float(loss), answers.get("train_and_score")


@pytest.mark.check(points=6, category="loss")
def test_val_loss(scored, thresholds, measure, profile, artifacts):
    """Val loss on every non-overlapping val window (judge-held targets) is low, but not impossibly low."""
    loss, got = scored
    if thresholds["train_source"] == "train":  # the grader's own run; a notebook-trained model has no curve
        write_curve(artifacts / "week5_train_curve.json", got.get("curve") or [],
                    title="GPT train loss (grader's run)", target=thresholds["val_loss_pass"])
    measure(loss, pass_at=thresholds["val_loss_pass"], fail_at=thresholds["val_loss_fail"],
            floor=thresholds["val_loss_floor"], train_seconds=round(float(got["train_seconds"]), 1))
    if loss < thresholds["val_loss_floor"]:  # a failed assert alone would keep the band's credit
        measure(loss, pass_at=thresholds["val_loss_floor"], fail_at=thresholds["val_loss_floor"] - 1e-9)
    assert loss >= thresholds["val_loss_floor"], (
        f"val loss {loss:.3f} is far below what this model can reach (floor {thresholds['val_loss_floor']}): "
        "it sees the tokens it must predict - check the causal mask and the softmax dim")
    assert loss <= thresholds["val_loss_pass"], f"val loss {loss:.3f} (target ≤ {thresholds['val_loss_pass']})"


@pytest.mark.check(points=3, category="samples")
def test_samples(scored, corpus, thresholds, measure, artifacts):
    """Generated text looks like the corpus: real words, low 5-gram NLL, not memorised, not repetitive."""
    text, chars, ids = corpus
    _, got = scored
    samples = to_array(got["samples"], "samples", shape=(thresholds["n_samples"], thresholds["sample_len"] + 1))
    assert samples.min() >= 0 and samples.max() < len(chars), "sampled ids outside the vocabulary"
    decoded = ["".join(chars[i] for i in row[1:]) for row in samples.astype(int)]
    for k, s in enumerate(decoded):
        (artifacts / f"sample_{k}.txt").write_text(s)
    ref = TextReference.fit(text[: int(0.9 * len(text))])
    m = median_text_metrics(decoded, ref)
    measure(m.nll5, pass_at=thresholds["nll5_pass"], fail_at=thresholds["nll5_fail"], nll5=round(m.nll5, 3))
    measure(m.wordvalid, pass_at=thresholds["wordvalid_pass"], fail_at=thresholds["wordvalid_fail"],
            wordvalid=round(m.wordvalid, 3), speakerfmt=round(m.speakerfmt, 3), mem40=round(m.mem40, 3),
            distinct2=round(m.distinct2, 3))
    measure(m.mem40, pass_at=thresholds["mem40_max"], fail_at=thresholds["mem40_max"] + 1e-9)
    measure(m.distinct2, pass_at=thresholds["distinct2_min"], fail_at=thresholds["distinct2_min"] - 1e-9)
    measure(m.speakerfmt, pass_at=thresholds["speakerfmt_min"], fail_at=thresholds["speakerfmt_min"] - 1e-9)
    measure(m.wordvalid, pass_at=thresholds["wordvalid_pass"], fail_at=thresholds["wordvalid_fail"])
    assert m.mem40 <= thresholds["mem40_max"], f"{m.mem40:.0%} of 40-char windows are copied from the training text"
    assert m.distinct2 >= thresholds["distinct2_min"], f"distinct word bigrams {m.distinct2:.2f}: the sample repeats itself"
    assert m.speakerfmt >= thresholds["speakerfmt_min"], f"speaker format {m.speakerfmt:.2f}"


# ---------------------------------------------------------------------------------- runs clean
@pytest.mark.check(points=1, category="runs_clean")
def test_runs_clean(execution):
    """Every cell of the notebook runs without an error."""
    failures = execution.get("failures", [])
    assert execution.get("cells_run", 0) > 0 and not failures, \
        "cells failed: " + "; ".join(f"cell {f['index']}: {f.get('ename', '')} {f.get('evalue', '')}"[:200] for f in failures)
