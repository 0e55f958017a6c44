"""TRUSTED: week 2 hidden checks. References are computed here from names.txt, never in the sandbox."""

from __future__ import annotations

import math
from functools import lru_cache

import cases
import numpy as np
import pytest
import torch
from week2_reference import reference_train, train_runs

from grader.judge.answers import to_array, to_number
from grader.judge.samples import NameReference, name_metrics
from grader.judge.verdict import require

LETTERS = set("abcdefghijklmnopqrstuvwxyz")


@lru_cache(maxsize=1)
def reference(data_dir):
    """All names and their counts, the graded sample and its counts, the name n-gram reference."""
    words = cases.load_words(data_dir)
    graded = cases.graded_words(words)
    return words, cases.bigram_counts(words), graded, cases.bigram_counts(graded), NameReference.fit(words)


def prepare(data_dir, thresholds, profile):
    """Called by the judge while the notebook still runs (grader/judge/plugin.py)."""
    reference(data_dir)
    for _, args in train_runs(thresholds):
        reference_train(data_dir, **args)


@pytest.fixture(scope="module")
def words(data_dir):
    return reference(data_dir)[0]


@pytest.fixture(scope="module")
def counts(data_dir):
    return reference(data_dir)[1]


@pytest.fixture(scope="module")
def graded(data_dir):
    """The names the counts and NLL probes were given (every GRADED_STRIDE-th name)."""
    return reference(data_dir)[2]


@pytest.fixture(scope="module")
def graded_counts(data_dir):
    return reference(data_dir)[3]


@pytest.mark.check(points=1, category="correctness")
def test_vocab(answers, words):
    """build_vocab maps '.' to 0 and a-z to 1..26, and itos inverts stoi."""
    got = answers.get("vocab")
    assert got["stoi"] == cases.STOI, f"stoi should be {{'.': 0, 'a': 1, ..., 'z': 26}}; got {got['stoi']}"
    assert got["itos"] == {str(i): c for c, i in cases.STOI.items()}, "itos must be the inverse of stoi"


@pytest.mark.check(points=2, category="correctness")
def test_bigram_counts_exact(answers, words, graded_counts):
    """bigram_counts gives exactly the reference counts (start and end tokens included), also for names
    without a 'z' (the counts are 27 x 27 whatever the names)."""
    _counts_match(answers.array("counts", "counts", shape=(27, 27)), graded_counts)
    few = cases.z_free_words(words)
    try:
        _counts_match(answers.array("counts_z_free", "counts", shape=(27, 27)), cases.bigram_counts(few))
    except AssertionError as exc:
        raise AssertionError(f"for {len(few)} names without a 'z': {exc}") from None


def _counts_match(got, counts) -> None:
    total, ends = int(counts.sum()), int(counts[:, 0].sum())  # ends: one per name given
    hints = []
    if got[:, 0].sum() != ends or got[0].sum() != ends:
        hints.append(f"N[0].sum() = {got[0].sum():.0f} and N[:, 0].sum() = {got[:, 0].sum():.0f} must both be "
                     "the number of names you were given (one start and one end token per name): put '.' "
                     "before the first and after the last letter of every name")
    if got.sum() != total:
        hints.append(f"N.sum() = {got.sum():.0f} is {got.sum() - total:+.0f} from the number of bigrams "
                     "(letters + 1 per name)")
    assert np.array_equal(got, counts), (
        f"counts differ from the grader's in {int((got != counts).sum())} of 729 cells"
        + ("; " + "; ".join(hints) if hints else " (the totals are right: a pair is counted in the wrong cell, "
           "N[stoi[a], stoi[b]] with a the first letter)"))


@pytest.mark.check(points=2, category="correctness")
def test_probs_rows_sum_to_one(answers):
    """counts_to_probs returns floats whose ROWS sum to one (columns do not)."""
    got = answers.get("probs")
    assert "float" in got["dtype"], (
        f"P has dtype {got['dtype']}: probabilities need a float tensor (.float())"
    )
    p = answers.array("probs", "p1", shape=(27, 27))
    rows, cols = p.sum(1), p.sum(0)
    assert np.allclose(rows, 1, atol=1e-5), (
        f"rows of P sum to {rows.min():.3f}..{rows.max():.3f}, not 1. "
        + (
            "The columns sum to 1 instead: P.sum(1) without keepdim=True broadcasts across the wrong axis."
            if np.allclose(cols, 1, atol=1e-5)
            else ""
        )
    )
    assert not np.allclose(cols, 1, atol=1e-4), "columns sum to one too: normalise rows only"
    assert ((p >= 0) & (p <= 1)).all(), "probabilities must lie in [0, 1]"


