"""The domain vocabulary at the bottom of the package: it imports nothing else of speedrun but errors and text."""
