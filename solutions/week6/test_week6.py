"""Week-6 hidden checks (TRUSTED). Each track's checks total 17 points plus 3 for a clean run; the
checks of the tracks a student did not choose leave the total ("not applicable")."""

from __future__ import annotations

import importlib.util
import io
from pathlib import Path

import numpy as np
import pytest

from grader.judge.answers import AnswerError, to_array, to_number
from grader.judge.verdict import require

_spec = importlib.util.spec_from_file_location("week6_capstone", Path(__file__).with_name("capstone.py"))
capstone = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(capstone)


@pytest.fixture(scope="module")
def declared(cells):
    return capstone.declared(cells)


def need(declared, track):
    if declared[0] != track:
        pytest.skip(f"not applicable: the {track} track was not chosen")


# ------------------------------------------------------------------------------------ common
@pytest.mark.check(points=20, category="correctness")
def test_track_declared(declared):
    """A known track is declared in the notebook."""
    problem = capstone.track_problem(declared[0])
    if not problem:
        pytest.skip("not applicable: track declared")
    assert False, problem


def _track_proven(track, answers, data_dir, thresholds, submission, cells) -> bool:
    """One answer of the track that the judge recomputed holds: probe statuses alone are reported by the
    kernel and prove nothing (issue 16.2)."""
    seed = int(thresholds["seed"])
    try:
        if track == "inspector":
            want = _judge_maps(data_dir, thresholds)
            return bool(np.abs(to_array(answers.get("inspect")["maps"], "maps", shape=want.shape) - want).max() <= 1e-4)
        if track == "architect":  # RoPE as asked, or the attention on the notebook's own RoPE, or SwiGLU
            x = capstone.architect_inputs(seed)["x"]
            rx = to_array(answers.get("rope")["rx"], "apply_rope(x)", shape=x.shape)
            if np.abs(rx - capstone.rotate(x, *capstone.rope_reference(8, 16))).max() <= 1e-4:
                return True
            for proven in (lambda: _rope_attention_error(answers, thresholds)[0],
                           lambda: _swiglu_error(answers, thresholds)[0]):
                try:
                    if proven() <= 1e-4:
                        return True
                except (AnswerError, KeyError, TypeError):
                    pass
            return False
        if track == "specialist":  # the val logits beat a uniform guess over the corpus's characters
            from grader.judge.plugin import _ctx

            notebook = Path(_ctx().notebook_path) if _ctx().notebook_path else None
            text, _ = capstone.read_corpus(submission, notebook, capstone.declared(cells)[1])
            if text is None:
                return False
            chars = capstone.vocab(text)
            _, val = capstone.split(capstone.encode(text, chars))
            _, val_y = capstone.val_windows(val, capstone.CONFIG["block_size"], int(thresholds["val_windows"]))
            logits = to_array(answers.get("specialist")["logits"], "val logits", shape=(*val_y.shape, len(chars)))
            return capstone.cross_entropy(logits, val_y) < np.log(len(chars))
    except (AnswerError, KeyError, TypeError):
        return False
    return False


TRACK_GATE = ("none of the track's answers that the grader recomputes holds yet (see the track's checks), "
              "so this check has nothing to stand on")


@pytest.mark.check(points=3, category="runs_clean")
def test_runs_clean(declared, execution, answers, data_dir, thresholds, submission, cells):
    """The notebook runs top to bottom without errors, the track's probes answer, and one answer the
    grader recomputes holds."""
    if capstone.track_problem(declared[0]):
        pytest.skip("not applicable: no valid track")
    failures = execution["failures"]
    assert not failures, f"{len(failures)} cell(s) failed, first: cell {failures[0]['index'] + 1}: " \
                         f"{failures[0]['ename']} {failures[0]['evalue']}"[:400]
    assert execution["cells_run"] == execution["cells_total"], "not every cell ran"
    bad = [p for p in execution["probes"] if not p["ok"]]
    assert execution["probes"] and not bad, f"probe {bad[0]['id']} failed: {bad[0]['error']}" if bad else \
        "no probe answered"
    require(_track_proven(declared[0], answers, data_dir, thresholds, submission, cells), TRACK_GATE)


# --------------------------------------------------------------------------------- inspector
@pytest.fixture(scope="module")
def inspect(answers, declared):
    need(declared, "inspector")
    return answers.get("inspect")


