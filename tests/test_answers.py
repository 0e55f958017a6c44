"""grader.judge.answers: the judge reads what the sandbox wrote strictly; anything odd fails one check."""

from __future__ import annotations

import json
import math
import os

import numpy as np
import pytest

from grader.judge import answers as answers_module
from grader.judge.answers import AnswerError, Answers, load_answer_file, to_array, to_number
from grader.run import answers_file


def make_answers(tmp_path, entries: dict, arrays: dict | None = None):
    folder = tmp_path / "answers"
    (folder / "arrays").mkdir(parents=True)
    (folder / "answers.json").write_text(json.dumps(entries))
    for name, arr in (arrays or {}).items():
        np.save(folder / "arrays" / name, arr, allow_pickle=False)
    return Answers(folder)


def test_number_and_array_round_trip(tmp_path):
    ans = make_answers(tmp_path, {"p": {"ok": True, "value": {"loss": 1.5, "grads": {"$array": "g.npy"}}}},
                       {"g.npy": np.arange(6, dtype=np.float64).reshape(2, 3)})
    assert ans.number("p", "loss") == 1.5
    assert ans.array("p", "grads", shape=(2, None)).shape == (2, 3)


def test_missing_probe_says_the_notebook_did_not_get_there(tmp_path):
    ans = make_answers(tmp_path, {})
    with pytest.raises(AnswerError, match="did not get that far"):
        ans.get("train")


def test_failed_probe_carries_the_students_error(tmp_path):
    ans = make_answers(tmp_path, {"p": {"ok": False, "error": "TypeError: bad operand"}})
    with pytest.raises(AnswerError, match="failed in your code: TypeError: bad operand"):
        ans.get("p")


@pytest.mark.parametrize("raw", ["NaN", "Infinity", "-Infinity"])
def test_non_finite_json_numbers_fail(tmp_path, raw):
    folder = tmp_path / "answers"
    folder.mkdir()
    (folder / "answers.json").write_text(f'{{"p": {{"ok": true, "value": {raw}}}}}')
    with pytest.raises(AnswerError, match="finite"):
        Answers(folder).number("p")


def test_nan_string_from_the_encoder_is_not_a_number(tmp_path):
    ans = make_answers(tmp_path, {"p": {"ok": True, "value": "nan"}})
    with pytest.raises(AnswerError, match="expected a number, got str"):
        ans.number("p")


@pytest.mark.parametrize("value", [True, "1.0", None, [1.0], {"a": 1}])
def test_wrong_types_are_not_numbers(value):
    with pytest.raises(AnswerError, match="expected a number"):
        to_number(value, "x")


def test_zero_d_array_is_a_number():
    assert to_number(np.array(2.5)) == 2.5


def test_wrong_shape_fails(tmp_path):
    ans = make_answers(tmp_path, {"p": {"ok": True, "value": {"$array": "a.npy"}}}, {"a.npy": np.zeros((3, 4))})
    with pytest.raises(AnswerError, match=r"expected shape \(3, 5\), got \(3, 4\)"):
        ans.array("p", shape=(3, 5))
    with pytest.raises(AnswerError, match="expected shape"):
        ans.array("p", shape=(12,))


def test_array_with_nan_fails_unless_allowed():
    arr = np.array([1.0, math.nan])
    with pytest.raises(AnswerError, match="NaN or inf"):
        to_array(arr, "x")
    assert to_array(arr, "x", finite=False).shape == (2,)


def test_ragged_list_is_not_an_array():
    with pytest.raises(AnswerError, match="expected numbers"):
        to_array([[1.0, 2.0], [3.0]], "x")


def test_strings_are_not_numeric_arrays(tmp_path):
    ans = make_answers(tmp_path, {"p": {"ok": True, "value": {"$array": "s.npy"}}}, {"s.npy": np.array(["a", "b"])})
    with pytest.raises(AnswerError, match="dtype"):
        ans.get("p")


