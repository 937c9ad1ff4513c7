"""The ``xl-kpi`` command: parse arguments, call the xl_kpi engine, format the result.

Exit codes: 0 success, 1 input problems, 2 usage, 3 internal error (one line, no traceback),
130 interrupted.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from xl_kpi import __version__
from xl_kpi.cli_messages import Command, Group, argv_language
from xl_kpi.engine.money import CURRENCY_SYMBOLS
from xl_kpi.i18n import N_, current, ntr, resolve, set_language, system_language, tr, using
from xl_kpi.i18n import render as show

app = typer.Typer(
    name="xl-kpi",
    cls=Group,
    help=N_("KPI scores, premium coefficients and weighted bonuses: batch KPI cards for every employee."),
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
console = Console()
finished = False
"""Set when a batch run (``generate``, ``demo``) has written its output and printed its report: ``python -m xl_kpi``
may then end the process without the interpreter's teardown (``xl_kpi.__main__``)."""


def _version(value: bool) -> None:
    if value:
        console.print(f"xl-kpi {__version__}")
        raise typer.Exit()


LANG_HELP = N_("Language of the messages: en or ru (default: the plan's Settings, then the system locale).")


def _lang_option(value: str | None) -> str | None:
    if value is not None and value not in ("en", "ru"):
        raise typer.BadParameter(tr("use en or ru"))
    return value


def _root_lang(ctx: typer.Context, value: str | None) -> str | None:
    """``xl-kpi --lang ru COMMAND``: the language every command of this run takes when it is not given again."""
    ctx.obj = {"lang": _lang_option(value)}
    return value


def _command_lang(ctx: typer.Context, value: str | None) -> str | None:
    """A command's --lang, else the one given before the command's name."""
    return _lang_option(value) if value is not None else (ctx.find_root().obj or {}).get("lang")


@app.callback()
def _root(
    version: bool = typer.Option(False, "--version", callback=_version, is_eager=True, help=N_("Show the version.")),
    lang: str | None = typer.Option(None, "--lang", callback=_root_lang, help=LANG_HELP),
) -> None:
    """KPI scoring and bonus calculation for Excel."""


PERIOD_HELP = N_("The period: a month 2026-10, a quarter 2026-Q4, a half-year 2026-H2, a year 2026 or a range "
               "2026-10-01..2026-12-31 (default: the plan's Settings).")


DATA_HELP = N_("Raw data and facts files (CSV, XLSX) or folders of them, named after the file; or NAME=PATH to bind "
             "table NAME of the sources to a file (PATH may be a glob), a Parquet file or folder, or spark:db.table; "
             "several may follow one --data.")


def _data_option(values: list[str] | None) -> list[object] | None:
    """--data items as paths or NAME=PATH bindings; a plain path that does not exist is a usage error."""
    if values is None:
        return None
    from xl_kpi.inputs.datafiles import DataFile, parse_data_arg
    from xl_kpi.inputs.sources.native import is_native

    out: list[object] = []
    for v in values:
        item = parse_data_arg(v)
        if not isinstance(item, DataFile) and not item.exists() and not is_native(item):
            raise typer.BadParameter(tr("{path} does not exist (to bind a table to a file write NAME=PATH)",
                                        path=v))
        out.append(item)
    return out


def _period_option(value: str | None) -> str | None:
    """--period as its canonical key (2026-10, 2026-Q4, 2026-H2, 2026, 2026-10-01..2026-12-31);
    a bad value is a usage error (exit code 2)."""
    if value is None:
        return None
    from xl_kpi.engine.period import Period, PeriodError

    try:
        return Period.parse(value).key
    except PeriodError as e:
        raise typer.BadParameter(show(e)) from None


ENGINE_HELP = N_("The query engine for raw data: duckdb (embedded) or spark (default: XL_KPI_ENGINE, else "
                 "duckdb).")


def _engine_option(value: str | None) -> str | None:
    if value is None:
        return None
    from xl_kpi.engine.errors import KpiError
    from xl_kpi.inputs.sources.engines import engine_name

    try:
        return engine_name(value)
    except KpiError as e:
        raise typer.BadParameter(str(e)) from None


MessagesLangOption = Annotated[str | None, typer.Option("--lang", callback=_command_lang, help=LANG_HELP)]


@app.command("validate", cls=Command, help=N_(
    "Check the plan and the data files: print every problem, write nothing. Exit 1 on any error."))
