"""Read models of the operator console: activity counts, event type statistics, the shape
of params as seen. Every function reads one account's rows only."""
