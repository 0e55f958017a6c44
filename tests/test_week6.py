"""Week 6 beyond tests/test_weeks.py: the specialist track (a notebook plus the student's own
corpus), and the evidence each track's report shows (samples, heatmaps, speed/loss table)."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest
from conftest import ROOT

FIXTURES = ROOT / "fixtures" / "submissions" / "week6"
_spec = importlib.util.spec_from_file_location("week6_capstone", ROOT / "solutions" / "week6" / "capstone.py")
capstone = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(capstone)


def test_architect_val_windows_come_from_the_heldout_plays():
    """The architect's val loss: held-out plays (no week's data holds them), one scored position per
    window, and no scored target inside any window sent (issue 16.3)."""
    import numpy as np

    from grader.config import DATA_DIR, load_week, week_suite

    chars, _, _ = capstone.shakespeare_data(DATA_DIR)
    block = capstone.CONFIG["block_size"]
    x, y = capstone.heldout_windows(DATA_DIR, chars, block, 300)
    assert x.shape == (300, block) and y.shape == (300,)
    held = (DATA_DIR / capstone.HELDOUT).read_text(encoding="utf-8")
    for row, target in zip(x[:20], y[:20]):
        assert "".join(chars[i] for i in row) + chars[target] in held
    ids = capstone.encode(held, chars)
    starts = [int(np.flatnonzero((np.lib.stride_tricks.sliding_window_view(ids, block) == row).all(axis=1))[0])
              for row in x[:5]]
    sent = {s + i for s in starts for i in range(block)}
    assert not {s + block for s in starts} & sent
    assert capstone.HELDOUT not in load_week(week_suite("week6")).data


def test_track_parsed_from_source_not_run():
    assert capstone.declared(['TRACK = "Architect"\nDATASET = "x.txt"']) == ("architect", "x.txt")
    assert capstone.declared(['TRACK = None\n### x\nTRACK = "inspector"']) == ("inspector", None)
    assert capstone.declared(['TRACK = pick()']) == (None, None)
    assert capstone.declared(["def f(:"]) == (None, None)
    assert "no track" in capstone.track_problem(None)
    assert "unknown track" in capstone.track_problem("explorer")


def test_corpus_must_be_a_committed_file(tmp_path):
    nb = tmp_path / "week6.ipynb"
    nb.write_text("{}")
    (tmp_path / "c.txt").write_text("hello")
    (tmp_path / "link.txt").symlink_to(tmp_path / "c.txt")
    assert capstone.read_corpus(tmp_path, nb, "c.txt") == ("hello", "")
    assert capstone.read_corpus(tmp_path, nb, "link.txt")[0] is None
    assert capstone.read_corpus(tmp_path, nb, "../etc/passwd")[0] is None
    assert "no DATASET" in capstone.read_corpus(tmp_path, nb, None)[1]


def _turned(rotate_row, hs=8, T=16):
    """apply_rope of the basis vectors as the probe returns it: (hs, T, hs), row j at position m = R_m e_j."""
    import numpy as np

    return np.stack([np.stack([rotate_row(np.eye(hs)[j], m) for m in range(T)]) for j in range(hs)])


def test_rope_rotations_accept_every_convention_and_refuse_what_is_no_rope():
    """The queries-and-keys-only check runs on the notebook's own rotation when it is a RoPE: half-split,
    interleaved pairs and the opposite sign all are; no rotation, a scaling, position 0 turned and angles
    that are not proportional to the position are not."""
    import numpy as np

    cos, sin = capstone.rope_reference(8, 16)
    half = _turned(lambda e, m: capstone.rotate(e, cos[m], sin[m]))
    R, problem = capstone.rope_rotations(half)
    assert problem == "" and np.allclose(np.einsum("ij,j->i", R[5], np.arange(8.0)),
                                         capstone.rotate(np.arange(8.0), cos[5], sin[5]))
    inter_cos, inter_sin = (np.repeat(t[:, :4], 2, axis=1) for t in (cos, sin))

    def interleaved(e, m):
        pairs = np.stack([-e[1::2], e[0::2]], axis=-1).reshape(-1)
        return e * inter_cos[m] + pairs * inter_sin[m]

    assert capstone.rope_rotations(_turned(interleaved))[1] == ""
    assert capstone.rope_rotations(_turned(lambda e, m: capstone.rotate(e, cos[m], -sin[m])))[1] == ""
    assert "nothing" in capstone.rope_rotations(_turned(lambda e, m: e))[1]
    assert "not a rotation" in capstone.rope_rotations(_turned(lambda e, m: e * (1 + 0.1 * m)))[1]
    later_cos, later_sin = capstone.rope_reference(8, 17)
    assert "position 0" in capstone.rope_rotations(
        _turned(lambda e, m: capstone.rotate(e, later_cos[m + 1], later_sin[m + 1])))[1]
    angles = np.random.default_rng(0).uniform(0, 3, size=(16, 1)) * np.ones((1, 8))
    angles[0] = 0
    assert "not relative" in capstone.rope_rotations(
        _turned(lambda e, m: capstone.rotate(e, np.cos(angles[m]), np.sin(angles[m]))))[1]


def test_swiglu_arguments_beyond_the_default_fail_alone():
    """A SwiGLU that takes no `dropout` (or `hidden`) argument: the probe still returns its default-size
    answers (the parameter count stands on them) and says what failed, for swiglu_forward to report."""
    import torch
    from torch import nn

    spec = importlib.util.spec_from_file_location("week6_probes_for_test", ROOT / "solutions" / "week6" / "probes.py")
    probes = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(probes)

    class SwiGLU(nn.Module):  # no dropout argument; hidden honoured
        def __init__(self, n_embd, hidden=None):
            super().__init__()
            hidden = hidden or int(8 * n_embd / 3)
            self.w1, self.w3 = nn.Linear(n_embd, hidden, bias=False), nn.Linear(n_embd, hidden, bias=False)
            self.w2 = nn.Linear(hidden, n_embd, bias=False)

        def forward(self, x):
            return self.w2(torch.nn.functional.silu(self.w1(x)) * self.w3(x))

    inputs = capstone.architect_inputs(1337)
    got = probes.swiglu({"SwiGLU": SwiGLU}, 48, 1337, inputs["swiglu_x"], inputs["swiglu_w1"],
                        inputs["swiglu_w2"], inputs["swiglu_w3"], capstone.SWIGLU_GIVEN)
    assert got["hidden"] == 128 and got["y"].shape == (3, 48)
    assert got["given"][1] == capstone.SWIGLU_GIVEN
    assert "drop" not in got and got["drop_error"].startswith("TypeError") and "dropout" in got["drop_error"]


def test_shakespeare_overlap_detects_the_course_corpus():
    text = (ROOT / "fixtures" / "data" / "shakespeare.txt").read_text()
    assert capstone.shakespeare_overlap(text[:100_000], text) == 1.0
    corpus = (FIXTURES / "specialist_passes" / "my_corpus.txt").read_text()
    assert capstone.shakespeare_overlap(corpus, text) < 0.01


@pytest.mark.slow
@pytest.mark.pooled("week6", "fixtures/submissions/week6/specialist_passes", weight=4.0)
def test_specialist_solution_full_marks_with_evidence(pooled_grade):
    grade = pooled_grade
    lost = [(c.id, c.points, c.message) for c in grade.checks if c.points < c.max_points]
    assert grade.score == grade.max_score == 20, lost
    beats = next(c for c in grade.checks if c.id == "beats_bigram")
    assert beats.details["val_loss"] < beats.details["bigram_val"] - 0.25
    assert any(name.endswith("specialist_samples.txt") for name in grade.artifacts)


@pytest.mark.slow
@pytest.mark.pooled("week6", "fixtures/submissions/week6/fails_specialist_is_shakespeare", weight=4.0,
                    select=("not_shakespeare", "dataset_present", "dataset_size"))
def test_specialist_that_is_shakespeare_loses_the_overlap_check(pooled_grade):
    grade = pooled_grade
    by_id = {c.id: c for c in grade.checks}
    assert by_id["not_shakespeare"].points == 0
    assert "Shakespeare" in by_id["not_shakespeare"].message
    assert by_id["dataset_present"].points == by_id["dataset_present"].max_points


@pytest.mark.slow
@pytest.mark.pooled("week6", "fixtures/submissions/week6/fails_load_corpus_empty",
                    select=("dataset_present", "dataset_size", "not_shakespeare"))
def test_a_load_corpus_that_reads_nothing_loses_dataset_present(pooled_grade):
    """The notebook's own load_corpus(DATASET) is called and compared with the file the judge read."""
    by_id = {c.id: c for c in pooled_grade.checks}
    assert by_id["dataset_present"].points == 0, by_id["dataset_present"].message
    assert "load_corpus(DATASET) returned 0 characters" in by_id["dataset_present"].message
    assert by_id["dataset_size"].points == by_id["dataset_size"].max_points  # the file itself is fine
    assert by_id["not_shakespeare"].points == by_id["not_shakespeare"].max_points


