"""Tests of the transport-free contacts domain (server.contacts)."""