@pytest.mark.check(points=2, category="correctness")
def test_probs_values(answers, counts):
    """counts_to_probs adds `smoothing` fake counts and normalises rows (smoothing 1 and 0)."""
    for key, k in (("p1", 1.0), ("p0", 0.0)):
        got = answers.array("probs", key, shape=(27, 27))
        want = cases.probs(counts, k)
        err = float(np.abs(got - want).max())
        assert err < 1e-6, (
            f"counts_to_probs(N, smoothing={k:g}) differs from (N + {k:g}) / row sums by up to "
            f"{err:.2e}" + (" (is smoothing applied?)" if k else "")
        )


@pytest.mark.check(points=2, category="correctness")
def test_avg_nll_value(answers, graded, counts, thresholds):
    """avg_nll gives the mean NLL per bigram of the grader's P on the graded names and one unseen word."""
    p = cases.probs(counts, 1.0).astype(np.float32).astype(np.float64)  # the exact matrix the probe received
    for key, sample in (("all", graded), ("unseen", [thresholds["unseen_word"]])):
        got = answers.number("nll", key)
        want = cases.avg_nll(p, sample)
        assert abs(got - want) < 1e-4, (
            f"avg_nll on the {key} words: {got:.6f}, off by {got - want:+.2e} (target within 1e-4)"
            + ("; it is the total, not the mean over bigrams" if abs(got / want - 1) > 1.5 else ""))


@pytest.mark.check(points=2, category="loss")
def test_nll_band(answers, graded, graded_counts, thresholds, measure):
    """Your counts model's NLL on the graded names matches the reference (smoothing 1)."""
    want = cases.avg_nll(cases.probs(graded_counts, 1.0), graded)
    got = answers.number("pipeline", "all")
    dev = abs(got - want)
    measure(dev, pass_at=thresholds["nll_dev_pass"], fail_at=thresholds["nll_dev_fail"], nll=round(got, 5))
    require(got > want - thresholds["nll_dev_pass"], (
        f"NLL {got:.4f} is {want - got:.4f} below what the smoothed counts model gives on these names: the "
        "loss is computed on the wrong pairs or averaged over the wrong count"))
    assert dev <= thresholds["nll_dev_pass"], (
        f"NLL {got:.4f} is {dev:.4f} nats above the counts model's (target within {thresholds['nll_dev_pass']})")


@pytest.mark.check(points=1, category="correctness")
def test_nll_unseen_finite(answers, thresholds):
    """With smoothing, a name with an unseen bigram still gets a finite NLL."""
    got = answers.get("pipeline")["unseen"]
    assert isinstance(got, float) and math.isfinite(got), (
        f"avg_nll(P, ['{thresholds['unseen_word']}']) = {got}: with smoothing=1 no probability may be 0"
    )


@pytest.mark.check(points=1, category="correctness")
def test_bigram_dataset(answers, words):
    """make_bigram_dataset returns int64 inputs/targets ('emma' -> [0,5,13,13,1] / [5,13,13,1,0])."""
    got = answers.get("dataset")
    xs, ys = cases.pairs_of(cases.dataset_words(words))
    assert got["dtype"] == "torch.int64", f"xs has dtype {got['dtype']}, expected torch.int64"
    for key, want in (("xs", xs), ("ys", ys)):
        have = answers.array("dataset", key)
        assert len(have) == len(want), (f"{key} has {len(have)} entries for the grader's 5 names, which have "
                                        f"{len(want)} bigrams (letters + 1 per name)")
        wrong = np.flatnonzero(have != want)
        assert not len(wrong), f"{key} differs at {len(wrong)} of {len(want)} positions, first at {wrong[0]}"


