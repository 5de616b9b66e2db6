"""Reading runs: metrics and verdicts, groups of repeats, statistics, compare, report, plots, JSON views."""
