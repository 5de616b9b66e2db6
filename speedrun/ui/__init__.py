"""`speedrun ui`: a live, read-only local page over the runs database (see speedrun.ui.app)."""
