"""Segments: contacts chosen by conditions on their events and fields, kept current.

``definition`` checks a saved document, ``evaluate`` gives it meaning (pure), ``store``
keeps definitions, ``membership`` maintains members incrementally (``apply`` after an
event batch), ``loop`` runs due re-evaluations and full recounts in the worker,
``queries`` answers who is in a segment. ``docs/segments.md`` has the model and limits.
"""