def validate_command(
    plan: Annotated[Path, typer.Option(
        "--plan", exists=True, dir_okay=False, readable=True, help=N_("The plan workbook (.xlsx)."))],
    data: Annotated[list[str] | None, typer.Option(
        "--data", callback=lambda v: _data_option(v), help=DATA_HELP)] = None,
    more: Annotated[list[str] | None, typer.Argument(
        callback=lambda v: _data_option(v), show_default=False, metavar="FILE",
        help=N_("More data files (or NAME=PATH)."))] = None,
    period: Annotated[str | None, typer.Option(
        "--period", callback=_period_option, help=PERIOD_HELP)] = None,
    engine: Annotated[str | None, typer.Option(
        "--engine", callback=lambda v: _engine_option(v), help=ENGINE_HELP)] = None,
    lang: MessagesLangOption = None,
) -> None:
    """``xl-kpi validate`` (its help text is the ``help=`` above)."""
    from xl_kpi.validate import render, validate

    _arrow_memory_pool()

    with using(resolve(lang)):
        problems = validate(plan, [*(data or []), *(more or [])], period=period, engine=engine)
        set_language(resolve(lang, problems.language))
        render(problems, console)
    global finished
    finished = True
    raise typer.Exit(1 if problems.has_errors else 0)


def _arrow_memory_pool() -> None:
    """pyarrow allocates with jemalloc (:func:`xl_kpi.inputs.readers.csvarrow.use_jemalloc`). Only the command
    line's process."""
    from xl_kpi.inputs.readers.csvarrow import use_jemalloc

    use_jemalloc()


PlanOption = Annotated[Path, typer.Option(
    "--plan", exists=True, dir_okay=False, readable=True, help=N_("The plan workbook (.xlsx)."))]
DataOption = Annotated[list[str] | None, typer.Option(
    "--data", callback=lambda v: _data_option(v), help=DATA_HELP)]
EngineOption = Annotated[str | None, typer.Option(
    "--engine", callback=lambda v: _engine_option(v), help=ENGINE_HELP)]
MoreArgument = Annotated[list[str] | None, typer.Argument(
    callback=lambda v: _data_option(v), show_default=False, metavar="FILE",
    help=N_("More data files (or NAME=PATH)."))]
PeriodOption = Annotated[str | None, typer.Option(
    "--period", callback=_period_option, help=PERIOD_HELP)]
LangOption = Annotated[str | None, typer.Option(
    "--lang", callback=_command_lang, help=N_("Language of cards, summary, errors.csv and messages: en "
    "or ru (default: the plan's Settings; messages then follow the system locale)."))]
JobsOption = Annotated[int, typer.Option("--jobs", min=1, max=64, help=N_("Worker processes for the cards."))]


@app.command("generate", cls=Command, help=N_(
    "Write a KPI card per employee, the summary workbook and the manifest into OUT."))
def generate_command(
    plan: PlanOption,
    data: DataOption = None,
    more: MoreArgument = None,
    template: Annotated[Path | None, typer.Option(
        "--template", exists=True, dir_okay=False,
        help=N_("Your own card template (.xlsx); see docs/templates.md."))] = None,
    out: Annotated[Path, typer.Option("--out", file_okay=False, help=N_("Output folder."))] = Path("kpi-out"),
    period: PeriodOption = None,
    jobs: JobsOption = 1,
    lang: LangOption = None,
    skip_invalid: Annotated[bool, typer.Option(
        "--skip-invalid", help=N_("Card the valid employees; list the others in OUT/errors.csv."))] = False,
    resume: Annotated[bool, typer.Option(
        "--resume", help=N_("Continue an interrupted run of the same inputs, keeping the cards it finished; "
        "leave an output that is already complete for them as it is."))] = False,
    engine: EngineOption = None,
    history: Annotated[list[Path] | None, typer.Option(
        "--history", exists=True, file_okay=False,
        help=N_("An earlier run's output folder, or a folder holding several (repeatable): each card shows the "
        "earlier periods' scores and bonuses and the year-to-date total; every run is checked against its "
        "manifest.json first."))] = None,
) -> None:
    """``xl-kpi generate`` (its help text is the ``help=`` above)."""
    with using(resolve(lang)):
        _run_batch(plan, [*(data or []), *(more or [])], out, template=template, period=period, jobs=jobs,
                   lang=lang, skip_invalid=skip_invalid, resume=resume, engine=engine, history=history or ())


@app.command("verify", cls=Command, help=N_(
    "Audit an output folder: hashes, nothing added or removed, and every output equal to a fresh "
                            "computation from the recorded inputs. Exit 1 when anything differs."))
