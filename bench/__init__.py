"""``make bench``: ingestion throughput side by side with bare ceilings (not tests)."""