@pytest.mark.slow
@pytest.mark.pooled("week6", "fixtures/submissions/week6/architect_passes.ipynb", weight=3.0)
def test_architect_solution_full_marks_with_speed_and_loss_table(pooled_grade):
    grade = pooled_grade
    lost = [(c.id, c.points, c.message) for c in grade.checks if c.points < c.max_points]
    assert grade.score == grade.max_score == 20, lost
    table = Path(grade.artifacts["architect.md"]).read_text()
    assert "vanilla" in table and "modified" in table and "ms/step" in table
    check = next(c for c in grade.checks if c.id == "architect_training")
    assert check.details["speed_ratio"] > 0 and check.details["modified_val"] > 0


@pytest.mark.slow
def test_inspector_report_shows_both_heatmaps(solution_grade):
    grade = solution_grade("week6")
    assert {"attention_grader.png", "attention_student.png"} <= set(grade.artifacts)
    assert Path(grade.artifacts["attention_student.png"]).read_bytes()[:4] == b"\x89PNG"


def _judge_forged(tmp_path, notebook: Path, answers: dict, select: tuple[str, ...]):
    """Run week 6's hidden checks on forged probe answers (what a cell that replaces the probes or
    json.dump could write), without a kernel."""
    import json

    import numpy as np

    from grader.config import DATA_DIR, load_week, week_suite
    from grader.judge.context import JudgeContext
    from grader.judge.process import run_judge

    folder = tmp_path / "answers"
    (folder / "arrays").mkdir(parents=True)

    def encode(value):
        if isinstance(value, np.ndarray):
            name = f"a{len(list((folder / 'arrays').iterdir()))}.npy"
            np.save(folder / "arrays" / name, value)
            return {"$array": name}
        if isinstance(value, dict):
            return {k: encode(v) for k, v in value.items()}
        return [encode(v) for v in value] if isinstance(value, list) else value

    (folder / "answers.json").write_text(json.dumps({k: {"ok": True, "value": encode(v)} for k, v in answers.items()}))
    suite = week_suite("week6")
    ctx = JudgeContext(suite_dir=str(suite), answers_dir=str(folder), profile="cpu",
                       thresholds=load_week(suite).profile("cpu").thresholds,
                       execution={"status": "ok", "failures": [], "cells_run": 5, "cells_total": 5,
                                  "probes": [{"id": k, "ok": True} for k in answers]},
                       notebook_path=str(notebook), data_dir=str(DATA_DIR), artifacts_dir=str(tmp_path / "art"),
                       results_path=str(tmp_path / "results.json"), select=list(select))
    return {c.id: c for c in run_judge(ctx)}


