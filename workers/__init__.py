"""The arq worker pool: jobs that run after an event is stored (workflows, contacts)."""
