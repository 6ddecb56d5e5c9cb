"""Rules for the standard contact attributes: names, phones, emails, languages, time zones."""

from __future__ import annotations

import pytest
from email_validator import validate_email
from hypothesis import given, settings
from hypothesis import strategies as st

from server.contacts import InvalidValue
from server.contacts.validation import (
    _PLAIN_EMAIL,
    _plain_email,
    email_key,
    is_blank_external_id,
    normalise_channel_value,
    normalise_confirmed,
    normalise_contact_key,
    normalise_email,
    normalise_external_id,
    normalise_language_code,
    normalise_name,
    normalise_phone,
    normalise_postcode,
    normalise_time_zone,
)


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("Olena", "Olena"),
        ("  Mary-Jane  ", "Mary-Jane"),
        ("O'Brien", "O'Brien"),
        ("Мар’яна", "Мар’яна"),
        ("Мар`яна", "Мар`яна"),
        ("José  María", "José María"),
        ("J. R. R.", "J. R. R."),
        ("李小龍", "李小龍"),
        ("محمد", "محمد"),
        ("Jose\u0301", "José"),
        ("a" * 60, "a" * 60),
    ],
)
def test_names_accept_letters_of_any_alphabet(raw: str, expected: str) -> None:
    """Names of any script with spaces, apostrophes, hyphens and dots are kept, normalised."""
    assert normalise_name(raw) == expected


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        ("a" * 61, "at most 60"),
        ("a" * 300, "300 characters long; at most 60"),
        ("J0hn", 'contains "0"'),
        ("john@example.com", 'contains "@"'),
        ("...", "has no letters"),
        ("- '", "has no letters"),
        (42, "must be text"),
        (["Ann"], "must be text"),
        ("Ann\x00", "control characters"),
    ],
)
def test_names_reject_digits_symbols_and_overlong_text(raw: object, reason: str) -> None:
    """A name with digits, symbols, no letters or over 60 characters is rejected with a hint."""
    with pytest.raises(InvalidValue, match=reason):
        normalise_name(raw)


@pytest.mark.parametrize("raw", [None, "", "   "])
def test_blank_names_mean_no_value(raw: object) -> None:
    """Null and blank names normalise to None ("no value")."""
    assert normalise_name(raw) is None


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("380501234567", "+380501234567"),
        ("+380955547708", "+380955547708"),
        ("+1-541-754-3010", "+15417543010"),
        ("+38 (050) 123-45-67", "+380501234567"),
        ("00380501234567", "+380501234567"),
        (380501234567, "+380501234567"),
    ],
)
def test_phones_in_international_format_become_e164(raw: object, expected: str) -> None:
    """International phone numbers, with or without the plus, are stored as E.164."""
    assert normalise_phone(raw) == expected


@pytest.mark.parametrize(
    "raw", ["12ab", "+1-800-FLOWERS", "0501234567x", "+380", "+99912345678", "++380501234567"]
)
def test_malformed_phones_are_rejected_with_the_format_hint(raw: str) -> None:
    """Letters, missing digits and impossible numbers are not phones; the reason shows the format."""
    with pytest.raises(InvalidValue, match=r"international format such as \+380501234567"):
        normalise_phone(raw)


def test_phone_of_wrong_json_type_is_rejected() -> None:
    """A boolean or list where a phone belongs is a violation, not a crash."""
    for raw in (True, ["+380501234567"], {"phone": 1}, 1.5):
        with pytest.raises(InvalidValue):
            normalise_phone(raw)


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("site@ukr.net", "site@ukr.net"),
        ("Site@UKR.Net", "Site@ukr.net"),
        (" ivan@example.com ", "ivan@example.com"),
        ("пошта@приклад.укр", "пошта@приклад.укр"),
    ],
)
def test_emails_are_checked_for_syntax_and_domain_lower_cased(raw: str, expected: str) -> None:
    """Valid addresses are accepted without DNS look-ups; the domain is lower-cased."""
    assert normalise_email(raw) == expected


@pytest.mark.parametrize("raw", ["site", "site@", "@ukr.net", "a b@ukr.net", "site@@ukr.net", 7])
def test_malformed_emails_are_rejected(raw: object) -> None:
    """Addresses that break the syntax are rejected with the expected form in the reason."""
    with pytest.raises(InvalidValue, match="email|text"):
        normalise_email(raw)


def test_email_key_ignores_case() -> None:
    """Two addresses differing only in case share one comparison key."""
    assert email_key("Site@ukr.net") == email_key("site@UKR.NET")


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("uk", "uk"),
        ("en-US", "en-US"),
        ("EN-us", "en-US"),
        ("zh-hant-tw", "zh-Hant-TW"),
        ("es-419", "es-419"),
        ("de-CH-1901", "de-CH-1901"),
        ("en-a-bbb-x-priv", "en-a-bbb-x-priv"),
        ("x-whatever", "x-whatever"),
        ("i-klingon", "i-klingon"),
        ("sgn-be-fr", "sgn-BE-FR"),
    ],
)
def test_language_codes_follow_rfc_5646(raw: str, expected: str) -> None:
    """Well-formed RFC 5646 tags are accepted and recased canonically."""
    assert normalise_language_code(raw) == expected


@pytest.mark.parametrize("raw", ["en_US", "e", "englishlanguage", "en-", "-en", "en--US", "123"])
def test_malformed_language_codes_are_rejected(raw: str) -> None:
    """Tags outside the RFC 5646 grammar are rejected."""
    with pytest.raises(InvalidValue, match="RFC 5646"):
        normalise_language_code(raw)


