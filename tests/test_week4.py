"""Week 4's hidden-suite helpers, tested directly (fast; the graded runs are in test_weeks.py).

The known bugs must land where the bands say: over the whole network the Bessel-factor bug
sits inside the log band (~1.7e-4: partial credit) and the duplicate-index bug beyond it
(~1.4e-2: none); the static
integrity check must flag hidden autograd and nothing in the reference, and the committed
fixtures must be what make_fixtures.py builds from the current solution.
"""

from __future__ import annotations

import importlib.util
import json
import sys
import tomllib
from pathlib import Path

import numpy as np
import pytest
import torch

from conftest import ROOT
from grader.judge.verdict import RequirementFailed

SUITE = ROOT / "solutions" / "week4"
FIXTURES = ROOT / "fixtures" / "submissions" / "week4"


def _load(path: Path, name: str):
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def suite(pytestconfig):
    # the hidden checks carry the judge's @pytest.mark.check marker: declare it here too
    pytestconfig.addinivalue_line("markers", "check(points, category, title=None): a graded check")
    sys.path.insert(0, str(SUITE))  # test_week4 imports its own `plan` as the judge does
    try:
        yield _load(SUITE / "test_week4.py", "week4_hidden_checks")
    finally:
        sys.path.remove(str(SUITE))
        sys.modules.pop("plan", None)


def _code_cells(path: Path) -> list[str]:
    nb = json.loads(path.read_text())
    return ["".join(c["source"]) for c in nb["cells"] if c["cell_type"] == "code"]


def _namespace(path: Path, starts: tuple[str, ...] = ("def cross_entropy_backward", "def init_params")) -> dict:
    """The notebook's cells that begin with one of `starts` only (by default the manual-backprop
    functions: no data loading, no training)."""
    ns: dict = {"torch": torch, "F": torch.nn.functional}
    for src in _code_cells(path):
        if src.lstrip().startswith(starts):
            exec(src, ns)
    return ns


def _max_diff(suite, ns) -> dict[str, float]:
    """Max |manual - autograd| of BN dx and embedding dC (unit inputs) and over the whole network."""
    cases = suite.cases
    u = {k: torch.from_numpy(np.asarray(v)) for k, v in cases.unit_inputs(suite.plan.UNIT_SEED).items()}
    want = suite.unit_references()
    dx, _, _ = ns["batchnorm_backward"](u["bn_dout"], u["bn_xhat"], u["bn_gamma"], u["bn_var_inv"])
    dC = ns["embedding_backward"](u["emb_demb"], u["emb_X"], cases.VOCAB)
    raw, Xb, Yb = cases.net_inputs(suite.plan.NET_SEED)
    params = {k: torch.from_numpy(v) for k, v in raw.items()}
    _, cache = ns["forward"](params, torch.from_numpy(Xb), torch.from_numpy(Yb))
    grads = ns["manual_backward"](cache, params, torch.from_numpy(Yb))
    _, ref = suite.network_reference()
    return {"bn": float((dx - want["batchnorm"]["dx"]).abs().max()),
            "emb": float((dC - want["embedding"]["dC"]).abs().max()),
            "net": max(float((grads[k].reshape(ref[k].shape) - ref[k]).abs().max()) for k in ref)}


def test_reference_solution_matches_autograd(suite):
    diffs = _max_diff(suite, _namespace(SUITE / "week4.ipynb"))
    assert max(diffs.values()) < 1e-12, diffs


def test_known_bugs_land_in_their_bands(suite):
    t = tomllib.loads((SUITE / "week.toml").read_text())["profiles"]["cpu"]["thresholds"]
    bessel = _max_diff(suite, _namespace(FIXTURES / "fails_bessel.ipynb"))
    dup = _max_diff(suite, _namespace(FIXTURES / "fails_embedding_duplicates.ipynb"))
    # Whole network at lecture scale: the Bessel bug earns partial credit, duplicates none.
    assert t["grad_pass"] < bessel["net"] < t["grad_fail"], bessel
    assert dup["net"] >= t["grad_fail"], dup
    # Unit inputs (unit-scale upstream gradients): both far outside the pass mark.
    assert bessel["bn"] > 1e3 * t["grad_pass"] and dup["emb"] > 1e3 * t["grad_pass"], (bessel, dup)


