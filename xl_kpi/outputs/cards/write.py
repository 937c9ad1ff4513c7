"""Writing cards: one card's bytes, every card of a results table to OUT/cards/<department>/ (atomically, a
chunk at a time, in worker processes), the manifest records, and the resume journal."""

from __future__ import annotations

import contextlib
import gc
import hashlib
import os
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from xl_kpi.engine.errors import KpiError
from xl_kpi.outputs.atomic import AtomicBatch, flush_files
from xl_kpi.outputs.cards.data import (
    _Card,
    _cards,
    _CardSource,
    _clean_text,
    _Context,
    _texts,
)
from xl_kpi.outputs.cards.stamp import (
    _render,
    _Stamp,
)
from xl_kpi.outputs.cards.template import (
    CardTemplate,
)
from xl_kpi.outputs.names import child, safe_component, safe_file_name

# ----------------------------------------------------------------------------------------------
# public API


def _template(template: CardTemplate | str | os.PathLike[str] | None, lang: str) -> CardTemplate:
    if isinstance(template, CardTemplate):
        return template
    return CardTemplate.load(template, lang)


def render_card(template: CardTemplate, results: Any, employee_id: Any, *, history: Any = None) -> bytes:
    """The xlsx bytes of one employee's card (deterministic: same input → same bytes)."""
    for _, data in iter_cards(template, results, [employee_id], history=history):
        return data
    raise KpiError(f"employee {employee_id!r} is not in the results")  # pragma: no cover


def iter_cards(
    template: CardTemplate, results: Any, employee_ids: Iterable[Any] | None = None, *, history: Any = None
) -> Iterator[tuple[Any, bytes]]:
    """(employee_id, xlsx bytes) for each employee (all, or ``employee_ids`` in that order).

    The results are grouped once; one card is in memory at a time. ``history``: the earlier runs
    (:class:`xl_kpi.outputs.history.History`) for a history sheet on each card; None or empty: no sheet.
    """
    stamp = _Stamp(template, _Context(results, template.lang, history))
    for card in _cards(results, employee_ids):
        yield card.emp["employee_id"], _render(template, stamp, card)


def card_path(out_dir: str | os.PathLike[str], department: Any, employee_id: Any, name: Any) -> Path:
    """OUT/cards/<department>/<employee_id> <name>.xlsx, every component made safe, always inside OUT."""
    dep = department if department not in (None, "") and not (isinstance(department, float) and
                                                               department != department) else "_unassigned"
    stem = f"{_clean_text(employee_id)} {'' if name is None else _clean_text(name)}".strip()
    return child(Path(out_dir) / "cards", dep, stem, ext=".xlsx")


class _CardPaths:
    """:func:`card_path` as text, for one output folder, ~10× faster (the batch names every card in the parent):
    the folder is resolved once, components are made safe by the same functions, the result is checked the same way
    (no separator, no dot-only component: always inside OUT/cards)."""

    def __init__(self, out_dir: str | os.PathLike[str]) -> None:
        self.root = os.path.join(os.fspath(out_dir), "cards")
        self.prefix = self.root.rstrip(os.sep) + os.sep

    def __call__(self, department: Any, employee_id: Any, name: Any) -> str:
        dep = department if department not in (None, "") and not (isinstance(department, float) and
                                                                   department != department) else "_unassigned"
        stem = f"{_clean_text(employee_id)} {'' if name is None else _clean_text(name)}".strip()
        folder, file = safe_component(dep), safe_file_name(stem, ".xlsx")
        for part in (folder, file):
            if part in ("", ".", "..") or os.sep in part or (os.altsep and os.altsep in part):
                return str(card_path(self.root[: -len("cards")], department, employee_id, name))  # pragma: no cover
        return f"{self.prefix}{folder}{os.sep}{file}"


@dataclass(frozen=True, slots=True)
class CardRecord:
    """One written card: what the manifest lists (slots: 100,000 of them are held to the end of a run)."""

    employee_id: Any
    path: Path
    sha256: str
    total_bonus: float
    status: Any
    reason: Any


@contextlib.contextmanager
def _gc_frozen() -> Iterator[None]:
    """The parent's objects frozen while the pool's workers are forked and run: a worker's garbage collector then
    never visits them, so it does not write to (and copy) every inherited page holding one (100,000 employees:
    the workers' memory beyond what they share with the parent ~490 → ~370 MB, bench_memory.py --generate)."""
    gc.freeze()
    try:
        yield
    finally:
        gc.unfreeze()


