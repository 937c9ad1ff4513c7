"""Benchmark: ``xl-kpi distribute`` (encryption, the isolation check, PDF, mail dry run) as ratios, one run.

    .venv/bin/python benchmarks/bench_distribute.py [--n 200] [--pdf-n 60] [--pdf-repeat 1] [--jobs 2] [--mail-n 0]

Generates N employees (the inputs of ``bench_batch.py``), then, all in this run:

* serial floor: msoffcrypto-tool encrypting the same N cards one after another in this process
  (``encrypt_xlsx``, Excel's 100,000 rounds): the cost set by the format, one core;
* ``distribute --by employee --encrypt --jobs J``, ``--encrypt --check`` and ``--encrypt --full-check``
  as whole processes, each as a ratio of the floor (below 1 = faster than the floor);
* PDF: ``distribute --pdf-only --jobs J`` on ``--pdf-n`` cards against one ``soffice`` process converting
  the same cards in one call (the conversion alone) and against ``distribute --pdf-only --jobs 1`` (the whole
  command with one soffice process); ratios above 1 = faster than one process; after a one-card warm-up;
  ``--pdf-repeat R`` measures R rounds, the order rotating, and prints the best and median ratios, with the
  load average beside every figure;
* the mail dry run (``--dry-run``: one .eml per employee) in messages per second, and its messages alone made
  in this process against the floor, the bare stdlib (``EmailMessage`` … ``as_bytes()``); ``--mail-n M``
  also generates M employees for the dry run alone (10,000 for the issue's target) and prints the
  peak RSS ratio M : N (flat memory) and the ratio of CPU a message.

Peak RSS (the process and its workers) is printed with every distribute run.
"""

from __future__ import annotations

import argparse
import csv
import os
import resource
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

from bench_batch import generate, make_inputs  # noqa: E402
from xlkpi_process import run_xl_kpi  # noqa: E402


def run(out: Path, *args: str) -> tuple[float, float]:
    """(seconds, peak RSS MB) of one ``xl-kpi distribute OUT ARGS`` process; exits on failure.

    Its CPU seconds (the process and its workers) are kept in ``CPU[-1]``: on a machine shared with
    other work, wall time says little, CPU time says what the run cost."""
    r = run_xl_kpi("distribute", str(out), *args, env={"COLUMNS": "200"})
    CPU.append(r.cpu)
    return r.seconds, r.rss_mb


CPU: list[float] = []


def cards_of(out: Path) -> list[Path]:
    with (out / "manifest.csv").open(encoding="utf-8") as f:
        return [out / r["file"] for r in csv.DictReader(f) if r.get("status") == "ok"]


def serial_floor(cards: list[Path]) -> float:
    """Seconds for msoffcrypto-tool to encrypt ``cards`` one after another in this process."""
    from xl_kpi.delivery.crypto import encrypt_xlsx

    data = [p.read_bytes() for p in cards]
    t0, c0 = time.perf_counter(), time.process_time()
    for i, d in enumerate(data):
        encrypt_xlsx(d, f"BENCH-{i:05d}-PASSWORD")
    CPU.append(time.process_time() - c0)
    return time.perf_counter() - t0


def one_soffice(cards: list[Path], work: Path) -> tuple[float, float]:
    """(seconds, CPU seconds) for ONE soffice process to convert ``cards`` to PDF (xl_kpi's own convert, one
    call, as a user would run it by hand)."""
    from xl_kpi.delivery.office import convert

    src = work / "pdf-in"
    shutil.rmtree(src, ignore_errors=True)
    shutil.rmtree(work / "pdf-out", ignore_errors=True)
    src.mkdir()
    paths = []
    for i, p in enumerate(cards):
        paths.append(src / f"{i:05d}.xlsx")
        shutil.copyfile(p, paths[-1])
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    result = convert(paths, work / "pdf-out", "pdf")
    dt = time.perf_counter() - t0
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if not result.ok:
        sys.exit(f"one soffice: {len(result.failed)} failed: {next(iter(result.failed.values()))}")
    return dt, after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime


def pdf_only_run(generated: Path, some: list[Path], where: Path, jobs: str) -> tuple[float, float]:
    """(seconds, peak RSS MB) of ``distribute --pdf-only --jobs J`` on a copy of ``generated`` holding only the
    cards ``some`` (its manifest cut down to them)."""
    sub = fresh(generated, where)
    keep = {p.relative_to(generated).as_posix() for p in some}
    rows = list(csv.DictReader((sub / "manifest.csv").open(encoding="utf-8")))
    with (sub / "manifest.csv").open("w", newline="", encoding="utf-8") as f:
        w = csv.DictWriter(f, fieldnames=list(rows[0]))
        w.writeheader()
        w.writerows(r for r in rows if r["file"] in keep)
    return run(sub, "--pdf-only", "--jobs", jobs)


