"""The default recipe: the user's ResNet-18 set-up, exactly what `speedrun train` always did.

SGD lr 0.04 momentum 0.9, batch 64, 10 epochs, cosine per epoch, crop + flip,
bf16/fp16 autocast where it pays off; trained by the classic epoch loop.
"""

from speedrun.recipes.recipe import Recipe
from speedrun.training import loop
from speedrun.training.config import TrainConfig
from speedrun.training.nets import MODELS


def unread(config: TrainConfig) -> dict[str, str]:
    """Adam and AdamW have no momentum option of their own (their betas are fixed)."""
    if config.optimizer in ("adam", "adamw"):
        why = f"with --optimizer {config.optimizer} (only sgd has momentum here)"
        return {"momentum": why, "nesterov": why}
    return {}


RECIPE = Recipe(
    name="resnet18",
    summary="The user's ResNet-18: SGD 0.04 momentum 0.9, batch 64, 10 epochs, cosine per epoch, crop+flip.",
    config=TrainConfig(),
    train=loop.train_resnet,
    models=MODELS,
    optimizers=("sgd", "adam", "adamw"),
    augmentations=("crop", "flip", "cutout", "jitter"),
    options=("model", "optimizer", "batch_size", "lr", "epochs", "momentum", "weight_decay", "nesterov", "cosine",
             "warmup", "bn", "amp", "graph", "compile", "augment"),
    fixed=("loss: cross-entropy, averaged over the batch", "learning rate: stepped once per epoch"),
    unread=unread,
)
