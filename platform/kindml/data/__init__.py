"""Data: the schema, a seeded fraud-transaction generator and loaders for your own files."""
