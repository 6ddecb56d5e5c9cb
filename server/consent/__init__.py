"""Consent and privacy: subscription forms, the unsubscribed-address list, erasure.

Plain domain functions over the caller's connection; ``server.api.consent`` is their
transport. Email delivery reads the unsubscribed list through ``suppression``.
"""
