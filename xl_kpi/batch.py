"""The batch run: plan + data → KPI cards, summary, manifest (and errors) in one output folder.

Order of work, so that a failed or interrupted run never leaves a half-written result:

1. read and check every input (:func:`xl_kpi.validate.inspect`); any error stops the run before
   anything is written, unless ``skip_invalid`` (then employees whose inputs are incomplete are
   listed in ``errors.csv`` and everyone else gets a card);
2. compute the results table with the engine (:func:`xl_kpi.results.compute`, once: the amount check of step 1
   computes them and the run goes on with those);
3. write cards, summary, manifest, errors, the results table (``results/``, for later steps such
   as ``xl-kpi distribute``) and the audit record (``manifest.json``: hashes of every input, the
   template, the xl_kpi version, the period, and of every output) into a hidden staging folder
   inside ``OUT``;
4. swap the staged output into place (``cards/`` folder and each file renamed in), and remove
   what a previous run left that this run does not produce.

Nobody is dropped silently: cards + errors = employees. :func:`verify` re-reads an output folder,
checks every hash and recomputes everything from the recorded inputs.
"""

from __future__ import annotations

import contextlib
import gc
import hashlib
import json
import os
import shutil
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from xl_kpi import __version__
from xl_kpi.audit import adjustments_record, compare_csvs, unrecorded
from xl_kpi.engine.errors import KpiError
from xl_kpi.engine.money import round_money
from xl_kpi.engine.period import Period, period_of
from xl_kpi.i18n import English, Join, Msg, english, render
from xl_kpi.inputs.datafiles import DataFile, parse_data_arg, plain_paths
from xl_kpi.inputs.inputbytes import recording
from xl_kpi.inputs.problems import InputError, Problems
from xl_kpi.inputs.sources.native import is_native, native_digest
from xl_kpi.inputs.tables import expand_paths
from xl_kpi.memory import release_memory
from xl_kpi.outputs import outdir
from xl_kpi.outputs.atomic import flush_files, fsync_dir, write_atomic
from xl_kpi.outputs.cards import CardRecord, CardTemplate, iter_cards, read_journal, write_cards
from xl_kpi.outputs.csvsafe import read_rows
from xl_kpi.outputs.history import History, check_recorded, load_history
from xl_kpi.outputs.layout import CARDS, ERRORS_CSV, FOLDER, MANIFEST_CSV, OUTBOX, RESULTS, SUMMARY
from xl_kpi.outputs.manifest import write_errors, write_manifest
from xl_kpi.outputs.results_files import load_results, same_results, save_results
from xl_kpi.outputs.summary import summary_bytes, write_summary
from xl_kpi.results import Results
from xl_kpi.validate import inspect_computed

STAGING_PREFIX = ".xl-kpi-staging-"
AUDIT = "manifest.json"
OUTPUTS = (CARDS, SUMMARY, MANIFEST_CSV, ERRORS_CSV, RESULTS, AUDIT, FOLDER, OUTBOX)
"""What a run owns in OUT; anything else there is left alone. Bundles and dry-run e-mails of an
earlier ``xl-kpi distribute`` are removed too: they hold the previous cards. The send log stays."""
FINGERPRINT = ".fingerprint"
JOURNAL = ".journal"
"""In staging: "sha256 path" of every card written, flushed per chunk; --resume keeps only those cards whose bytes
still have that hash."""
AUDITED_FILES = ("summary.xlsx", "manifest.csv", "errors.csv", "results/lines.csv", "results/employees.csv",
                 "results/run.json")


@dataclass
class BatchReport:
    """What a run produced: records of the cards, the employees not carded and why, totals."""

    out_dir: Path
    cards: list[CardRecord]
    errors: list[dict[str, Any]]
    results: Results
    problems: Problems
    elapsed: float = 0.0
    files: dict[str, Path] = field(default_factory=dict)
    reused: int = 0
    up_to_date: bool = False

    @property
    def total_bonus(self) -> float:
        """Sum of the carded employees' bonuses, to the kopeck."""
        return float(round_money(sum(float(r.total_bonus) for r in self.cards), self.results.digits))


