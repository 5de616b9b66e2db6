"""Training CIFAR-10 speedruns: data on the device, batched augmentation, the user's models and log format.

Two loops, each named for what it trains: `train_resnet` (training.loop: the user's ResNets, epoch by
epoch; the resnet18 recipe) and `train_fast` (training.fastloop: the airbench recipes' whitened net,
step schedules, lookahead and TTA). A recipe (speedrun.recipes) says which one trains it.
"""

from speedrun.training.config import TrainConfig
from speedrun.training.fastloop import train_fast
from speedrun.training.loop import train_resnet
from speedrun.training.recording import Recorder, Reporter, TrainResult

__all__ = ["Recorder", "Reporter", "TrainConfig", "TrainResult", "train_fast", "train_resnet"]
