"""Audit: no pickle, eval, exec or dynamic import of user-supplied input in the package.

The package source is searched for every call that can run code from a file or string.
Each use that remains is listed in ALLOWED with the reason it is safe; a new use fails this
test until it is justified here (or removed), and a listed use that disappears fails too, so
the list stays exact.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

import carkinetics

ROOT = Path(carkinetics.__file__).resolve().parent

FORBIDDEN = {
    "pickle": r"\bimport\s+(c?pickle|dill|cloudpickle|shelve|marshal)\b|"
              r"\bfrom\s+(c?pickle|dill|cloudpickle|shelve|marshal)\s+import\b|"
              r"\b(pickle|dill|cloudpickle|marshal|joblib)\.loads?\(",
    "pandas pickle": r"\bread_pickle\(|\bto_pickle\(",
    "numpy pickle": r"allow_pickle\s*=\s*True|\bnp\.load\(|\bnumpy\.load\(",
    "eval/exec": r"(?<![\w.])(eval|exec|compile)\(",
    "yaml": r"\byaml\.(load|unsafe_load|full_load)\(",
    "dynamic import": r"\b__import__\(|\bimport_module\(|\bspec_from_file_location\(|"
                      r"\brunpy\b|\bSourceFileLoader\b|\bexec_module\(",
    "shell": r"\bos\.system\(|shell\s*=\s*True|\bos\.popen\(",
}

#: (file relative to the package, kind) -> number of uses, and why each is safe.
ALLOWED = {
    ("cli.py", "dynamic import"): (
        1, "imports carkinetics.<pkg>._cli for every _cli.py file found under the installed "
           "package folder: module names come from the package's own files, never from the "
           "command line or the working directory"),
    ("_unitstore.py", "pickle"): (
        2, "the resume store holds this program's own results (FitResult objects with model "
           "instances, which no safe format carries exactly); each chunk file is signed with "
           "an HMAC-SHA256 of a per-user key and unpickled only after the signature and the "
           "job's manifest check out (tests/parallel: foreign and tampered stores refused)"),
    ("parallel.py", "pickle"): (
        1, "pickle.dumps only (never loads): finds which result of a chunk cannot be sent "
           "back from a worker, so that it alone fails"),
    ("fitting/bayes/priors.py", "dynamic import"): (
        1, "imports the submodules of a model-card library package object the caller passed "
           "(default carkinetics.models.library); no file path or string from data"),
}


def _uses() -> dict[tuple[str, str], list[str]]:
    found: dict[tuple[str, str], list[str]] = {}
    for path in sorted(ROOT.rglob("*.py")):
        rel = path.relative_to(ROOT).as_posix()
        for k, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
            code = line.split("#", 1)[0]
            for kind, pattern in FORBIDDEN.items():
                if re.search(pattern, code):
                    found.setdefault((rel, kind), []).append(f"{rel}:{k}: {line.strip()}")
    return found


def test_no_unjustified_pickle_eval_exec_or_dynamic_import():
    found = _uses()
    unexpected = {k: v for k, v in found.items() if k not in ALLOWED}
    assert not unexpected, "unsafe calls without a justification in ALLOWED:\n" + "\n".join(
        line for lines in unexpected.values() for line in lines)
    for key, (count, why) in ALLOWED.items():
        assert len(found.get(key, [])) == count, (key, found.get(key), why)


@pytest.mark.parametrize(("kind", "line"), [
    ("pickle", "import pickle"),
    ("pickle", "obj = pickle.load(f)"),
    ("pandas pickle", "df = pd.read_pickle(path)"),
    ("numpy pickle", "a = np.load(path, allow_pickle=True)"),
    ("eval/exec", "x = eval(text)"),
    ("eval/exec", "exec(code)"),
    ("yaml", "cfg = yaml.load(f)"),
    ("dynamic import", "m = importlib.import_module(name)"),
    ("dynamic import", "spec = importlib.util.spec_from_file_location('m', p)"),
    ("shell", "subprocess.run(cmd, shell=True)"),
])
def test_the_audit_patterns_catch_what_they_should(kind, line):
    assert re.search(FORBIDDEN[kind], line)


@pytest.mark.parametrize("line", ["y = tr.backward(v).eval()", "ev = self._eval(t, idx)",
                                  "# pickled between processes", "re.compile(r'x')"])
def test_the_audit_patterns_ignore_method_calls_and_comments(line):
    code = line.split("#", 1)[0]
    assert not any(re.search(p, code) for p in FORBIDDEN.values())


def test_cli_imports_subcommands_only_from_the_package_folder(tmp_path, monkeypatch):
    """A _cli.py in the working directory (or on sys.path) is never imported by the CLI."""
    import importlib

    import typer

    from carkinetics import cli

    evil = tmp_path / "carkinetics_evil"
    evil.mkdir()
    (evil / "__init__.py").write_text("")
    (evil / "_cli.py").write_text("raise SystemExit('imported from the working directory')\n")
    monkeypatch.chdir(tmp_path)
    monkeypatch.syspath_prepend(str(tmp_path))
    imported = []
    real = importlib.import_module

    def spy(name, *args):
        imported.append(name)
        return real(name, *args)

    monkeypatch.setattr(importlib, "import_module", spy)
    monkeypatch.setattr(cli, "app", typer.Typer())
    cli._register_subcommands()
    assert imported and all(n.startswith("carkinetics.") and n.endswith("._cli")
                            for n in imported)
    for name in imported:
        path = Path(real(name).__file__).resolve()
        assert path.is_relative_to(ROOT), path
