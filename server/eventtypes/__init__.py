"""Event-type settings (segmentation, creating contacts, validating params), their
per-process cache on the ingest path, and the recorded structure of each type's params."""