def verify_command(
    out: Annotated[Path, typer.Argument(
        metavar="OUT", exists=True, file_okay=False, help=N_("An output folder of 'xl-kpi generate'."))],
    no_recompute: Annotated[bool, typer.Option(
        "--no-recompute", help=N_("Only check the hashes; don't recompute from the recorded inputs."))] = False,
    lang: MessagesLangOption = None,
) -> None:
    """``xl-kpi verify`` (its help text is the ``help=`` above)."""
    from rich.markup import escape

    from xl_kpi.batch import verify

    with using(resolve(lang)):
        with console.status(tr("Verifying…")):
            findings = verify(out, recompute=not no_recompute)
        for f in findings:
            console.print(f"[red]✗[/red] {escape(str(f))}", soft_wrap=True)
        if findings:
            text = ntr("{n} problem found in {out}", "{n} problems found in {out}", len(findings), out=out)
            console.print(f"[bold red]{escape(text)}[/bold red]")
            raise typer.Exit(1)
        console.print("[green]✓[/green] " + escape(
            tr("{out}: every file matches its recorded hash", out=out) if no_recompute else
            tr("{out}: every file matches its recorded hash and a fresh computation from the recorded inputs",
               out=out)))


@app.command("demo", cls=Command, help=N_(
    "The whole batch on the bundled sample company (44 employees, October 2026)."))
def demo_command(
    out: Annotated[Path, typer.Option("--out", file_okay=False, help=N_("Output folder."))] = Path("demo-out"),
    lang: LangOption = None,
    jobs: JobsOption = 1,
) -> None:
    """``xl-kpi demo`` (its help text is the ``help=`` above)."""
    from xl_kpi.inputs.plan import sample_inputs

    plan, data = sample_inputs()
    with using(resolve(lang)):
        console.print(tr("Sample company: plan {plan}, data {data}", plan=f"[bold]{plan}[/bold]",
                         data=", ".join(p.name for p in data)))
        _run_batch(plan, data, out, template=None, period=None, jobs=jobs, lang=lang, skip_invalid=False)


def _run_batch(plan: Path, data: list[Path], out: Path, **options: object) -> None:
    """Run xl_kpi.batch.generate with a progress bar; print the report, or every problem and exit 1."""
    from rich.markup import escape
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    from xl_kpi.batch import generate
    from xl_kpi.inputs.problems import InputError
    from xl_kpi.outputs.outdir import OutDirError
    from xl_kpi.validate import render

    lang = options.get("lang")
    with Progress(TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                  console=console, transient=True) as progress:
        task = progress.add_task(tr("Cards"), total=None)
        try:
            report = generate(
                plan, data, out,
                on_start=lambda n: progress.update(task, total=n),
                default_lang=None if system_language() == "en" else system_language(),  # en is the default
                on_progress=lambda n: progress.update(task, completed=n),
                **options,  # type: ignore[arg-type]
            )
        except OutDirError as e:
            progress.stop()
            if not e.usage:
                raise
            console.print("[red]" + escape(tr("Usage error:")) + f"[/red] {escape(str(e))}", soft_wrap=True)
            raise typer.Exit(2) from None
        except InputError as e:
            progress.stop()
            set_language(resolve(lang, e.problems.language))  # type: ignore[arg-type]
            render(e.problems, console)
            console.print("[red]" + escape(tr("Nothing was written.")) + "[/red] "
                          + escape(tr("Fix the errors above or use --skip-invalid.") if "skip_invalid" in options
                                   else tr("Fix the errors above.")))
            raise typer.Exit(1) from None
    set_language(resolve(lang, report.problems.language))  # type: ignore[arg-type]
    if report.up_to_date:
        console.print("[green]✓[/green] " + escape(tr("{out} is already complete for these inputs; nothing "
                                                      "rewritten", out=report.out_dir)))
        return
    warnings = report.problems.warnings
    currency = report.results.currency
    text = ntr("{n} card written", "{n} cards written", len(report.cards)) + ", " + ntr(
        "{n} employee not carded", "{n} employees not carded", len(report.errors))
    if report.errors:
        text += tr(" (see errors.csv)")
    if warnings:
        text += ", " + ntr("{n} warning (xl-kpi validate lists them)", "{n} warnings (xl-kpi validate lists them)",
                           len(warnings))
    console.print(f"[green]✓[/green] {escape(text)}")
    rows = [(tr("total bonus"), f"[bold]{_money(report.total_bonus, currency)}[/bold]  "
             + escape(tr("(period {period})", period=_period_label(report.results.period))))]
    if report.reused:
        rows.append((tr("resumed"), escape(ntr("{n} card kept from the interrupted run",
                                               "{n} cards kept from the interrupted run", report.reused))))
    rows.append((tr("elapsed"), escape(_seconds(report.elapsed))))
    rows.append((tr("output"), escape(str(report.out_dir.resolve()))))
    width = _print_rows(rows)
    for name, path in report.files.items():
        console.print(f"  {'':{width}} {escape(name)}{'/' if path.is_dir() else ''}")
    global finished
    finished = True


