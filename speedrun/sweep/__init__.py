"""Sweeps: the search over settings a user would do by hand, as an Optuna study whose trials are recorded runs."""
