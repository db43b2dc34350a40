"""The ``vigil`` command line: thin wrappers over the library."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from vigil import __version__

app = typer.Typer(
    name="vigil",
    help="Run Elastic Security EQL detection rules on Windows event logs, without Elasticsearch.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"vigil {__version__}")
        raise typer.Exit()


@app.callback()
def main_options(
    version: Annotated[
        bool, typer.Option("--version", callback=_version, is_eager=True, help="Print the version.")
    ] = False,
) -> None:
    """vigil: Elastic's EQL detection rules on your logs."""


@app.command("query")
def query_command(
    query: Annotated[str, typer.Argument(help="The EQL query.")],
    paths: Annotated[list[Path], typer.Argument(help="NDJSON/JSON files or folders.")],
    output_format: Annotated[
        str, typer.Option("--format", help="ndjson (matched events) or table.")
    ] = "table",
    size: Annotated[int | None, typer.Option("--size", help="At most this many results.")] = None,
) -> None:
    """Hunt: print the events or sequences an EQL query matches.

    Example: vigil query 'process where process.name : "psexesvc.exe"' logs/
    """
    from vigil.commands.query import run_query

    code = run_query(query, paths, output_format, size)
    raise typer.Exit(code)


def main() -> None:
    app(prog_name="vigil")


if __name__ == "__main__":
    main()
