"""The README's Python example runs as written (so the README stays true)."""

import re
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]


def test_readme_example_runs(monkeypatch, capsys):
    text = (REPO / "README.md").read_text()
    block = re.search(r"```python\n(.*?)```", text, re.S).group(1)
    monkeypatch.chdir(REPO)
    ns: dict = {}
    exec(compile(block, "README.md", "exec"), ns)
    assert np.isfinite(ns["ll"]).all() and len(ns["ll"]) == len(ns["q"])
    assert float(capsys.readouterr().out) > 0


def test_readme_keeps_the_two_commands():
    text = (REPO / "README.md").read_text()
    assert "carkinetics demo" in text and 'pip install -e ".[dev]" && pytest' in text
