"""grader/judge/samples.py: reference n-gram models and sample-quality metrics discriminate as calibrated."""

from __future__ import annotations

import math
import random
import string
import time
from pathlib import Path

import numpy as np
import pytest

from grader.judge.samples import (
    AddOneBigram,
    NameReference,
    TextReference,
    WittenBellLM,
    median_text_metrics,
    name_metrics,
    text_metrics,
)

DATA = Path(__file__).resolve().parents[1] / "fixtures" / "data"


@pytest.fixture(scope="module")
def names():
    words = (DATA / "names.txt").read_text().splitlines()
    random.Random(42).shuffle(words)
    cut = int(0.8 * len(words))
    return words[:cut], words[cut : cut + 1000]


@pytest.fixture(scope="module")
def name_ref(names):
    return NameReference.fit(names[0])


def bigram_samples(train, n, *, keepdim_bug=False, seed=0):
    """Samples from the add-1 counts bigram, or from its column-normalised (keepdim bug) version."""
    itos = "." + string.ascii_lowercase
    stoi = {c: i for i, c in enumerate(itos)}
    counts = np.ones((27, 27))
    for w in train:
        for a, b in zip("." + w, w + "."):
            counts[stoi[a], stoi[b]] += 1
    probs = counts / (counts.sum(0) if keepdim_bug else counts.sum(1, keepdims=True))
    probs /= probs.sum(1, keepdims=True)  # what torch.multinomial does with unnormalised rows
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(n):
        i, name = 0, ""
        while (i := rng.choice(27, p=probs[i])) != 0:
            name += itos[i]
        out.append(name)
    return out


def test_witten_bell_is_a_distribution():
    lm = WittenBellLM(["abracadabra.", "banana."], order=3, pad=".")
    for history in ["", "a", "ab", "zz", ".."]:
        total = sum(lm.prob(history, c) for c in lm.vocab)
        unseen = lm.prob(history, "#")  # the one slot for characters never seen in training
        assert math.isclose(total + unseen, 1.0, rel_tol=1e-12), history
    assert lm.prob("ab", "r") > lm.prob("ab", "n") > 0


def test_add_one_bigram_matches_closed_form():
    model = AddOneBigram(["ab"])  # pairs .a ab b.
    want = -(math.log(2 / 28) + math.log(2 / 28) + math.log(2 / 28)) / 3
    assert math.isclose(model.mean_nll(["ab"]), want)


def test_real_names_score_better_than_random_strings(names, name_ref):
    real = name_metrics(names[1], name_ref)
    rng = random.Random(0)
    noise = [
        "".join(rng.choice(string.ascii_lowercase) for _ in range(rng.randint(3, 9))) for _ in range(1000)
    ]
    rand = name_metrics(noise, name_ref)
    assert 1.9 < real.wb4_nll < 2.3  # COURSE-NOTES 3.3: 2.107
    assert 2.35 < real.bigram_nll < 2.55
    assert rand.wb4_nll > real.wb4_nll + 3
    assert real.valid == 1.0 and real.long_share == 0
    assert real.exact_real == pytest.approx(1 - real.novel)  # held-out names are not "real" unless given
    with_heldout = NameReference.fit(names[0], heldout_words=names[1])
    assert name_metrics(names[1], with_heldout).exact_real == 1.0
    assert 0.8 < real.novel < 0.95  # the split leaks names listed for both sexes
    assert real.length_tv < 0.1 and rand.length_tv > 0.3


def test_bigram_samples_sit_between_real_names_and_noise(names, name_ref):
    m = name_metrics(bigram_samples(names[0], 1000), name_ref)
    assert 2.9 < m.wb4_nll < 3.9  # COURSE-NOTES: 3.50
    assert 2.25 < m.bigram_nll < 2.65
    assert 5.0 < m.mean_len < 8.0
    assert m.long_share < 0.12 and m.empty == 0 and m.valid > 0.99


def test_keepdim_bug_samples_are_flagged_as_too_long(names, name_ref):
    good = name_metrics(bigram_samples(names[0], 1000), name_ref)
    bug = name_metrics(bigram_samples(names[0], 1000, keepdim_bug=True), name_ref)
    assert bug.mean_len > 15 > 8 > good.mean_len  # COURSE-NOTES: 21.7 vs 6.3
    assert bug.long_share > 0.4 and bug.wb4_nll > good.wb4_nll + 0.8


def test_degenerate_name_batches():
    ref = NameReference.fit(["anna", "bob"])
    empty = name_metrics([], ref)
    assert empty.n == 0 and math.isinf(empty.wb4_nll) and empty.valid == 0
    bad = name_metrics(["", "Ann.", "anna"], ref)
    assert bad.valid == pytest.approx(1 / 3) and bad.empty == pytest.approx(1 / 3)
    assert math.isfinite(bad.wb4_nll)  # unseen characters cost a lot but stay finite
    assert bad.unique == 1.0 and name_metrics(["anna"] * 4, ref).unique == 0.25


@pytest.fixture(scope="module")
def shakespeare():
    text = (DATA / "shakespeare.txt").read_text()
    cut = int(0.9 * len(text))
    return text[:cut], text[cut:]


@pytest.fixture(scope="module")
def text_ref(shakespeare):
    start = time.perf_counter()
    ref = TextReference.fit(shakespeare[0])
    assert time.perf_counter() - start < 10  # the budget is ~3 s on the CI machine; leave slack
    return ref


def test_text_metrics_rank_real_text_above_noise(shakespeare, text_ref):
    val = shakespeare[1]
    real = median_text_metrics([val[i : i + 2000] for i in (0, 30_000, 60_000)], text_ref)
    rng = random.Random(1)
    alphabet = sorted(set(shakespeare[0]))
    noise = text_metrics("".join(rng.choice(alphabet) for _ in range(2000)), text_ref)
    assert 1.3 < real.nll5 < 2.3 and noise.nll5 > 8  # COURSE-NOTES 6.4: 1.40-2.16 vs 10.1
    assert real.wordvalid > 0.8 and noise.wordvalid < 0.25
    assert real.speakerfmt > 0.8 and noise.speakerfmt == 0
    assert real.mem40 < 0.05 and real.distinct2 > 0.85


def test_memorised_text_is_flagged_by_mem40(shakespeare, text_ref):
    copied = shakespeare[0][200_000:202_000]
    m = text_metrics(copied, text_ref)
    assert m.mem40 == 1.0
    half = text_metrics(copied[:1000] + shakespeare[1][:1000], text_ref)
    assert 0.3 < half.mem40 < 0.7


def test_repetitive_text_has_low_distinct2(text_ref):
    m = text_metrics("ROMEO:\nI love thee, I love thee, I love thee.\n\n" * 20, text_ref)
    assert m.distinct2 < 0.1 and m.speakerfmt == 1.0