def _seconds(x: float) -> str:
    """'8.56 s' / '8,56 с': a duration as the current language writes it (a decimal comma in Russian)."""
    text = tr("{seconds:.2f} s", seconds=x)
    return text.replace(".", ",") if current() == "ru" else text


def _print_rows(rows: list[tuple[str, str]], width: int = 12) -> int:
    """'  label        value' lines, the values aligned after the longest label; returns the label width."""
    from rich.markup import escape

    width = max([width, *(len(label) for label, _ in rows)])
    for label, value in rows:
        console.print(f"  {escape(label):<{width}} {value}", soft_wrap=True)
    return width


@app.command("distribute", cls=Command, help=N_(
    "Bundle the cards per employee, manager or department; encrypt, make PDFs, e-mail, "
                                "check isolation."))
def distribute_command(
    out: Annotated[Path, typer.Argument(
        metavar="OUT", exists=True, file_okay=False, show_default=False,
        help=N_("The output folder of xl-kpi generate."))],
    by: Annotated[list[str] | None, typer.Option(
        "--by", help=N_("Bundles per employee, manager or department (repeat for several; default employee)."))] = None,
    zip_: Annotated[bool, typer.Option("--zip", help=N_("One .zip per bundle instead of a folder."))] = False,
    encrypt: Annotated[bool, typer.Option(
        "--encrypt", help=N_("Encrypt every workbook with its recipient's password (Excel's 'Encrypt with "
        "Password'); passwords go to OUT/distribution/passwords.csv for HR."))] = False,
    passwords: Annotated[Path | None, typer.Option(
        "--passwords", exists=True, dir_okay=False, readable=True,
        help=N_("CSV employee_id,password with HR's passwords (the rest are reused or generated)."))] = None,
    new_passwords: Annotated[bool, typer.Option(
        "--new-passwords", help=N_("Generate fresh passwords instead of reusing the previous passwords.csv."))] = False,
    pdf: Annotated[bool, typer.Option(
        "--pdf", help=N_("Add a PDF of each card and team summary (LibreOffice)."))] = False,
    pdf_only: Annotated[bool, typer.Option("--pdf-only", help=N_("Ship PDFs instead of workbooks."))] = False,
    allow_plain_pdf: Annotated[bool, typer.Option(
        "--allow-plain-pdf", help=N_("With --encrypt: ship the PDFs unencrypted (they cannot be encrypted)."))] = False,
    mail: Annotated[bool, typer.Option(
        "--mail", help=N_("E-mail each bundle to its recipient (employee: own card; manager: team bundle)."))] = False,
    smtp: Annotated[str | None, typer.Option("--smtp", metavar="HOST:PORT", help=N_("SMTP server."))] = None,
    starttls: Annotated[bool, typer.Option(
        "--starttls", help=N_("Upgrade the SMTP connection with STARTTLS."))] = False,
    ssl: Annotated[bool, typer.Option("--ssl", help=N_("SMTP over TLS from the start (port 465)."))] = False,
    user: Annotated[str | None, typer.Option(
        "--user", help=N_("SMTP login; the password is read from the environment variable "
                          "XL_KPI_SMTP_PASSWORD."))] = None,
    sender: Annotated[str | None, typer.Option("--from", metavar="ADDR", help=N_("The From address."))] = None,
    dry_run: Annotated[bool, typer.Option(
        "--dry-run", help=N_("Write the messages as .eml files into OUT/outbox/ and send nothing (implies --mail)."))
    ] = False,
    check: Annotated[bool, typer.Option(
        "--check", help=N_("Prove that no file holds anyone else's name, id or pay. Alone: check what is there; "
        "with other options: build (and mail), then check."))] = False,
    full_check: Annotated[bool, typer.Option(
        "--full-check", help=N_("Like --check, but decrypt every encrypted workbook again with its password from "
        "passwords.csv (independent of how it was made; for auditors, slow: 100,000 rounds per file)."))] = False,
    jobs: Annotated[int | None, typer.Option(
        "--jobs", min=1, max=64, help=N_("Worker processes for encrypting and LibreOffice processes for the PDFs "
        "(default: the machine's cores)."))] = None,
    lang: MessagesLangOption = None,
) -> None:
    """``xl-kpi distribute`` (its help text is the ``help=`` above)."""
    with using(resolve(lang)):
        _distribute(out, by=by, zip_=zip_, encrypt=encrypt, passwords=passwords, new_passwords=new_passwords,
                    pdf=pdf, pdf_only=pdf_only, allow_plain_pdf=allow_plain_pdf, mail=mail, smtp=smtp,
                    starttls=starttls, ssl=ssl, user=user, sender=sender, dry_run=dry_run, check=check,
                    full_check=full_check, jobs=jobs)


