"""The default recipe: the user's ResNet-18 set-up, exactly what `speedrun train` always did.

SGD lr 0.04 momentum 0.9, batch 64, 10 epochs, cosine per epoch, crop + flip,
bf16/fp16 autocast where it pays off; trained by the classic epoch loop.
"""

from speedrun.recipes import Recipe
from speedrun.training import loop
from speedrun.training.config import TrainConfig
from speedrun.training.nets import MODELS

RECIPE = Recipe(
    name="resnet18",
    summary="The user's ResNet-18: SGD 0.04 momentum 0.9, batch 64, 10 epochs, cosine per epoch, crop+flip.",
    config=TrainConfig(),
    train=loop.train,
    models=MODELS,
    optimizers=("sgd", "adam", "adamw"),
    augmentations=("crop", "flip", "cutout", "jitter"),
)
