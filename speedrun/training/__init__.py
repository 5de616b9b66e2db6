"""Training CIFAR-10 speedruns: data on the device, batched augmentation, the user's models and log format."""

from speedrun.training.config import TrainConfig
from speedrun.training.loop import train
from speedrun.training.recording import Recorder, Reporter, TrainResult

__all__ = ["Recorder", "Reporter", "TrainConfig", "TrainResult", "train"]