def generate(
    plan: str | os.PathLike[str],
    data: Sequence[str | os.PathLike[str] | DataFile],
    out_dir: str | os.PathLike[str],
    *,
    template: str | os.PathLike[str] | None = None,
    period: Period | str | None = None,
    jobs: int = 1,
    lang: str | None = None,
    skip_invalid: bool = False,
    resume: bool = False,
    engine: str | None = None,
    history: Sequence[str | os.PathLike[str]] = (),
    default_lang: str | None = None,
    on_start: Callable[[int], None] | None = None,
    on_progress: Callable[[int], None] | None = None,
) -> BatchReport:
    """Run the whole batch; raise :class:`InputError` (listing every problem) before writing anything.

    ``lang`` (en/ru) picks the bundled card template and the summary's language; default: the
    plan's Settings, then ``default_lang`` (the CLI passes the system locale's), then en. ``resume``: an
    output already complete for the very same inputs, template,
    options and xl_kpi version is left as it is, and an interrupted run of them is continued,
    keeping the cards it had finished. ``history``: earlier runs' output folders (or folders holding
    several) whose checked results give each card a history sheet (:mod:`xl_kpi.outputs.history`); a
    problem with them stops the run like an input error. ``on_start(n)`` and ``on_progress(n_done)`` drive
    a progress bar.
    """
    with _fewer_collections():
        return _generate(plan, data, out_dir, template=template, period=period, jobs=jobs, lang=lang,
                         skip_invalid=skip_invalid, resume=resume, engine=engine, history=history,
                         default_lang=default_lang, on_start=on_start, on_progress=on_progress)


GC_YOUNG = 50_000
"""New container objects between two runs of the garbage collector's youngest generation during a batch (Python's
default: 700). Reading 10,000 employees' inputs and writing their summary made ~700 collections, 0.3 s of the
parent's time; a few MB of short-lived garbage in reference cycles waits a little longer to be freed."""


@contextlib.contextmanager
def _fewer_collections() -> Iterator[None]:
    """Python's garbage collector run less often while a batch runs (:data:`GC_YOUNG`), its settings restored
    after."""
    old = gc.get_threshold()
    gc.set_threshold(max(old[0], GC_YOUNG), *old[1:])
    try:
        yield
    finally:
        gc.set_threshold(*old)


def _generate(
    plan: str | os.PathLike[str],
    data: Sequence[str | os.PathLike[str] | DataFile],
    out_dir: str | os.PathLike[str],
    *,
    template: str | os.PathLike[str] | None,
    period: Period | str | None,
    jobs: int,
    lang: str | None,
    skip_invalid: bool,
    resume: bool,
    engine: str | None,
    history: Sequence[str | os.PathLike[str]],
    default_lang: str | None,
    on_start: Callable[[int], None] | None,
    on_progress: Callable[[int], None] | None,
) -> BatchReport:
    """:func:`generate`'s run."""
    started = time.perf_counter()
    period = p.key if (p := period_of(period)) else None  # manifest.json records the key: 2026-Q4
    out = Path(out_dir).resolve()
    data = [d if isinstance(d, (DataFile, Path)) else parse_data_arg(d) for d in data]
    outdir.refuse_out_in_data(out, plain_paths(data))
    working = (STAGING_PREFIX, ".xl-kpi-distribute-")
    outdir.claim(out, working)  # before anything is read or written: a folder of the user's is refused
    with recording() as read:  # the sha256 of the very bytes parsed, for manifest.json
        the_plan, facts, problems, results = inspect_computed(plan, data, period=period, engine=engine,
                                                              language=lang, default_language=default_lang)
    if the_plan is None or (problems.has_errors and not skip_invalid):
        raise InputError(problems)
    if not lang and default_lang and problems.language is None:
        lang = results.language  # recorded, so that verify recomputes errors.csv in the same language
    tables = facts.files  # which file each table came from, for manifest.json
    bound_native = facts.native  # Parquet or Spark tables the plan's Sources sheet binds
    del the_plan, facts  # the results hold what the outputs need: the memory goes to the cards and the summary
    release_memory()  # the plan's and facts' frames, freed, given back before the outputs are written
    if lang:
        results = replace(results, language=lang)
    earlier = _history(history, results, problems, out)
    ok_results, errors = split_invalid(results)
    if errors and not skip_invalid:  # an employee the checks above let through but cannot be carded
        for e in errors:
            problems.error(Msg("employee {employee_id} ({name}): {reason}", employee_id=e['employee_id'],
                               name=e['name'], reason=e['reason']),
                           Msg("fix the plan or the data, or run with --skip-invalid to card everyone else"),
                           file=Path(plan).name, sheet="Employees")
        raise InputError(problems)
    tpl = CardTemplate.load(template, lang=results.language)
    audit = audit_record(plan, data, tpl, results, {"period": period, "lang": lang, "skip_invalid": skip_invalid,
                                                     **({"engine": engine} if engine else {})},
                         read=read, tables=tables, history=earlier.record() if earlier else None,
                         native_tables=bound_native)

    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise outdir.os_error(e, out, Msg("cannot create the output folder")) from None
    with outdir.lock(out):
        owned = outdir.claim(out, working)  # again, under the lock
        if resume and _up_to_date(out, audit["fingerprint"]):
            records = _records_from_manifest(out, ok_results)
            return BatchReport(out, records, errors, results, problems, time.perf_counter() - started,
                               _present(out), reused=len(records), up_to_date=True)
        try:
            staging, records, reused = _write_staged(out, owned, ok_results, results, errors, tpl, audit,
                                                     jobs=jobs, resume=resume, on_start=on_start,
                                                     on_progress=on_progress, history=earlier)
        except OSError as e:
            raise outdir.os_error(e, out) from None
    moved = _moved(records, staging, out)
    return BatchReport(out, moved, errors, results, problems, time.perf_counter() - started, _present(out),
                       reused=reused)


