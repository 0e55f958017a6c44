"""The `grader` command. Only this module turns errors into exit codes (pytest's meanings):

0 every check passed, 1 some check lost points, 2 interrupted, 3 internal (harness) error,
4 usage error (one line naming the option). `batch` exits 0 when every submission got a grade,
whatever the scores, and 3 when the machine failed some (grader.records.MACHINE_FAILURES) or the
disk under --out filled up.
"""

from __future__ import annotations

import os
import re
import sys
from pathlib import Path

import click

from grader import __version__

OK, CHECKS_FAILED, INTERRUPTED, INTERNAL, USAGE = 0, 1, 2, 3, 4
WEEKS = [f"week{i}" for i in range(1, 7)]


class Group(click.Group):
    def main(self, *args, **kwargs):
        """Every usage error is one line naming the option, and exit 4 (click's own is several lines
        and exit 2, which is pytest's "interrupted")."""
        kwargs["standalone_mode"] = False
        try:
            result = super().main(*args, **kwargs)
        except click.exceptions.NoArgsIsHelpError as exc:
            click.echo(exc.ctx.get_help() if exc.ctx else str(exc), err=True)
            raise SystemExit(USAGE) from None
        except click.ClickException as exc:
            click.echo(f"error: {exc.format_message()}", err=True)
            raise SystemExit(USAGE) from None
        except click.exceptions.Exit as exc:
            raise SystemExit(exc.exit_code) from None
        except (click.Abort, KeyboardInterrupt):
            raise SystemExit(INTERRUPTED) from None
        raise SystemExit(result if isinstance(result, int) else OK)


@click.group(cls=Group)
@click.version_option(__version__, prog_name="grader")
def main() -> None:
    """Grade notebooks for "Architecting LLMs: Building a GPT from Scratch"."""
    from grader.run.sandbox import QUIET_BLAS

    for key, value in QUIET_BLAS.items():  # before numpy loads here or in the processes we start
        os.environ.setdefault(key, value)


def _source_submission(week: str, source: str, commit: str | None, student: str, scratch: Path,
                       branch: str | None = None, public: bool = False):
    """A local folder or notebook file as it is, or a git repository at the commit the one rule
    (grader.fetch.graded) chooses, or at --commit. A local path that is none of these is a usage error."""
    from grader.config import load_week, week_suite
    from grader.pipeline import released_stub
    from grader.records import Submission

    path = Path(source)
    if path.is_file() and path.suffix == ".ipynb":
        return Submission(student=student, week=week, source=source, workdir=str(path.parent.resolve()),
                          notebook=path.name, selection=f"notebook {path.name}, as given")
    if path.is_dir() and not commit and not branch and not (path / "HEAD").is_file():
        return Submission(student=student, week=week, source=source, workdir=str(path.resolve()))
    if "://" not in source and not (path.is_dir() or ":" in source.split("/", 1)[0]):
        raise click.UsageError(f"no such notebook, folder or repository: {source}")
    # a repository: URL, bare repo, or a checkout at --commit
    from grader.fetch.graded import fetch_submission

    config = load_week(week_suite(week, public=public))
    return fetch_submission(source, week, commit=commit, student=student, dest=scratch, branch=branch,
                            expected=config.notebook, stub=released_stub(config))


def _finish(grade, settings, formats, stem: str | None = None, show_report: bool = False) -> int:
    from grader.report.github import commands_stopped
    from grader.report.markdown import render_markdown, write_report

    written = write_report(grade, settings.out_dir, formats, stem=stem)  # `github` prints its annotations here
    with commands_stopped():  # in Actions, nothing of the report below can be read as a command
        for fmt, path in written.items():
            click.echo(f"{fmt}: {path}", err=True)
        score = "not graded" if grade.machine_failure else f"{grade.score:g} / {grade.max_score:g}"
        click.echo(f"{grade.student} {grade.week}: {score}"
                   + (f" ({grade.status}: {grade.message})" if grade.status != "graded" else ""))
        if show_report:
            click.echo(render_markdown(grade))
            click.echo(_next_step(grade))
    if grade.machine_failure:
        return INTERNAL
    return OK if grade.score >= grade.max_score and grade.max_score > 0 else CHECKS_FAILED


