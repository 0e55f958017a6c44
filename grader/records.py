"""Typed records handed from one pipeline stage to the next.

Submission -> Execution -> CheckResult -> Grade. All are frozen pydantic models that
forbid unknown fields; anything that crosses a process boundary is their JSON form.
"""

from __future__ import annotations

from datetime import datetime
from enum import Enum
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

SCHEMA_VERSION = 1
# Statuses that are the machine's failure, not the student's (DESIGN, "The trust boundary"): no score is
# exported for them (blank in Canvas and Gradescope), they are never cached, a batch retries them once,
# lists them under "needs attention" and exits 3 while any remain.
MACHINE_FAILURES = frozenset({"fetch_failed", "harness_error", "kernel_killed"})


class Record(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class Category(str, Enum):
    correctness = "correctness"
    gradient = "gradient"
    loss = "loss"
    samples = "samples"
    runs_clean = "runs_clean"
    integrity = "integrity"


class Submission(Record):
    """Who handed in what: a notebook in a local folder or a git repository at a commit."""

    student: str = "local"
    week: str
    source: str  # local path or repository URL, as given
    commit: str | None = None  # the graded commit, when the source is a repository
    workdir: str  # folder holding the student's files (a scratch copy for repositories)
    notebook: str | None = None  # notebook path relative to workdir, once located
    submitted_at: datetime | None = None  # commit time or the head recorded at the deadline
    problems: list[str] = Field(default_factory=list)  # fetch/locate messages for the report
    fetch_error: str = ""  # the fork could not be fetched and nothing earlier was at hand: the machine's failure
    branch: str | None = None  # the fork's branch the graded commit was taken from, when known
    selection: str = ""  # what was graded and why, in one sentence (grader.fetch.graded)


class CellFailure(Record):
    """One cell that raised, timed out or killed its kernel, as a student should read it."""

    index: int  # 0-based position among all cells of the notebook
    execution_count: int | None = None
    kind: Literal["error", "timeout", "dead_kernel", "output_limit"]
    ename: str = ""
    evalue: str = ""
    source_excerpt: str = ""  # the failing line and its neighbours
    traceback: str = ""  # colour codes stripped, capped


class ProbeStatus(Record):
    id: str
    ok: bool
    seconds: float = 0.0
    error: str = ""  # student-facing reason when ok is False


class Execution(Record):
    """What happened when the notebook ran in the sandbox."""

    # killed: the kernel died of a signal the sandbox and the notebook did not send (the machine's failure)
    status: Literal["ok", "errors", "timeout", "dead_kernel", "killed", "invalid", "not_run"]
    message: str = ""
    cells_total: int = 0
    cells_run: int = 0
    failures: list[CellFailure] = Field(default_factory=list)
    optional_failures: list[CellFailure] = Field(default_factory=list)  # cells marked `# OPTIONAL`: cost nothing
    probes: list[ProbeStatus] = Field(default_factory=list)
    wall_seconds: float = 0.0
    device: str = "cpu"  # cpu or cuda:<name>
    isolation: str = "none"  # bwrap | unshare | process | none
    answers_dir: str | None = None  # where the probe answers lie, for the judge
    output_bytes: int = 0
    disk_cap: str = ""  # the cap on everything the run could write, and how it held (grader.run.scratch)


class CheckResult(Record):
    """One hidden check, judged in the trusted process."""

    id: str
    title: str = ""
    category: Category
    points: float
    max_points: float
    outcome: Literal["passed", "partial", "failed", "error", "skipped"]
    measured: float | None = None
    target: str = ""  # human-readable threshold, e.g. "< 2.20"
    message: str = ""
    seconds: float = 0.0
    details: dict[str, float | str | int | bool | None] = Field(default_factory=dict)


class Enforcement(Record):
    """What the sandbox enforced for one grade, as it was launched (never assumed).

    Below bubblewrap (`unshare`, `process`) only part of this holds; the reports say so first."""

    level: str = "none"  # bwrap | unshare | process | none
    weak: bool = False  # graded below bubblewrap: --allow-weak-isolation (grade, batch) or `check`
    uid: Literal["own", "namespace", "grader"] = "grader"  # own: an unprivileged uid of this run's own;
    # namespace: nobody in a user namespace (bwrap as a normal user); grader: the grader's own, not root
    network_cut: bool = False
    private_mounts: bool = False  # a mount namespace shows only /usr, the environment and this run
    forbidden: list[str] = Field(default_factory=list)  # packages the week forbids (week.toml `forbid`)
    forbidden_blocked: bool = False  # they could not be imported in the sandbox (mounted over)
    layout_fixed: bool = False  # the kernel ran without address space randomisation (setarch -R)
    hash_seed: str = "0"  # PYTHONHASHSEED of the kernel
    deterministic_heap: bool = False  # the probes ran on the grader's fixed-address allocator


class Provenance(Record):
    grader_version: str
    checks_hash: str  # sha256 over the week's hidden suite and config
    notebook_sha256: str | None = None
    commit: str | None = None
    profile: str
    device: str
    isolation: str
    torch_version: str | None = None
    python_version: str
    seeds: dict[str, int]
    threads: int
    # The caps this grading ran under: "disk" (the run's writable space), "judge" (grader.caps), each as
    # "value (mechanism)"; empty in grades made before they existed.
    caps: dict[str, str] = Field(default_factory=dict)
    sandbox: Enforcement | None = None  # None in grades written before it was recorded


class Grade(Record):
    """The verdict for one submission: what every report is made from."""

    schema_version: int = SCHEMA_VERSION
    student: str
    week: str
    title: str = ""
    score: float
    max_score: float
    raw_score: float  # before the late policy
    late_days: int = 0
    late_penalty: float = 0.0  # fraction removed, 0..1
    # resource_limit: the submission drove a trusted process (the judge, a grading worker) over one of its
    # caps (grader.caps); the message names the cap and its value.
    status: Literal["graded", "failed_to_run", "invalid_submission", "harness_error", "resource_limit",
                    "not_submitted", "fetch_failed", "kernel_killed"]
    message: str = ""
    notices: list[str] = Field(default_factory=list)  # shown above every report: late-day caveats, pushes not graded
    categories: dict[str, tuple[float, float]] = Field(default_factory=dict)
    checks: list[CheckResult] = Field(default_factory=list)
    execution: Execution
    submission: Submission
    provenance: Provenance
    graded_at: datetime
    durations: dict[str, float] = Field(default_factory=dict)  # stage -> seconds
    artifacts: dict[str, str] = Field(default_factory=dict)  # name -> path (samples, plots)

    @property
    def percent(self) -> float:
        return 100.0 * self.score / self.max_score if self.max_score else 0.0

    @property
    def machine_failure(self) -> bool:
        """The machine's failure, not the student's: no score to export, never cached, retried."""
        return self.status in MACHINE_FAILURES