def test_static_integrity_check(suite):
    assert suite.autograd_uses(_code_cells(SUITE / "week4.ipynb")) == []
    hits = suite.autograd_uses(_code_cells(FIXTURES / "fails_secret_autograd.ipynb"))
    assert any("embedding_backward" in h and ".backward" in h for h in hits), hits
    hidden_in_helper = ["def helper(t):\n    return torch.autograd.grad(t.sum(), t)\n",
                        "def tanh_backward(dout, h):\n    return helper(h)\n"]
    assert any(h.startswith("helper") for h in suite.autograd_uses(hidden_in_helper))


def test_fixtures_are_current():
    maker = _load(FIXTURES / "make_fixtures.py", "week4_make_fixtures")
    import nbformat

    solution = nbformat.read(maker.SOLUTION, as_version=4)
    text = "\x00".join(c.source for c in solution.cells)
    for stem, edits in maker.BUGS.items():
        committed = nbformat.read(FIXTURES / f"{stem}.ipynb", as_version=4)
        assert [c.source for c in committed.cells] == maker.apply(text, edits, stem).split("\x00"), stem
    assert set(tomllib.loads((FIXTURES / "expected.toml").read_text())) == set(maker.BUGS)


def test_heldout_windows_reveal_no_target(suite):
    """The WaveNet dev loss is scored on held-out names only (none in the sandbox's names.txt), at most
    one position per name, and no window sent extends another (which would give its next character)."""
    data_dir = ROOT / "fixtures" / "data"
    X, Y = suite.plan.heldout_windows(data_dir, suite.cases.BLOCK)
    heldout = set(suite.plan.heldout_names(data_dir))
    assert not heldout & set(suite.cases.names(data_dir))
    assert len(Y) >= 0.9 * len(heldout) and X.shape == (len(Y), suite.cases.BLOCK)
    assert (X[:, 0] == 0).all(), "every window starts in its name's padding (a whole prefix)"
    prefixes = {"".join(chr(96 + c) for c in row if c) for row in X}
    revealing = [p for p in prefixes if any(p[:k] in prefixes for k in range(len(p)))]
    assert not revealing, f"windows that extend another window: {revealing[:5]}"
    # every (prefix, target) is a real held-out name's
    starts = {w[:t] + (w + ".")[t] for w in heldout for t in range(len(w) + 1)}
    assert all("".join(chr(96 + c) for c in row if c) + (chr(96 + y) if y else ".") in starts for row, y in zip(X, Y))


def _fake_answers(suite, scale: float):
    """Answers as a faked probe would give them: every gradient of the right shape, equal to the
    reference times `scale` (0: zeros, 1: right), no autograd call."""
    from grader.judge.answers import Answers

    refs = suite.unit_references()
    parts = {"cross_entropy": ["dlogits"], "linear": ["dx", "dW", "db"], "tanh": ["dpre"],
             "batchnorm": ["dx", "dgamma", "dbeta"], "embedding": ["dC"]}
    units = {}
    for key, names in parts.items():
        got = [(scale * refs[key][n]).tolist() for n in names]
        units[key] = {"ok": True, "value": got[0] if len(got) == 1 else got, "autograd_calls": 0}
    loss, net = suite.network_reference()
    answers = Answers(None)
    answers.raw = {"grad_units": {"ok": True, "value": units},
                   "grad_network": {"ok": True, "value": {"loss": loss, "autograd_calls": 0,
                                                          "grads": {k: (scale * v).tolist() for k, v in net.items()}}}}
    return answers


def test_shapes_and_no_autograd_earn_nothing_on_their_own(suite):
    """Zeros of the right shapes use no autograd and have the right shapes: neither check may pay for them."""
    thresholds = tomllib.loads((SUITE / "week.toml").read_text())["profiles"]["cpu"]["thresholds"]

    def measure(value, **details):
        return value

    right = _fake_answers(suite, 1.0)
    suite.test_grad_shapes(right, thresholds, measure)
    suite.test_no_autograd(right, [], thresholds, measure)
    zeros = _fake_answers(suite, 0.0)
    with pytest.raises(AssertionError, match="match autograd"):
        suite.test_grad_shapes(zeros, thresholds, measure)
    with pytest.raises(AssertionError, match="only 0 of the 5"):
        suite.test_no_autograd(zeros, [], thresholds, measure)