def _distribute(out: Path, *, by: list[str] | None, zip_: bool, encrypt: bool, passwords: Path | None,
                new_passwords: bool, pdf: bool, pdf_only: bool, allow_plain_pdf: bool, mail: bool, smtp: str | None,
                starttls: bool, ssl: bool, user: str | None, sender: str | None, dry_run: bool, check: bool,
                full_check: bool, jobs: int | None) -> None:
    """The body of ``xl-kpi distribute``, in the language already chosen."""
    from xl_kpi.delivery.distribute import Options, UsageError

    mailing = mail or dry_run
    building = bool(by or zip_ or encrypt or passwords or new_passwords or pdf or pdf_only or allow_plain_pdf
                    or mailing) or not (check or full_check)
    if not mailing and (smtp or starttls or ssl or user or sender):
        raise _usage(tr("--smtp, --starttls, --ssl, --user and --from go with --mail"))
    try:
        options = Options(by=tuple(by or ("employee",)), zip=zip_, encrypt=encrypt, passwords=passwords,
                          new_passwords=new_passwords, pdf=pdf, pdf_only=pdf_only, allow_plain_pdf=allow_plain_pdf,
                          **({"jobs": jobs} if jobs else {}))
    except UsageError as e:
        raise _usage(show(e)) from None
    config = None
    if mailing:
        config = _smtp_config(smtp, starttls=starttls, ssl=ssl, user=user, sender=sender, dry_run=dry_run)
        if set(options.by) == {"department"}:
            raise _usage(tr("department bundles are not mailed (the plan names no department head); "
                            "use --by employee and/or --by manager with --mail"))
    failed = False
    if building:
        failed |= _run_distribute(out, options, config if mailing else None, mailing=mailing, dry_run=dry_run)
    if check or full_check:
        failed |= _run_check(out, full=full_check, jobs=options.jobs)
    raise typer.Exit(1 if failed else 0)


def _usage(message: str) -> typer.Exit:
    """Print a usage error and return the exit (code 2) to raise."""
    from rich.markup import escape

    console.print("[red]" + escape(tr("Usage error:")) + f"[/red] {escape(message)}", soft_wrap=True)
    return typer.Exit(2)


def _smtp_config(smtp: str | None, *, starttls: bool, ssl: bool, user: str | None, sender: str | None,
                 dry_run: bool) -> object:
    """The SmtpConfig of the --mail options (None for a dry run without --smtp); usage error when unusable."""
    from xl_kpi.delivery.mail import SmtpConfig, check_address
    from xl_kpi.engine.errors import KpiError

    if smtp is None:
        if not dry_run:
            raise _usage(tr("--mail needs --smtp HOST:PORT and --from ADDR (or use --dry-run)"))
        if starttls or ssl or user:
            raise _usage(tr("--starttls, --ssl and --user need --smtp"))
        if sender:
            why = check_address(sender)
            if why:
                raise _usage(tr("--from {sender!r}: {why}", sender=sender, why=why))
            return SmtpConfig("localhost", 25, sender=sender)
        return None
    try:
        return SmtpConfig.from_options(smtp, starttls=starttls, ssl=ssl, user=user, sender=sender or "")
    except KpiError as e:
        raise _usage(show(e)) from None