def _write_staged(out: Path, owned: set[str], ok_results: Results, results: Results, errors: list[dict[str, Any]],
                  tpl: CardTemplate, audit: dict[str, Any], *, jobs: int, resume: bool,
                  on_start: Callable[[int], None] | None,
                  on_progress: Callable[[int], None] | None,
                  history: History | None = None) -> tuple[Path, list[CardRecord], int]:
    """Write everything into a staging folder and swap it in; (staging path, card records, cards reused)."""
    staging = _staging(out, audit["fingerprint"], reuse=resume)
    trusted = read_journal(staging / JOURNAL) if resume else {}
    reused = sum(1 for p, digest in trusted.items() if Path(p).is_file() and _sha256(Path(p)) == digest)
    done = keep = False
    try:
        if on_start:
            on_start(len(ok_results.employees))
        # The summary and the results files need no card: the parent writes them while the workers render
        # (it would only wait for them otherwise). Their errors surface at .result(), before the swap. The cards
        # reach the disk in one flush, also on that thread, while the parent writes the manifest and the audit.
        with ThreadPoolExecutor(1, thread_name_prefix="xl-kpi-summary") as side:
            beside = [side.submit(write_summary, results, staging / SUMMARY),
                      side.submit(write_errors, errors, staging),
                      side.submit(save_results, results, staging)]
            flushed = None
            try:
                records = write_cards(ok_results, staging, tpl, lang=results.language, jobs=jobs,
                                      on_progress=on_progress, keep_existing=trusted if resume else False,
                                      journal=staging / JOURNAL, history=history, fsync=False)
                flushed = side.submit(flush_files, [r.path for r in records])
                (staging / CARDS).mkdir(exist_ok=True)
                if resume:
                    _remove_unlisted_cards(staging, records)
                write_manifest(records, staging)
                for f in beside:
                    f.result()
                audit["outputs"] = {n: _sha256(staging / n) for n in AUDITED_FILES if (staging / n).exists()}
                audit["cards"] = len(records)
                staged = _staged_files(staging, records)
                audit["files"] = sorted({*staged, AUDIT})
                write_atomic(staging / AUDIT, json.dumps(audit, ensure_ascii=False, indent=1).encode("utf-8"))
                flushed.result()  # every card on disk before anything moves into OUT
            except BaseException:
                for f in [*beside, flushed]:
                    if f is not None:
                        f.cancel()
                raise
        _swap_into_place(staging, out, owned, staged)
        done = True
    except KeyboardInterrupt:
        keep = True  # Ctrl+C: the finished cards and their journal stay for --resume
        raise
    finally:
        if done or not (resume or keep):  # a failed --resume run keeps its finished cards for the next try
            shutil.rmtree(staging, ignore_errors=True)
    return staging, records, reused