def test_underscore_language_code_suggests_the_hyphenated_tag() -> None:
    """The reason for en_US shows the tag to send instead."""
    with pytest.raises(InvalidValue, match="en-US"):
        normalise_language_code("en_US")


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("Europe/Kyiv", "Europe/Kyiv"),
        ("europe/kyiv", "Europe/Kyiv"),
        ("Etc/GMT+03", "Etc/GMT+3"),
        ("Etc/GMT-10", "Etc/GMT-10"),
        ("UTC", "UTC"),
    ],
)
def test_time_zones_are_tz_database_names(raw: str, expected: str) -> None:
    """tz-database names are accepted in any case, including the seed's Etc/GMT+03."""
    assert normalise_time_zone(raw) == expected


@pytest.mark.parametrize("raw", ["Mars/Base", "GMT+3", "+03:00", "Etc/GMT+99", 3])
def test_unknown_time_zones_are_rejected(raw: object) -> None:
    """Offsets and made-up names are not time zones."""
    with pytest.raises(InvalidValue):
        normalise_time_zone(raw)


@pytest.mark.parametrize("raw", [None, "", "   ", "\u3000\t", "null", "NULL", " Null "])
def test_blank_external_ids_are_ignored(raw: object) -> None:
    """eSputnik's empty forms of an external id (null, blanks, "null") count as absent."""
    assert is_blank_external_id(raw)
    assert normalise_external_id(raw) is None


def test_external_ids_and_contact_keys_accept_text_and_integers() -> None:
    """Identifiers are kept as text, numbers turned into their digits."""
    assert normalise_external_id(" AV13760 ") == "AV13760"
    assert normalise_external_id(13760) == "13760"
    assert normalise_contact_key("k-1") == "k-1"
    with pytest.raises(InvalidValue):
        normalise_external_id("x" * 301)


def test_postcode_and_confirmed_flag() -> None:
    """Postcodes may be numbers; confirmed takes booleans and their v1 string form."""
    assert normalise_postcode(1001) == "1001"
    assert normalise_confirmed("TRUE") is True
    assert normalise_confirmed(False) is False
    with pytest.raises(InvalidValue, match="true or false"):
        normalise_confirmed("yes")


def test_channel_values_are_checked_by_channel_type() -> None:
    """Email channels need emails, sms and viber phones, the others a non-empty token."""
    assert normalise_channel_value("a@b.ua", channel_type="email") == "a@b.ua"
    assert normalise_channel_value("380501234567", channel_type="viber") == "+380501234567"
    assert normalise_channel_value("tok", channel_type="webpush") == "tok"
    with pytest.raises(InvalidValue, match="needs a value"):
        normalise_channel_value(" ", channel_type="mobilepush")


# The plain-address shortcut (``_plain_email``) must answer exactly as email-validator does
# for every address it takes; what it declines goes to email-validator itself.
_EDGE_LABELS = ["a", "Ab", "x1", "1x", "123", "a-b", "a--b", "-a", "a-", "xn--p1ai", "COM",
                "test", "local", "localhost", "onion", "arpa", "invalid", "example", "b" * 63,
                "c" * 64, "ua", "9"]


@st.composite
def _addresses(draw: st.DrawFn) -> str:
    """Mostly address-shaped strings near the rules' edges (empty words, hyphens, numeric or
    special-use top levels, long labels), now and then with a character outside them."""
    word = st.text(alphabet="aZ09_%+-", min_size=1, max_size=8)
    words = draw(st.lists(st.one_of(word, word, word, st.just("")), min_size=1, max_size=4))
    local = ".".join(words) + draw(st.sampled_from(["", "", "", "'", "!", " ", "@", "é"]))
    edge = st.sampled_from(_EDGE_LABELS)
    labels = draw(st.lists(st.one_of(edge, edge, edge, st.text(alphabet="aZ09-", max_size=10)),
                           min_size=1, max_size=4))
    end = draw(st.sampled_from(["", "", "", ".", "-", " "]))
    return f"{local}@{'.'.join(labels)}{end}"


@settings(max_examples=600, deadline=None)
@given(st.one_of(st.from_regex(_PLAIN_EMAIL, fullmatch=True), _addresses()))
def test_the_plain_address_shortcut_agrees_with_email_validator(address: str) -> None:
    plain = _plain_email(address)
    if plain is None:
        return
    assert validate_email(address, check_deliverability=False).normalized == plain


@pytest.mark.parametrize("address", [
    "user3@example.com", "User.Name+tag@Shop.Example.COM", "a_b%c@mail.co.ua",
    "x@" + "b" * 63 + ".com", "first-last@sub-domain.example.org"])
def test_common_addresses_take_the_shortcut(address: str) -> None:
    assert _plain_email(address) == validate_email(address, check_deliverability=False).normalized


@pytest.mark.parametrize("address", [
    "a..b@x.com", ".a@x.com", "a.@x.com", "a@-x.com", "a@x-.com", "a@x.123", "a@x",
    "a@test.local", "a@localhost", "a@x.test", "a@xn--p1ai.com", "a@b--c.com",
    "x@" + "b" * 64 + ".com", "l" * 65 + "@x.com", "a b@x.com", "a@x.com."])
def test_addresses_near_the_rules_are_left_to_email_validator(address: str) -> None:
    assert _plain_email(address) is None