def test_pickled_npy_is_refused(tmp_path):
    folder = tmp_path / "answers"
    (folder / "arrays").mkdir(parents=True)
    np.save(folder / "arrays" / "evil.npy", np.array([{"a": 1}], dtype=object), allow_pickle=True)
    (folder / "answers.json").write_text(json.dumps({"p": {"ok": True, "value": {"$array": "evil.npy"}}}))
    with pytest.raises(AnswerError, match="not a plain .npy array"):
        Answers(folder).get("p")


@pytest.mark.parametrize("name", ["../answers.json", ".hidden.npy", "x.txt", 7])
def test_bad_array_references(tmp_path, name):
    ans = make_answers(tmp_path, {"p": {"ok": True, "value": {"$array": name}}})
    with pytest.raises(AnswerError, match="bad array reference"):
        ans.get("p")


def test_symlinked_array_is_not_followed(tmp_path):
    secret = tmp_path / "secret.npy"
    np.save(secret, np.ones(3))
    ans = make_answers(tmp_path, {"p": {"ok": True, "value": {"$array": "link.npy"}}})
    os.symlink(secret, tmp_path / "answers" / "arrays" / "link.npy")
    with pytest.raises(AnswerError, match="cannot be read"):  # O_NOFOLLOW: ELOOP
        ans.get("p")


@pytest.mark.timeout(20)
def test_a_fifo_in_the_answers_never_blocks_the_reader(tmp_path):
    """The kernel can make a named pipe where the grader reads: opening it for reading would wait for a
    writer forever (a stuck judge, a harness error instead of the student's grade). It is refused."""
    ans = make_answers(tmp_path, {"p": {"ok": True, "value": {"$array": "pipe.npy"}}})
    os.mkfifo(tmp_path / "answers" / "arrays" / "pipe.npy")
    with pytest.raises(AnswerError, match="not a regular file"):
        ans.get("p")
    folder = tmp_path / "fifo-answers"
    folder.mkdir()
    os.mkfifo(folder / "answers.json")
    with pytest.raises(answers_file.AnswerFileError, match="not a regular file"):
        answers_file.read_answer_file(folder)


def test_missing_array_file_fails_the_check(tmp_path):
    ans = make_answers(tmp_path, {"p": {"ok": True, "value": {"$array": "gone.npy"}}})
    with pytest.raises(AnswerError, match="cannot be read"):
        ans.get("p")


def test_symlinked_answers_file_reads_as_empty(tmp_path):
    real = tmp_path / "elsewhere.json"
    real.write_text(json.dumps({"p": {"ok": True, "value": 1.0}}))
    folder = tmp_path / "answers"
    folder.mkdir()
    os.symlink(real, folder / "answers.json")
    assert load_answer_file(folder) == {}
    with pytest.raises(AnswerError):
        Answers(folder).get("p")


def test_oversized_answers_file_reads_as_empty(tmp_path, monkeypatch):
    monkeypatch.setattr(answers_file, "MAX_JSON_BYTES", 100)
    folder = tmp_path / "answers"
    folder.mkdir()
    (folder / "answers.json").write_text(json.dumps({"p": {"ok": True, "value": "x" * 200}}))
    assert load_answer_file(folder) == {}


def test_oversized_array_is_refused(tmp_path, monkeypatch):
    ans = make_answers(tmp_path, {"p": {"ok": True, "value": {"$array": "big.npy"}}}, {"big.npy": np.zeros(1000)})
    monkeypatch.setattr(answers_module, "MAX_ARRAY_BYTES", 1000)
    with pytest.raises(AnswerError, match="over the 1000-byte cap"):
        ans.get("p")


def test_answers_json_that_is_not_an_object(tmp_path):
    folder = tmp_path / "answers"
    folder.mkdir()
    (folder / "answers.json").write_text("[1, 2, 3]")
    assert load_answer_file(folder) == {}
    assert load_answer_file(None) == {}


def test_strings_view_is_strict(tmp_path):
    ans = make_answers(tmp_path, {"s": {"ok": True, "value": ["emma", "olivia"]},
                                  "bad": {"ok": True, "value": ["emma", 3]}})
    assert ans.strings("s") == ["emma", "olivia"]
    with pytest.raises(AnswerError, match="list of strings"):
        ans.strings("bad")
    with pytest.raises(AnswerError, match="more than 1"):
        ans.strings("s", max_items=1)