def _moved(records: list[CardRecord], staging: Path, out: Path) -> list[CardRecord]:
    """The card records with their paths in OUT instead of the staging folder (cut as text: 10,000 of them), in the
    same list: each record replaced in turn, so that two lists of 100,000 records are never held at once."""
    cut, into = len(os.fspath(staging)), os.fspath(out)
    for i, r in enumerate(records):
        p = os.fspath(r.path)
        rel = p[cut:] if p.startswith(os.fspath(staging) + os.sep) else os.sep + os.fspath(r.path.relative_to(staging))
        records[i] = CardRecord(r.employee_id, Path(into + rel), r.sha256, r.total_bonus, r.status, r.reason)
    return records


def _history(paths: Sequence[str | os.PathLike[str]], results: Results, problems: Problems, out: Path
             ) -> History | None:
    """The checked earlier runs for the cards' history sheet (None without ``--history``); any problem with
    them stops the run (InputError), whatever ``skip_invalid`` says: an unproven run is never used."""
    if not paths:
        return None
    before = len(problems.errors)
    earlier = load_history(paths, results.period, currency=results.currency, company=results.company,
                           problems=problems, out_dir=out)
    if len(problems.errors) > before:
        raise InputError(problems)
    return earlier


def split_invalid(results: Results) -> tuple[Results, list[dict[str, Any]]]:
    """(results of the employees that can be carded, [employee_id, name, reason] of the others)."""
    emp = results.employees
    bad = emp["status"].ne("ok")
    errors = [
        {"employee_id": e, "name": n, "reason": r}
        for e, n, r in zip(emp.loc[bad, "employee_id"], emp.loc[bad, "name"], emp.loc[bad, "reason"], strict=True)
    ]
    if not errors:
        return results, []
    keep = emp.loc[~bad]
    lines = results.lines[results.lines["employee_id"].isin(set(keep["employee_id"]))]
    return replace(results, employees=keep.reset_index(drop=True), lines=lines.reset_index(drop=True)), errors


# ------------------------------------------------------------------------------------ audit


def audit_record(
    plan: str | os.PathLike[str],
    data: Sequence[str | os.PathLike[str] | DataFile],
    template: CardTemplate,
    results: Results,
    options: dict[str, Any],
    *,
    read: dict[str, str] | None = None,
    tables: dict[str, Path] | None = None,
    history: list[dict[str, Any]] | None = None,
    native_tables: dict[str, str] | None = None,
) -> dict[str, Any]:
    """What a run was made from: every input's sha256, the template's, the version, period, options.

    ``read``: {resolved path: sha256} of the bytes the run parsed (:func:`xl_kpi.inputs.inputbytes.recording`);
    an input not in it is hashed from disk. ``tables``: table name → the file it was read from (recorded
    under ``tables``; a ``--data NAME=PATH`` binding is also a ``data`` entry with its ``table``).
    ``native_tables``: table name → location of the Parquet and Spark tables a Sources row binds (recorded under
    ``native`` like ``--data NAME=LOCATION``, with ``"from": "Sources"``; a catalog table as unhashable).
    ``history``: what :meth:`History.record` says of the earlier runs the cards show (absent without them).
    ``fingerprint`` hashes all of it, so two runs with the same fingerprint write the same bytes.
    """
    read = read or {}

    def digest(p: Path) -> str:
        return read.get(str(p.resolve())) or _sha256(p)

    plan_path = Path(plan).resolve()
    native = [e for e in map(_native_entry, data) if e is not None]
    on_cli = {e.split("=", 1)[0].casefold() for e in native if "=" in e}
    from_sheet = [f"{name}={where}" for name, where in sorted((native_tables or {}).items())
                  if name.casefold() not in on_cli]
    data = [d for d in data if _native_entry(d) is None]
    files = expand_paths(plain_paths(data), exclude=[plan_path])
    bound = {b.table.casefold(): b for b in data if isinstance(b, DataFile)}
    by_file = {str(Path(p).resolve()): name for name, p in (tables or {}).items() if name.casefold() in bound}
    record: dict[str, Any] = {
        "format": 1,
        "xl_kpi_version": __version__,
        "period": results.period,
        "language": results.language,
        "options": options,
        "plan": {"path": str(plan_path), "sha256": digest(plan_path)},
        "data": [{"path": str(p.resolve()), "sha256": digest(p)} for p in files]
        + [{"path": path, "sha256": digest(Path(path)), "table": name} for path, name in sorted(by_file.items())],
        "tables": {name: {"file": str(Path(p).resolve()), "sha256": digest(Path(p))}
                   for name, p in sorted((tables or {}).items())},
        **({"native": [_native_record(e) for e in native] + [_native_record(e, "Sources") for e in from_sheet]}
           if native or from_sheet else {}),
        "template": {"path": str(template.path) if template.path else None,
                     "sha256": hashlib.sha256(template.source).hexdigest()},
        "adjustments": adjustments_record(results),
        **({"history": history} if history else {}),
    }
    record["fingerprint"] = hashlib.sha256(json.dumps(record, sort_keys=True).encode("utf-8")).hexdigest()
    return record