def _check_formats(formats: tuple[str, ...]) -> tuple[str, ...]:
    from grader.report.markdown import known_formats

    known = known_formats()
    for fmt in formats:
        if fmt not in known:
            raise click.BadParameter(f"unknown report format {fmt!r} (known: {', '.join(known)})",
                                     param_hint="'--format'")
    return formats


def _check_student(value: str) -> str:
    from grader.fetch.roster import check_student_id

    try:
        return check_student_id(value)
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="'--student'") from None


def _check_commit(value: str | None) -> str | None:
    if value is not None and not re.fullmatch(r"[0-9a-fA-F]{7,40}", value):
        raise click.BadParameter(f"{value!r} is not a commit sha (7 to 40 hexadecimal digits)", param_hint="'--commit'")
    return value.lower() if value else None


def _check_branch(_ctx, _param, value: str | None) -> str | None:
    from grader.fetch.graded import check_branch

    try:
        return check_branch(value) if value else None
    except ValueError as exc:
        raise click.BadParameter(str(exc)) from None


def report_stem(notebook: str, week: str) -> str:
    """`grader check`'s report name: one per notebook (checking another never overwrites it)."""
    slug = re.sub(r"[^a-z0-9]+", "-", Path(notebook).stem.lower()).strip("-")[:60] or "notebook"
    return week if slug == week else f"{week}-{slug}"


@main.command()
@click.argument("week", type=click.Choice(WEEKS))
@click.argument("source")
@click.option("--commit", help="grade this commit of a repository")
@click.option("--student", default="local", show_default=True, help="name used in reports")
@click.option("--out", "out_dir", type=click.Path(path_type=Path), help="report folder [grades]")
@click.option("--format", "formats", multiple=True, help="json, md, html, junit, gradescope, github")
@click.option("--profile", type=click.Choice(["cpu", "cuda"]), help="default: cuda when a GPU is visible")
@click.option("--require-isolation", is_flag=True, default=None, help="refuse to grade without bubblewrap")
@click.option("--keep-run-dir", is_flag=True, default=None, help="keep the scratch folder for debugging")
@click.option("--branch", callback=_check_branch, help="grade this branch of a repository [the rule's choice]")
@click.option("--allow-weak-isolation", is_flag=True, default=None,
              help="grade even without bubblewrap (every report says so first)")
def grade(week, source, commit, student, out_dir, formats, profile, require_isolation, keep_run_dir, branch,
          allow_weak_isolation):
    """Grade one submission (a notebook, a folder or a repository) with the hidden checks.

    Of a repository: --commit as given, else the rule of the student guide (the default branch or a
    branch named after the week, whichever changed the week's notebook last; a changed Colab copy
    beats the untouched stub)."""
    sys.exit(_grade(week, source, _check_commit(commit), _check_student(student), out_dir, formats, profile,
                    require_isolation, keep_run_dir, public=False, branch=branch,
                    allow_weak_isolation=allow_weak_isolation))


@main.command()
@click.argument("week", type=click.Choice(WEEKS))
@click.argument("notebook")
@click.option("--out", "out_dir", type=click.Path(path_type=Path), help="report folder [grades]")
@click.option("--profile", type=click.Choice(["cpu", "cuda"]))
@click.option("--format", "formats", multiple=True, help="md (default), json, html, junit, github")
@click.option("--commit", help="check this commit of a repository (the pull-request script passes its head)")
@click.option("--branch", callback=_check_branch, help="check this branch of a repository")
def check(week, notebook, out_dir, profile, formats, commit, branch):
    """Run the week's public checks on your notebook (what students run locally or in Colab).

    NOTEBOOK: a notebook file, or a folder or repository in which the rule finds it (a changed copy
    such as Colab's "Copy of week1.ipynb" beats the untouched stub). The report is named after the
    notebook: grades/week1.md, grades/week1-copy-of-week1.md."""
    sys.exit(_grade(week, notebook, _check_commit(commit), "local", out_dir, tuple(formats) or ("md",), profile,
                    None, None, public=True, branch=branch))