@pytest.mark.check(points=3, category="gradient")
def test_net_loss_and_grad(answers, words, thresholds, measure):
    """bigram_net_loss value and W.grad match torch float64 (reg 0, 0.01, 0.1), and on names without a 'z'."""
    worst, problems = 0.0, []
    for key, args, where in (("net_loss", cases.net_inputs(words), ""),
                             ("net_loss_z_free", cases.net_inputs_z_free(words), " on names without a 'z'")):
        got = answers.get(key)
        assert isinstance(got, list) and len(got) == len(args["regs"]), "expected one answer per reg value"
        worst = max(worst, _net_loss_errors(args, got, thresholds, problems, where))
    measure(worst, pass_at=thresholds["net_loss_rel_pass"], fail_at=thresholds["net_loss_rel_fail"], log=True)
    assert not problems, "; ".join(problems) + ". The loss is mean NLL + reg * (W**2).mean()."


def _net_loss_errors(args: dict, got: list, thresholds: dict, problems: list[str], where: str) -> float:
    """The worst relative error of the loss and W.grad over the regs; a line in `problems` for each miss."""
    worst = 0.0
    for reg, entry in zip(args["regs"], got):
        W = torch.tensor(args["w"], dtype=torch.float64, requires_grad=True)
        logp = torch.log_softmax(W[torch.from_numpy(args["xs"])], dim=1)
        loss = -logp[torch.arange(len(args["ys"])), torch.from_numpy(args["ys"])].mean() + reg * (W**2).mean()
        loss.backward()
        got_loss = to_number(entry["loss"], f"loss (reg={reg})")
        grad = to_array(entry["grad"], f"W.grad (reg={reg})", shape=(27, 27)).astype(np.float64)
        loss_err = abs(got_loss - loss.item()) / abs(loss.item())
        grad_err = float(np.abs(grad - W.grad.numpy()).max() / np.abs(W.grad.numpy()).max())
        worst = max(worst, loss_err, grad_err)
        if max(loss_err, grad_err) > thresholds["net_loss_rel_pass"]:
            problems.append(f"reg={reg}{where}: loss {got_loss:.7f} (rel. error {loss_err:.1e}), "
                            f"W.grad rel. error {grad_err:.1e}")
    return worst


@pytest.mark.check(points=3, category="loss")
def test_trained_net_loss(answers, data_dir, thresholds, measure):
    """train_bigram_net ends where the grader's own run ends (same seed, steps, lr, reg and data), twice."""
    xs, ys = cases.train_pairs(cases.load_words(data_dir))
    floor = cases.conditional_entropy(xs, ys)  # no W of any kind can go below this on these pairs
    t, worst, problems = thresholds, 0.0, []
    for key, args in train_runs(thresholds):
        loss = cases.net_loss(answers.array(key, "w", shape=(27, 27)), xs, ys, args["reg"])
        require(loss >= floor - 1e-6, f"loss {loss:.4f} is below the entropy of the training pairs ({floor:.4f}), "
                                      "which no model can beat")
        dev = loss - cases.net_loss(reference_train(data_dir, **args), xs, ys, args["reg"])
        worst = max(worst, abs(dev))
        if abs(dev) > t["trained_loss_slack"]:
            hint = ("lower than this budget reaches: honour steps and lr" if dev < 0 else
                    "reset W.grad before each backward(), step W.data -= lr * W.grad, and use the seed and "
                    "reg you are given")
            problems.append(f"after {args['steps']} steps (lr {args['lr']:g}, reg {args['reg']:g}, seed "
                            f"{args['seed']}) the loss is {loss:.4f}, {dev:+.4f} from the grader's own run "
                            f"(target within {t['trained_loss_slack']}): {hint}")
    measure(worst, pass_at=t["trained_loss_slack"], fail_at=t["trained_loss_fail"], steps=t["train_steps"])
    assert not problems, "; ".join(problems)