@dataclass(frozen=True)
class Finding:
    """One thing :func:`verify` found wrong in an output folder."""

    file: str
    message: str

    def __str__(self) -> str:
        return f"{self.file}: {render(self.message)}"


def verify(out_dir: str | os.PathLike[str], *, recompute: bool = True) -> list[Finding]:
    """Re-read an output folder: every hash, no extra or missing card, and (``recompute``) every
    output equal to a fresh computation from the recorded inputs. Empty list = all good."""
    out = Path(out_dir)
    try:
        audit = json.loads((out / AUDIT).read_text(encoding="utf-8"))
    except FileNotFoundError:
        return [Finding(AUDIT, English(Msg("not found: is this the output folder of 'xl-kpi generate'?")))]
    except ValueError as e:
        return [Finding(AUDIT, English(Msg("damaged ({error})", error=str(e))))]
    found: list[Finding] = []
    for name, digest in audit.get("outputs", {}).items():
        p = out / name
        if not p.exists():
            found.append(Finding(name, English(Msg("missing"))))
        elif _sha256(p) != digest:
            found.append(Finding(name, English(Msg("changed since the run (sha256 differs)"))))
    listed = _manifest_rows(out)
    for r in listed:
        p = out / r["file"]
        if not p.is_file():
            found.append(Finding(r["file"], English(Msg("missing"))))
        elif _sha256(p) != r["sha256"]:
            found.append(Finding(r["file"], English(Msg("changed since the run (employee {eid})",
                                                                eid=r["employee_id"]))))
    known = {(out / r["file"]).resolve() for r in listed}
    for p in sorted((out / "cards").rglob("*")) if (out / "cards").is_dir() else []:
        if p.is_file() and p.resolve() not in known:
            found.append(Finding(p.relative_to(out).as_posix(),
                                 English(Msg("not listed in manifest.csv (added after the run)"))))
    if len(listed) != audit.get("cards"):
        found.append(Finding("manifest.csv", English(Msg("lists {n} cards, the run wrote {wrote}", n=len(listed),
                                                         wrote=audit.get("cards")))))
    recorded = {AUDIT, *audit.get("outputs", {}), *(r["file"] for r in listed)}
    flagged = {f.file for f in found}
    found.extend(Finding(f, m) for f, m in unrecorded(out, recorded) if f not in flagged)
    if recompute:
        flagged = {f.file for f in found}
        found.extend(f for f in _recompute(out, audit, listed) if f.file not in flagged)
    return found


def _stale(what: list[Any]) -> Finding:
    """'cannot recompute: plan plan.xlsx changed since the run' (each part in the reader's language)."""
    return Finding(AUDIT, English(Msg("cannot recompute: {what} since the run", what=Join("; ", what))))