def _grade(week, source, commit, student, out_dir, formats, profile, require_isolation, keep_run_dir,
           public, branch=None, allow_weak_isolation=None) -> int:
    import sqlite3
    import tempfile

    from grader.cohort.pool import describe_os_error
    from grader.config import Settings, detect_profile, gpu_ids
    from grader.pipeline import check_isolation, grade_submission
    from grader.run.sandbox import Isolation, IsolationError
    from grader.run.tempdirs import claim

    settings = Settings().resolve(profile=profile, out_dir=out_dir, require_isolation=require_isolation,
                                  keep_run_dir=keep_run_dir, public=public, allow_weak_isolation=allow_weak_isolation)
    formats = _check_formats(tuple(formats) or settings.formats)
    try:
        level = check_isolation(settings)  # before fetching anything
        if public and level is not Isolation.bwrap:
            click.echo(f"warning: without bubblewrap your notebook runs with '{level.value}' isolation on this "
                       "machine (install bubblewrap for the grader's sandbox)", err=True)
        claim()
        with tempfile.TemporaryDirectory(prefix="grader-src-") as scratch:
            submission = _source_submission(week, source, commit, student, Path(scratch), branch, public)
            # the cuda profile needs the GPU visible inside the sandbox (hidden by default)
            gpus = gpu_ids() if (settings.profile or detect_profile()) == "cuda" else []
            grade = grade_submission(submission, settings, gpu=gpus[0] if gpus else None)
            stem = report_stem(grade.submission.notebook or source, week) if public else None
            return _finish(grade, settings, formats, stem, show_report=public)
    except IsolationError as exc:
        click.echo(f"error: {exc}", err=True)
        return USAGE
    except (FileNotFoundError, ValueError) as exc:
        click.echo(f"error: {exc}", err=True)
        return USAGE
    except (OSError, sqlite3.Error) as exc:  # the machine's: a full disk is one line, not a traceback
        click.echo(f"error: {describe_os_error(exc) if isinstance(exc, OSError) else exc}", err=True)
        return INTERNAL
    except KeyboardInterrupt:
        return INTERRUPTED


def _next_step(grade) -> str:
    """What a student should do after `grader check`, in one line."""
    if grade.status == "not_submitted":
        return ("Not graded: this notebook is the stub as released. Fill in the cells marked YOUR CODE HERE, "
                "save, and run `grader check` again.")
    if grade.status != "graded":
        return f"Not graded: {grade.message or grade.status}. Fix that, save the notebook and run `grader check` again."
    lost = [c for c in grade.checks if c.points < c.max_points]
    if not lost:
        return ("All public checks passed. Commit, push and open a pull request; your mentor grades with "
                "further hidden checks.")
    return (f"{len(lost)} check(s) lost points: read their messages above, fix the notebook, run it top to "
            "bottom (Restart & Run all), save, and run `grader check` again.")


DEADLINE_FORMAT = "an ISO 8601 time with a timezone, e.g. 2026-11-23T12:00:00+00:00"
LATE_POLICY_FORMAT = "GRACE_HOURS,PENALTY_PER_DAY,CAP, e.g. 2,0.1,0.5 (grace >= 0; penalty and cap in [0, 1])"


def _parse_deadline(_ctx, _param, value: str | None):
    from datetime import datetime

    if value is None:
        return None
    try:
        when = datetime.fromisoformat(value.strip())
    except ValueError:
        raise click.BadParameter(f"{value!r} is not {DEADLINE_FORMAT}") from None
    if when.tzinfo is None:
        raise click.BadParameter(f"{value!r} has no timezone; expected {DEADLINE_FORMAT}")
    return when


