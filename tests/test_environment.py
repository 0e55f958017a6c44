"""The grading environment has what Colab students import for plots and utilities (issue 19 item 4):
a notebook that uses them runs clean under the grader, sandbox and all."""

from __future__ import annotations

import tomllib

import nbformat
import pytest
from conftest import ROOT, grade_notebook

# What Colab preinstalls and course notebooks commonly import beside torch, numpy and matplotlib.
COLAB_IMPORTS = {"seaborn": "seaborn", "pandas": "pandas", "scipy": "scipy", "tqdm": "tqdm",
                 "ipywidgets": "ipywidgets", "einops": "einops", "sklearn": "scikit-learn"}

PLOTS = '''
import einops, ipywidgets, pandas as pd, scipy.stats, seaborn as sns, sklearn.decomposition, torch
import matplotlib.pyplot as plt
from tqdm.auto import tqdm

for _ in tqdm(range(3)):
    pass
frame = pd.DataFrame(N[:5, :5].numpy(), index=list(".abcd"), columns=list(".abcd"))
sns.heatmap(frame, annot=True, fmt="d", cmap="Blues")
plt.show()
emb = sklearn.decomposition.PCA(n_components=2).fit_transform(torch.log(P + 1e-9).numpy())
sns.scatterplot(x=emb[:, 0], y=emb[:, 1])
plt.show()
print(einops.rearrange(torch.arange(6), "(a b) -> b a", a=2).shape, scipy.stats.entropy(P[0].numpy()))
'''


def test_every_colab_package_is_a_pinned_dependency():
    pins = {line.split("==")[0].lower().replace("_", "-") for line in (ROOT / "ci" / "constraints.txt")
            .read_text().splitlines() if "==" in line}
    deps = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"]
    names = {d.split(">")[0].split("=")[0].split("<")[0].strip().lower() for d in deps}
    for package in COLAB_IMPORTS.values():
        assert package in pins, f"{package} is not pinned in ci/constraints.txt"
        assert package in names, f"{package} is not among pyproject's dependencies"


@pytest.mark.slow
def test_a_notebook_plotting_with_colab_packages_runs_clean_under_the_grader(tmp_path):
    nb = nbformat.read(ROOT / "solutions" / "week2" / "week2.ipynb", as_version=4)
    at = next(i for i, c in enumerate(nb.cells) if c.cell_type == "code" and "def sample_names" in c.source)
    nb.cells.insert(at + 1, nbformat.v4.new_code_cell(PLOTS))
    path = tmp_path / "week2.ipynb"
    nbformat.write(nb, path)
    grade = grade_notebook("week2", path, tmp_path, select=("runs_clean",))
    assert grade.execution.failures == [], grade.execution.failures
    assert [(c.id, c.points == c.max_points) for c in grade.checks] == [("runs_clean", True)]
