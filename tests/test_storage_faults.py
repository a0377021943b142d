"""Storage faults say what is wrong (issue 15, item 8): malformed SQLite URLs, files that are not databases,
read-only files and folders, a report path that cannot be written. Nothing already there is changed.

Permissions: as root every file is writable, so the read-only cases also run with ``storage._writable``
answering as it would for another user; the real ``chmod`` versions run when the suite is not root.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from fakes import FakeRunner

import lrkit.lrbench.study.storage as st
from lrkit.cli.main import main
from lrkit.errors import LRKitError
from lrkit.lrbench.search.recommend import recommend

ROOT = os.geteuid() == 0


@pytest.mark.parametrize(("url", "right"), [("sqlite://x.db", "sqlite:///x.db"), ("sqlite:x.db", "sqlite:///x.db"),
                                            ("sqlite+pysqlite://runs/x.db", "sqlite:///runs/x.db")])
def test_a_malformed_sqlite_url_is_refused_with_the_right_form(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                               capsys: pytest.CaptureFixture, url: str,
                                                               right: str) -> None:
    monkeypatch.chdir(tmp_path)
    with pytest.raises(LRKitError, match=f"storage '{re.escape(url)}' is not a .*{re.escape(right)}"):
        st.open_storage(url)
    assert main(["results", "--storage", url]) == 2
    assert right in capsys.readouterr().err
    assert list(tmp_path.iterdir()) == []  # no 'sqlite:x.db' file, no '.db'


def test_in_memory_and_proper_urls_still_open() -> None:
    st.open_storage("sqlite://")
    assert st.storage_url("sqlite:///x.db") == "sqlite:///x.db" and st.storage_url("x.db") == "sqlite:///x.db"


@pytest.mark.parametrize("content", [b"x", b"hello, not a database\n" * 10])
def test_a_file_that_is_not_a_database_is_refused_and_left_as_it_is(tmp_path: Path, content: bytes) -> None:
    path = tmp_path / "x.db"
    path.write_bytes(content)
    for kwargs in ({}, {"must_exist": True}, {"must_exist": True, "read_only": True}):
        with pytest.raises(LRKitError, match=r"is not an SQLite database .*it was left as it is"):
            st.open_storage(str(path), **kwargs)
    with pytest.raises(LRKitError, match="is not an SQLite database"):
        recommend("digits-mlp", budget=100, n_trials=1, storage=str(path), lr_range=(0.01, 0.5), runner=FakeRunner(),
                  optimizer="sgd", baselines=())
    assert path.read_bytes() == content


def test_an_empty_file_is_a_new_database(tmp_path: Path) -> None:
    path = tmp_path / "x.db"
    path.touch()  # SQLite itself treats a 0-byte file as an empty database
    st.open_storage(str(path))
    assert path.read_bytes().startswith(b"SQLite format 3\x00")


def _study(tmp_path: Path) -> Path:
    path = tmp_path / "s.db"
    recommend("digits-mlp", budget=100, n_trials=1, storage=str(path), lr_range=(0.01, 0.5), runner=FakeRunner(),
              optimizer="sgd", baselines=(), lookup=False)
    return path


def test_a_read_only_database_file_is_refused_by_writing_commands_only(tmp_path: Path,
                                                                       monkeypatch: pytest.MonkeyPatch,
                                                                       capsys: pytest.CaptureFixture) -> None:
    path = _study(tmp_path)
    monkeypatch.setattr(st, "_writable", lambda p: Path(p) != path)
    with pytest.raises(LRKitError, match=r"the database file '.*s\.db' .* is read-only: this command writes"):
        st.open_storage(str(path))
    st.open_storage(str(path), must_exist=True, read_only=True)  # results and report read it
    assert main(["worker", "--storage", str(path), "--no-progress"]) == 2
    assert "is read-only" in capsys.readouterr().err
    assert main(["results", "--storage", str(path)]) == 0


def test_a_read_only_folder_is_named_not_called_a_bad_database(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                                capsys: pytest.CaptureFixture) -> None:
    path = _study(tmp_path)
    for side in tmp_path.glob("s.db-*"):
        side.unlink()
    monkeypatch.setattr(st, "_writable", lambda p: Path(p) != tmp_path)
    for command in (["results"], ["report", "-o", str(tmp_path / "r.html")], ["worker", "--no-progress"]):
        assert main([*command, "--storage", str(path)]) == 2
        err = capsys.readouterr().err
        assert f"the folder '{tmp_path}'" in err and "is not writable: SQLite creates its journal files" in err, err
        assert "not an SQLite database" not in err


@pytest.mark.skipif(ROOT, reason="root writes read-only files and folders anyway")
def test_real_permissions(tmp_path: Path) -> None:  # pragma: no cover (runs only when not root)
    path = _study(tmp_path)
    path.chmod(0o444)
    out = subprocess.run([sys.executable, "-m", "lrkit.cli.main", "worker", "--storage", str(path), "--no-progress"],
                         capture_output=True, text=True, timeout=60)
    assert out.returncode == 2 and "is read-only" in out.stderr
    path.chmod(0o644)
    for side in tmp_path.glob("s.db-*"):
        side.unlink()
    tmp_path.chmod(0o555)
    try:
        out = subprocess.run([sys.executable, "-m", "lrkit.cli.main", "results", "--storage", str(path)],
                             capture_output=True, text=True, timeout=60)
        assert out.returncode == 2 and "is not writable" in out.stderr, out.stderr
    finally:
        tmp_path.chmod(0o755)


def test_a_report_that_cannot_be_written_is_an_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                     capsys: pytest.CaptureFixture) -> None:
    path = _study(tmp_path)

    def denied(self, *args, **kwargs):  # noqa: ANN001, ANN002, ANN003, ANN202
        raise PermissionError(13, "Permission denied", str(self))

    monkeypatch.setattr(Path, "write_text", denied)
    assert main(["report", "--storage", str(path), "-o", str(tmp_path / "r.html")]) == 2
    err = capsys.readouterr().err
    assert f"cannot write the report to -o '{tmp_path / 'r.html'}': Permission denied" in err
