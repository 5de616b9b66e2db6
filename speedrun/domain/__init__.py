"""The vocabulary every layer shares, and nothing else of speedrun but errors and text.

records.py (run and epoch records, statuses, the summary rules), params.py (parameter
names and values, with memo.py), hardware.py (hardware classes), efficiency.py (device
peaks and MFU), stats.py (means with intervals, Welch, target tests) and hyperparams.py
(the training options every recipe declares from): what the
parsers, the store, the trainer and analysis all speak. See the README's layout for
the order of the layers above.
"""
