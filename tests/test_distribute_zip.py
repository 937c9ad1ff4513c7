"""distribute --zip reruns stream: the previous zips are hashed and compared in blocks, never read whole, an
unchanged zip is kept as it was (same file, same mtime) and a changed one is replaced."""

from __future__ import annotations

import hashlib
import os
import tracemalloc
from pathlib import Path

import pytest

from xl_kpi.delivery.distribute import FOLDER, INDEX, INDEX_COLUMNS, Options, distribute, zip_bytes
from xl_kpi.delivery.distribute.existing import ZipMember, _previous
from xl_kpi.delivery.distribute.model import ShippedFile
from xl_kpi.delivery.distribute.write import _stage_zip
from xl_kpi.inputs.problems import Problems
from xl_kpi.outputs.atomic import AtomicBatch
from xl_kpi.outputs.csvsafe import csv_bytes

MEMBER = 512 * 1024
MEMBERS = 40  # 20 MiB of incompressible members: the zip is as big as its contents


def _zips(out: Path) -> dict[str, tuple[int, int, bytes]]:
    """Every zip of the distribution → (inode, mtime_ns, bytes)."""
    return {p.relative_to(out / FOLDER).as_posix(): (p.stat().st_ino, p.stat().st_mtime_ns, p.read_bytes())
            for p in sorted((out / FOLDER).rglob("*.zip"))}


def _rerun_keeps_unchanged_and_replaces_changed(out: Path, opts: Options) -> None:
    distribute(out, opts)
    before = _zips(out)
    assert len(before) > 3
    changed, *rest = sorted(before)
    (out / FOLDER / changed).write_bytes(before[changed][2] + b"\0")  # not what xl-kpi would write any more
    report = distribute(out, opts)
    after = _zips(out)
    assert set(after) == set(before)
    for rel in rest:  # unchanged: the very same file, untouched
        assert after[rel] == before[rel], rel
    assert after[changed][2] == before[changed][2]  # changed: replaced by a fresh copy of what it should be
    assert after[changed][0] != before[changed][0]
    assert report.zips_kept == len(rest)


@pytest.mark.slow
def test_a_rerun_keeps_an_unchanged_zip_and_replaces_a_changed_one(generated_copy: Path) -> None:
    _rerun_keeps_unchanged_and_replaces_changed(generated_copy, Options(by=("employee", "manager"), zip=True))


@pytest.mark.slow
def test_an_encrypted_rerun_takes_the_files_from_the_previous_zips_and_keeps_them(generated_copy: Path) -> None:
    opts = Options(by=("manager",), zip=True, encrypt=True)
    _rerun_keeps_unchanged_and_replaces_changed(generated_copy, opts)
    before = _zips(generated_copy)
    distribute(generated_copy, Options(by=("manager",), zip=True, encrypt=True, new_passwords=True))
    after = _zips(generated_copy)
    assert all(after[k][2] != before[k][2] and after[k][0] != before[k][0] for k in before)  # new passwords


def test_a_zip_is_not_kept_in_place_of_a_symlink(tmp_path: Path) -> None:
    data = os.urandom(1000)
    real = tmp_path / "elsewhere.zip"
    real.write_bytes(zip_bytes([("a.xlsx", data)]))
    old = tmp_path / "dist" / "b.zip"
    old.parent.mkdir()
    old.symlink_to(real)
    with AtomicBatch(fsync=False) as batch:
        kept = _stage_zip(batch, tmp_path / "new" / "b.zip", [ShippedFile("a.xlsx", "card", "1", "s", data=data)],
                          old)
    assert not kept and (tmp_path / "new" / "b.zip").read_bytes() == real.read_bytes()
    assert not (tmp_path / "new" / "b.zip").is_symlink()


