"""Conformance of the template engine with Apache Velocity 1.7 on the corpus.

Velocity renders every case of ``tests/velocity/corpus`` in one JVM run; our
output must agree on at least 95% of the cases, and every case where it does not
must be one of the deliberate differences below (also listed in docs/templates.md).
"""

from __future__ import annotations

import pytest

from server.templating import TemplateError, render
from tests.templating.corpus import Case, Outcome, load_cases, run_velocity, velocity_missing

# Case name -> why we deliberately differ from Velocity 1.7.
KNOWN_DIFFERENCES = {
    "foreach-missing-in": "a #foreach without 'in' is a syntax error, not silently empty",
    "foreach-empty-expression": "#foreach($i in ) is a syntax error, not silently empty",
    "sandbox-clear-data": "event data is read-only: clear() is an error",
    "sandbox-put-data": "event data is read-only: put() is an error",
    "sandbox-set-data-property": "event data is read-only: #set($data.x = ...) is an error",
    "sandbox-getClass": "no Java/Python reflection: getClass() is an unknown method",
    "ref-dollar-at-end": "a '$' ending the template is text, not a lexical error",
    "edge-macro-arg-undefined": "macro arguments pass values, not names: a null argument "
    "prints as the parameter ($v), not the caller's reference ($nope)",
}
MIN_AGREEMENT = 0.95


def _ours(case: Case) -> Outcome:
    try:
        return Outcome(output=render(case.template, case.context), error=None)
    except TemplateError as error:
        return Outcome(output=None, error=str(error))


def _agree(reference: Outcome, ours: Outcome) -> bool:
    if reference.error is not None:
        return ours.error is not None
    return ours.error is None and ours.output == reference.output


@pytest.fixture(scope="module")
def velocity_outcomes() -> dict[str, Outcome]:
    """Velocity 1.7's output for every corpus case."""
    missing = velocity_missing()
    if missing is not None:
        pytest.skip(f"Apache Velocity 1.7 reference unavailable: {missing}")
    return run_velocity(load_cases())


def test_corpus_is_large_enough() -> None:
    """The corpus holds at least 150 cases, each with a unique name."""
    assert len(load_cases()) >= 150


def test_known_differences_are_corpus_cases() -> None:
    """Every listed difference names an existing corpus case."""
    names = {case.name for case in load_cases()}
    assert set(KNOWN_DIFFERENCES) <= names


def test_agrees_with_velocity(velocity_outcomes: dict[str, Outcome]) -> None:
    """At least 95% of cases render as Velocity renders them and no unlisted case differs."""
    cases = load_cases()
    disagreements: dict[str, str] = {}
    for case in cases:
        reference, ours = velocity_outcomes[case.name], _ours(case)
        if not _agree(reference, ours):
            expected = reference.output if reference.error is None else f"error {reference.error}"
            got = ours.output if ours.error is None else f"error {ours.error}"
            disagreements[case.name] = f"velocity={expected!r} ours={got!r}"
    unexpected = {n: d for n, d in disagreements.items() if n not in KNOWN_DIFFERENCES}
    assert not unexpected, "new differences from Velocity 1.7:\n" + "\n".join(
        f"{name}: {detail}" for name, detail in unexpected.items()
    )
    agreement = (len(cases) - len(disagreements)) / len(cases)
    print(f"velocity conformance: {len(cases) - len(disagreements)}/{len(cases)} cases agree")
    assert agreement >= MIN_AGREEMENT
    stale = set(KNOWN_DIFFERENCES) - set(disagreements)
    assert not stale, f"listed differences that now agree (remove them): {sorted(stale)}"
