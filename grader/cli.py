"""The `grader` command. Only this module turns errors into exit codes (pytest's meanings):

0 every check passed, 1 some check lost points, 2 interrupted, 3 internal (harness) error,
4 usage error. `batch` exits 0 when every submission got a report, whatever the scores.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import click

from grader import __version__

OK, CHECKS_FAILED, INTERRUPTED, INTERNAL, USAGE = 0, 1, 2, 3, 4
WEEKS = [f"week{i}" for i in range(1, 7)]


class Group(click.Group):
    def main(self, *args, **kwargs):
        kwargs.setdefault("standalone_mode", True)
        try:
            return super().main(*args, **kwargs)
        except SystemExit as exc:
            # click uses 2 for usage errors; pytest's meaning of 2 is "interrupted"
            if exc.code == 2:
                raise SystemExit(USAGE) from None
            raise


@click.group(cls=Group)
@click.version_option(__version__, prog_name="grader")
def main() -> None:
    """Grade notebooks for "Architecting LLMs: Building a GPT from Scratch"."""
    from grader.run.sandbox import QUIET_BLAS

    for key, value in QUIET_BLAS.items():  # before numpy loads here or in the processes we start
        os.environ.setdefault(key, value)


def _source_submission(week: str, source: str, commit: str | None, student: str, scratch: Path):
    """A local folder or notebook file as it is, or a git repository checked out at a commit."""
    from grader.records import Submission

    path = Path(source)
    if path.is_file() and path.suffix == ".ipynb":
        return Submission(student=student, week=week, source=source, workdir=str(path.parent.resolve()),
                          notebook=path.name)
    if path.is_dir() and not commit and not (path / "HEAD").is_file():
        return Submission(student=student, week=week, source=source, workdir=str(path.resolve()))
    from grader.fetch.forks import fetch_submission  # a repository: URL, bare repo, or a checkout at --commit

    return fetch_submission(source, week, commit=commit, student=student, dest=scratch)


def _finish(grade, settings, formats) -> int:
    from grader.report.markdown import write_report

    written = write_report(grade, settings.out_dir, formats)
    for fmt, path in written.items():
        click.echo(f"{fmt}: {path}", err=True)
    click.echo(f"{grade.student} {grade.week}: {grade.score:g} / {grade.max_score:g}"
               + (f" ({grade.status}: {grade.message})" if grade.status != "graded" else ""))
    if grade.status == "harness_error":
        return INTERNAL
    return OK if grade.score >= grade.max_score and grade.max_score > 0 else CHECKS_FAILED


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
@click.option("--allow-weak-isolation", is_flag=True, default=None,
              help="grade even without bubblewrap (every report says so first)")
def grade(week, source, commit, student, out_dir, formats, profile, require_isolation, keep_run_dir,
          allow_weak_isolation):
    """Grade one submission (a notebook, a folder or a repository) with the hidden checks."""
    sys.exit(_grade(week, source, commit, student, out_dir, formats, profile, require_isolation,
                    keep_run_dir, public=False, allow_weak_isolation=allow_weak_isolation))


@main.command()
@click.argument("week", type=click.Choice(WEEKS))
@click.argument("notebook", type=click.Path(exists=True))
@click.option("--out", "out_dir", type=click.Path(path_type=Path), help="report folder [grades]")
@click.option("--profile", type=click.Choice(["cpu", "cuda"]))
@click.option("--format", "formats", multiple=True, help="md (default), json, html, junit, github")
def check(week, notebook, out_dir, profile, formats):
    """Run the week's public checks on your notebook (what students run locally or in Colab)."""
    sys.exit(_grade(week, notebook, None, "local", out_dir, tuple(formats) or ("md",), profile, None, None,
                    public=True))