# worker state (one template compiled per process)
_W: dict[str, Any] = {}


def _worker_init(source: bytes, lang: str, path: Path | None, ctx: _Context,
                 keep: bool | Mapping[str, str], cards: _CardSource | None = None) -> None:
    tpl = CardTemplate(source, lang, path)
    _W.update(template=tpl, stamp=_Stamp(tpl, ctx), keep=keep, cards=cards)


class _Journal:
    """Append-only "sha256 path" lines, fsync'ed per chunk: the cards a run has finished (for resume)."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)

    def add(self, rows: Sequence[tuple[Any, str, str, Any, Any, Any]]) -> None:
        fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | getattr(os, "O_NOFOLLOW", 0), 0o600)
        try:
            os.write(fd, "".join(f"{digest} {p}\n" for _, p, digest, *_ in rows).encode("utf-8"))
            os.fsync(fd)
        finally:
            os.close(fd)


def read_journal(path: str | os.PathLike[str]) -> dict[str, str]:
    """path → sha256 of the cards a :func:`write_cards` journal records (empty when missing)."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError):
        return {}
    pairs = (line.split(" ", 1) for line in text.splitlines() if " " in line)
    return {p: d for d, p in pairs if len(d) == 64}


def _write_chunk(
    template: CardTemplate, stamp: _Stamp, chunk: Sequence[tuple[_Card, str]],
    keep: bool | Mapping[str, str] = False,
) -> list[tuple[Any, str, str, Any, Any, Any]]:
    """Render and write one chunk of cards, each atomically (a temporary file renamed into place), none flushed to
    disk: :func:`write_cards` waits for the disk once, at the end (asking the kernel to start each card's write-out
    as it was written cost more system time than that one wait saves).

    ``keep``: a card file already at its path is kept as it is (a resumed run whose earlier,
    identical run wrote it atomically); a mapping path → sha256 (a resume journal) keeps it only when
    its bytes have the recorded hash, anything else is rendered again. Returns (employee_id, path,
    sha256, bonus, status, reason).
    """
    out = []
    with AtomicBatch(fsync=False) as batch:
        for card, path in chunk:
            data = None
            if keep and os.path.isfile(path) and not os.path.islink(path):
                with open(path, "rb") as f:
                    data = f.read()
                if isinstance(keep, Mapping) and keep.get(path) != hashlib.sha256(data).hexdigest():
                    data = None  # not proven to be this run's card for these inputs: rebuilt
            if data is None:
                data = _render(template, stamp, card)
                batch.write(path, data)
            e = card.emp
            out.append((e["employee_id"], path, hashlib.sha256(data).hexdigest(), e["bonus"], e["status"],
                        e["reason"]))
    return out


def _worker_chunk(chunk: tuple[int, list[str]]) -> list[tuple[Any, str, str, Any, Any, Any]]:
    """Render and write the cards of the employees at positions ``start`` … of the results, to ``paths``: the
    worker cuts their data from the card source it inherited (only positions and names are sent to it)."""
    start, paths = chunk
    cards = _W["cards"].cards(range(start, start + len(paths)))
    return _write_chunk(_W["template"], _W["stamp"], list(zip(cards, paths, strict=True)), _W["keep"])


def _paths(src: _CardSource, out_dir: Path) -> Iterator[str]:
    """Each employee's card path, in the order of the results; file names that collide get " (2)", " (3)"..."""
    seen: set[str] = set()
    path_of = _CardPaths(out_dir)
    deps = _texts(src.ecols["department"].tolist())
    names = _texts(src.ecols["name"].tolist())
    for dep, eid, name in zip(deps, src.ids, names, strict=True):
        p = path_of(dep, eid, name)
        k, n = p.casefold(), 2
        if k in seen:  # same safe name (or the same but for case)
            q = Path(p)
            while k in seen:
                p = str(q.with_name(f"{q.stem[:90]} ({n}){q.suffix}"))
                k, n = p.casefold(), n + 1
        seen.add(k)
        yield p


def _batched(items: Iterable[Any], size: int) -> Iterator[list[Any]]:
    buf: list[Any] = []
    for item in items:
        buf.append(item)
        if len(buf) >= size:
            yield buf
            buf = []
    if buf:
        yield buf