def _recompute(out: Path, audit: dict[str, Any], listed: list[dict[str, str]]) -> list[Finding]:
    """Compare the outputs with a fresh run from the recorded inputs (byte for byte: output is deterministic)."""
    inputs = [("plan", audit["plan"])] + [("data", d) for d in audit["data"]] + [
        ("table", {"path": t["file"], "sha256": t["sha256"]}) for t in audit.get("tables", {}).values()]
    stale = [Msg("{role} {name} is missing", role=role, name=Path(i["path"]).name) if not Path(i["path"]).is_file()
             else Msg("{role} {name} changed", role=role, name=Path(i["path"]).name)
             for role, i in inputs if not Path(i["path"]).is_file() or _sha256(Path(i["path"])) != i["sha256"]]
    if stale:
        return [_stale(stale)]
    opts = audit.get("options", {})
    tpath = audit["template"]["path"]
    try:
        tpl = CardTemplate.load(tpath, lang=audit["language"])
    except (OSError, KpiError) as e:
        return [Finding(AUDIT, English(Msg("cannot recompute: template {path}: {error}", path=tpath, error=e)))]
    if hashlib.sha256(tpl.source).hexdigest() != audit["template"]["sha256"]:
        return [Finding(AUDIT, English(Msg("cannot recompute: the template {path} changed since the run",
                                               path=tpath or Msg("(bundled)"))))]
    native = audit.get("native", [])
    changed = [n["entry"] for n in native if native_digest(n["entry"]) != n["sha256"]]
    if changed:
        return [_stale([Msg("{name} changed", name=c) for c in changed])]
    with recording() as read:  # recompute from the very bytes recorded, not from a file saved meanwhile
        the_plan, _, problems, fresh = inspect_computed(audit["plan"]["path"], [
            DataFile(d["table"], d["path"], where=(("file", "--data"),)) if d.get("table") else d["path"]
            for d in audit["data"]] + [n["entry"] for n in native if n.get("from") != "Sources"],  # Sources: the plan
            period=opts.get("period"),
            engine=opts.get("engine"), language=opts.get("lang"))
    moved = [Path(i["path"]).name for _, i in inputs if read.get(str(Path(i["path"]).resolve()), i["sha256"])
             != i["sha256"]]
    if moved:
        return [_stale([Msg("{name} changed", name=n) for n in moved])]
    if the_plan is None:
        return [Finding(AUDIT, English(Msg("cannot recompute: {why}", why=problems.summary())))]
    if opts.get("lang"):
        fresh = replace(fresh, language=opts["lang"])
    earlier = None
    if audit.get("history"):
        changed = check_recorded(audit["history"])
        if changed:
            return [_stale(changed)]
        hist_problems = Problems()
        earlier = load_history([h["folder"] for h in audit["history"]], fresh.period, currency=fresh.currency,
                               company=fresh.company, problems=hist_problems, out_dir=out)
        if hist_problems.has_errors:
            return [Finding(AUDIT, English(Msg("cannot recompute: {why}", why=hist_problems.errors[0])))]
    found: list[Finding] = []
    if "adjustments" in audit and audit["adjustments"] != adjustments_record(fresh):
        found.append(Finding(AUDIT, English(Msg("the adjustments it records differ from a fresh computation of the "
                                                "plan's Adjustments sheet"))))
    try:
        if not same_results(load_results(out), fresh):
            found.append(Finding("results/", English(Msg("differs from a fresh computation"))))
    except KpiError as e:
        found.append(Finding("results/", english(e)))
    if (out / "summary.xlsx").is_file() and (out / "summary.xlsx").read_bytes() != summary_bytes(fresh):
        found.append(Finding("summary.xlsx", English(Msg("differs from a fresh computation"))))
    by_id = {r["employee_id"]: r for r in listed}
    ok, errors = split_invalid(fresh)
    digests = []
    for eid, data in iter_cards(tpl, ok, history=earlier):
        digests.append((eid, hashlib.sha256(data).hexdigest()))
        row = by_id.get(str(eid))
        if row is None:
            found.append(Finding("manifest.csv", English(Msg("employee {eid} has no card", eid=eid))))
        elif (out / row["file"]).is_file() and (out / row["file"]).read_bytes() != data:
            found.append(Finding(row["file"], English(Msg("differs from a fresh computation (employee {eid})",
                                                          eid=eid))))
    flagged = {f.file for f in found}
    found.extend(Finding(f, m) for f, m in compare_csvs(out.resolve(), ok, errors, digests) if f not in flagged)
    return found


