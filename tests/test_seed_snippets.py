"""Every snippet of the seed (shared/spec/seed-logging.md), as written; training ones with local data and a tiny random-init backbone."""
import pytest
from pytorch_lightning.loggers import CSVLogger, MLFlowLogger, TensorBoardLogger, WandbLogger

from autotimm.delivery import lightning_class
from readers import csv_scalars, tensorboard_run


def test_basic_configuration():
    from autotimm import LoggerConfig

    tensorboard = LoggerConfig(
        backend="tensorboard",
        params={"save_dir": "logs", "name": "experiment_1"},
    )
    assert tensorboard.backend == "tensorboard"


def test_single_logger_tensorboard(workdir):
    from autotimm import AutoTrainer, LoggerConfig

    trainer = AutoTrainer(
        max_epochs=10,
        logger=[LoggerConfig(
            backend="tensorboard",
            params={"save_dir": "logs", "name": "my_run"},
        )],
    )
    assert isinstance(trainer.logger, TensorBoardLogger) and trainer.max_epochs == 10
    assert trainer.logger.log_dir == "logs/my_run/version_0"


def test_single_logger_wandb():
    from autotimm import AutoTrainer, LoggerConfig

    trainer = AutoTrainer(
        max_epochs=10,
        logger=[LoggerConfig(
            backend="wandb",
            params={
                "project": "my-project",
                "name": "experiment-1",
                "tags": ["resnet", "cifar10"],
            },
        )],
    )
    assert isinstance(trainer.logger, WandbLogger) and trainer.logger.name == "my-project"


def test_single_logger_mlflow():
    from autotimm import AutoTrainer, LoggerConfig

    trainer = AutoTrainer(
        max_epochs=10,
        logger=[LoggerConfig(
            backend="mlflow",
            params={
                "experiment_name": "cifar10-classification",
                "tracking_uri": "http://localhost:5000",  # Optional
            },
        )],
    )
    assert isinstance(trainer.logger, MLFlowLogger)  # contacting the server happens at the first log


def test_single_logger_csv():
    from autotimm import AutoTrainer, LoggerConfig

    trainer = AutoTrainer(
        max_epochs=10,
        logger=[LoggerConfig(
            backend="csv",
            params={"save_dir": "logs/csv", "name": "metrics"},
        )],
    )
    assert isinstance(trainer.logger, CSVLogger) and trainer.logger.log_dir == "logs/csv/metrics/version_0"


def test_multiple_loggers():
    from autotimm import AutoTrainer, LoggerConfig

    trainer = AutoTrainer(
        max_epochs=10,
        logger=[
            LoggerConfig(backend="tensorboard", params={"save_dir": "logs/tb"}),
            LoggerConfig(backend="csv", params={"save_dir": "logs/csv"}),
            LoggerConfig(backend="wandb", params={"project": "my-project"}),
        ],
    )
    assert [lightning_class(l) for l in trainer.loggers] == [TensorBoardLogger, CSVLogger, WandbLogger]


def test_logger_manager(capsys):
    from autotimm import AutoTrainer, LoggerConfig, LoggerManager

    manager = LoggerManager(configs=[
        LoggerConfig(backend="tensorboard", params={"save_dir": "logs/tb"}),
        LoggerConfig(backend="mlflow", params={"experiment_name": "exp1"}),
    ])

    trainer = AutoTrainer(max_epochs=10, logger=manager)

    # Access specific loggers
    tb_logger = manager.get_logger_by_backend("tensorboard")
    mlflow_logger = manager.get_logger_by_backend("mlflow")

    # Iterate over loggers
    for logger in manager:
        print(logger)

    assert isinstance(tb_logger, TensorBoardLogger) and isinstance(mlflow_logger, MLFlowLogger)
    assert trainer.loggers == manager.loggers and len(manager) == 2
    assert "TensorBoardLogger" in capsys.readouterr().out


@pytest.fixture
def metrics():
    from autotimm import MetricConfig
    return [MetricConfig(name="accuracy", backend="torchmetrics", metric_class="Accuracy",
                         params={"task": "multiclass"}, stages=["train", "val", "test"], prog_bar=True)]


def test_enhanced_logging(metrics):
    from autotimm import LoggingConfig, ImageClassifier

    model = ImageClassifier(
        backbone="resnet50",
        num_classes=10,
        metrics=metrics,
        logging_config=LoggingConfig(
            log_learning_rate=True,      # Log LR each step
            log_gradient_norm=True,      # Log gradient norms
            log_weight_norm=False,       # Log weight norms
            log_confusion_matrix=True,   # Log confusion matrix
        ),
        pretrained=False,  # random init in place of the download
    )
    assert [type(c).__name__ for c in model.configure_callbacks()] == ["LearningRateLogger", "NormLogger", "ConfusionMatrixLogger"]