def _big_previous_zip(dist: Path) -> tuple[Path, list[tuple[str, str]]]:
    """A previous distribution with one ~20 MiB zip bundle, as xl-kpi writes it; → (zip, [(member, sha256)])."""
    members, rows = [], []
    for i in range(MEMBERS):
        data = os.urandom(MEMBER)
        name = f"{1000 + i} Сотрудник.xlsx"
        sha = hashlib.sha256(data).hexdigest()
        members.append((name, data))
        rows.append(["department/Big.zip", "Big", "", str(1000 + i), name, sha, "card", "", "src" + sha[:20]])
    zpath = dist / "department" / "Big.zip"
    zpath.parent.mkdir(parents=True)
    zpath.write_bytes(zip_bytes(members))
    (dist / INDEX).write_bytes(csv_bytes(INDEX_COLUMNS, rows))
    return zpath, [(r[4], r[5]) for r in rows]


def _peak(fn):  # type: ignore[no-untyped-def]
    tracemalloc.start()
    try:
        result = fn()
        return result, tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def test_the_rerun_of_a_20_mib_zip_never_holds_it_in_memory(tmp_path: Path) -> None:
    dist = tmp_path / "out" / FOLDER
    zpath, members = _big_previous_zip(dist)
    size = zpath.stat().st_size
    assert size > MEMBERS * MEMBER
    before = zpath.stat()

    # reading the previous distribution: every member hashed against index.csv, none held
    prev, peak = _peak(lambda: _previous(dist, read_passwords=False, problems=Problems()))
    assert len(prev.files) == MEMBERS and all(isinstance(w, ZipMember) for _, _, w in prev.files.values())
    assert peak < size / 4, f"{peak} bytes held to read a {size}-byte zip"

    # writing it again from its own members (what an encrypted rerun does): streamed, compared, kept
    files = [ShippedFile(name, "card", "", "", path=prev.files[("department/Big", name)][2]) for name, _ in members]

    def stage() -> bool:
        with AtomicBatch(fsync=False) as batch:
            return _stage_zip(batch, tmp_path / "staging" / "Big.zip", files, zpath)

    kept, peak = _peak(stage)
    assert kept and peak < size / 4, f"{peak} bytes held to write a {size}-byte zip"
    now = (tmp_path / "staging" / "Big.zip").stat()
    assert (now.st_ino, now.st_mtime_ns) == (before.st_ino, before.st_mtime_ns)


def test_a_previous_member_that_no_longer_matches_index_csv_is_not_taken_over(tmp_path: Path) -> None:
    dist = tmp_path / "out" / FOLDER
    zpath, members = _big_previous_zip(dist)
    data = {n: os.urandom(MEMBER) for n, _ in members}
    data[members[0][0]] = data[members[0][0]][:-1] + b"x"  # every member new bytes: none matches index.csv
    zpath.write_bytes(zip_bytes(list(data.items())))
    prev = _previous(dist, read_passwords=False, problems=Problems())
    assert prev.files == {}


@pytest.mark.slow
def test_a_pdf_rerun_takes_the_pdfs_from_the_previous_zips_and_keeps_them(generated_copy: Path, soffice: str) -> None:
    opts = Options(by=("department",), zip=True, pdf=True)
    first = distribute(generated_copy, opts)
    before = _zips(generated_copy)
    again = distribute(generated_copy, opts)
    assert first.pdf_converted > 0 and again.pdf_converted == 0 and again.pdf_reused == first.pdf_converted
    assert _zips(generated_copy) == before and again.zips_kept == len(before)


def test_the_members_of_a_previous_zip_are_read_with_one_opening_of_it(tmp_path: Path,
                                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    """Opening the zip per member would read its central directory once per member: quadratic in team size."""
    import zipfile

    from xl_kpi.delivery.distribute import existing

    members = [(f"{i} card.xlsx", os.urandom(100)) for i in range(300)]
    z = tmp_path / "b.zip"
    z.write_bytes(zip_bytes(members))
    opened = []

    class Counting(zipfile.ZipFile):
        def __init__(self, *a, **k) -> None:  # type: ignore[no-untyped-def]
            opened.append(a[0])
            super().__init__(*a, **k)

    monkeypatch.setattr(existing.zipfile, "ZipFile", Counting)
    try:
        for name, data in members:
            m = ZipMember(z, name, hashlib.sha256(data).hexdigest())
            assert m.head(4) == data[:4] and m.read_bytes() == data
    finally:
        existing.close_zips()
    assert len(opened) == 1