def _run_distribute(out: Path, options: object, config: object, *, mailing: bool, dry_run: bool) -> bool:
    """Build (and mail) the distribution with progress bars; print the report. True when something failed."""
    from rich.markup import escape
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    from xl_kpi.delivery.distribute import LeakError, distribute, send
    from xl_kpi.delivery.mail import MailError, SmtpDownError
    from xl_kpi.engine.errors import KpiError
    from xl_kpi.inputs.problems import InputError
    from xl_kpi.validate import render

    titles = {"pdf": tr("PDF (LibreOffice)"), "encrypt": tr("Encrypting"), "check": tr("Isolation check"),
              "send": tr("Writing .eml") if dry_run else tr("Sending")}
    with Progress(TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                  TextColumn("{task.fields[rate]}"), console=console, transient=True) as progress:
        tasks: dict[str, object] = {}
        started: dict[str, tuple[float, int]] = {}

        def on_progress(stage: str, done: int, total: int) -> None:
            import time

            if stage not in tasks:
                tasks[stage] = progress.add_task(titles.get(stage, stage), total=total, rate="")
                started[stage] = (time.perf_counter(), done)  # resumed work is not counted in the rate
            t0, n0 = started[stage]
            dt = time.perf_counter() - t0
            rate = tr("{rate:,.0f}/s", rate=(done - n0) / dt) if dt > 0.5 and done > n0 else ""
            progress.update(tasks[stage], completed=done, total=total, rate=rate)  # type: ignore[arg-type]

        try:
            report = distribute(out, options, on_progress=on_progress)  # type: ignore[arg-type]
        except InputError as e:
            progress.stop()
            render(e.problems, console)
            console.print("[red]" + escape(tr("Nothing was written.")) + "[/red]")
            return True
        except KpiError as e:
            progress.stop()
            console.print(f"[red]✗[/red] {escape(show(e))}", soft_wrap=True)
            return True
        outcome = None
        mail_error = None
        partial = None
        if mailing:
            try:
                outcome = send(report, config, dry_run=dry_run,
                               on_progress=lambda n, total: on_progress("send", n, total),
                               on_check=lambda n, total: on_progress("check", n, total))
            except SmtpDownError as e:
                mail_error, outcome = show(e), None
                partial = e.report
            except (LeakError, MailError, KpiError) as e:
                mail_error, partial = show(e), None
    _print_distribution(report)
    failed = report.problems.has_errors
    if mailing:
        console.print()
        if mail_error:
            console.print("[red]✗ " + escape(tr("mail:")) + f"[/red] {escape(mail_error)}", soft_wrap=True)
            if partial is not None:
                console.print(f"  {escape(show(partial.summary()))}")
            failed = True
        if outcome is not None:
            failed |= _print_mail(outcome, dry_run)
    return failed


def _bundle_count(n: int, by: str) -> str:
    """'3 employee' style counts of bundles, in the current language."""
    if by == "employee":
        return ntr("{n} employee bundle", "{n} employee bundles", n)
    if by == "manager":
        return ntr("{n} manager bundle", "{n} manager bundles", n)
    if by == "department":
        return ntr("{n} department bundle", "{n} department bundles", n)
    return f"{n} {by}"


def _file_count(n: int, kind: str, ext: str) -> str:
    """'44 card xlsx' / '44 карточки xlsx': how many files of a kind a distribution holds."""
    if kind == "card":
        return ntr("{n} card {ext}", "{n} card {ext}", n, ext=ext)
    if kind == "summary":
        return ntr("{n} summary {ext}", "{n} summary {ext}", n, ext=ext)
    return f"{n} {kind} {ext}"


