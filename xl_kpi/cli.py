"""The ``xl-kpi`` command: parse arguments, call the xl_kpi engine, format the result.

Exit codes: 0 success, 1 input problems, 2 usage.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from . import __version__

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


PlanOption = Annotated[Path, typer.Option(
    "--plan", exists=True, dir_okay=False, readable=True, help="The plan workbook (.xlsx).")]
DataOption = Annotated[list[Path] | None, typer.Option(
    "--data", exists=True, help="Raw data and facts files (CSV, XLSX) or folders of them; "
    "several may follow one --data.")]
MoreArgument = Annotated[list[Path] | None, typer.Argument(
    exists=True, show_default=False, metavar="[FILE]...", help="More data files.")]
PeriodOption = Annotated[str | None, typer.Option(
    "--period", callback=_period_option, help="The period, YYYY-MM (default: the plan's Settings).")]
LangOption = Annotated[str | None, typer.Option(
    "--lang", callback=lambda v: _lang_option(v), help="Language of cards and summary: en or ru "
    "(default: the plan's Settings).")]
JobsOption = Annotated[int, typer.Option("--jobs", min=1, max=64, help="Worker processes for the cards.")]


def _lang_option(value: str | None) -> str | None:
    if value is not None and value not in ("en", "ru"):
        raise typer.BadParameter("use en or ru")
    return value


@app.command("generate")
def generate_command(
    plan: PlanOption,
    data: DataOption = None,
    more: MoreArgument = None,
    template: Annotated[Path | None, typer.Option(
        "--template", exists=True, dir_okay=False,
        help="Your own card template (.xlsx); see docs/templates.md.")] = None,
    out: Annotated[Path, typer.Option("--out", file_okay=False, help="Output folder.")] = Path("kpi-out"),
    period: PeriodOption = None,
    jobs: JobsOption = 1,
    lang: LangOption = None,
    skip_invalid: Annotated[bool, typer.Option(
        "--skip-invalid", help="Card the valid employees; list the others in OUT/errors.csv.")] = False,
    resume: Annotated[bool, typer.Option(
        "--resume", help="Continue an interrupted run of the same inputs, keeping the cards it finished; "
        "leave an output that is already complete for them as it is.")] = False,
) -> None:
    """Write a KPI card per employee, the summary workbook and the manifest into OUT."""
    _run_batch(plan, [*(data or []), *(more or [])], out, template=template, period=period, jobs=jobs, lang=lang,
               skip_invalid=skip_invalid, resume=resume)


@app.command("verify")
def verify_command(
    out: Annotated[Path, typer.Argument(exists=True, file_okay=False, help="An output folder of 'xl-kpi generate'.")],
    no_recompute: Annotated[bool, typer.Option(
        "--no-recompute", help="Only check the hashes; don't recompute from the recorded inputs.")] = False,
) -> None:
    """Audit an output folder: hashes, nothing added or removed, and every output equal to a fresh
    computation from the recorded inputs. Exit 1 when anything differs."""
    from rich.markup import escape

    from .batch import verify

    with console.status("Verifying…"):
        findings = verify(out, recompute=not no_recompute)
    for f in findings:
        console.print(f"[red]✗[/red] {escape(str(f))}", soft_wrap=True)
    if findings:
        console.print(f"[bold red]{len(findings)} problem{'s' if len(findings) != 1 else ''} found in {out}[/bold red]")
        raise typer.Exit(1)
    console.print(f"[green]✓[/green] {out}: every file matches its recorded hash"
                  + ("" if no_recompute else " and a fresh computation from the recorded inputs"))


@app.command("demo")
def demo_command(
    out: Annotated[Path, typer.Option("--out", file_okay=False, help="Output folder.")] = Path("demo-out"),
    lang: LangOption = None,
    jobs: JobsOption = 1,
) -> None:
    """The whole batch on the bundled sample company (44 employees, October 2026)."""
    from .plan import sample_inputs

    plan, data = sample_inputs()
    console.print(f"Sample company: plan [bold]{plan}[/bold], data {', '.join(p.name for p in data)}")
    _run_batch(plan, data, out, template=None, period=None, jobs=jobs, lang=lang, skip_invalid=False)


def _run_batch(plan: Path, data: list[Path], out: Path, **options: object) -> None:
    """Run xl_kpi.batch.generate with a progress bar; print the report, or every problem and exit 1."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    from .batch import generate
    from .validate import InputError, render

    with Progress(TextColumn("[bold]Cards"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                  console=console, transient=True) as progress:
        task = progress.add_task("cards", total=None)
        try:
            report = generate(
                plan, data, out,
                on_start=lambda n: progress.update(task, total=n),
                on_progress=lambda n: progress.update(task, completed=n),
                **options,  # type: ignore[arg-type]
            )
        except InputError as e:
            progress.stop()
            render(e.problems, console)
            console.print("[red]Nothing was written.[/red] Fix the errors above"
                          + (" or use --skip-invalid." if "skip_invalid" in options else "."))
            raise typer.Exit(1) from None
    if report.up_to_date:
        console.print(f"[green]✓[/green] {report.out_dir} is already complete for these inputs; nothing rewritten")
        return
    warnings = report.problems.warnings
    currency = report.results.currency
    console.print(f"[green]✓[/green] {len(report.cards)} cards written, {len(report.errors)} "
                  f"employee{'s' if len(report.errors) != 1 else ''} not carded"
                  + (" (see errors.csv)" if report.errors else "")
                  + (f", {len(warnings)} warning{'s' if len(warnings) != 1 else ''}" if warnings else ""))
    console.print(f"  total bonus  [bold]{_money(report.total_bonus, currency)}[/bold]  "
                  f"(period {report.results.period or '—'})")
    if report.reused:
        console.print(f"  resumed      {report.reused} cards kept from the interrupted run")
    console.print(f"  elapsed      {report.elapsed:.2f} s")
    console.print(f"  output       {report.out_dir.resolve()}")
    for name, path in report.files.items():
        console.print(f"               {name}{'/' if path.is_dir() else ''}")


_SYMBOLS = {"RUB": "₽", "USD": "$", "EUR": "€", "KZT": "₸", "BYN": "Br", "UAH": "₴"}


def _money(x: float, currency: str = "RUB") -> str:
    """1234567.8 → '1 234 567,80 ₽': grouped by thin spaces, decimal comma, as a Russian accountant writes."""
    text = f"{x:,.2f}".replace(",", "\u00a0").replace(".", ",")
    return f"{text} {_SYMBOLS.get(currency, currency)}"


def main() -> None:
    """Console entry point."""
    app()
