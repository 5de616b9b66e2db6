"""The two significance levels, `ALPHA` and `RECORD_ALPHA`: why each, see `speedrun.analysis.metrics`.

A module of their own, free of imports, so that the command line shows `--alpha`'s default
without loading the statistics (and the database layer under them) at start-up.
"""

ALPHA = 0.05
RECORD_ALPHA = 0.01