def _parse_late_policy(_ctx, _param, value: str | None):
    from pydantic import ValidationError

    from grader.score import LatePolicy

    if value is None:
        return None
    parts = [p.strip() for p in value.split(",")]
    try:
        grace, per_day, cap = (float(p) for p in parts)
    except ValueError:
        raise click.BadParameter(f"{value!r}: expected {LATE_POLICY_FORMAT}") from None
    try:
        return LatePolicy(grace_hours=grace, penalty_per_day=per_day, cap=cap)
    except ValidationError as exc:
        field = {"grace_hours": "grace", "penalty_per_day": "penalty per day", "cap": "cap"}.get(
            str(exc.errors()[0]["loc"][0]), "a value")
        raise click.BadParameter(f"{value!r}: {field} is out of range; expected {LATE_POLICY_FORMAT}") from None


def _check_out(_ctx, _param, value: Path) -> Path:
    if value.exists() and not value.is_dir():
        raise click.BadParameter(f"{value} is a file, not a folder")
    return value


@main.command()
@click.argument("week", type=click.Choice(WEEKS))
@click.option("--roster", "roster_path", required=True, type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="CSV or TOML: student, name, github, repo, branch, lms_id, section")
@click.option("--jobs", type=click.IntRange(min=1), help="parallel gradings [cores, or one per GPU]")
@click.option("--out", "out_dir", type=click.Path(path_type=Path), default=Path("batch-out"), show_default=True,
              callback=_check_out)
@click.option("--deadline", callback=_parse_deadline, help="ISO time with a timezone, e.g. 2026-11-23T12:00:00+00:00")
@click.option("--late-policy", callback=_parse_late_policy, help="GRACE_HOURS,PENALTY_PER_DAY,CAP e.g. 2,0.1,0.5")
@click.option("--executor", type=click.Choice(["local", "ray"]), default="local", show_default=True)
@click.option("--address", help="Ray address: 'local' or ray://host:10001")
@click.option("--profile", type=click.Choice(["cpu", "cuda"]))
@click.option("--format", "formats", multiple=True, help="report formats [json md html junit gradescope]")
@click.option("--regrade", is_flag=True, help="grade again even when the cache has a grade")
@click.option("--fetch-only", is_flag=True, help="only fetch forks and record their branches (with --deadline: "
              "the deadline's record, run when it has passed)")
@click.option("--at-deadline", is_flag=True, help="grade the branches recorded at the deadline, not later pushes")
@click.option("--trust-commit-dates", is_flag=True,
              help="with no heads recorded at the deadline, take late days from commit dates (forgeable)")
@click.option("--branch", callback=_check_branch, help="grade this branch of every fork (a roster column overrides)")
@click.option("--keep-exports", is_flag=True, help="keep each fork's exported files in OUT/work after grading")
@click.option("--allow-weak-isolation", is_flag=True, default=None,
              help="grade even without bubblewrap (every report says so first)")