def _maps(inspect, key="maps"):
    L, H, T = capstone.CONFIG["n_layer"], capstone.CONFIG["n_head"], 24
    return to_array(inspect[key], "get_attention_maps(model, idx)", shape=(L, H, T, T))


@pytest.mark.check(points=2, category="correctness")
def test_maps_shape(inspect):
    """get_attention_maps returns (n_layer, n_head, T, T)."""
    _maps(inspect)


@pytest.mark.check(points=3, category="correctness")
def test_maps_rows_sum_to_one(inspect, measure):
    """Every row of every map is a probability distribution."""
    maps = _maps(inspect)
    err = float(np.abs(maps.sum(-1) - 1).max())
    measure(err, target="≤ 1e-5")
    assert err <= 1e-5 and maps.min() >= 0, f"rows sum to 1 ± {err:.2e} (min weight {maps.min():.3g})"


@pytest.mark.check(points=3, category="correctness")
def test_maps_causal(inspect, measure):
    """No position attends to the future: the strict upper triangle is exactly zero."""
    maps = _maps(inspect)
    leak = float(np.abs(np.triu(maps, k=1)).max())
    measure(leak, target="= 0")
    assert leak == 0.0, f"weight {leak:.3g} on future positions: capture the weights after the mask"


def _judge_model(data_dir, thresholds) -> tuple[np.ndarray, np.ndarray]:
    """The attention maps (L, H, T, T) and logits (T, V) of the given GPT holding the judge's weights
    (the ones the probe loads), float64."""
    chars, _, _ = capstone.shakespeare_data(data_dir)
    state = capstone.inspector_state(int(thresholds["seed"]), len(chars))
    return capstone.reference_attention({k: v.astype(np.float64) for k, v in state.items()},
                                        capstone.encode(capstone.INSPECT_TEXT, chars), capstone.CONFIG["n_head"],
                                        with_logits=True)


def _judge_maps(data_dir, thresholds) -> np.ndarray:
    return _judge_model(data_dir, thresholds)[0]


@pytest.mark.check(points=3, category="correctness")
def test_maps_match_model(inspect, measure, data_dir, thresholds):
    """The maps are the model's own attention: the probe loads weights the grader chose, and the grader
    recomputes every layer's and head's attention from them."""
    maps = _maps(inspect)
    want = _judge_maps(data_dir, thresholds)
    err = float(np.abs(maps - want).max())
    measure(err, target="≤ 1e-4")
    assert err <= 1e-4, f"the maps differ from the model's attention by up to {err:.3g}"


@pytest.mark.check(points=3, category="correctness")
def test_maps_no_side_effects(inspect, data_dir, thresholds):
    """Capturing maps leaves the model as it was: the logits after are the ones the grader computes from
    the weights it loaded (and equal the ones before), same mode, no hooks, repeatable."""
    want = _judge_model(data_dir, thresholds)[1][None]
    before = to_array(inspect["before"], "logits before", shape=want.shape)
    after = to_array(inspect["after"], "logits after", shape=want.shape)
    err = float(np.abs(before.astype(np.float64) - want).max())
    assert err <= 1e-3, f"the model's logits differ by {err:.3g} from the given GPT's on the grader's weights"
    assert np.array_equal(before, after), "the model's logits changed after get_attention_maps"
    assert inspect["training_after"] is True, "get_attention_maps left the model in eval mode"
    assert to_number(inspect["hooks_left"], "hooks") == 0, "hooks were left registered on the model"
    assert np.array_equal(_maps(inspect), _maps(inspect, "maps2")), "two calls gave different maps"


@pytest.fixture(scope="module")
def figure(answers, declared):
    need(declared, "inspector")
    return answers.get("plot")