def _print_distribution(report: object) -> None:
    from rich.markup import escape

    from xl_kpi.validate import render

    r = report  # DistributionReport
    opts = r.options  # type: ignore[attr-defined]
    bundles = [b for b in r.bundles if not b.failed]  # type: ignore[attr-defined]
    if r.problems.errors or r.problems.warnings:  # type: ignore[attr-defined]
        render(r.problems, console)  # type: ignore[attr-defined]
    counts = ", ".join(_bundle_count(sum(1 for b in bundles if b.by == m), m) for m in opts.by)
    kinds: dict[tuple[str, str], int] = {}
    for b in bundles:
        for f in b.files:
            kind = (f.kind, Path(f.name).suffix[1:])
            kinds[kind] = kinds.get(kind, 0) + 1
    console.print("[green]✓[/green] " + escape(tr("distribution written:")) + f" "
                  f"[bold]{escape(str(r.folder.resolve()))}[/bold]", soft_wrap=True)
    no_mail = [b for b in bundles if (not b.recipient_email or b.note) and b.by != "department"]
    from xl_kpi.inputs.identity import canonical_address

    mailboxes = {canonical_address(b.recipient_email) for b in bundles if b.recipient_email}
    rows = [(tr("bundles"), escape(counts + (tr(" (.zip)") if opts.zip else tr(" (folders)")))),
            (tr("files"), escape(f"{r.files}: " + ", ".join(_file_count(n, *k) for k, n in sorted(kinds.items()))
                                 + (tr(" — workbooks encrypted") if opts.encrypt else ""))),
            (tr("recipients"), escape(
                ntr("{n} e-mail address", "{n} e-mail addresses", len(mailboxes)) + "; "
                + ntr("{n} bundle without a usable one", "{n} bundles without a usable one", len(no_mail))))]
    width = _print_rows(rows)
    pad = " " * (width + 3)
    for b in no_mail[:20]:
        note = show(b.note)  # a note in the run's language
        console.print(f"{pad}[yellow]![/yellow] {escape(b.key)}: {escape(note)}", soft_wrap=True)
    if len(no_mail) > 20:
        console.print(pad + escape(tr("… and {n} more", n=len(no_mail) - 20)))
    if "department" in opts.by:
        console.print(pad + escape(tr("department bundles are for HR to hand over (the plan names no department "
                                      "head, so they are never mailed)")), soft_wrap=True)
    rows = []
    if opts.with_pdf:
        made = (ntr("{n} converted in {seconds:.1f} s ({processes} LibreOffice process at once)",
                    "{n} converted in {seconds:.1f} s ({processes} LibreOffice processes at once)",
                    r.pdf_converted, seconds=r.pdf_seconds, processes=r.pdf_processes)  # type: ignore
                if r.pdf_converted else tr("none converted"))  # type: ignore[attr-defined]
        reused = tr(", {n} reused from the previous run", n=r.pdf_reused) if r.pdf_reused else ""  # type: ignore
        rows.append(("PDF", escape(made + reused) + (
            " — [yellow]" + escape(tr("PDFs are NOT encrypted (--allow-plain-pdf)")) + "[/yellow]"
            if opts.encrypt else "")))
    if opts.encrypt:
        p = r.passwords  # type: ignore[attr-defined]
        rows.append((tr("passwords"), f"[bold]{escape(str(r.passwords_file))}[/bold] " + escape(  # type: ignore
            tr("({given} given, {reused} reused, {generated} generated) — for HR only: never send it with the "
               "cards", given=p.get("given", 0), reused=p.get("reused", 0), generated=p.get("generated", 0)))))
        rows.append((tr("encrypted"), escape(ntr(
            "{encrypted} now ({n} worker), {resumed} from the interrupted run, {reused} taken over unchanged",
            "{encrypted} now ({n} workers), {resumed} from the interrupted run, {reused} taken over unchanged",
            opts.jobs, encrypted=r.encrypted, resumed=r.resumed, reused=r.reused))))  # type: ignore[attr-defined]
    rows.append((tr("index"), escape(str(r.index_file))))  # type: ignore[attr-defined]
    rows.append((tr("elapsed"), escape(_seconds(r.elapsed))))  # type: ignore[attr-defined]
    _print_rows(rows, width)


def _print_mail(outcome: object, dry_run: bool) -> bool:
    from rich.markup import escape

    rep = outcome.report  # type: ignore[attr-defined]
    failed = not rep.ok
    if dry_run:
        console.print("[green]✓[/green] " + escape(ntr(
            "dry run: {n} message written to {outbox}, nothing sent",
            "dry run: {n} messages written to {outbox}, nothing sent", len(rep.written),
            outbox=outcome.outbox)), soft_wrap=True)  # type: ignore[attr-defined]
    else:
        mark = "[green]✓[/green]" if rep.ok else "[red]✗[/red]"
        console.print(f"{mark} " + escape(tr("mail:")) + f" {escape(show(rep.summary()))}")
    for key, why in [*rep.failed, *rep.invalid, *rep.uncertain]:
        console.print(f"  [red]✗[/red] {escape(key)}: {escape(show(why))}", soft_wrap=True)
    for key in rep.remaining:
        console.print(f"  [red]✗[/red] {escape(key)}: " + escape(tr("not attempted")), soft_wrap=True)
    skipped = [(b, why) for b, why in outcome.not_mailed if b.by != "department"]  # type: ignore[attr-defined]
    for b, why in skipped:
        console.print("  [red]✗[/red] " + escape(tr("not mailed:")) + f" {escape(b.key)}: {escape(show(why))}",
                      soft_wrap=True)
    return failed or bool(skipped)