def _grade(week, source, commit, student, out_dir, formats, profile, require_isolation, keep_run_dir,
           public, allow_weak_isolation=None) -> int:
    import tempfile

    from grader.config import Settings, detect_profile, gpu_ids
    from grader.pipeline import check_isolation, grade_submission
    from grader.run.sandbox import Isolation, IsolationError

    settings = Settings().resolve(profile=profile, out_dir=out_dir, require_isolation=require_isolation,
                                  keep_run_dir=keep_run_dir, public=public, allow_weak_isolation=allow_weak_isolation)
    formats = tuple(formats) or settings.formats
    try:
        level = check_isolation(settings)  # before fetching anything
        if public and level is not Isolation.bwrap:
            click.echo(f"warning: without bubblewrap your notebook runs with '{level.value}' isolation on this "
                       "machine (install bubblewrap for the grader's sandbox)", err=True)
        with tempfile.TemporaryDirectory(prefix="grader-src-") as scratch:
            submission = _source_submission(week, source, commit, student, Path(scratch))
            # the cuda profile needs the GPU visible inside the sandbox (hidden by default)
            gpus = gpu_ids() if (settings.profile or detect_profile()) == "cuda" else []
            grade = grade_submission(submission, settings, gpu=gpus[0] if gpus else None)
            code = _finish(grade, settings, formats)
            if public:
                from grader.report.markdown import render_markdown

                click.echo(render_markdown(grade))
                click.echo(_next_step(grade))
            return code
    except IsolationError as exc:
        click.echo(f"error: {exc}", err=True)
        return USAGE
    except (FileNotFoundError, ValueError) as exc:
        click.echo(f"error: {exc}", err=True)
        return USAGE
    except KeyboardInterrupt:
        return INTERRUPTED


def _next_step(grade) -> str:
    """What a student should do after `grader check`, in one line."""
    if grade.status != "graded":
        return f"Not graded: {grade.message or grade.status}. Fix that, save the notebook and run `grader check` again."
    lost = [c for c in grade.checks if c.points < c.max_points]
    if not lost:
        return ("All public checks passed. Commit, push and open a pull request; your mentor grades with "
                "further hidden checks.")
    return (f"{len(lost)} check(s) lost points: read their messages above, fix the notebook, run it top to "
            "bottom (Restart & Run all), save, and run `grader check` again.")


@main.command()
@click.argument("week", type=click.Choice(WEEKS))
@click.option("--roster", "roster_path", required=True, type=click.Path(exists=True, path_type=Path),
              help="CSV or TOML: student, name, github, repo, lms_id, section")
@click.option("--jobs", type=int, help="parallel gradings [cores, or one per GPU]")
@click.option("--out", "out_dir", type=click.Path(path_type=Path), default=Path("batch-out"), show_default=True)
@click.option("--deadline", help="ISO time, e.g. 2026-11-23T12:00:00+00:00")
@click.option("--late-policy", help="GRACE_HOURS,PENALTY_PER_DAY,CAP e.g. 2,0.1,0.5")
@click.option("--executor", type=click.Choice(["local", "ray"]), default="local", show_default=True)
@click.option("--address", help="Ray address: 'local' or ray://host:10001")
@click.option("--profile", type=click.Choice(["cpu", "cuda"]))
@click.option("--format", "formats", multiple=True, help="report formats [json md html junit gradescope]")
@click.option("--regrade", is_flag=True, help="grade again even when the cache has a grade")
@click.option("--fetch-only", is_flag=True, help="only fetch forks and record their heads (run at the deadline)")
@click.option("--at-deadline", is_flag=True, help="grade the heads recorded at the deadline, not later pushes")
@click.option("--allow-weak-isolation", is_flag=True, default=None,
              help="grade even without bubblewrap (every report says so first)")
