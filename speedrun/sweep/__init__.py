"""`speedrun sweep`: the search the user did by hand, run as Optuna trials that are ordinary recorded runs."""