WAVENET_CELLS = ("class Linear", "def build_wavenet")  # the layer classes and the WaveNet functions


@pytest.fixture
def one_thread():
    """Small forward passes, one at a time: on a busy 2-core machine a second torch thread makes each
    one ~70x slower (sampling 40 names: 7.8 s with 2 threads, 0.11 s with 1)."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def _jsonable(value):
    """A probe's return value as it crosses the answers file: arrays as nested lists."""
    if isinstance(value, dict):
        return {k: _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, (np.ndarray, torch.Tensor)):
        return np.asarray(value).tolist()
    return value


def _wavenet_answers(suite, ns: dict) -> tuple:
    """The WaveNet probes' answers for the notebook namespace `ns`, without training: eval_single runs on
    a fresh model whose running statistics come from a few training-mode batches (what the judge checks
    is that evaluate_logits uses them, not how good they are)."""
    from grader.judge.answers import Answers

    probes = _load(ROOT / "assignments" / "week4" / "public" / "probes.py", "week4_probes")
    plan = suite.plan
    raw = {key: {"ok": True, "value": _jsonable(probes.wavenet_structure(ns, plan.structure_input(sizes[3]), *sizes,
                                                                          seed=42))}
           for key, sizes in plan.STRUCTURES.items()}
    torch.manual_seed(0)
    model = ns["build_wavenet"](27, 24, 128, 8)
    for i in range(3):
        with torch.no_grad():
            model(torch.from_numpy(suite.cases.structure_input(100 + i, 32)))
    probes._STATE.update(model=model, device=torch.device("cpu"))
    Xdev = plan.heldout_windows(ROOT / "fixtures" / "data", suite.cases.BLOCK)[0][:16]
    raw["eval_single"] = {"ok": True, "value": _jsonable(probes.eval_single(ns, None, None, Xdev, 8))}
    Xdev = plan.heldout_windows(ROOT / "fixtures" / "data", suite.cases.BLOCK)[0]
    with torch.no_grad():  # what train_wavenet returns, less the training
        logits = ns["evaluate_logits"](model, torch.from_numpy(Xdev))
    params, stats = probes._weights(model)
    raw["train_wavenet"] = {"ok": True, "value": _jsonable({"dev_logits": logits.float(), "curve": [],
                                                            "params": params, "bn_stats": stats})}
    answers = Answers(None)
    answers.raw = raw
    return answers, raw


def test_wavenet_answers_are_recomputed_by_the_judge(suite, one_thread, tmp_path):
    """wavenet_params counts the parameters the judge receives and recomputes the model's logits from them;
    eval_single_example and wavenet_dev_loss recompute evaluate_logits from the trained parameters and
    running statistics.
    The solution passes both; answers of the right shapes and counts that no model computed earn nothing."""
    thresholds = tomllib.loads((SUITE / "week.toml").read_text())["profiles"]["cpu"]["thresholds"]
    measured = {}

    def measure(value, **details):
        measured.update(value=value, **details)

    answers, raw = _wavenet_answers(suite, _namespace(SUITE / "week4.ipynb", WAVENET_CELLS))
    suite.test_wavenet_params(answers, thresholds, measure)
    assert measured["value"] == 76579 and measured["recompute_error"] < 1e-6, measured
    suite.test_eval_single_example(answers, ROOT / "fixtures" / "data", thresholds, measure)
    assert measured["value"] < 1e-6 and measured["single_vs_batch"] < 1e-5, measured
    # an untrained model: its logits are recomputed, its loss (log 27-ish) is far from the pass line
    with pytest.raises(AssertionError, match="above the full-marks line"):
        suite.test_wavenet_dev_loss(answers, thresholds, ROOT / "fixtures" / "data", tmp_path, measure)
    assert measured["recompute_error"] < 1e-6 and measured["value"] > 3.0, measured
    # dev logits no WaveNet gave (here: the targets themselves, which a lookup would aim for) earn nothing
    Ydev = suite.plan.heldout_windows(ROOT / "fixtures" / "data", suite.cases.BLOCK)[1]
    raw["train_wavenet"]["value"]["dev_logits"] = (8.0 * np.eye(27)[Ydev]).tolist()
    with pytest.raises(RequirementFailed, match="recomputes from the trained"):
        suite.test_wavenet_dev_loss(answers, thresholds, ROOT / "fixtures" / "data", tmp_path, measure)
    assert measured["value"] > 3.0  # the loss measured is the returned model's, not the forged logits'

    # forged: the right count, shapes and output shape, parameters and logits that no forward pass links
    rng = np.random.default_rng(0)
    for key, sizes in suite.plan.STRUCTURES.items():
        value = raw[key]["value"]
        value["params"] = [rng.normal(size=s).tolist() for s in suite.wavenet_shapes(*sizes)]
        value["logits"] = rng.normal(size=np.shape(value["logits"])).tolist()
    forged_eval = raw["eval_single"]["value"]
    forged_eval["batch"] = rng.normal(size=(16, 27)).tolist()
    forged_eval["single"] = forged_eval["batch"][:1]  # self-consistent: one example = its batched row
    with pytest.raises(AssertionError, match="judge's recomputation"):
        suite.test_wavenet_params(answers, thresholds, measure)
    assert measured["value"] == 76579  # the count alone would have passed
    with pytest.raises(AssertionError, match="recomputes from the model's parameters"):
        suite.test_eval_single_example(answers, ROOT / "fixtures" / "data", thresholds, measure)
    # a count with the right total but not the WaveNet's shapes is refused before any recomputation
    raw["wavenet_structure"]["value"]["params"] = [np.zeros(76579).tolist()]
    with pytest.raises(AssertionError, match="parameters\\(\\) gives 1 tensors"):
        suite.test_wavenet_params(answers, thresholds, measure)


