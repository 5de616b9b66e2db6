"""The orders runs can be listed in: each name a user types, and the column of `runs` it sorts by.

Kept apart from the store (which turns each into a SQLAlchemy column) so that the command
line can offer and check the names without importing the database layer at start-up.
"""

# name (`speedrun list --sort NAME`) -> attribute of tracking.models.Run
SORTABLE_COLUMNS = {
    "id": "id",
    "created": "created_at",
    "created_at": "created_at",
    "status": "status",
    "epochs": "epochs_completed",
    "final": "final_val_acc",
    "final_val_acc": "final_val_acc",
    "peak": "peak_val_acc",
    "peak_val_acc": "peak_val_acc",
    "time": "train_time_s",
    "train_time_s": "train_time_s",
    "epoch_time": "mean_epoch_s",
    "mean_epoch_s": "mean_epoch_s",
}
