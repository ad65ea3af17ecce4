"""The ``carkinetics`` command line (typer).

Exit codes: 0 success, 1 bad input (the message names the file, row and column), 2 usage
error. The CLI only parses arguments and calls public functions; heavy imports happen
inside the commands.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer

from carkinetics.exceptions import DataError, ModelSpecError

app = typer.Typer(
    name="carkinetics",
    help="CAR-T cellular kinetics and pharmacodynamics: fit, simulate, escalate.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


def _fail(message: str) -> None:
    typer.echo(f"error: {message}", err=True)
    raise typer.Exit(code=1)


@app.command()
def validate(
    data: Annotated[Path, typer.Argument(help="Data file (CSV, Parquet or NONMEM-style).")],
    fmt: Annotated[str | None, typer.Option("--format", help="csv, parquet or nonmem "
                                            "(default: from the suffix and columns).")] = None,
) -> None:
    """Check a data file; exit 1 with every problem listed."""
    from carkinetics.data import read_data

    if not data.exists():
        _fail(f"{data}: no such file.")
    try:
        df = read_data(data, format=fmt)
    except DataError as exc:
        _fail(str(exc))
    n_ep = df["endpoint"].nunique() if "endpoint" in df else 1
    n_blq = int((df["cens"] == 1).sum())
    typer.echo(f"{data}: OK: {len(df)} rows, {df['id'].nunique()} participants, "
               f"{n_ep} endpoint(s), {n_blq} below LLOQ.")


@app.command("simulate-trial")
def simulate_trial_cmd(
    out: Annotated[Path, typer.Option("--out", help="Output data file (.csv or .parquet); "
                                      "the truth is written beside it as <stem>_truth.json.")],
    seed: Annotated[int, typer.Option("--seed", min=0, help="Root random seed.")] = 20240409,
) -> None:
    """Simulate a virtual trial shaped like the protocol, with its truth."""
    from carkinetics.simulate import simulate_trial

    if out.suffix not in (".csv", ".parquet", ".pq"):
        typer.echo(f"error: --out {out}: expected a .csv or .parquet file name.", err=True)
        raise typer.Exit(code=2)
    path, truth = simulate_trial(seed).write(out)
    typer.echo(f"wrote {path} and {truth}")


@app.command()
def demo(
    out: Annotated[Path, typer.Option("--out", help="Output folder.")] = Path("carkinetics-demo"),
    seed: Annotated[int, typer.Option("--seed", min=0, help="Root random seed.")] = 20240409,
    workers: Annotated[int | None, typer.Option(
        "--workers", min=1, help="Worker processes for the individual and PD fits "
        "(default: up to 2 of the available CPUs; results do not depend on it).")] = None,
    progress: Annotated[bool, typer.Option("--progress/--no-progress",
                                           help="Show the progress bar.")] = True,
) -> None:
    """Run the whole pipeline on the synthetic trial; outputs and DIR/report.html in --out.

    simulate -> validate -> NCA -> individual fits -> FOCE-I -> PD -> endpoints ->
    escalation recommendation -> report.
    """
    import shlex

    from carkinetics.demo import run_demo
    from carkinetics.parallel import default_workers

    n = workers if workers is not None else min(2, default_workers())
    command = " ".join(shlex.quote(a) for a in ["carkinetics", *sys.argv[1:]]) \
        if sys.argv[1:2] == ["demo"] else None
    try:
        outputs = run_demo(out, seed=seed, workers=n, progress=progress, command=command)
    except (DataError, ModelSpecError) as exc:
        _fail(str(exc))
    typer.echo(f"carkinetics demo: outputs in {out.resolve()}")
    for name, path in outputs.items():
        typer.echo(f"  {name:<22} {path}")
    typer.echo(f"carkinetics demo: the report is {outputs['report'].resolve()}")


def _register_subcommands() -> None:
    """Let each capability add its own verbs.

    Every subpackage ``carkinetics/<pkg>/`` (at any depth, e.g.
    ``carkinetics/fitting/population/``) with a module ``_cli.py`` defining
    ``register(app, fail)`` adds its commands (sorted by module path, so ``--help`` is
    stable). Those modules import their heavy dependencies inside each command.
    """
    import importlib

    import carkinetics

    root = Path(carkinetics.__path__[0])
    # look for the files themselves: find_spec would import each subpackage's __init__
    # (and matplotlib with carkinetics.plots) just to answer
    found = sorted(".".join(p.relative_to(root).with_suffix("").parts)
                   for p in root.rglob("_cli.py")
                   if all((root / Path(*p.relative_to(root).parts[:i]) / "__init__.py").is_file()
                          for i in range(1, len(p.relative_to(root).parts))))
    for mod in found:
        importlib.import_module(f"carkinetics.{mod}").register(app, fail=_fail)


_register_subcommands()


def main(argv: list[str] | None = None) -> None:
    """Console-script entry point."""
    try:
        app(args=argv, standalone_mode=True)
    except SystemExit as exc:  # typer/click exit codes: 0 ok, 1 bad input, 2 usage
        if exc.code not in (0, None):
            sys.exit(exc.code)


if __name__ == "__main__":  # pragma: no cover
    main()