# --------------------------------------------------------------------------------- plumbing


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def _manifest_rows(out: Path) -> list[dict[str, str]]:
    try:
        return read_rows(out / "manifest.csv")
    except FileNotFoundError:
        return []


def _fingerprint_of(out: Path) -> str | None:
    try:
        return json.loads((out / AUDIT).read_text(encoding="utf-8")).get("fingerprint")
    except (OSError, ValueError):
        return None


def _up_to_date(out: Path, fingerprint: str) -> bool:
    """The folder holds a complete run with this fingerprint and nothing was changed since."""
    return _fingerprint_of(out) == fingerprint and not verify(out, recompute=False)


def _records_from_manifest(out: Path, results: Results) -> list[CardRecord]:
    emp = results.employees.set_index("employee_id")
    return [CardRecord(r["employee_id"], out / r["file"], r["sha256"], float(r["total_bonus"]), r["status"],
                       emp["reason"].get(r["employee_id"], "")) for r in _manifest_rows(out)]


def _present(out: Path) -> dict[str, Path]:
    return {name: out / name for name in OUTPUTS if (out / name).exists()}


def _staging(out: Path, fingerprint: str, *, reuse: bool) -> Path:
    """A fresh hidden staging folder, or (``reuse``) the one an interrupted run of the same inputs left.

    Other staging folders are never part of a result and are removed.
    """
    keep: Path | None = None
    for p in sorted(out.glob(f"{STAGING_PREFIX}*")):
        if not p.is_dir():
            continue
        try:
            mine = (p / FINGERPRINT).read_text(encoding="utf-8") == fingerprint
        except OSError:
            mine = False
        if reuse and mine and keep is None:
            keep = p
        else:
            shutil.rmtree(p, ignore_errors=True)
    if keep is not None:
        for tmp in keep.rglob(".*.tmp"):  # atomic writes a kill interrupted: never complete
            tmp.unlink(missing_ok=True)
        shutil.rmtree(keep / ".previous", ignore_errors=True)
        return keep
    staging = out / f"{STAGING_PREFIX}{uuid.uuid4().hex[:12]}"
    staging.mkdir()
    (staging / FINGERPRINT).write_text(fingerprint, encoding="utf-8")
    return staging


def _remove_unlisted_cards(staging: Path, records: list[CardRecord]) -> None:
    """A resumed folder may hold cards of an earlier attempt that this run did not list: drop them."""
    listed = {os.path.normpath(os.path.join(staging, r.path)) for r in records}
    for folder, _, names in os.walk(staging / "cards"):
        for name in names:
            p = os.path.normpath(os.path.join(folder, name))
            if p not in listed:
                os.unlink(p)


def _native_record(entry: str, origin: str | None = None) -> dict[str, Any]:
    """A native table as manifest.json records it: the entry and the sha256 of its Parquet files, or
    ``unhashable`` for a Spark catalog table (verify then recomputes from its current contents)."""
    digest = native_digest(entry)
    return {"entry": entry, "sha256": digest, **({"from": origin} if origin else {}),
            **({"unhashable": True} if digest is None else {})}


def _native_entry(item: Path | DataFile) -> str | None:
    """A ``--data`` item that is a native table (Parquet, ``spark:``) as manifest.json records it, else None."""
    text = f"{item.table}={item.path}" if isinstance(item, DataFile) else str(item)
    return text if is_native(text) else None


