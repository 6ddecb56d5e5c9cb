"""The ingest path: validate an event, commit it (group commit), dispatch it to workers."""
