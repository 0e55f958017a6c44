"""Week 1 public probe requests: a few operations, the lecture's neuron, a parameter count."""

from __future__ import annotations

from pathlib import Path

# [label, op, inputs]; the probe applies op to Value(inputs...), the test knows the answers.
OP_CASES = [
    ["a + b", "add", [2.0, -3.5]],
    ["a * b", "mul", [-1.5, 4.0]],
    ["a ** 3", "pow3", [1.7]],
    ["a / b", "div", [3.0, -4.0]],
    ["2 + a", "radd", [1.5]],
    ["a.exp()", "exp", [0.7]],
    ["a.tanh()", "tanh", [0.8]],
    ["b = a + a", "twice", [3.0]],
]


def plan(profile: str, thresholds: dict, data_dir: Path) -> list[dict]:
    return [
        {"id": "ops", "probe": "ops", "args": {"cases": OP_CASES}, "timeout": 20},
        {"id": "neuron", "probe": "lecture_neuron", "args": {}, "timeout": 20},
        {"id": "params", "probe": "parameter_count", "args": {}, "timeout": 20},
    ]