@pytest.mark.check(points=3, category="samples")
def test_attention_figure(figure, artifacts, data_dir, thresholds):
    """plot_attention saves a real PNG heatmap of every layer and head of the maps the grader gave it
    (shown in the report beside the grader's own figure of the same maps)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.image as mpimg
    import matplotlib.pyplot as plt

    maps = _judge_maps(data_dir, thresholds)
    L, H = maps.shape[:2]
    fig, axes = plt.subplots(L, H, figsize=(2 * H, 2 * L), squeeze=False)
    for layer in range(L):
        for head in range(H):
            axes[layer][head].imshow(maps[layer, head], vmin=0, vmax=1)
            axes[layer][head].set_title(f"L{layer} H{head}", fontsize=7)
            axes[layer][head].axis("off")
    fig.tight_layout()
    fig.savefig(artifacts / "attention_grader.png", dpi=70)
    plt.close(fig)

    png = to_array(figure["png"], "figure bytes")
    raw = png.astype(np.uint8).tobytes()
    assert raw[:8] == b"\x89PNG\r\n\x1a\n", "plot_attention did not write a PNG file"
    try:
        image = mpimg.imread(io.BytesIO(raw), format="png")
    except Exception as exc:  # noqa: BLE001 - any failure to decode the sandbox's bytes is this check's
        raise AnswerError(f"the PNG does not decode: {exc}") from None
    (artifacts / "attention_student.png").write_bytes(raw)
    assert image.shape[0] >= 100 and image.shape[1] >= 100, f"the figure is only {image.shape[1]}x{image.shape[0]} px"
    assert float(np.std(image)) > 0.01, "the figure is blank"
    drawn = figure.get("drawn")
    drawn = [to_array(a, "a drawn array", finite=False) for a in drawn] if isinstance(drawn, list) else []
    found = capstone.figure_maps_found(drawn, maps)
    assert found == L * H, f"the saved figure draws {found} of the {L * H} maps it was given " \
                           "(one heatmap per layer and head, e.g. imshow or seaborn.heatmap of maps[l, h])"
    scaled = figure.get("scaled")
    scaled = [to_array(a, "a drawn array's colours", finite=False) for a in scaled] if isinstance(scaled, list) else []
    shown = sum(1 for a in scaled if np.isfinite(a).any() and float(np.nanmax(a) - np.nanmin(a)) > 0.05)
    assert shown >= L * H, f"{L * H - shown} of the heatmaps are drawn in one colour: their colour range " \
                           "(vmin, vmax) hides the map"
    error = figure.get("one_layer_error")
    assert not error, f"plot_attention fails on the maps of a one-layer model, shape (1, {H}, T, T): {error}"
    one = figure.get("drawn_one_layer")
    one = [to_array(a, "a drawn array", finite=False) for a in one] if isinstance(one, list) else []
    found = capstone.figure_maps_found(one, maps[:1])
    assert found == H, f"for the maps of a one-layer model, shape (1, {H}, T, T), the figure draws {found} of {H}"


# --------------------------------------------------------------------------------- architect
@pytest.fixture(scope="module")
def arch(answers, declared):
    need(declared, "architect")
    return answers


@pytest.mark.check(points=4, category="correctness")
def test_rope_relative_position(arch, measure):
    """With RoPE, q_m·k_n depends only on m − n (same q and k at every position)."""
    r = arch.get("rope")
    rq = to_array(r["rq"], "apply_rope(q)", shape=(16, 8)).astype(np.float64)
    rk = to_array(r["rk"], "apply_rope(k)", shape=(16, 8)).astype(np.float64)
    scores = rq @ rk.T
    err = max(float(np.abs(np.diagonal(scores, o) - np.diagonal(scores, o).mean()).max())
              for o in range(-15, 16))
    spread = float(np.abs(scores).max())
    measure(err, pass_at=1e-4, fail_at=1e-1, log=True)
    assert err <= 1e-4, f"q_m·k_n varies by {err:.3g} along a diagonal (scores up to {spread:.3g})"
    assert float(np.abs(scores - scores[0, 0]).max()) > 1e-3, "scores do not depend on position at all"


@pytest.mark.check(points=2, category="correctness")
def test_rope_norm_and_identity(arch, measure, thresholds):
    """RoPE is the half-split rotation at every position: the grader recomputes the cos/sin tables and
    apply_rope of its own input x at positions 0..15 (norms kept, position 0 unchanged)."""
    r = arch.get("rope")
    x = capstone.architect_inputs(int(thresholds["seed"]))["x"]
    rx = to_array(r["rx"], "apply_rope(x)", shape=(16, 8)).astype(np.float64)
    cos = to_array(r["cos"], "cos", shape=(16, 8)).astype(np.float64)
    sin = to_array(r["sin"], "sin", shape=(16, 8)).astype(np.float64)
    want_cos, want_sin = capstone.rope_reference(8, 16)
    assert np.allclose(cos[0], 1) and np.allclose(sin[0], 0), "position 0 must not rotate (cos 1, sin 0)"
    table = float(max(np.abs(cos - want_cos).max(), np.abs(sin - want_sin).max()))
    bad = int(np.argmax(np.abs(cos - want_cos).max(-1) + np.abs(sin - want_sin).max(-1)))
    assert table <= 1e-4, f"rope_cache differs by {table:.3g} from base-10000 half-split tables (worst at " \
                          f"position {bad}: check the frequencies and that they repeat for both halves)" + \
                          _convention_hint(arch)
    assert "other_base_error" not in r, (f"rope_cache(8, 16, {capstone.ROPE_OTHER_BASE:g}) raised "
                                         f"{r.get('other_base_error')}: rope_cache takes the base as its third argument")
    cos_b = to_array(r["cos_other_base"], "cos (other base)", shape=(16, 8)).astype(np.float64)
    sin_b = to_array(r["sin_other_base"], "sin (other base)", shape=(16, 8)).astype(np.float64)
    want_cos_b, want_sin_b = capstone.rope_reference(8, 16, capstone.ROPE_OTHER_BASE)
    other = float(max(np.abs(cos_b - want_cos_b).max(), np.abs(sin_b - want_sin_b).max()))
    assert other <= 1e-4, (f"rope_cache(8, 16, {capstone.ROPE_OTHER_BASE:g}) differs by {other:.3g} from the "
                           f"base-{capstone.ROPE_OTHER_BASE:g} tables: use the `base` argument, not 10000")
    norms = np.linalg.norm(rx, axis=-1)
    assert np.allclose(norms, np.linalg.norm(x, axis=-1), rtol=1e-4), "apply_rope changes vector norms: not a rotation"
    err = float(np.abs(rx - capstone.rotate(x, want_cos, want_sin)).max())
    measure(err, target="≤ 1e-4")
    assert err <= 1e-4, f"apply_rope(x) differs by {err:.3g} from the half-split rotation " \
                        "x·cos + cat(-x2, x1)·sin (at some position past 0)" + _convention_hint(arch)


def _convention_hint(arch) -> str:
    """For a valid RoPE of another convention: say that only the convention is wrong."""
    if _own_rotations(arch)[0] is None:
        return ""
    return ("; your apply_rope is a valid RoPE, but not the one the notebook asks for: the half-split pairing "
            "(x_i, x_{i+hs/2}) rotated as x·cos + cat(-x2, x1)·sin, base 10000")


def _own_rotations(arch) -> tuple[np.ndarray | None, str]:
    """The notebook's apply_rope as one rotation per position (T, hs, hs) when the judge verifies it is a
    RoPE, of whatever pairing or sign (capstone.rope_rotations); else (None, why)."""
    try:
        turned = to_array(arch.get("rope_attention")["basis"], "apply_rope(basis)", shape=(1, 8, 16, 8))
    except (AnswerError, KeyError, TypeError) as exc:
        return None, str(exc)
    return capstone.rope_rotations(turned[0])


def _rope_attention_error(arch, thresholds) -> tuple[float, float, bool]:
    """Max error of the attention output against the grader's softmax(R q · R k)·v, and against the same
    with the values rotated too; R is the notebook's own verified RoPE (True), else the half-split one."""
    y = to_array(arch.get("rope_attention")["y"], "attention output", shape=(2, 16, 32)).astype(np.float64)
    inputs = capstone.architect_inputs(int(thresholds["seed"]))
    args = (inputs["attn_x"], inputs["qkv_w"], inputs["proj_w"], inputs["proj_b"], 4)
    rotations, _ = _own_rotations(arch)
    err = float(np.abs(y - capstone.reference_rope_attention(*args, rotations=rotations)).max())
    values = float(np.abs(y - capstone.reference_rope_attention(*args, rotate_values=True,
                                                                rotations=rotations)).max())
    return err, values, rotations is not None


