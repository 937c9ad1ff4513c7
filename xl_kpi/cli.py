"""The ``xl-kpi`` command: parse arguments, call the xl_kpi engine, format the result.

Exit codes: 0 success, 1 input problems, 2 usage.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from . import __version__
from .money import round_money
from .scales import DEFAULT_SCALE
from .scoring import bonus, coefficient, score

app = typer.Typer(
    name="xl-kpi",
    help="KPI scores, premium coefficients and weighted bonuses: batch KPI cards for every employee.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
console = Console()


def _version(value: bool) -> None:
    if value:
        console.print(f"xl-kpi {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: bool = typer.Option(False, "--version", callback=_version, is_eager=True, help="Show the version."),
) -> None:
    """KPI scoring and bonus calculation for Excel."""


@app.command()
def demo(lang: str = typer.Option("en", "--lang", help="Language of the output: en or ru.")) -> None:
    """Score a small KPI matrix with the engine and show how the bonus is derived."""
    pool = 20_000.0
    rows = [  # (KPI, weight, base, norm, fact): the worked examples of DOMAIN.md
        ("Closed deals", 0.4, 100, 150, 160),
        ("Complaint rate, %", 0.3, 10, 5, 4),
        ("Share of regular clients, %", 0.3, 40, 60, 52),
    ]
    table = Table(title=f"KPI matrix, bonus pool {_money(pool)}")
    for col in ("KPI", "weight", "base", "norm", "fact", "score", "coefficient", "bonus"):
        table.add_column(col, justify="left" if col == "KPI" else "right")
    total = 0.0
    for name, w, b, n, f in rows:
        s = score(f, b, n)
        c = coefficient(s)
        amount = bonus(pool, w, s)
        total += amount
        table.add_row(name, f"{w:.0%}", f"{b:g}", f"{n:g}", f"{f:g}", f"{s:.1%}", f"{c:g}", _money(amount))
    table.add_row("Total", "100%", "", "", "", "", "", _money(round_money(total)), style="bold")
    console.print(table)
    console.print("Coefficient scale: " + "; ".join(DEFAULT_SCALE.describe()))


def _period_option(value: str | None) -> str | None:
    """--period as YYYY-MM; a bad value is a usage error (exit code 2)."""
    if value is None:
        return None
    from .numbers import DateFormatError, parse_period

    try:
        return parse_period(value)
    except DateFormatError as e:
        raise typer.BadParameter(str(e)) from None


@app.command("validate")
def validate_command(
    plan: Annotated[Path, typer.Option(
        "--plan", exists=True, dir_okay=False, readable=True, help="The plan workbook (.xlsx).")],
    data: Annotated[list[Path] | None, typer.Option(
        "--data", exists=True, help="Raw data and facts files (CSV, XLSX) or folders of them; "
        "several may follow one --data.")] = None,
    more: Annotated[list[Path] | None, typer.Argument(
        exists=True, show_default=False, metavar="[FILE]...", help="More data files.")] = None,
    period: Annotated[str | None, typer.Option(
        "--period", callback=_period_option, help="The period, YYYY-MM (default: the plan's Settings).")] = None,
) -> None:
    """Check the plan and the data files: print every problem, write nothing. Exit 1 on any error."""
    from .validate import render, validate

    problems = validate(plan, [*(data or []), *(more or [])], period=period)
    render(problems, console)
    raise typer.Exit(1 if problems.has_errors else 0)


def _money(x: float) -> str:
    return f"{x:,.2f}".replace(",", "\u00a0") + " ₽"


def main() -> None:
    """Console entry point."""
    app()