def test_forged_self_consistent_answers_earn_nothing(tmp_path):
    """Answers that only agree with themselves (zero weights and a zero output, the right parameter
    count; causal uniform maps with weights that would produce them; a PNG of a solid colour) used to
    earn these checks; each is now recomputed by the judge from weights and maps it chose (issue 16.2).
    An attention without RoPE, reported with an apply_rope that rotates nothing, earns nothing either."""
    import io

    import matplotlib
    import numpy as np

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    zeros = np.zeros
    # the attention without RoPE, and an apply_rope that rotates nothing: the judge's check against the
    # notebook's own rotation must not take "no rotation" for one
    inputs = capstone.architect_inputs(1337)
    no_rotation = np.broadcast_to(np.eye(8), (16, 8, 8))
    vanilla = capstone.reference_rope_attention(inputs["attn_x"], inputs["qkv_w"], inputs["proj_w"], inputs["proj_b"],
                                                4, rotations=no_rotation)
    arch = _judge_forged(tmp_path / "arch", FIXTURES / "architect_passes.ipynb", {
        "swiglu": {"y": zeros((3, 48)), "hidden": 128, "params": 3 * 48 * 128,
                   "w1": zeros((128, 48)), "w2": zeros((48, 128)), "w3": zeros((128, 48))},
        "rope_attention": {"y": vanilla, "basis": no_rotation.transpose(2, 0, 1)[None], "rq": zeros((2, 4, 16, 8)),
                           "rk": zeros((2, 4, 16, 8)), "v": zeros((2, 4, 16, 8)), "proj_w": zeros((32, 32)),
                           "proj_b": zeros(32)},
        "rope": {"rq": np.ones((16, 8)), "rk": np.ones((16, 8)), "rx": np.ones((16, 8)),
                 "cos": np.ones((16, 8)), "sin": zeros((16, 8))}},
        ("swiglu_forward", "swiglu_parameter_count", "rope_on_queries_and_keys_only", "rope_norm_and_identity",
         "runs_clean"))
    assert {k: c.fraction for k, c in arch.items()} == {
        "swiglu_forward": 0.0, "swiglu_parameter_count": 0.0, "rope_on_queries_and_keys_only": 0.0,
        "rope_norm_and_identity": 0.0, "runs_clean": 0.0}, {k: c.message for k, c in arch.items()}
    assert "nothing to stand on" in arch["runs_clean"].message  # every cell ran and every probe said ok

    T = len(capstone.INSPECT_TEXT)
    uniform = np.tril(np.ones((T, T))) / np.arange(1, T + 1)[:, None]
    maps = np.broadcast_to(uniform, (3, 4, T, T)).copy()
    fig, ax = plt.subplots(figsize=(3, 3))
    ax.imshow(uniform)
    png = io.BytesIO()
    fig.savefig(png, format="png")
    plt.close(fig)
    inspector = _judge_forged(tmp_path / "insp", ROOT / "solutions" / "week6" / "week6.ipynb", {
        "inspect": {"maps": maps, "maps2": maps, "before": zeros((1, T, 65)), "after": zeros((1, T, 65)),
                    "training_after": True, "hooks_left": 0,
                    "state": {"token_embedding.weight": zeros((65, 32))}},
        "plot": {"png": np.frombuffer(png.getvalue(), dtype=np.uint8), "drawn": [uniform]}},
        ("maps_match_model", "attention_figure", "maps_causal", "maps_no_side_effects"))
    assert inspector["maps_causal"].fraction == 1.0  # a property any causal map has: not the forgery's proof
    assert inspector["maps_match_model"].fraction == 0.0, inspector["maps_match_model"].message
    assert inspector["maps_no_side_effects"].fraction == 0.0, inspector["maps_no_side_effects"].message
    assert inspector["attention_figure"].fraction == 0.0, inspector["attention_figure"].message
    assert "draws 0 of the 12 maps" in inspector["attention_figure"].message