@pytest.mark.check(points=3, category="correctness")
def test_rope_on_queries_and_keys_only(arch, measure, thresholds):
    """The attention module rotates queries and keys, never values: its output on the grader's input,
    holding the grader's weights, equals the grader's own softmax(RoPE(q)·RoPE(k)ᵀ)·v, with the notebook's
    own apply_rope rotation once the grader has verified it is a RoPE (the pairing convention is
    rope_norm_and_identity's to check), else the half-split one."""
    err, values, own = _rope_attention_error(arch, thresholds)
    measure(err, target="≤ 1e-4", rotation="your apply_rope's" if own else "half-split")
    if err > 1e-4 and values <= 1e-4:
        raise AssertionError(f"attention output differs by {err:.3g}: the values are rotated too "
                             "(RoPE applies to queries and keys only)")
    assert err <= 1e-4, f"attention output differs by {err:.3g} from softmax(RoPE(q)·RoPE(k)ᵀ)·v"


def _swiglu_error(arch, thresholds) -> tuple[float, int]:
    """SwiGLU(48) holding the grader's weights at its own hidden size: max error against the grader's
    w2(silu(w1 x) * w3 x) at that size, and the hidden size."""
    r = arch.get("swiglu")
    hidden = int(to_number(r["hidden"], "hidden size"))
    if not 0 < hidden <= capstone.SWIGLU_POOL:
        raise AnswerError(f"hidden size {hidden} is outside 1..{capstone.SWIGLU_POOL}")
    inputs = capstone.architect_inputs(int(thresholds["seed"]))
    want = capstone.swiglu_reference(inputs["swiglu_x"], inputs["swiglu_w1"][:hidden],
                                     inputs["swiglu_w2"][:, :hidden], inputs["swiglu_w3"][:hidden])
    y = to_array(r["y"], "SwiGLU output", shape=(3, 48)).astype(np.float64)
    return float(np.abs(y - want).max()), hidden


