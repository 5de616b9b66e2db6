"""Training CIFAR-10 speedruns: data on the device, batched augmentation, the user's models and log format."""

from speedrun.training.config import TrainConfig
from speedrun.training.loop import MemoryRecorder, Recorder, Reporter, TrainResult, train

__all__ = ["MemoryRecorder", "Recorder", "Reporter", "TrainConfig", "TrainResult", "train"]
