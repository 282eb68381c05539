"""W&B offline on a disk that fills mid-run: its service cannot write, every call still returns; reading the run back
finds what is missing, the report names it, and the replay completes the run once the disk takes writes again."""

from autotimm import LoggerConfig
from autotimm.delivery import delivery_of
from autotimm.loggers import replay
from helpers import disk_fills_mid_run, mounted, started
from readers import WandbRun


def test_a_full_disk_under_wandb_is_named_in_the_report_and_replay_completes_the_run(workdir, monkeypatch):
    monkeypatch.setenv("AUTOTIMM_SPOOL_DIR", str(workdir / "fallback"))
    with mounted(workdir / "small", "-t", "tmpfs", "-o", "size=3m", "tmpfs") as disk:
        m = started([LoggerConfig("wandb", {"project": "full", "offline": True, "save_dir": str(disk)}),
                     LoggerConfig("csv", {"save_dir": "logs"})])
        wb = m.loggers[0]
        run_id = wb.experiment.id
        filler, report = disk_fills_mid_run(m, disk)
        assert "every event delivered" not in report, report
        v = delivery_of(wb).verdict
        assert v.reason is None and v.verified < v.total == 20, v  # read back: W&B's files lack some points
        assert f"wandb: verified {v.verified} of 20; missing: train/loss (steps" in report, report
        assert "csv: verified" not in report  # the healthy backend is whole: it is not listed among the missing
        spools = delivery_of(wb).spool_paths
        assert spools and "autotimm replay" in report, report
        filler.unlink()  # the disk takes writes again
        for path in spools: assert replay(path)["pending"] == 0
        parts = sorted(disk.glob(f"wandb/offline-run-*-{run_id}"))
        run = WandbRun(parts[-1], wait=5, parts=parts)  # the part the full disk cut short never ends: no long wait on it
        steps = {s for s, _ in run.scalars()["train/loss"]}
        assert steps == set(range(20)), (v.missing, sorted(steps))