@pytest.mark.check(points=2, category="correctness")
def test_swiglu_forward(arch, measure, thresholds):
    """SwiGLU computes w2(silu(w1 x) * w3 x) (recomputed by the grader from the weights it loaded), at its
    default hidden size and at the one it is given (SwiGLU(48, hidden=72))."""
    err, hidden = _swiglu_error(arch, thresholds)
    r, given = arch.get("swiglu"), capstone.SWIGLU_GIVEN
    assert "given_error" not in r, f"SwiGLU(48, hidden={given}) failed: {r.get('given_error')}"
    assert "drop_error" not in r, f"SwiGLU(48, dropout=0.5) failed: {r.get('drop_error')}"
    y_given, built = r["given"]
    built = int(to_number(built, f"hidden size built for hidden={given}"))
    inputs = capstone.architect_inputs(int(thresholds["seed"]))
    want = capstone.swiglu_reference(inputs["swiglu_x"], inputs["swiglu_w1"][:given],
                                     inputs["swiglu_w2"][:, :given], inputs["swiglu_w3"][:given])
    err_given = float(np.abs(to_array(y_given, f"SwiGLU(hidden={given}) output", shape=(3, 48)) - want).max())
    measure(max(err, err_given), target="≤ 1e-4", hidden=hidden, hidden_given=built)
    assert built == given, f"SwiGLU(48, hidden={given}) built a hidden layer of {built}: it ignores `hidden`"
    assert err <= 1e-4, f"output differs from w2(silu(w1 x) * w3 x) by {err:.3g}"
    assert err_given <= 1e-4, f"SwiGLU(48, hidden={given})'s output differs from w2(silu(w1 x) * w3 x) by {err_given:.3g}"
    first, second = (to_array(v, "SwiGLU(dropout=0.5) output in train()", shape=(3, 48)) for v in r["drop"])
    assert not np.array_equal(first, second), \
        "SwiGLU(48, dropout=0.5) gives the same output twice in train(): apply nn.Dropout(dropout)"


@pytest.mark.check(points=2, category="correctness")
def test_swiglu_parameter_count(arch, measure, thresholds):
    """SwiGLU(48) has about as many parameters as the 4x ReLU feed-forward (hidden = 2/3 · 4d): counted by
    the grader from the hidden size its forward output proves, not from a reported number."""
    err, hidden = _swiglu_error(arch, thresholds)
    assert err <= 1e-4, f"the hidden size cannot be confirmed: the output differs by {err:.3g} from " \
                        f"w2(silu(w1 x) * w3 x) at hidden size {hidden}"
    d = 48
    params = 3 * d * hidden
    relu = 2 * 4 * d * d + 4 * d + d
    ratio = params / relu
    measure(ratio, target="within 3% of the 4x ReLU MLP", relu_params=relu, hidden=hidden)
    assert abs(ratio - 1) <= 0.03, f"{params} weights (hidden size {hidden}) vs {relu} for the ReLU MLP " \
                                   f"(expected hidden int(2 * 4 * {d} / 3) = {int(8 * d / 3)})"


