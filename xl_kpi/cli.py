"""The ``xl-kpi`` command: parse arguments, call the xl_kpi engine, format the result.

Exit codes: 0 success, 1 input problems, 2 usage.
"""

from __future__ import annotations

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


def _money(x: float) -> str:
    return f"{x:,.2f}".replace(",", "\u00a0") + " ₽"


def main() -> None:
    """Console entry point."""
    app()