def load() -> str:
    """The load averages (1, 5, 15 min), printed with every PDF figure: on a shared machine they say what a wall
    time is worth."""
    return "load " + " ".join(f"{x:.2f}" for x in os.getloadavg())


def pdf_part(cards: list[Path], generated: Path, work: Path, jobs: str, repeat: int) -> None:
    """``distribute --pdf-only --jobs J`` on the same cards against two baselines of one soffice process, ``repeat``
    times, the order rotating: one bare ``soffice`` call in this warm process (the conversion alone: the strict
    floor) and the whole command with ``--jobs 1`` (one soffice process, the same imports and checks: what a
    user runs without parallelism). Each round's ratios, then the best and the median of both.

    A one-card conversion first brings LibreOffice into the page cache, so that neither side pays a cold start."""
    one_soffice(cards[:1], work)
    bare, whole = [], []
    sides = ("one", "dist", "dist1")
    for i in range(repeat):
        order = sides[i % 3:] + sides[:i % 3]
        for side in order:
            if side == "one":
                t1, c1 = one_soffice(cards, work)
                l1 = load()
            elif side == "dist":
                dt, rss = pdf_only_run(generated, cards, work / "pdf", jobs)
                cpu, l2 = CPU[-1], load()
            else:
                d1, rss1 = pdf_only_run(generated, cards, work / "pdf1", "1")
                cpu1, l3 = CPU[-1], load()
        bare.append(t1 / dt)
        whole.append(d1 / dt)
        print(f"PDF, one soffice ({len(cards)} cards):          {t1:7.2f} s (CPU {c1:.2f} s; {l1})")
        print(f"PDF, distribute --pdf-only --jobs 1:     {d1:7.2f} s (peak RSS {rss1:.0f} MB, whole command; "
              f"CPU {cpu1:.2f} s; {l3})")
        print(f"PDF, distribute --pdf-only --jobs {jobs}:     {dt:7.2f} s = {t1 / dt:5.2f}x faster than one soffice, "
              f"{d1 / dt:5.2f}x than --jobs 1 (peak RSS {rss:.0f} MB, whole command; CPU {cpu:.2f} s; {l2})")
    if repeat > 1:
        for name, ratios in (("one soffice", bare), ("--jobs 1", whole)):
            print(f"PDF, {repeat} rounds, faster than {name}: best {max(ratios):.2f}x, median "
                  f"{statistics.median(ratios):.2f}x ({', '.join(f'{r:.2f}' for r in ratios)})")


def mail_floor(out: Path) -> tuple[int, float, float]:
    """(messages, CPU ms a message for the stdlib, for xl_kpi): the same messages made in this process, one core.

    The floor is the bare stdlib: an ``EmailMessage`` with From, To (the display name), Subject, Date, a text
    body and the card attached, flattened with ``as_bytes()``; xl_kpi is ``_compose_bytes`` (texts in the
    reader's language, the checks, the headers a dry run writes). Both read each card from disk."""
    import email.policy
    import email.utils
    import json
    from email.headerregistry import Address
    from email.message import EmailMessage

    from xl_kpi.delivery.mail import Delivery
    from xl_kpi.delivery.mail.compose import _compose_bytes, _digest, _read_attachments

    run_info = json.loads((out / "results" / "run.json").read_text(encoding="utf-8"))
    with (out / "distribution" / "index.csv").open(encoding="utf-8-sig") as f:
        rows = [r for r in csv.DictReader(f) if r.get("recipient_email")]
    ds = [Delivery(f"employee:{r['employee_id']}", r["recipient_email"], r["recipient"], "employee",
                   (out / "distribution" / r["bundle"] / r["file"],), run_info["period"],
                   run_info["language"] if run_info["language"] in ("en", "ru") else "en") for r in rows]
    c0 = time.process_time()
    for d in ds:
        msg = EmailMessage(policy=email.policy.SMTP)
        msg["From"] = "hr@example.com"
        msg["To"] = Address(display_name=d.to_name, addr_spec=d.to_address)
        msg["Subject"] = f"KPI card {d.period}"
        msg["Date"] = email.utils.formatdate()
        msg.set_content(f"Dear {d.to_name},\n\nattached is your KPI card for {d.period}.\n")
        path = d.attachments[0]
        msg.add_attachment(path.read_bytes(), maintype="application", subtype="octet-stream", filename=path.name)
        msg.as_bytes()
    floor = time.process_time() - c0
    c0 = time.process_time()
    for d in ds:
        files = _read_attachments(d)
        _compose_bytes(d, "xl-kpi@example.invalid", files, _digest(files), None, None, None)
    ours = time.process_time() - c0
    return len(ds), 1000 * floor / max(1, len(ds)), 1000 * ours / max(1, len(ds))