@pytest.mark.check(points=4, category="loss")
def test_architect_training(arch, measure, thresholds, data_dir, artifacts):
    """After equal steps, RoPE+SwiGLU's val loss is no worse than vanilla's (speed reported)."""
    r = arch.get("compare")
    chars, _, _ = capstone.shakespeare_data(data_dir)
    block = capstone.CONFIG["block_size"]
    _, val_y = capstone.heldout_windows(data_dir, chars, block, int(thresholds["val_windows"]))
    V = len(chars)
    # held-out plays, the last position of each window only: its target is in no window sent
    loss = {k: capstone.cross_entropy(to_array(r[k]["logits"], f"{k} logits", shape=(len(val_y), block, V))[:, -1],
                                      val_y) for k in ("vanilla", "modified")}
    ms = {k: to_number(r[k]["ms_per_step"], f"{k} ms/step") for k in ("vanilla", "modified")}
    margin = loss["modified"] - loss["vanilla"]
    (artifacts / "architect.md").write_text(
        "| model | params | ms/step | tokens/s | val loss |\n|---|---|---|---|---|\n" + "".join(
            f"| {k} | {int(to_number(r[k]['params']))} | {ms[k]:.2f} | {to_number(r[k]['tokens_per_s']):.0f} "
            f"| {loss[k]:.4f} |\n" for k in ("vanilla", "modified")))
    measure(margin, pass_at=thresholds["architect_margin_pass"], fail_at=thresholds["architect_margin_fail"],
            vanilla_val=round(loss["vanilla"], 4), modified_val=round(loss["modified"], 4),
            speed_ratio=round(ms["modified"] / ms["vanilla"], 3))
    assert loss["modified"] <= thresholds["architect_val_max"], \
        f"modified model val loss {loss['modified']:.3f} > {thresholds['architect_val_max']}: it does not learn"
    assert margin <= thresholds["architect_margin_pass"], \
        f"RoPE+SwiGLU val {loss['modified']:.4f} vs vanilla {loss['vanilla']:.4f} after equal steps"


# -------------------------------------------------------------------------------- specialist
@pytest.fixture(scope="module")
def corpus(declared, submission, cells):
    need(declared, "specialist")
    from grader.judge.plugin import _ctx

    notebook = Path(_ctx().notebook_path) if _ctx().notebook_path else None
    text, problem = capstone.read_corpus(submission, notebook, declared[1])
    return text, problem


@pytest.mark.check(points=2, category="correctness")
def test_dataset_present(corpus, answers):
    """The declared corpus is committed beside the notebook as UTF-8 text, and load_corpus(DATASET) reads it
    (the grader compares what it returned with the file it read itself)."""
    import hashlib

    text, problem = corpus
    assert text is not None, problem
    got = answers.get("load_corpus")
    length = int(to_number(got["length"], "load_corpus length"))
    assert got["sha256"] == hashlib.sha256(text.encode("utf-8")).hexdigest(), \
        f"load_corpus(DATASET) returned {length:,} characters that are not the file's {len(text):,}"


@pytest.mark.check(points=1, category="correctness")
def test_dataset_size(corpus, measure):
    """The corpus is big enough to learn from (50 KB .. 20 MB)."""
    text, problem = corpus
    assert text is not None, problem
    size = len(text.encode("utf-8"))
    measure(size, target=f"≥ {capstone.MIN_CORPUS_BYTES} bytes")
    assert size >= capstone.MIN_CORPUS_BYTES, f"the corpus has {size} bytes; collect at least 50 KB"


@pytest.mark.check(points=3, category="integrity")
def test_not_shakespeare(corpus, data_dir, thresholds, measure):
    """The corpus is not the course's Shakespeare text."""
    text, problem = corpus
    assert text is not None, problem
    share = capstone.shakespeare_overlap(text, (data_dir / "shakespeare.txt").read_text(encoding="utf-8"))
    measure(share, target=f"≤ {thresholds['overlap_max']}")
    assert share <= thresholds["overlap_max"], \
        f"{share:.0%} of the corpus appears verbatim in the course's Shakespeare: bring your own data"