@pytest.mark.filterwarnings("ignore:var\\(\\):UserWarning")
def test_eval_mode_bug_fails_the_recomputation(suite, one_thread):
    """A model left in training mode: the single example's logits are NaN and the batch's differ from the
    eval-mode recomputation."""
    thresholds = tomllib.loads((SUITE / "week.toml").read_text())["profiles"]["cpu"]["thresholds"]
    answers, _ = _wavenet_answers(suite, _namespace(FIXTURES / "fails_eval_mode.ipynb", WAVENET_CELLS))
    with pytest.raises(AssertionError, match="NaN"):
        suite.test_eval_single_example(answers, ROOT / "fixtures" / "data", thresholds, lambda *a, **k: None)


def test_samples_must_come_from_the_returned_model(suite, one_thread):
    """sample_quality reads names only once the judge has seen that the returned model sampled them: names
    the model drew sit near its entropy (z about 0); real names handed in instead sit far above it, and a
    model unsure of everything (an untrained one, near uniform) proves nothing."""
    probes = _load(ROOT / "assignments" / "week4" / "public" / "probes.py", "week4_probes")
    ns = _namespace(SUITE / "week4.ipynb", WAVENET_CELLS)
    ns["itos"] = {i: chr(96 + i) if i else "." for i in range(27)}
    torch.manual_seed(1)
    model = ns["build_wavenet"](27, 24, 128, 8)
    with torch.no_grad():
        model.layers[-1].weight *= 60  # a confident model (a trained one is too; this one is just quicker)
        model.layers[-1].bias[0] += 4.0  # that ends its names soon (sampling runs one forward per character)
        model(torch.from_numpy(suite.cases.structure_input(3, 64)))  # running statistics
    probes._STATE.update(model=model, device=torch.device("cpu"))
    got = _jsonable(probes.samples(ns, None, None, 40, 2147483647, 8))
    z, entropy = suite.sample_consistency(got["names"], got)
    thresholds = tomllib.loads((SUITE / "week.toml").read_text())["profiles"]["cpu"]["thresholds"]
    assert abs(z) < 4 and entropy < thresholds["sample_entropy_max"], (z, entropy)
    real = suite.cases.names(ROOT / "fixtures" / "data")[:200]
    z_real, _ = suite.sample_consistency(real, got)
    assert z_real > 10 * thresholds["sample_z_max"], z_real
    # the same real names beside an untrained model: close to its entropy, but that entropy is uniform's
    probes._STATE.update(model=ns["build_wavenet"](27, 24, 128, 8))
    fresh = _jsonable(probes.samples(ns, None, None, 1, 0, 8))
    _, entropy_fresh = suite.sample_consistency(real, fresh)
    assert entropy_fresh > thresholds["sample_entropy_max"], entropy_fresh