def batch(week, roster_path, jobs, out_dir, deadline, late_policy, executor, address, profile, formats,
          regrade, fetch_only, at_deadline, trust_commit_dates, branch, keep_exports, allow_weak_isolation):
    """Grade a cohort: fetch every fork, grade (cached, resumable), write gradebook and summary.

    Exit 0 when every submission got a grade; 3 when some did not for the machine's reasons (listed
    under "needs attention" in the summary) or the grader's own disk filled up; 4 for a usage error."""
    import sqlite3

    from grader.cohort.batch import BATCH_FORMATS, check_options, run_batch
    from grader.cohort.pool import describe_os_error
    from grader.report.github import commands_stopped
    from grader.run.sandbox import IsolationError
    from grader.run.tempdirs import claim

    formats = _check_formats(tuple(formats)) or BATCH_FORMATS
    if executor == "ray" and not address:
        raise click.UsageError("--executor ray needs --address (local or ray://...)")
    if address and executor != "ray":
        raise click.UsageError("--address is for --executor ray")
    try:
        check_options(deadline=deadline, at_deadline=at_deadline, fetch_only=fetch_only, regrade=regrade,
                      policy=late_policy, trust_commit_dates=trust_commit_dates)
        settings = _settings(profile).resolve(allow_weak_isolation=allow_weak_isolation)
        claim()
        with commands_stopped(stream=sys.stderr):  # progress lines quote students' messages
            result = run_batch(week, roster_path, out_dir, settings=settings, jobs=jobs, deadline=deadline,
                               policy=late_policy, executor=executor, address=address, regrade=regrade,
                               fetch_only=fetch_only, at_deadline=at_deadline, formats=formats, branch=branch,
                               trust_commit_dates=trust_commit_dates, keep_exports=keep_exports)
    except IsolationError as exc:
        click.echo(f"error: {exc}", err=True)
        sys.exit(USAGE)
    except (ValueError, FileNotFoundError) as exc:
        raise click.UsageError(str(exc)) from None
    except OSError as exc:  # the machine's (its disk): one line, no traceback
        click.echo(f"error: {describe_os_error(exc, out_dir)}", err=True)
        sys.exit(INTERNAL)
    except sqlite3.Error as exc:
        from grader.cohort.batch import describe_output_error

        click.echo(f"error: {describe_output_error(exc, out_dir)}", err=True)
        sys.exit(INTERNAL)
    except KeyboardInterrupt:
        sys.exit(INTERRUPTED)
    if fetch_only:
        sys.exit(_fetch_only_summary(result, out_dir, deadline))
    for name, path in result.exports.items():
        click.echo(f"{name}: {path}", err=True)
    click.echo(f"{len(result.reports)} reports ({result.graded} graded, {result.cached} cached) in "
               f"{result.seconds:g} s; {len(result.roster_problems)} roster lines skipped")
    if result.stopped:
        click.echo(f"error: {result.stopped}; the batch stopped (free space and run it again: what was "
                   "graded is kept)", err=True)
        sys.exit(INTERNAL)
    if result.machine_failures:
        click.echo(f"error: {len(result.machine_failures)} submission(s) not graded for the machine's reasons "
                   f"({', '.join(result.machine_failures)}): see \"Needs attention\" in the summary", err=True)
        sys.exit(INTERNAL)
    sys.exit(OK)


def _fetch_only_summary(result, out_dir: Path, deadline) -> int:
    """What a fetch-only run recorded, and for which deadline."""
    missing = sorted(result.attention)
    ok = len(result.recorded) - len(missing)
    what = f"as the record of the deadline {deadline.isoformat()}" if deadline else "(no --deadline: not a deadline record)"
    click.echo(f"recorded the branches of {ok} fork(s) in {Path(out_dir) / 'heads.jsonl'} {what}"
               + (f"; {len(missing)} could not be fetched: {', '.join(missing)}" if missing else "")
               + f"; {len(result.roster_problems)} roster lines skipped")
    return INTERNAL if missing else OK


def _settings(profile):
    from grader.config import Settings

    return Settings().resolve(profile=profile)


@main.command()
@click.option("--out", "out_dir", type=click.Path(path_type=Path), default=Path("demo-out"), show_default=True)
@click.option("--work", "work_dir", type=click.Path(path_type=Path), help="where the demo forks are built [temp]")
@click.option("--jobs", type=click.IntRange(min=1), help="parallel gradings [cores]")
@click.option("--executor", type=click.Choice(["local", "ray"]), default="local", show_default=True)
def demo(out_dir, work_dir, jobs, executor):
    """Build a demo cohort from the fixture notebooks and grade it end to end."""
    from grader.cohort.demo import run_demo
    from grader.run.tempdirs import claim

    claim()
    result = run_demo(out_dir, work_dir=work_dir, jobs=jobs, executor=executor, echo=lambda s: click.echo(s, err=True))
    for name, path in result.exports.items():
        click.echo(f"{name}: {path}")
    click.echo(f"reports: {out_dir / 'reports'}  gradebook: {out_dir / 'gradebook.sqlite'}")
    click.echo(f"{len(result.reports)} reports ({result.graded} graded, {result.cached} cached) in {result.seconds:g} s")
    from grader.cohort.demo import UNREACHABLE

    unexpected = [s for s in result.machine_failures if s != UNREACHABLE]  # the demo's dead fork is by design
    sys.exit(INTERNAL if unexpected or result.stopped else OK)