@pytest.fixture(scope="module")
def specialist_eval(corpus, answers, thresholds):
    text, problem = corpus
    assert text is not None, problem
    chars = capstone.vocab(text)
    train, val = capstone.split(capstone.encode(text, chars))
    val_x, val_y = capstone.val_windows(val, capstone.CONFIG["block_size"], int(thresholds["val_windows"]))
    r = answers.get("specialist")
    logits = to_array(r["logits"], "val logits", shape=(*val_y.shape, len(chars)))
    return {"chars": chars, "train": train, "val_x": val_x, "val_y": val_y, "answer": r,
            "loss": capstone.cross_entropy(logits, val_y),
            "bigram": capstone.bigram_nll(train, val_x, val_y, len(chars)), "text": text}


@pytest.mark.check(points=5, category="loss")
def test_beats_bigram(specialist_eval, thresholds, measure):
    """Your GPT, trained by the grader on 90 % of your corpus, beats its bigram on the other 10 %."""
    loss, bigram = specialist_eval["loss"], specialist_eval["bigram"]
    margin = bigram - loss
    measure(margin, pass_at=thresholds["specialist_margin_pass"], fail_at=thresholds["specialist_margin_fail"],
            val_loss=round(loss, 4), bigram_val=round(bigram, 4))
    assert loss >= thresholds["specialist_floor"], \
        f"val loss {loss:.3f} is implausibly low: the model must not see the held-out text"
    assert margin >= thresholds["specialist_margin_pass"], \
        f"val loss {loss:.3f} is only {margin:.3f} nats below the bigram's {bigram:.3f}"


def _samples(specialist_eval) -> list[str]:
    chars = specialist_eval["chars"]
    out = []
    for i, ids in enumerate(specialist_eval["answer"]["samples"]):
        arr = to_array(ids, f"sample {i}").astype(np.int64)
        if arr.min(initial=0) < 0 or arr.max(initial=0) >= len(chars):
            raise AnswerError(f"sample {i} has token ids outside the vocabulary")
        out.append("".join(chars[j] for j in arr))
    return out


@pytest.fixture(scope="module")
def sample_metrics(specialist_eval, artifacts):
    """Median sample metrics against a 5-gram of the corpus's training 90 % (fit once)."""
    from grader.judge.samples import TextReference, median_text_metrics

    samples = _samples(specialist_eval)
    text = specialist_eval["text"]
    cut = int(0.9 * len(text))
    ref = TextReference.fit(text[:cut])
    (artifacts / "specialist_samples.txt").write_text("\n\n-----\n\n".join(samples))
    return median_text_metrics(samples, ref), ref.lm.mean_nll([text[cut:cut + 20_000]])


@pytest.mark.check(points=4, category="samples")
def test_sample_style(sample_metrics, thresholds, measure):
    """Samples read like the corpus: low n-gram NLL under a model of your text, real words."""
    metrics, baseline = sample_metrics
    excess = metrics.nll5 - baseline
    f1 = measure(excess, pass_at=thresholds["nll5_excess_pass"], fail_at=thresholds["nll5_excess_fail"],
                 nll5=round(metrics.nll5, 3), corpus_nll5=round(baseline, 3))
    f2 = measure(metrics.wordvalid, pass_at=thresholds["wordvalid_pass"], fail_at=thresholds["wordvalid_fail"])
    assert f1 <= thresholds["nll5_excess_pass"], f"samples' 5-gram NLL {metrics.nll5:.2f} vs {baseline:.2f} for real text"
    assert f2 >= thresholds["wordvalid_pass"], f"only {metrics.wordvalid:.0%} of sampled words occur in your corpus"


@pytest.mark.check(points=2, category="integrity")
def test_no_copying(sample_metrics, thresholds, measure):
    """Samples are generated, not copied: few 40-char windows appear verbatim in the corpus."""
    metrics, _ = sample_metrics
    measure(metrics.mem40, target=f"≤ {thresholds['mem40_max']}")
    assert metrics.mem40 <= thresholds["mem40_max"], f"{metrics.mem40:.0%} of sample windows are verbatim corpus text"