def batch(week, roster_path, jobs, out_dir, deadline, late_policy, executor, address, profile, formats,
          regrade, fetch_only, at_deadline, allow_weak_isolation):
    """Grade a cohort: fetch every fork, grade (cached, resumable), write gradebook and summary."""
    from grader.cohort.batch import BATCH_FORMATS, run_batch
    from grader.run.sandbox import IsolationError

    try:
        when, policy = _deadline_policy(deadline, late_policy)
        if executor == "ray" and not address:
            raise click.UsageError("--executor ray needs --address (local or ray://...)")
        settings = _settings(profile).resolve(allow_weak_isolation=allow_weak_isolation)
        result = run_batch(week, roster_path, out_dir, settings=settings, jobs=jobs, deadline=when,
                           policy=policy, executor=executor, address=address, regrade=regrade,
                           fetch_only=fetch_only, at_deadline=at_deadline, formats=tuple(formats) or BATCH_FORMATS)
    except (ValueError, FileNotFoundError, IsolationError) as exc:
        click.echo(f"error: {exc}", err=True)
        sys.exit(USAGE)
    except KeyboardInterrupt:
        sys.exit(INTERRUPTED)
    for name, path in result.exports.items():
        click.echo(f"{name}: {path}", err=True)
    click.echo(f"{len(result.reports)} reports ({result.graded} graded, {result.cached} cached) in "
               f"{result.seconds:g} s; {len(result.roster_problems)} roster lines skipped")
    sys.exit(INTERNAL if result.harness_errors else OK)


def _settings(profile):
    from grader.config import Settings

    return Settings().resolve(profile=profile)


def _deadline_policy(deadline, late_policy):
    from datetime import datetime, timezone

    from grader.score import LatePolicy

    when = None
    if deadline:
        when = datetime.fromisoformat(deadline)
        when = when if when.tzinfo else when.replace(tzinfo=timezone.utc)
    policy = None
    if late_policy:
        grace, per_day, cap = (float(x) for x in late_policy.split(","))
        policy = LatePolicy(grace_hours=grace, penalty_per_day=per_day, cap=cap)
    return when, policy


@main.command()
@click.option("--out", "out_dir", type=click.Path(path_type=Path), default=Path("demo-out"), show_default=True)
@click.option("--work", "work_dir", type=click.Path(path_type=Path), help="where the demo forks are built [temp]")
@click.option("--jobs", type=int, help="parallel gradings [cores]")
@click.option("--executor", type=click.Choice(["local", "ray"]), default="local", show_default=True)
def demo(out_dir, work_dir, jobs, executor):
    """Build a demo cohort from the fixture notebooks and grade it end to end."""
    from grader.cohort.demo import run_demo

    result = run_demo(out_dir, work_dir=work_dir, jobs=jobs, executor=executor, echo=lambda s: click.echo(s, err=True))
    for name, path in result.exports.items():
        click.echo(f"{name}: {path}")
    click.echo(f"reports: {out_dir / 'reports'}  gradebook: {out_dir / 'gradebook.sqlite'}")
    click.echo(f"{len(result.reports)} reports ({result.graded} graded, {result.cached} cached) in {result.seconds:g} s")
    sys.exit(INTERNAL if result.harness_errors else OK)


@main.command()
@click.argument("out_dir", type=click.Path(path_type=Path))
@click.option("--force", is_flag=True, help="replace OUT_DIR if it exists")
@click.option("--week", "weeks", multiple=True, type=click.Choice(WEEKS), help="release these weeks [all]")
@click.option("--allow-handouts", is_flag=True, help="a later week's stub may hold an earlier (closed) week's solution")
def release(out_dir, force, weeks, allow_handouts):
    """Write the student template repository (stubs, public checks, grader; no solutions) to OUT_DIR."""
    from grader.staff.release import ReleaseError, write_release

    try:
        written = write_release(out_dir, force=force, weeks=list(weeks) or None, allow_handouts=allow_handouts)
    except ReleaseError as exc:
        click.echo(f"error: {exc}", err=True)
        sys.exit(USAGE)
    click.echo(f"wrote {len(written)} files to {out_dir}")


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


@main.command()
def doctor():
    """Report sandbox tools, the isolation level reached, GPU and grading env (exit 1 below full)."""
    from grader.staff.doctor import diagnose, render

    found = diagnose()
    click.echo(render(found))
    sys.exit(OK if found.full else CHECKS_FAILED)


if __name__ == "__main__":
    main()
