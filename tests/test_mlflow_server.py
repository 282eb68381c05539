"""MLflow through a real `mlflow server` on 127.0.0.1, started and stopped by the fixture."""
import pytest
from mlflow.tracking import MlflowClient

from autotimm import AutoTrainer, ImageClassifier, ImageDataModule, LoggerConfig, LoggingConfig, MetricConfig, load_run
from readers import csv_scalars, mlflow_artifacts, mlflow_scalars


def test_training_logs_to_a_real_mlflow_server(mlflow_server, workdir):
    model = ImageClassifier(backbone="test_resnet", num_classes=10, pretrained=False,
                            metrics=[MetricConfig(name="accuracy", metric_class="Accuracy", params={"task": "multiclass"})],
                            logging_config=LoggingConfig(log_gradient_norm=True, log_confusion_matrix=True))
    trainer = AutoTrainer(max_epochs=1, enable_progress_bar=False, checkpoint_monitor="val/accuracy", logger=[
        LoggerConfig(backend="mlflow", params={"experiment_name": "cifar10-classification", "tracking_uri": mlflow_server,
                                               "run_name": "run-1", "tags": {"env": "dev"}, "log_model": True}),
        LoggerConfig(backend="csv", params={"save_dir": "logs"}),
    ])
    trainer.fit(model, datamodule=ImageDataModule(dataset_name="digits", image_size=32, batch_size=64))
    mlf, csv = trainer.loggers
    client = MlflowClient(mlflow_server)
    run = client.get_run(mlf.run_id)
    assert run.info.run_name == "run-1" and run.data.tags["env"] == "dev" and run.info.status == "FINISHED"
    assert run.data.params["backbone"] == "test_resnet"
    got, ref = mlflow_scalars(client, mlf.run_id), csv_scalars(csv.log_dir)
    for k in ("train/loss", "train/lr", "train/grad_norm", "train/accuracy", "val/loss", "val/accuracy"):
        assert [round(v, 5) for _, v in got[k]] == [round(v, 5) for _, v in ref[k]], k
    arts = mlflow_artifacts(client, mlf.run_id)
    assert "val_confusion_matrix/epoch_000.png" in arts and "run/manifest.json" in arts
    assert any(a.endswith(".ckpt") for a in arts), arts  # log_model: the checkpoint is an artifact on the server
    back = load_run(mlflow_server, run="run-1")  # read back through the server
    assert back.name == "run-1" and back.scalars("val/accuracy") == [(s, pytest.approx(v)) for s, v in ref["val/accuracy"]]
    assert sorted(back.confusion_matrices) == [0] and back.hparams["backbone"] == "test_resnet"
    assert not (workdir / "mlruns").exists()  # nothing local: everything went to the server
