"""Event processing in batches: leases that give one worker an account's events at a time,
the batch transaction and its processors, the wake-ups that start a drain (docs/workers.md)."""
