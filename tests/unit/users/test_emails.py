"""Email normalisation: NFKC, then validation; one canonical address or None."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.provisional import domains

from authsvc.users.emails import MAX_LENGTH, normalize_email


def test_an_address_is_lowercased() -> None:
    assert normalize_email("Ada.Lovelace@Example.COM") == "ada.lovelace@example.com"


def test_fullwidth_letters_are_nfkc_normalised() -> None:
    assert normalize_email("ＡＤＡ@ｅｘａｍｐｌｅ.com") == "ada@example.com"


def test_a_compatibility_ligature_is_nfkc_normalised() -> None:
    assert normalize_email("ﬁnance@example.com") == "finance@example.com"


def test_surrounding_whitespace_is_trimmed() -> None:
    assert normalize_email("  ada@example.com\t") == "ada@example.com"


def test_a_lone_fullwidth_at_sign_becomes_the_separator() -> None:
    assert normalize_email("ada＠example.com") == "ada@example.com"


def test_a_fullwidth_at_sign_beside_a_real_one_is_refused() -> None:
    assert normalize_email("a＠b@example.com") is None


def test_a_quoted_local_part_hiding_another_address_is_refused() -> None:
    assert normalize_email('"e@attacker.com"@victim.com') is None


def test_a_quoted_local_part_without_an_at_sign_is_refused() -> None:
    assert normalize_email('"ada"@example.com') is None


@pytest.mark.parametrize(
    "raw",
    [
        "a@attacker.com,b@victim.com",
        "a@attacker.com, b@victim.com",
        "a,b@victim.com",
        "a@victim.com;b@attacker.com",
    ],
)
def test_an_address_list_is_refused(raw: str) -> None:
    assert normalize_email(raw) is None


@pytest.mark.parametrize(
    "raw",
    [
        "ada lovelace@example.com",
        "ada@exam ple.com",
        "ada\t@example.com",
        "ada@example.com\r\nBcc: eve@attacker.com",
        "ada\u00a0@example.com",
        "ada\u3000@example.com",
    ],
)
def test_inner_whitespace_is_refused(raw: str) -> None:
    assert normalize_email(raw) is None


@pytest.mark.parametrize("control", ["\x00", "\x01", "\x1b", "\x1f", "\x7f", "\r", "\n"])
def test_a_control_character_is_refused(control: str) -> None:
    assert normalize_email(f"ada{control}x@example.com") is None


@pytest.mark.parametrize(
    "raw", ["ada(comment)@example.com", "<ada@example.com>", "ada@[127.0.0.1]", "a\\b@example.com"]
)
def test_comments_angle_brackets_literals_and_escapes_are_refused(raw: str) -> None:
    assert normalize_email(raw) is None


def test_an_idn_domain_becomes_punycode() -> None:
    assert normalize_email("user@Bücher.de") == "user@xn--bcher-kva.de"


def test_a_non_latin_idn_domain_becomes_punycode() -> None:
    assert normalize_email("user@пример.рф") == "user@xn--e1afmkfd.xn--p1ai"


def test_an_already_punycode_domain_is_unchanged() -> None:
    assert normalize_email("user@xn--bcher-kva.de") == "user@xn--bcher-kva.de"


@pytest.mark.parametrize(
    "raw",
    [
        "",
        "   ",
        "ada",
        "@example.com",
        "ada@",
        "ada@localhost",
        "ada@example..com",
        "ada@-example.com",
        "ada@example-.com",
        "ada@exa_mple.com",
        ".ada@example.com",
        "ada.@example.com",
        "a..da@example.com",
    ],
)
def test_a_malformed_address_is_refused(raw: str) -> None:
    assert normalize_email(raw) is None


def test_an_address_over_the_maximum_length_is_refused() -> None:
    label = "a" * 60
    domain = ".".join([label] * 5) + ".com"
    raw = "b" * 60 + "@" + domain
    assert len(raw) > MAX_LENGTH

    assert normalize_email(raw) is None


def test_a_local_part_over_64_characters_is_refused() -> None:
    assert normalize_email("a" * 65 + "@example.com") is None


def test_a_local_part_of_64_characters_is_accepted() -> None:
    assert normalize_email("a" * 64 + "@example.com") == "a" * 64 + "@example.com"


def test_a_domain_label_over_63_characters_is_refused() -> None:
    assert normalize_email("ada@" + "a" * 64 + ".com") is None


def test_a_huge_input_is_refused() -> None:
    assert normalize_email("a" * 100_000 + "@example.com") is None


@pytest.mark.parametrize("raw", [None, 42, b"ada@example.com", ["ada@example.com"], {"a": 1}])
def test_a_non_string_is_refused(raw: object) -> None:
    assert normalize_email(raw) is None


def test_a_lone_surrogate_in_the_local_part_is_refused() -> None:
    assert normalize_email("\ud800@example.com") is None


addresses = st.builds(
    lambda local, domain: f"{local}@{domain}",
    st.text(min_size=1, max_size=70),
    st.text(min_size=1, max_size=70),
)


@given(st.one_of(st.text(), st.emails(), addresses))
def test_normalize_email_gives_none_or_a_single_at_fixed_point(raw: str) -> None:
    normalized = normalize_email(raw)

    if normalized is not None:
        assert normalized.count("@") == 1
        assert normalize_email(normalized) == normalized


# A DNS name is at most 253 characters written out; hypothesis allows up to 255.
@given(st.emails(domains=domains(max_length=253)))
def test_every_plain_address_hypothesis_makes_is_accepted(raw: str) -> None:
    assert normalize_email(raw) == raw.lower()


def test_a_domain_with_sharp_s_keeps_it_as_idna_2008_does() -> None:
    assert normalize_email("ada@straße.de") == "ada@xn--strae-oqa.de"


def test_a_domain_with_final_sigma_keeps_it_as_idna_2008_does() -> None:
    assert normalize_email("ada@ς.gr") == "ada@xn--3xa.gr"


def test_a_domain_spelled_with_ss_is_another_domain_than_the_sharp_s_one() -> None:
    assert normalize_email("ada@strasse.de") == "ada@strasse.de"


def test_a_domain_idna_2008_disallows_is_refused() -> None:
    assert normalize_email("ada@☃.net") is None


def test_a_domain_in_invalid_punycode_is_refused() -> None:
    assert normalize_email("ada@xn--a.com") is None