def _chunks(results: Any, out_dir: Path, size: int) -> Iterator[list[tuple[_Card, str]]]:
    """(card, path) pairs, ``size`` at a time; file names that collide get " (2)", " (3)"..."""
    src = _CardSource(results)
    yield from _batched(zip(src.cards(range(len(src))), _paths(src, Path(out_dir)), strict=True), size)


def write_cards(
    results: Any,
    out_dir: str | os.PathLike[str],
    template: CardTemplate | str | os.PathLike[str] | None = None,
    lang: str = "en",
    jobs: int = 1,
    on_progress: Callable[[int], None] | None = None,
    *,
    fsync: bool = True,
    chunk_size: int = 250,
    keep_existing: bool | Mapping[str, str] = False,
    journal: str | os.PathLike[str] | None = None,
    history: Any = None,
) -> list[CardRecord]:
    """Write every employee's card under OUT/cards/<department>/ and return one record per card.

    ``template``: a :class:`CardTemplate` (its language wins), a path, or None (the bundled
    template for ``lang``); ``lang`` is also the language of the generated text.
    ``jobs`` > 1 uses that many worker processes, each compiling the template once and taking
    chunks of ``chunk_size`` employees; only a few chunks are in flight at a time, so memory
    stays flat however many employees there are. Files are written atomically (a temporary file renamed into
    place: a killed run leaves each card complete or absent) and the disk is waited for once, before returning
    (``fsync=False`` skips it: the caller flushes, e.g. while it writes the manifest). ``on_progress(n_done)``
    is called after each chunk. Records come in the order of ``results.employees``; names that
    collide after sanitising get a " (2)" suffix. ``keep_existing`` keeps card files already in
    place (resuming an interrupted run of the same inputs into the same folder); a mapping path →
    sha256 keeps only the files with those hashes. ``journal``: a file that gets "sha256 path" lines
    for every finished chunk, flushed to disk, so that a resume can prove which cards it wrote.
    ``history``: earlier runs for each card's history sheet (see :func:`iter_cards`).
    """
    log = _Journal(journal) if journal is not None else None
    tpl = _template(template, lang)
    out = Path(out_dir)
    ctx = _Context(results, tpl.lang, history)
    done: dict[int, list[tuple[Any, str, str, Any, Any, Any]]] = {}
    n_done = 0
    if jobs <= 1 or len(results.employees) <= chunk_size:
        stamp = _Stamp(tpl, ctx)
        for i, ch in enumerate(_chunks(results, out, max(1, chunk_size))):
            done[i] = _write_chunk(tpl, stamp, ch, keep_existing)
            if log:
                log.add(done[i])
            n_done += len(ch)
            if on_progress:
                on_progress(n_done)
    else:
        import multiprocessing as mp

        # The card data is cut by the workers from a source they inherit (fork) or get once (spawn): the parent
        # only names the files and sends (first position, paths) per chunk.
        src = _CardSource(results)
        starts = range(0, len(src), max(1, chunk_size))
        chunks = zip(starts, _batched(_paths(src, out), max(1, chunk_size)), strict=True)
        method = "fork" if "fork" in mp.get_all_start_methods() else "spawn"
        with _gc_frozen(), ProcessPoolExecutor(
            max_workers=jobs, mp_context=mp.get_context(method), initializer=_worker_init,
            initargs=(tpl.source, tpl.lang, tpl.path, ctx, keep_existing, src),
        ) as pool:
            pending: dict[Any, int] = {}
            numbered = enumerate(chunks)
            exhausted = False
            while pending or not exhausted:
                while not exhausted and len(pending) < 2 * jobs:
                    nxt = next(numbered, None)
                    if nxt is None:
                        exhausted = True
                    else:
                        pending[pool.submit(_worker_chunk, nxt[1])] = nxt[0]
                if not pending:
                    break
                finished, _ = wait(pending, return_when=FIRST_COMPLETED)
                for fut in finished:
                    i = pending.pop(fut)
                    done[i] = fut.result()
                    if log:
                        log.add(done[i])
                    n_done += len(done[i])
                    if on_progress:
                        on_progress(n_done)
    if fsync:  # the one wait for the disk
        flush_files(p for i in done for _, p, *_ in done[i])
    records: list[CardRecord] = []
    for i in sorted(done):  # each chunk's rows dropped as they become records: not both held at once
        records.extend(CardRecord(eid, Path(p), digest, bonus, status, reason)
                       for eid, p, digest, bonus, status, reason in done.pop(i))
    return records