@pytest.mark.check(points=3, category="correctness")
def test_sampler_statistics(answers, counts, thresholds, measure):
    """sample_names from the grader's P: a-z only, no empties, first letters and lengths as P implies."""
    names = answers.strings("sampler")
    n = thresholds["sampler_n"]
    require(len(names) == n, f"asked for {n} names, got {len(names)}")
    bad = [s for s in names if not s or not set(s) <= LETTERS]
    require(not bad, f"{len(bad)} names are empty or contain characters outside a-z, e.g. {bad[:3]}")
    first_draw, same, other = (answers.strings("sampler_seeds", k) for k in ("first", "same", "other"))
    require(first_draw == same, "two generators seeded alike gave different names: draw every sample with "
                                "the generator you are given (torch.multinomial(..., generator=generator))")
    require(first_draw != other, "generators with different seeds gave the same names: the generator is ignored")
    p = cases.probs(counts, 0.0)
    first = np.bincount([cases.STOI[s[0]] for s in names], minlength=27)[1:] / n
    tv = 0.5 * float(np.abs(first - p[0, 1:]).sum())
    mean_len = sum(map(len, names)) / n
    measure(
        tv,
        pass_at=thresholds["first_letter_tv_max"],
        fail_at=2 * thresholds["first_letter_tv_max"],
        mean_length=round(mean_len, 3),
    )
    assert tv <= thresholds["first_letter_tv_max"], (
        f"first letters differ from P[0] (total variation {tv:.3f})"
    )
    require(thresholds["sampler_len_min"] <= mean_len <= thresholds["sampler_len_max"], (
        f"mean name length {mean_len:.2f} (target {thresholds['sampler_len_min']}-{thresholds['sampler_len_max']}): "
        "a name ends when the end token '.' (index 0) is drawn"))


@pytest.mark.check(points=3, category="samples")
def test_sample_quality(answers, data_dir, thresholds, measure, artifacts):
    """Names sampled from your own model look like the bigram model's (n-gram reference metrics)."""
    names = answers.strings("own_samples")
    (artifacts / "week2_samples.txt").write_text("\n".join(names[:200]) + "\n", encoding="utf-8")
    m = name_metrics(names, reference(data_dir)[4])
    t = thresholds
    problems = []
    if len(names) != t["quality_n"]:
        problems.append(f"{len(names)} samples instead of {t['quality_n']}")
    if m.valid < t["quality_valid_min"]:
        problems.append(f"only {m.valid:.0%} are non-empty a-z names of at most 40 letters")
    if not t["quality_len_min"] <= m.mean_len <= t["quality_len_max"]:
        problems.append(
            f"mean length {m.mean_len:.1f} (expected {t['quality_len_min']}-{t['quality_len_max']}; "
            "very long names mean the rows of P do not sum to one)"
        )
    if not t["quality_bigram_nll_min"] <= m.bigram_nll <= t["quality_bigram_nll_max"]:
        problems.append(
            f"bigram NLL {m.bigram_nll:.3f} outside {t['quality_bigram_nll_min']}-"
            f"{t['quality_bigram_nll_max']}"
        )
    if m.long_share > t["quality_long_pass"]:
        problems.append(f"{m.long_share:.0%} longer than 15 letters")
    if m.wb4_nll > t["quality_wb4_pass"]:
        problems.append(f"4-gram NLL {m.wb4_nll:.2f} > {t['quality_wb4_pass']}")
    measure(m.long_share, pass_at=t["quality_long_pass"], fail_at=t["quality_long_fail"], metric="long_share")
    measure(
        m.wb4_nll,
        pass_at=t["quality_wb4_pass"],
        fail_at=t["quality_wb4_fail"],
        **{k: round(v, 4) for k, v in m.as_dict().items()},
    )
    require(not problems, "samples: " + "; ".join(problems))


@pytest.mark.check(points=1, category="runs_clean")
def test_runs_clean(execution, answers, graded_counts):
    """Every cell of the notebook runs without an error (and bigram_counts works: a clean run of nothing
    proves nothing)."""
    require(np.array_equal(answers.array("counts", "counts", shape=(27, 27)), graded_counts),
            "runs clean counts only once bigram_counts gives the right counts (see that check)")
    failures = execution.get("failures") or []
    status = execution.get("status")
    assert status == "ok" and not failures, f"notebook status {status}; {len(failures)} cell(s) failed" + (
        f", first: {failures[0].get('ename', '')}: {failures[0].get('evalue', '')[:200]}" if failures else ""
    )