def _staged_files(staging: Path, cards: Sequence[CardRecord] | None = None) -> list[str]:
    """The files a staging folder holds for OUT ('/'-separated, relative), without its own bookkeeping.

    ``cards``: the records of every card in the staging folder's ``cards/`` (and of nothing else there): their paths
    are taken from them instead of walking 10,000 files."""
    prefix = os.fspath(staging) + os.sep
    if cards is not None and not all(os.fspath(r.path).startswith(prefix) for r in cards):
        cards = None  # pragma: no cover (write_cards names every card inside the staging folder)
    skip = (FINGERPRINT, JOURNAL, ".previous") + ((CARDS,) if cards is not None else ())
    found = []
    for folder, dirs, names in os.walk(staging):
        rel = Path(folder).relative_to(staging)
        if rel.parts and rel.parts[0] in skip:
            dirs[:] = []
            continue
        found.extend((rel / n).as_posix() for n in names if rel.parts or n not in skip)
    if cards is not None:
        found.extend(os.fspath(r.path)[len(prefix):].replace(os.sep, "/") for r in cards)
    return sorted(found)


def _cards_move_whole(out: Path, owned: set[str], staged: list[str]) -> bool:
    """True when ``cards/`` can be swapped in one rename: staged cards, and OUT's own ``cards/`` absent or holding
    only files and folders (no link) whose files the earlier run recorded as its own."""
    prefix = CARDS + "/"
    if not any(n.startswith(prefix) for n in staged):
        return False
    old = out / CARDS
    if not os.path.lexists(old):
        return True
    if old.is_symlink() or not old.is_dir():
        return False
    stack = [(old, CARDS)]
    while stack:
        folder, rel = stack.pop()
        with os.scandir(folder) as entries:
            for e in entries:
                name = f"{rel}/{e.name}"
                if e.is_symlink():
                    return False
                if e.is_dir():
                    stack.append((Path(e.path), name))
                elif not e.is_file() or name not in owned:
                    return False
    return True


def _swap_into_place(staging: Path, out: Path, owned: set[str], staged: list[str]) -> None:
    """Move the staged outputs into OUT, replacing only files an earlier run recorded as its own.

    A staged file whose place holds a file xl_kpi did not write stops the swap before anything moves;
    a symbolic link on the way is refused. Files of the earlier run that this run does not produce are
    removed, and so are the earlier ``distribution/`` and ``outbox/`` (they hold the previous cards);
    every other file in OUT is left alone. ``cards/`` moves in one rename when OUT has none or only the
    earlier run's cards in it (10,000 cards: one rename instead of 40,000 file-system calls), else card by card.
    """
    whole = _cards_move_whole(out, owned, staged)
    prefix = CARDS + "/"

    def one_by_one(rel: str) -> bool:
        return not (whole and rel.startswith(prefix))

    new = [n for n in staged if n != AUDIT] + [AUDIT]  # the record of ownership last
    checked: set[Path] = set()
    for rel in filter(one_by_one, new):
        outdir.refuse_symlinks(out, rel, checked)
        target = out / rel
        if os.path.lexists(target) and (rel not in owned or not target.is_file()):
            raise outdir.OutDirError(Msg(
                "{target} exists and was not written by xl-kpi (not listed in {audit}); nothing was replaced — fix: "
                "move it away, or choose another --out", target=str(target), audit=str(out / AUDIT)))
    for name in (FOLDER, OUTBOX):
        outdir.refuse_symlink(out / name)
    old = staging / ".previous"
    old.mkdir()
    for rel in sorted(filter(one_by_one, owned)):
        target = out / rel
        if target.is_file() and not target.is_symlink():
            (old / rel).parent.mkdir(parents=True, exist_ok=True)
            os.replace(target, old / rel)
    moved = [FOLDER, OUTBOX] + ([CARDS] if whole else [])
    for name in moved:
        if (out / name).is_dir():
            os.replace(out / name, old / name)
    if whole:
        os.replace(staging / CARDS, out / CARDS)
    for rel in filter(one_by_one, new):
        (out / rel).parent.mkdir(parents=True, exist_ok=True)
        os.replace(staging / rel, out / rel)
    for rel in sorted(filter(one_by_one, owned), key=lambda r: -len(Path(r).parts)):  # folders left empty
        for parent in list(Path(rel).parents)[:-1]:
            with contextlib.suppress(OSError):
                (out / parent).rmdir()
    fsync_dir(out)  # the renames into OUT on disk before the run reports success
    shutil.rmtree(old, ignore_errors=True)
