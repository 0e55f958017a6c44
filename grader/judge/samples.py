"""Sample quality: cheap, independent reference models and metrics for generated names and text.

Used by the trusted judge of weeks 2-6. A student's samples are scored against n-gram models
the judge fits itself on the training data (never against the student's own model, whose
likelihood of its own samples only reflects the sampling temperature). Pure Python + numpy.

    ref = NameReference.fit(train_words)           # add-1 bigram + Witten-Bell 4-gram
    m = name_metrics(samples, ref)                  # NameMetrics(wb4_nll=..., mean_len=..., ...)
    ref = TextReference.fit(train_text)             # Witten-Bell 5-gram + word vocabulary
    m = text_metrics(sample, ref)                   # TextMetrics(nll5=..., wordvalid=..., ...)

Calibration (COURSE-NOTES 3.3 and 6.4; 1,000 names / 2,000 chars): real dev names wb4 ~2.1,
bigram-model samples wb4 ~3.5 and mean length ~6.3, keepdim-bug samples mean length ~21.7,
uniform random letters wb4 ~6.3; real Shakespeare nll5 1.4-2.2, small GPT ~3, random chars ~10.
"""

from __future__ import annotations

import math
import re
from collections import Counter
from dataclasses import asdict, dataclass
from functools import cached_property
from typing import Iterable, Sequence

BOUNDARY = "."  # start/end token for names, as in the lectures
NAME_ALPHABET = frozenset("abcdefghijklmnopqrstuvwxyz")
SPEAKER_LINE = re.compile(r"^[A-Z][A-Za-z' ]*:$")
WORD = re.compile(r"[A-Za-z]+")


class WittenBellLM:
    """Interpolated Witten-Bell character n-gram model.

    P(c | h) = (C(h c) + T(h) * P(c | h[1:])) / (C(h) + T(h)), where C counts and T(h) is the
    number of distinct characters seen after h; the recursion ends in a uniform distribution over
    the vocabulary plus one slot for characters never seen in training (so every NLL is finite).
    """

    def __init__(self, sequences: Iterable[str], order: int, pad: str = ""):
        """Fit on `sequences` (each scored separately); `pad` is repeated order-1 times as start context."""
        if order < 1:
            raise ValueError("order must be >= 1")
        self.order = order
        self.pad = pad * (order - 1)
        ngrams: Counter[str] = Counter()
        vocab: set[str] = set()
        for seq in sequences:
            padded = self.pad + seq
            vocab.update(seq)
            start = len(self.pad)
            for k in range(1, order + 1):  # n-grams of length k ending at each real position
                ngrams.update(padded[i - k + 1 : i + 1] for i in range(max(start, k - 1), len(padded)))
        self.vocab = frozenset(vocab)
        self.counts = ngrams
        self.context_total: Counter[str] = Counter()
        self.context_types: Counter[str] = Counter()
        for gram, n in ngrams.items():
            self.context_total[gram[:-1]] += n
            self.context_types[gram[:-1]] += 1
        self._uniform = 1.0 / (len(self.vocab) + 1)

    def prob(self, history: str, char: str) -> float:
        """P(char | the last order-1 characters of history)."""
        p = self._uniform
        for k in range(0, self.order):
            if k > len(history):
                break
            h = history[len(history) - k :] if k else ""
            total = self.context_total.get(h)
            if not total:
                break  # a longer context containing an unseen one is unseen too
            types = self.context_types[h]
            p = (self.counts.get(h + char, 0) + types * p) / (total + types)
        return p

    def nll(self, seq: str) -> tuple[float, int]:
        """(total nats, number of predicted characters) for one sequence, start-padded."""
        padded = self.pad + seq
        start = len(self.pad)
        total = 0.0
        for i in range(start, len(padded)):
            total -= math.log(self.prob(padded[max(0, i - self.order + 1) : i], padded[i]))
        return total, len(padded) - start

    def mean_nll(self, sequences: Iterable[str]) -> float:
        """Mean nats per predicted character over all sequences."""
        nats, count = 0.0, 0
        for seq in sequences:
            n, c = self.nll(seq)
            nats += n
            count += c
        return nats / count if count else math.inf


class AddOneBigram:
    """The counts bigram model of week 2 with add-k smoothing, over names with '.' boundaries."""

    def __init__(self, words: Iterable[str], k: float = 1.0):
        self.pairs: Counter[tuple[str, str]] = Counter()
        for w in words:
            self.pairs.update(zip(BOUNDARY + w, w + BOUNDARY))
        self.row: Counter[str] = Counter()
        for (a, _), n in self.pairs.items():
            self.row[a] += n
        self.k = k
        self.size = len(NAME_ALPHABET) + 1  # 27 symbols; anything else gets the unseen mass

    def mean_nll(self, words: Iterable[str]) -> float:
        nats, count = 0.0, 0
        for w in words:
            for a, b in zip(BOUNDARY + w, w + BOUNDARY):
                p = (self.pairs.get((a, b), 0) + self.k) / (self.row.get(a, 0) + self.k * self.size)
                nats -= math.log(min(p, 1.0))
                count += 1
        return nats / count if count else math.inf


def _length_distribution(words: Sequence[str], cap: int = 16) -> dict[int, float]:
    """Share of words per length, lengths >= cap pooled into one bucket."""
    counts = Counter(min(len(w), cap) for w in words)
    return {length: n / len(words) for length, n in counts.items()} if words else {}


def total_variation(p: dict, q: dict) -> float:
    return 0.5 * sum(abs(p.get(k, 0.0) - q.get(k, 0.0)) for k in set(p) | set(q))


