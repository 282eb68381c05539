"""The logging backends: the `Backend` base and its registry (`core`), the helpers of file-keeping backends
(`files`), and one module per backend, each registering itself when imported here."""
from .core import *
from .files import counts_from_files
from .tensorboard import *
from .csv import *
from .wandb import *
from .mlflow import *
from .comet import *