@main.command()
@click.argument("out_dir", type=click.Path(path_type=Path))
@click.option("--force", is_flag=True, help="replace OUT_DIR if it exists")
@click.option("--week", "weeks", multiple=True, type=click.Choice(WEEKS), help="release these weeks [all]")
@click.option("--allow-handouts", is_flag=True, help="a later week's stub may hold an earlier (closed) week's solution")
@click.option("--course-repo", help="ORG/NAME of the repository students fork: fills the stubs' Colab data URL")
def release(out_dir, force, weeks, allow_handouts, course_repo):
    """Write the student template repository (stubs, public checks, grader; no solutions) to OUT_DIR.

    Releasing every week at once refuses while a later stub hands out an earlier week's solution:
    release week by week (--week), or pass --allow-handouts once the earlier weeks are closed."""
    from grader.staff.release import COURSE_PLACEHOLDER, ReleaseError, write_release

    try:
        written = write_release(out_dir, force=force, weeks=list(weeks) or None, allow_handouts=allow_handouts,
                                course_repo=course_repo)
    except ReleaseError as exc:
        click.echo(f"error: {exc}", err=True)
        sys.exit(USAGE)
    click.echo(f"wrote {len(written)} files to {out_dir}")
    if not course_repo and any(COURSE_PLACEHOLDER in p.read_text(errors="ignore") for p in written
                               if p.suffix == ".ipynb"):
        click.echo(f"note: the stubs' Colab cell downloads data from {COURSE_PLACEHOLDER}: pass "
                   "--course-repo ORG/NAME to fill it in", err=True)


@main.command()
@click.argument("weeks", nargs=-1)
@click.option("--check", "check_only", is_flag=True, help="fail if a committed stub is out of date")
def assign(weeks, check_only):
    """Generate assignments/weekN/weekN.ipynb from solutions/weekN/weekN.ipynb."""
    from grader.config import ASSIGNMENTS, SOLUTIONS
    from grader.staff.assign import MarkerError, stub_is_current, write_stub

    weeks = weeks or tuple(w for w in WEEKS if (SOLUTIONS / w / f"{w}.ipynb").is_file())
    stale = []
    for week in weeks:
        try:
            if check_only:
                if not stub_is_current(week, SOLUTIONS, ASSIGNMENTS):
                    stale.append(week)
            else:
                click.echo(f"wrote {write_stub(week, SOLUTIONS, ASSIGNMENTS)}")
        except (MarkerError, FileNotFoundError) as exc:
            click.echo(f"error: {week}: {exc}", err=True)
            sys.exit(USAGE)
    if stale:
        click.echo(f"stale stubs: {', '.join(stale)} (run `grader assign`)", err=True)
        sys.exit(CHECKS_FAILED)


# ---- grader mutate: course staff measure how many student-like bugs a week's hidden checks catch ----

def _split(values: tuple[str, ...]) -> tuple[str, ...]:
    """`--x a,b --x c` -> ("a", "b", "c")."""
    return tuple(v.strip() for value in values for v in value.split(",") if v.strip())


@main.command()
@click.argument("week", type=click.Choice(WEEKS))
@click.option("--jobs", type=int, help="parallel gradings [cores]")
@click.option("--checks", "checks", multiple=True, help="grade with these checks only (ids, comma-separated)")
@click.option("--kind", "kinds", multiple=True, help="only mutants of these kinds (see --list)")
@click.option("--scope", help="only mutants in functions whose name contains this")
@click.option("--id", "ids", multiple=True, help="only these mutant ids")
@click.option("--limit", type=int, help="the first N mutants (after the filters)")
@click.option("--sample", type=int, help="a random N of them (seeded with --seed)")
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--out", "out_dir", type=click.Path(path_type=Path), default=Path("mutation-out"), show_default=True,
              help="reports and the cache of mutant grades")
