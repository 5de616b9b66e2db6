"""Recording runs: the schema, the database, the store, run records, export and merge."""