def _run_check(out: Path, *, full: bool = False, jobs: int = 1) -> bool:
    """The isolation check; print every finding. True when anything was found."""
    from rich.markup import escape
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    from xl_kpi.delivery.isolation import check_report
    from xl_kpi.engine.errors import KpiError

    try:
        with Progress(TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                      console=console, transient=True) as progress:
            task = progress.add_task(tr("Isolation check"), total=None)
            rep = check_report(out, full=full, jobs=jobs,
                               on_progress=lambda n, total: progress.update(task, completed=n, total=total))
    except KpiError as e:
        console.print("[red]✗ " + escape(tr("check:")) + f"[/red] {escape(show(e))}", soft_wrap=True)
        return True
    if rep.ok:
        how = ""
        if rep.bound or rep.decrypted:
            how = tr(" ({bound} encrypted workbooks checked through the plain workbook they were proved to open "
                     "to, {decrypted} decrypted with their password)", bound=rep.bound, decrypted=rep.decrypted)
        console.print("[green]✓ " + escape(tr("isolation check:")) + "[/green] " + escape(
            tr("{n} files opened, nobody's name, id or pay in a file meant for someone else", n=rep.files) + how),
            soft_wrap=True)
        return False
    console.print("[red]✗ " + escape(tr("isolation check:")) + " " + escape(
        ntr("{n} finding", "{n} findings", len(rep.leaks))) + "[/red] "
        + escape(tr("in {n} files opened", n=rep.files)), soft_wrap=True)
    for leak in rep.leaks[:200]:
        console.print(f"  [red]✗[/red] {escape(show(leak.message()))}", soft_wrap=True)
    if len(rep.leaks) > 200:
        console.print("  " + escape(tr("… and {n} more", n=len(rep.leaks) - 200)))
    return True


def _period_label(period: str) -> str:
    """``2026-Q4`` as the report's language names it, its code after it: «IV квартал 2026, 2026-Q4»."""
    if not period:
        return "—"
    from xl_kpi.engine.errors import KpiError
    from xl_kpi.engine.period import Period

    try:
        return f"{Period.parse(period).label(current())}, {period}"
    except KpiError:
        return period


def _money(x: float, currency: str = "RUB") -> str:
    """1234567.8 → '1 234 567,80 ₽': grouped by thin spaces, decimal comma, as a Russian accountant writes."""
    text = f"{x:,.2f}".replace(",", "\u00a0").replace(".", ",")
    return f"{text} {CURRENCY_SYMBOLS.get(currency, currency)}"


def main() -> None:
    """Console entry point: the app, with no Python traceback ever reaching the user.

    Exit codes: 0 success, 1 input problems, 2 usage, 3 internal error (a bug in xl_kpi: one line
    on stderr; set XL_KPI_DEBUG=1 to see the traceback), 130 interrupted (Ctrl+C).
    """
    import os
    import sys

    from xl_kpi.engine.errors import KpiError

    def say(text: str) -> None:
        print(f"xl-kpi: {text}", file=sys.stderr)

    def interrupted(e: BaseException | None) -> bool:
        seen = 0
        while e is not None and seen < 20:
            if isinstance(e, KeyboardInterrupt):
                return True
            e, seen = e.__cause__ or e.__context__, seen + 1
        return False

    with using(resolve(argv_language(sys.argv[1:]))):  # for what is said here, outside a command
        try:
            app()
        except SystemExit as e:  # typer.Exit and usage errors end here with their code
            if e.code == 130 and interrupted(e):  # typer turns Ctrl+C into Exit(130), silently
                say(tr("interrupted"))
            raise
        except KeyboardInterrupt:
            say(tr("interrupted"))
            raise SystemExit(130) from None
        except KpiError as e:  # bad input that a command did not report itself
            say(tr("error: {message}", message=" ".join(show(e).split())))
            raise SystemExit(1) from None
        except BaseException as e:  # Exception, and a Rust panic from a native library (a BaseException)
            if os.environ.get("XL_KPI_DEBUG") or isinstance(e, GeneratorExit):
                raise
            from xl_kpi.dependencies import missing_batch_package

            missing = missing_batch_package(e)  # a batch package imported lazily inside a command
            if missing is not None:
                say(missing)
                raise SystemExit(1) from None
            message = " ".join(str(e).split())[:300] or tr("(no message)")
            say(tr("internal error: {kind}: {message} — please report this with the command you ran",
                   kind=type(e).__name__, message=message))
            raise SystemExit(3) from None