def test_confusion_matrix_config(metrics):
    from autotimm import LoggingConfig, ImageClassifier

    model = ImageClassifier(
        backbone="resnet50",
        num_classes=10,
        metrics=metrics,
        logging_config=LoggingConfig(
            log_learning_rate=False,
            log_gradient_norm=False,
            log_confusion_matrix=True,
        ),
        pretrained=False,
    )
    assert [type(c).__name__ for c in model.configure_callbacks()] == ["ConfusionMatrixLogger"]


def test_backend_specific_parameters():
    from autotimm import LoggerConfig, LoggerManager
    cfgs = [
        LoggerConfig(
            backend="tensorboard",
            params={
                "save_dir": "logs",           # Required
                "name": "experiment",         # Subdirectory name
                "version": "v1",              # Version string
                "log_graph": True,            # Log model graph
                "default_hp_metric": False,   # HP metric logging
            },
        ),
        LoggerConfig(
            backend="wandb",
            params={
                "project": "my-project",      # Required
                "name": "run-1",              # Run name
                "tags": ["tag1", "tag2"],     # Tags
                "notes": "Experiment notes",  # Description
                "group": "experiment-group",  # Group runs
                "job_type": "training",       # Job type
                "save_dir": "wandb_logs",     # Local save directory
                "offline": False,             # Offline mode
            },
        ),
        LoggerConfig(
            backend="mlflow",
            params={
                "experiment_name": "exp",     # Required
                "tracking_uri": "http://localhost:5000",  # MLflow server
                "run_name": "run-1",          # Run name
                "tags": {"env": "dev"},       # Tags
                "save_dir": "mlruns",         # Local artifacts
            },
        ),
        LoggerConfig(
            backend="csv",
            params={
                "save_dir": "logs",           # Required
                "name": "metrics",            # Subdirectory name
                "version": None,              # Auto-increment
                "flush_logs_every_n_steps": 100,
            },
        ),
    ]
    m = LoggerManager(cfgs)
    assert m[0].log_dir == "logs/experiment/v1" and m[3].log_dir == "logs/metrics/version_0"


def test_full_example(workdir, image_folders):
    "The seed's full example; CIFAR10 at 224 px and resnet50 become local image folders, test_resnet at 32 px."
    from autotimm import (
        AutoTrainer,
        ImageClassifier,
        ImageDataModule,
        LoggerConfig,
        LoggerManager,
        LoggingConfig,
        MetricConfig,
    )

    # Data
    data = ImageDataModule(
        data_dir="./data",
        dataset_name=None,  # seed: "CIFAR10" (a download); here: the local image folders in ./data
        image_size=32,
        batch_size=16,
    )

    # Metrics
    metrics = [
        MetricConfig(
            name="accuracy",
            backend="torchmetrics",
            metric_class="Accuracy",
            params={"task": "multiclass"},
            stages=["train", "val", "test"],
            prog_bar=True,
        ),
    ]

    # Enhanced logging
    logging_config = LoggingConfig(
        log_learning_rate=True,
        log_gradient_norm=True,
        log_confusion_matrix=True,
    )

    # Model
    model = ImageClassifier(
        backbone="test_resnet",
        num_classes=3,
        metrics=metrics,
        logging_config=logging_config,
        pretrained=False,
    )

    # Multiple loggers
    loggers = LoggerManager(configs=[
        LoggerConfig(backend="tensorboard", params={"save_dir": "logs/tb"}),
        LoggerConfig(backend="csv", params={"save_dir": "logs/csv"}),
    ])

    # Train
    trainer = AutoTrainer(
        max_epochs=2,
        logger=loggers,
        checkpoint_monitor="val/accuracy",
    )

    trainer.fit(model, datamodule=data)

    got = csv_scalars("logs/csv/lightning_logs/version_0")
    assert {"train/loss", "train/lr", "train/grad_norm", "train/accuracy", "val/loss", "val/accuracy"} <= set(got)
    tb = tensorboard_run("logs/tb/lightning_logs/version_0")
    assert len(tb.Images("val/confusion_matrix")) == 2
    assert "val_accuracy=" in trainer.checkpoint_callback.best_model_path
    trainer.test(model, datamodule=data)
    assert "test/accuracy" in csv_scalars("logs/csv/lightning_logs/version_0")
