"""speedrun: train CIFAR-10 speedruns and keep the lab notebook in SQLite."""

__version__ = "0.1.0"