# ------------------------------------------------------------------------------------------ names
@dataclass(frozen=True)
class NameMetrics:
    """Quality of a batch of generated names (NLLs are nats per char, end token included)."""

    n: int  # samples scored
    bigram_nll: float  # under the add-1 bigram of the training names
    wb4_nll: float  # under the Witten-Bell 4-gram: the best single cheap quality signal
    valid: float  # share non-empty, a-z only, at most max_len chars
    empty: float  # share of empty strings
    mean_len: float
    long_share: float  # share longer than 15 chars (no real name is)
    novel: float  # share not in the training names
    exact_real: float  # share that are real names (training or held-out): memorisation guard
    unique: float  # distinct samples / samples
    length_tv: float  # total variation between sample and training length distributions

    def as_dict(self) -> dict[str, float]:
        return asdict(self)


@dataclass(frozen=True)
class NameReference:
    """Reference models of the training names, fitted once per judge run."""

    train: frozenset[str]
    real: frozenset[str]  # training plus any held-out names
    bigram: AddOneBigram
    wb4: WittenBellLM
    lengths: dict[int, float]

    @classmethod
    def fit(cls, train_words: Sequence[str], heldout_words: Sequence[str] = ()) -> "NameReference":
        words = [w for w in train_words if w]
        return cls(
            train=frozenset(words),
            real=frozenset(words) | frozenset(heldout_words),
            bigram=AddOneBigram(words),
            wb4=WittenBellLM((w + BOUNDARY for w in words), 4, BOUNDARY),
            lengths=_length_distribution(words),
        )


def name_metrics(samples: Sequence[str], ref: NameReference, max_len: int = 40) -> NameMetrics:
    """Score generated names against the reference (an empty batch scores as badly as possible)."""
    n = len(samples)
    if n == 0:
        return NameMetrics(0, math.inf, math.inf, 0.0, 1.0, 0.0, 1.0, 0.0, 0.0, 0.0, 1.0)
    ok = [s for s in samples if 0 < len(s) <= max_len and set(s) <= NAME_ALPHABET]
    return NameMetrics(
        n=n,
        bigram_nll=ref.bigram.mean_nll(samples),
        wb4_nll=ref.wb4.mean_nll(s + BOUNDARY for s in samples),
        valid=len(ok) / n,
        empty=sum(1 for s in samples if not s) / n,
        mean_len=sum(map(len, samples)) / n,
        long_share=sum(1 for s in samples if len(s) > 15) / n,
        novel=sum(1 for s in samples if s not in ref.train) / n,
        exact_real=sum(1 for s in samples if s in ref.real) / n,
        unique=len(set(samples)) / n,
        length_tv=total_variation(_length_distribution(samples), ref.lengths),
    )


# ------------------------------------------------------------------------------------------- text
@dataclass(frozen=True)
class TextMetrics:
    """Quality of one generated text sample (Shakespeare-style, `NAME:` speaker blocks)."""

    chars: int
    nll5: float  # nats/char under the Witten-Bell 5-gram of the training text
    wordvalid: float  # share of alphabetic tokens (lower-cased) that occur in the training text
    speakerfmt: float  # share of blank-line-separated blocks whose first line is `Name:`
    mem40: float  # share of 40-char windows (stride 20) found verbatim in training: memorisation
    distinct2: float  # distinct word bigrams / word bigrams

    def as_dict(self) -> dict[str, float]:
        return asdict(self)


class TextReference:
    """Reference model of a training text: 5-gram, word vocabulary, and the text for mem40."""

    def __init__(self, train_text: str, order: int = 5):
        self.text = train_text
        self.order = order

    @classmethod
    def fit(cls, train_text: str, order: int = 5) -> "TextReference":
        ref = cls(train_text, order)
        ref.lm  # fit now (~2-3 s on 1 MB) so the cost is paid once, up front
        return ref

    @cached_property
    def lm(self) -> WittenBellLM:
        return WittenBellLM([self.text], self.order)

    @cached_property
    def words(self) -> frozenset[str]:
        return frozenset(w.lower() for w in WORD.findall(self.text))


def text_metrics(sample: str, ref: TextReference, window: int = 40, stride: int = 20) -> TextMetrics:
    """Score one generated text. An empty sample scores as badly as possible."""
    if not sample:
        return TextMetrics(0, math.inf, 0.0, 0.0, 0.0, 0.0)
    tokens = [w.lower() for w in WORD.findall(sample)]
    blocks = [b.strip("\n") for b in re.split(r"\n\s*\n", sample) if b.strip()]
    windows = [sample[i : i + window] for i in range(0, len(sample) - window + 1, stride)]
    bigrams = list(zip(tokens, tokens[1:]))
    return TextMetrics(
        chars=len(sample),
        nll5=ref.lm.mean_nll([sample]),
        wordvalid=sum(1 for t in tokens if t in ref.words) / len(tokens) if tokens else 0.0,
        speakerfmt=sum(1 for b in blocks if SPEAKER_LINE.match(b.split("\n", 1)[0])) / len(blocks)
        if blocks
        else 0.0,
        mem40=sum(1 for w in windows if w in ref.text) / len(windows) if windows else 0.0,
        distinct2=len(set(bigrams)) / len(bigrams) if bigrams else 0.0,
    )


def median_text_metrics(samples: Sequence[str], ref: TextReference) -> TextMetrics:
    """Per-metric median over several samples (the course notes' recommendation: 3 x 2,000 chars)."""
    scored = [text_metrics(s, ref) for s in samples]
    if not scored:
        return text_metrics("", ref)

    def median(values: list[float]) -> float:
        values = sorted(values)
        mid = len(values) // 2
        return values[mid] if len(values) % 2 else (values[mid - 1] + values[mid]) / 2

    fields = TextMetrics.__dataclass_fields__
    return TextMetrics(**{f: median([getattr(m, f) for m in scored]) for f in fields})
