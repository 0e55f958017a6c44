"""Roster parsing: every bad line is reported by number and skipped; good lines are kept."""

from __future__ import annotations

import pytest

from grader.fetch.roster import check_student_id, load_roster

HOSTILE = """student,name,github,repo,lms_id,section
alice,Alice A,alice-a,{fork},1001,A
bob,Bob B,bob-b,ext::sh -c touch% /tmp/pwned,1002,A
carol,Carol C,carol-c,--upload-pack=touch /tmp/pwned,1003,A
../dave,Dave D,dave-d,{fork},1004,A
alice,Alice Again,alice-2,{fork},1005,A
erin,Erin E,erin-e,http://example.com/erin.git,1006,B
frank,Frank F,alice-a,{fork},1007,B
gina,Gina G,gina-g,https://github.com/gina-g/course.git,1008,B
hal,Hal H,hal-h,,1009,B
-ivy,Ivy I,ivy-i,{fork},1010,B
jo,Jo J,jo-j,git@github.com:jo-j/course.git,--rm,B
kim,Kim K,kim-k,ssh://-oProxyCommand=id/x,1012,B
"""


def test_hostile_roster_keeps_good_lines_and_names_bad_ones(tmp_path):
    path = tmp_path / "roster.csv"
    path.write_text(HOSTILE.format(fork="forks/alice"))
    roster = load_roster(path)
    assert [e.student for e in roster.entries] == ["alice", "gina"]
    assert roster.entries[0].repo == str((tmp_path / "forks" / "alice").resolve())  # relative to the roster
    assert roster.entries[0].lms_id == "1001" and roster.entries[0].line == 2
    problems = "\n".join(roster.problems)
    for line, words in [(3, "remote helper"), (4, "option"), (5, "not allowed"), (6, "duplicate student"),
                        (7, "only https"), (8, "duplicate github"), (10, "missing fork"), (11, "not allowed"),
                        (12, "lms_id"), (13, "option")]:
        hits = [p for p in roster.problems if f"line {line}:" in p]
        assert len(hits) == 1 and words in hits[0], (line, problems)
    assert len(roster.problems) == 10


def test_toml_roster(tmp_path):
    path = tmp_path / "roster.toml"
    path.write_text('[[student]]\nstudent = "ann"\nrepo = "https://github.com/ann/course.git"\nsection = "B"\n'
                    '[[student]]\nstudent = "ann"\nrepo = "file:///srv/forks/ann2"\n')
    roster = load_roster(path)
    assert [(e.student, e.section) for e in roster.entries] == [("ann", "B")]
    assert roster.problems == ["roster.toml entry 2: duplicate student 'ann' (first on entry 1); skipped"]


def test_extra_columns_and_comments_are_ignored(tmp_path):
    path = tmp_path / "roster.csv"
    path.write_text("# cohort 3\nstudent,repo,email\nzed,https://github.com/zed/c.git,z@example.com\n")
    roster = load_roster(path)
    assert [e.student for e in roster.entries] == ["zed"] and roster.problems == []


@pytest.mark.parametrize("bad", ["..", ".hidden", "a/b", "a b", "x" * 65, "-rf", "name.lock", "a..b", ""])
def test_student_ids_that_cannot_be_file_or_remote_names(bad):
    with pytest.raises(ValueError):
        check_student_id(bad)
