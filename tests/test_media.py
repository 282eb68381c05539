"""Images, tables and artifacts sent once with `autotimm.media`, read back from each backend's own files and stores."""
import warnings

import numpy as np
import pandas as pd
from PIL import Image

from autotimm import LoggerConfig, LoggerManager, load_run
from autotimm.backends import mlflow_local_uri
from autotimm.media import log_artifact, log_image, log_table
from helpers import finish, local_configs, pixels, started

BACKENDS = ["tensorboard", "csv", "mlflow", "wandb", "comet"]


def read_all(root, manager):
    "The run read back from every backend (`BACKENDS`, in that order) with `load_run`, after the manager closed it."
    tb, csv, mlf, wb, comet = manager.loggers
    return {"tensorboard": load_run(tb.log_dir), "csv": load_run(csv.log_dir),
            "mlflow": load_run(mlflow_local_uri(root / "mlruns"), run=mlf.run_id),
            "wandb": load_run(next((root / "wandb" / "wandb").glob("offline-run-*"))), "comet": load_run(root / "comet")}


def picture(seed):
    rng = np.random.default_rng(seed)
    return rng.integers(0, 255, (12, 16, 3), dtype=np.uint8)


def send(manager, root):
    "Two steps of an image (numpy, then a tensor), two of a table, one artifact; a metric so every backend holds a run."
    import torch
    for lg in manager.loggers: lg.log_metrics({"val/loss": 1.0}, step=2)
    log_image(manager, "samples/grid", picture(0), step=2)
    log_image(manager, "samples/grid", torch.tensor(picture(1)).permute(2, 0, 1), step=5)
    log_table(manager, "val/per_class", pd.DataFrame({"class": ["cat", "dog"], "f1": [0.25, 0.75], "support": [3, 4]}), step=2)
    log_table(manager, "val/per_class", {"class": ["cat", "dog"], "f1": [0.5, 1.0], "support": [3, 4]}, step=5)
    (root / "notes.txt").write_text("what the model gets wrong")
    log_artifact(manager, root / "notes.txt")


def check(run, backend):
    assert [s for s, _ in run.images["samples/grid"]] == [2, 5], backend
    for (s, png), seed in zip(run.images["samples/grid"], (0, 1)):
        assert (pixels(png) == picture(seed)).all(), (backend, s)  # lossless: every backend keeps the PNG's pixels
    assert [s for s, _ in run.tables["val/per_class"]] == [2, 5], backend
    t = run.table("val/per_class")
    assert t.to_dict("list") == {"class": ["cat", "dog"], "f1": [0.5, 1.0], "support": [3, 4]}, backend
    assert run.table("val/per_class", step=2)["f1"].tolist() == [0.25, 0.75], backend
    assert run.artifacts["notes.txt"] == b"what the model gets wrong", backend


def test_each_media_kind_read_back_from_every_backend(workdir):
    manager = started(local_configs(workdir, "media", BACKENDS), run_name="media")
    send(manager, workdir)
    finish(manager)
    runs = read_all(workdir, manager)
    for backend in BACKENDS: check(runs[backend], backend)


def test_media_wait_in_the_spool_while_a_backend_is_down_and_replay(workdir):
    "A real MLflow server stopped mid-run: the images, tables and artifact are spooled, then replayed once it is back."
    from helpers import free_port, start_mlflow_server, stop_mlflow_server
    from autotimm.delivery import BackendWarning, delivery_of
    (workdir / "server").mkdir()
    port = free_port()
    proc = start_mlflow_server(workdir / "server", port)
    try:
        uri = f"http://127.0.0.1:{port}"
        manager = LoggerManager([LoggerConfig("csv", {"save_dir": str(workdir / "csv")}),
                                 LoggerConfig("mlflow", {"experiment_name": "down", "tracking_uri": uri})],
                                run_name="down", retry_interval=600)
        csv, mlf = manager.loggers
        d = delivery_of(mlf)
        d.background = False  # in order on this thread, so the test sees each event's fate at once
        assert d.start()
        stop_mlflow_server(proc)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", BackendWarning)
            send(manager, workdir)
        kinds = [r["kind"] for r in map(__import__("json").loads, d.spool.path.read_text().splitlines())]
        assert {"log_image", "log_table", "log_artifact"} <= set(kinds) and d.pending >= 5
        proc = start_mlflow_server(workdir / "server", port)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", BackendWarning)
            assert d.replay() and d.pending == 0
        mlf.finalize("success")
        check(load_run(uri, run=mlf.run_id), "mlflow")
    finally:
        stop_mlflow_server(proc)


def test_mlflow_images_are_laid_out_as_mlflows_own_log_image_lays_them_out(workdir):
    """The UI's step slider reads what `MlflowClient.log_image(key=, step=)` writes; autotimm writes the same files
    (without MLflow's re-encode): the same names, the same tag, a preview of the same size, the PNG's own pixels."""
    import re
    from mlflow.tracking import MlflowClient
    from autotimm.delivery import delivery_of
    manager = LoggerManager([LoggerConfig("mlflow", {"experiment_name": "layout", "save_dir": str(workdir / "mlruns")})])
    mlf = manager.loggers[0]
    delivery_of(mlf).start()
    png = np.random.default_rng(0).integers(0, 255, (300, 420, 3), dtype=np.uint8)  # wider than the preview's 256 px
    for step in (3, 7): log_image(manager, "val/samples", png, step=step)
    client = MlflowClient(mlflow_local_uri(workdir / "mlruns"))
    own = client.create_run(mlf.experiment_id).info.run_id  # MLflow's own `log_image`, for comparison
    for step in (3, 7): client.log_image(own, Image.fromarray(png), key="val/samples", step=step)
    name = re.compile(r"images/val~samples\+step\+(\d+)\+timestamp\+\d{13}\+[0-9a-f-]{36}(\+compressed\.webp|\.png)")
    def layout(run_id):
        files = sorted(f.path for f in client.list_artifacts(run_id, "images"))
        assert all(name.fullmatch(f) for f in files), files
        previews = {int(name.fullmatch(f)[1]): Image.open(client.download_artifacts(run_id, f, str(workdir))).size
                    for f in files if f.endswith(".webp")}
        images = {int(name.fullmatch(f)[1]): pixels(open(client.download_artifacts(run_id, f, str(workdir)), "rb").read())
                  for f in files if f.endswith(".png")}
        return previews, images, client.get_run(run_id).data.tags.get("mlflow.loggedImages")
    ours, theirs = layout(mlf.run_id), layout(own)
    assert ours[0] == theirs[0] == {3: (256, 182), 7: (256, 182)}  # a preview per step, the size MLflow makes
    assert all((ours[1][s] == png).all() and (theirs[1][s] == png).all() for s in (3, 7))  # the image itself, lossless
    assert ours[2] == theirs[2] == "True"
    assert not [f for f in (workdir / "mlruns").rglob("*") if ".uploading." in f.name]  # written in place, nothing half-done left
    finish(manager)