@click.option("--regrade", is_flag=True, help="grade every mutant again, cached or not")
@click.option("--list", "list_only", is_flag=True, help="list the mutants (and kinds) and grade nothing")
@click.option("--show", type=int, default=10, show_default=True, help="survivors whose diff is printed")
@click.option("--fail-under", type=float, help="exit 1 when the score (percent) is below this")
def mutate(week, jobs, checks, kinds, scope, ids, limit, sample, seed, out_dir, regrade, list_only, show, fail_under):
    """Grade mutants of the week's reference solution (student-like bugs in the solution cells) with the
    hidden checks: the mutation score, the checks that kill each mutant, the survivors as diffs."""
    try:
        from grader.staff import mutate as mutation
        from grader.staff.mutation_report import render_terminal, write_mutation_reports
    except ImportError as exc:  # libcst: the `mutate` extra
        click.echo(f"error: {exc}; install it with: pip install 'grader[mutate]'", err=True)
        sys.exit(USAGE)
    kinds, ids = _split(kinds), _split(ids)
    if list_only:
        sys.exit(_list_mutants(week, kinds, scope, ids))
    command = "grader mutate " + " ".join(sys.argv[2:]) if sys.argv[1:2] == ["mutate"] else ""
    try:
        run = mutation.run_mutation(week, out_dir, jobs=jobs, checks=list(_split(checks)), kinds=kinds, scope=scope,
                                    ids=ids, limit=limit, sample=sample, seed=seed, regrade=regrade,
                                    echo=lambda s: click.echo(s, err=True))
    except (mutation.MutationError, FileNotFoundError) as exc:
        click.echo(f"error: {exc}", err=True)
        sys.exit(CHECKS_FAILED if "full marks" in str(exc) else USAGE)
    except KeyboardInterrupt:
        click.echo("interrupted before the solution was graded; nothing to report", err=True)
        sys.exit(INTERRUPTED)
    for fmt, path in write_mutation_reports(run, out_dir, command).items():
        click.echo(f"{fmt}: {path}", err=True)
    click.echo(render_terminal(run, show))
    if run.interrupted:
        click.echo("interrupted: the grades so far are cached; run the same command again to go on", err=True)
        sys.exit(INTERRUPTED)
    if run.count("error"):
        sys.exit(INTERNAL)
    sys.exit(CHECKS_FAILED if fail_under is not None and 100 * (run.score or 0) < fail_under else OK)


def _list_mutants(week: str, kinds: tuple[str, ...], scope: str | None, ids: tuple[str, ...]) -> int:
    from collections import Counter

    from grader.config import load_week, week_suite
    from grader.staff.mutants import notebook_mutants
    from grader.staff.mutate import select_mutants
    from grader.staff.operators import KINDS

    config = load_week(week_suite(week))
    mutants, skipped = notebook_mutants(week_suite(week) / config.notebook)
    chosen = select_mutants(mutants, kinds=kinds, scope=scope, ids=ids)
    marked = {e.id for e in config.mutation.equivalent}
    for m in chosen:
        click.echo(f"{m.id} {m.kind:<10} {m.scope} line {m.line}: {m.operator}"
                   + (" (equivalent)" if m.id in marked else ""))
    by_kind = Counter(m.kind for m in chosen)
    click.echo(f"{len(chosen)} of {week}'s {len(mutants)} mutants; kinds:")
    for kind, text in KINDS.items():
        click.echo(f"  {kind:<10} {by_kind.get(kind, 0):>4}  {text}")
    for line in skipped:
        click.echo(f"not mutated: {line}", err=True)
    return OK


@main.command()
def doctor():
    """Report sandbox tools, the isolation level reached, GPU and grading env (exit 1 below full)."""
    from grader.staff.doctor import diagnose, render

    found = diagnose()
    click.echo(render(found))
    sys.exit(OK if found.full else CHECKS_FAILED)


if __name__ == "__main__":
    main()