def fresh(generated: Path, where: Path) -> Path:
    shutil.rmtree(where, ignore_errors=True)
    shutil.copytree(generated, where, symlinks=True)
    return where


def main() -> None:
    """Run the benchmark and print the ratios."""
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--n", type=int, default=200, help="employees (default 200)")
    ap.add_argument("--pdf-n", type=int, default=60, help="cards for the PDF comparison (default 60; 0: skip)")
    ap.add_argument("--pdf-repeat", type=int, default=1,
                    help="PDF comparison pairs, the order alternating (default 1); best and median ratio printed")
    ap.add_argument("--jobs", type=int, default=os.cpu_count() or 1, help="distribute --jobs (default: cores)")
    ap.add_argument("--mail-n", type=int, default=0, help="also a dry run of this many employees (e.g. 10000)")
    ap.add_argument("--only", default="", help="comma list of parts: encrypt,check,full,pdf,mail (default all)")
    args = ap.parse_args()
    parts = set(filter(None, args.only.split(","))) or {"encrypt", "check", "full", "pdf", "mail"}
    j = str(args.jobs)

    work = Path(tempfile.mkdtemp(prefix="bench-distribute-"))
    try:
        plan, facts = make_inputs(args.n, work / "in")
        generate(plan, facts, work / "gen", 2)
        cards = cards_of(work / "gen")
        print(f"{len(cards)} cards, cpus={os.cpu_count()}, --jobs {j}")
        floor = serial_floor(cards) if parts & {"encrypt", "check", "full"} else 0.0
        floor_cpu = CPU[-1] if floor else 0.0
        if floor:
            print(f"serial floor (msoffcrypto, one after another): {floor:7.2f} s  "
                  f"({1000 * floor / len(cards):.1f} ms per card; CPU {floor_cpu:.2f} s)")
        for part, extra in (("encrypt", []), ("check", ["--check"]), ("full", ["--full-check"])):
            if part in parts:
                dt, rss = run(fresh(work / "gen", work / part), "--encrypt", "--jobs", j, *extra)
                name = f"--encrypt {' '.join(extra)}".strip()
                print(f"{name + ' --jobs ' + j:34s} {dt:7.2f} s = {dt / floor:5.2f}x the floor  "
                      f"(peak RSS {rss:.0f} MB; CPU {CPU[-1]:.2f} s = {CPU[-1] / floor_cpu:.2f}x the floor's)")
        if "pdf" in parts and args.pdf_n and shutil.which("soffice"):
            pdf_part(cards[:args.pdf_n], work / "gen", work, j, args.pdf_repeat)
        if "mail" in parts:
            dt, rss = run(fresh(work / "gen", work / "mail"), "--dry-run", "--from", "hr@example.com")
            small_cpu = CPU[-1]
            print(f"mail dry run ({len(cards)} messages):          {dt:7.2f} s = {len(cards) / dt:7.1f} msg/s "
                  f"(whole command, peak RSS {rss:.0f} MB; CPU {small_cpu:.2f} s = "
                  f"{1000 * small_cpu / len(cards):.1f} ms a message)")
            n_msg, floor_ms, ours_ms = mail_floor(work / "mail")
            print(f"mail messages alone ({n_msg}, this process): stdlib floor {floor_ms:.2f} ms, xl_kpi "
                  f"{ours_ms:.2f} ms of CPU a message = {ours_ms / floor_ms:.2f}x the floor "
                  f"({1000 / ours_ms:.0f} msg/s a core; load {os.getloadavg()[0]:.2f})")
            if args.mail_n:
                plan, facts = make_inputs(args.mail_n, work / "in-big")
                generate(plan, facts, work / "big", 2)
                big_dt, big_rss = run(work / "big", "--dry-run", "--from", "hr@example.com")
                print(f"mail dry run ({args.mail_n} messages):        {big_dt:7.2f} s = "
                      f"{args.mail_n / big_dt:7.1f} msg/s (whole command, peak RSS {big_rss:.0f} MB; CPU "
                      f"{CPU[-1]:.2f} s = {1000 * CPU[-1] / args.mail_n:.1f} ms a message)")
                print(f"mail dry run, {args.mail_n} vs {len(cards)}: peak RSS {big_rss / rss:.2f}x "
                      f"(flat memory: about 1x), CPU a message {CPU[-1] / args.mail_n / (small_cpu / len(cards)):.2f}x "
                      f"(load {os.getloadavg()[0]:.2f})")
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
