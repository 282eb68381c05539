"""`store_lock` keeps its lock files in a private folder of the user, never follows a link planted there, and a lock
held by another process for too long gives up with an error naming that process instead of waiting forever."""
import os
import subprocess
import sys
import threading

import pytest

from autotimm import LoggerConfig
from autotimm.loggers import _lock_file, lock_dir, store_lock


@pytest.fixture
def locks(workdir, monkeypatch):
    "A lock folder of this test's own (so no other run on this machine is disturbed)."
    monkeypatch.setenv("AUTOTIMM_LOCK_DIR", str(workdir / "locks"))
    return workdir / "locks"


def configs(): return [LoggerConfig("csv", {"save_dir": "logs"})]


def test_the_lock_folder_is_private_and_refused_when_it_is_a_link_or_someone_elses(workdir, locks):
    assert lock_dir() == locks and (locks.stat().st_mode & 0o777) == 0o700
    os.rmdir(locks)
    (workdir / "elsewhere").mkdir()
    os.symlink(workdir / "elsewhere", locks)
    with pytest.raises(PermissionError, match="is a link"):
        with store_lock(configs()): pass
    os.unlink(locks)
    locks.mkdir(mode=0o700)
    if os.getuid() == 0:  # only root can give a folder to another user
        os.chown(locks, 4242, 4242)
        with pytest.raises(PermissionError, match="belongs to user id 4242"):
            with store_lock(configs()): pass


def test_a_link_planted_as_the_lock_file_is_not_followed(workdir, locks):
    target = workdir / "precious.txt"
    target.write_text("keep me")
    path = _lock_file(str((workdir / "logs").resolve()))
    os.symlink(target, path)
    with pytest.raises(PermissionError, match="a link is never followed"):
        with store_lock(configs()): pass
    assert target.read_text() == "keep me"


HOLD = """
import time
from autotimm import LoggerConfig
from autotimm.loggers import store_lock
with store_lock([LoggerConfig("csv", {"save_dir": "logs"})]):
    print("held", flush=True)
    time.sleep(120)
"""


def test_a_lock_held_by_another_process_gives_up_naming_it(workdir, locks):
    holder = subprocess.Popen([sys.executable, "-c", HOLD], stdout=subprocess.PIPE, text=True, env=os.environ.copy())
    try:
        assert holder.stdout.readline().strip() == "held"
        got = []
        def wait():
            try:
                with store_lock(configs(), timeout=1): got.append("entered")
            except Exception as e: got.append(e)
        t = threading.Thread(target=wait, daemon=True)
        t.start()
        t.join(60)
        assert got, "store_lock still waits after 60 s"
        (err,) = got
        assert isinstance(err, TimeoutError), err
        assert f"held by pid {holder.pid}" in str(err) and "AUTOTIMM_LOCK_TIMEOUT" in str(err)
    finally:
        holder.kill()
        holder.wait()
