"""Resident identity numbers (GB 11643), unified social credit codes (GB 32100), masking."""
from __future__ import annotations

from datetime import date

import pytest
from hypothesis import given, strategies as st

from civicgrid_intake.domain.identity_numbers import (
    CREDIT_CODE_ALPHABET,
    CreditCode,
    InvalidIdentityNumber,
    NumberRule,
    ResidentIdNumber,
    credit_code_check_character,
    credit_code_errors,
    mask,
    resident_id_check_character,
    resident_id_errors,
)

TODAY = date(2026, 11, 23)

# The standards' weights, written out as the brief states them: an oracle independent of
# the library's arithmetic (python-stdnum computes MOD 11-2 by a base-13 trick).
RIC_WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
USCC_WEIGHTS = (1, 3, 9, 27, 19, 26, 16, 17, 20, 29, 25, 13, 8, 24, 10, 30, 28)


def ric_check_by_weights(first_17: str) -> str:
    return "10X98765432"[sum(int(c) * w for c, w in zip(first_17, RIC_WEIGHTS)) % 11]


def uscc_check_by_weights(first_17: str) -> str:
    total = sum(CREDIT_CODE_ALPHABET.index(c) * w for c, w in zip(first_17, USCC_WEIGHTS))
    return CREDIT_CODE_ALPHABET[(31 - total % 31) % 31]


def resident(first_17: str) -> str:
    return first_17 + ric_check_by_weights(first_17)


def rules(errors) -> list[NumberRule]:
    return [e.rule for e in errors]


# ---------------------------------------------------------------------- resident numbers


@pytest.mark.parametrize("number", [
    "11010519491231002X",   # the example printed in GB 11643-1999 (check character X)
    resident("32010419900101123"),   # Qinhuai District, Nanjing
    resident("32010319750615002"),   # Baixia District, abolished 2013: numbers are for life
    resident("81000019850512001"),   # Hong Kong resident's residence permit
    resident("83000019900101002"),   # Taiwan resident's residence permit (area code 830000)
    resident("65010219000101001"),   # born on the earliest date accepted
    resident("44030520000229004"),   # 29 February of a leap year
])
def test_valid_resident_numbers(number: str) -> None:
    assert resident_id_errors(number, TODAY) == []
    assert ResidentIdNumber.parse(number, TODAY).value == number


def test_check_character_matches_the_standards_weights_for_many_numbers() -> None:
    for seed in range(200):
        first_17 = "320104" + f"{19500101 + seed * 37:08d}"[:8] + f"{seed:03d}"
        assert resident_id_check_character(first_17) == ric_check_by_weights(first_17)


@given(st.text(alphabet="0123456789", min_size=17, max_size=17))
def test_check_character_agrees_with_the_weights_on_any_digits(first_17: str) -> None:
    assert resident_id_check_character(first_17) == ric_check_by_weights(first_17)


def test_lower_case_x_is_accepted_and_normalised() -> None:
    number = ResidentIdNumber.parse("11010519491231002x", TODAY)
    assert number.value == "11010519491231002X"
    assert ResidentIdNumber.parse("  11010519491231002x ", TODAY).value == "11010519491231002X"


def test_parts_of_a_number() -> None:
    number = ResidentIdNumber.parse("11010519491231002X", TODAY)
    assert number.birth_date == date(1949, 12, 31)
    assert number.area_code == "110105"
    assert number.province == "北京市"
    assert number.area_name == "朝阳区"
    assert number.sex == "female"  # sequence 002: even
    assert ResidentIdNumber.parse(resident("32010419900101123"), TODAY).sex == "male"


def test_abolished_district_is_named_and_an_unknown_county_is_no_error() -> None:
    assert ResidentIdNumber.parse(resident("32010319750615002"), TODAY).area_name == "白下区"
    # 329999 is in no table, but its province is: accepted, with no name (see module doc).
    number = ResidentIdNumber.parse(resident("32999919750615002"), TODAY)
    assert number.province == "江苏省" and number.area_name is None


def test_wrong_check_character_names_the_expected_one() -> None:
    errors = resident_id_errors("110105194912310021", TODAY)
    assert rules(errors) == [NumberRule.CHECK_CHARACTER]
    assert "X" in errors[0].message


@pytest.mark.parametrize("number, rule", [
    ("11010519491231002", NumberRule.LENGTH),
    ("11010519491231002X1", NumberRule.LENGTH),
    ("", NumberRule.LENGTH),
    ("1101051949123100XX", NumberRule.CHARACTERS),
    ("11010519491231002Y", NumberRule.CHARACTERS),
    ("1101051949-231002X", NumberRule.CHARACTERS),
    ("１１010519491231002X", NumberRule.CHARACTERS),  # full-width digits are not ASCII digits
])
def test_structural_errors_stop_further_checks(number: str, rule: NumberRule) -> None:
    assert rules(resident_id_errors(number, TODAY)) == [rule]


@pytest.mark.parametrize("first_17, rule", [
    ("44030520010229004", NumberRule.BIRTH_DATE_INVALID),    # 2001 is not a leap year
    ("44030519901301004", NumberRule.BIRTH_DATE_INVALID),    # month 13
    ("44030519900431004", NumberRule.BIRTH_DATE_INVALID),    # 31 April
    ("44030520261124004", NumberRule.BIRTH_DATE_IN_FUTURE),  # tomorrow
    ("44052418800101001", NumberRule.BIRTH_DATE_TOO_EARLY),  # GB 11643's own 1880 example
    ("44030518991231004", NumberRule.BIRTH_DATE_TOO_EARLY),
])
def test_birth_dates(first_17: str, rule: NumberRule) -> None:
    assert rules(resident_id_errors(resident(first_17), TODAY)) == [rule]


def test_born_today_is_plausible() -> None:
    assert resident_id_errors(resident("44030520261123004"), TODAY) == []


def test_gb11643s_1880_example_has_a_good_check_character_but_an_implausible_birth_date() -> None:
    assert resident_id_errors("440524188001010014", TODAY)[0].rule is NumberRule.BIRTH_DATE_TOO_EARLY


@pytest.mark.parametrize("prefix", ["00", "10", "19", "20", "30", "40", "55", "70", "80", "84", "90", "99"])
def test_area_code_needs_a_province(prefix: str) -> None:
    errors = resident_id_errors(resident(prefix + "010419900101123"), TODAY)
    assert rules(errors) == [NumberRule.AREA_CODE]
    assert prefix in errors[0].message


@pytest.mark.parametrize("prefix", ["11", "12", "13", "14", "15", "21", "22", "23", "31", "32", "33", "34", "35",
                                    "36", "37", "41", "42", "43", "44", "45", "46", "50", "51", "52", "53", "54",
                                    "61", "62", "63", "64", "65", "71", "81", "82", "83"])
def test_every_province_level_prefix_is_accepted(prefix: str) -> None:
    assert resident_id_errors(resident(prefix + "000019900101123"), TODAY) == []


def test_every_broken_rule_is_reported_at_once() -> None:
    # wrong check character, 30 February, no province 99: three errors, one answer
    errors = resident_id_errors("990104199002301230", TODAY)
    assert set(rules(errors)) == {NumberRule.CHECK_CHARACTER, NumberRule.BIRTH_DATE_INVALID, NumberRule.AREA_CODE}
    with pytest.raises(InvalidIdentityNumber) as caught:
        ResidentIdNumber.parse("990104199002301230", TODAY)
    assert len(caught.value.errors) == 3


def test_a_number_never_shows_in_full_in_its_repr() -> None:
    number = ResidentIdNumber.parse("11010519491231002X", TODAY)
    assert "11010519491231002X" not in repr(number) and "11010519491231002X" not in str(number)
    assert repr(number) == "ResidentIdNumber('1101**********002X')"


# ---------------------------------------------------------------------- credit codes


@pytest.mark.parametrize("code", [
    "91350100M000100Y43",   # the example code published with GB 32100
    "91110000600037341L",   # python-stdnum's documented example
    "914403001922038216",   # codes printed on business licences
    "9144030071526726XG",
])
def test_published_credit_codes_are_valid(code: str) -> None:
    assert credit_code_errors(code) == []
    assert uscc_check_by_weights(code[:17]) == code[17]


@given(st.text(alphabet=CREDIT_CODE_ALPHABET, min_size=17, max_size=17))
def test_credit_check_character_agrees_with_the_weights(first_17: str) -> None:
    assert credit_code_check_character(first_17) == uscc_check_by_weights(first_17)


@pytest.mark.parametrize("first_17, meaning", [
    ("51320104MJ5012345", "a social organisation registered by civil affairs in Qinhuai"),
    ("12320104466012345", "a public institution (establishment administration)"),
    ("92320104MA1ABCDE1", "a sole trader (个体工商户)"),
    ("93320104MA2XY0001", "a farmers' cooperative"),
    ("N2320104MF1234567", "a village collective (agriculture, department N)"),
    ("Y1320104MB0012345", "department Y (other)"),
    ("11100000000013127", "a central body registered with the national code 100000"),
])
def test_constructed_credit_codes_are_valid(first_17: str, meaning: str) -> None:
    code = first_17 + uscc_check_by_weights(first_17)
    assert credit_code_errors(code) == [], meaning
    parsed = CreditCode.parse(code.lower())
    assert parsed.value == code
    assert parsed.registration_department == first_17[0]
    assert parsed.organisation_type == first_17[1]
    assert parsed.admin_code == first_17[2:8]
    assert parsed.organisation_code == first_17[8:17]


def with_check(first_17: str) -> str:
    return first_17 + uscc_check_by_weights(first_17)


@pytest.mark.parametrize("code, rule", [
    ("91350100M000100Y4", NumberRule.LENGTH),
    ("91350100M000100Y433", NumberRule.LENGTH),
    ("91350100M000100I43", NumberRule.CHARACTERS),  # I is excluded
    ("91350100O000100Y43", NumberRule.CHARACTERS),  # O is excluded
    ("91350100M000100S43", NumberRule.CHARACTERS),
    ("91350100M000100V43", NumberRule.CHARACTERS),
    ("91350100M000100Z43", NumberRule.CHARACTERS),
    ("91350100M000100Y4?", NumberRule.CHARACTERS),
    ("91350100M000100Y44", NumberRule.CHECK_CHARACTER),
    (with_check("B1320104MA1ABCDE1"), NumberRule.REGISTRATION_DEPARTMENT),
    (with_check("94320104MA1ABCDE1"), NumberRule.ORGANISATION_TYPE),  # 工商 has types 1, 2, 3
    (with_check("56320104MA1ABCDE1"), NumberRule.ORGANISATION_TYPE),
    (with_check("91990000MA1ABCDE1"), NumberRule.ADMIN_CODE),
    (with_check("913201A4MA1ABCDE1"), NumberRule.ADMIN_CODE),
])
def test_bad_credit_codes(code: str, rule: NumberRule) -> None:
    assert rules(credit_code_errors(code)) == [rule]


def test_bad_check_character_of_a_credit_code_names_the_expected_one() -> None:
    errors = credit_code_errors("91350100M000100Y44")
    assert "3" in errors[0].message
    with pytest.raises(InvalidIdentityNumber, match="unified social credit code"):
        CreditCode.parse("91350100M000100Y44")


def test_every_broken_credit_code_rule_is_reported_at_once() -> None:
    assert set(rules(credit_code_errors("B6990000MA1ABCDE10"))) == {
        NumberRule.CHECK_CHARACTER, NumberRule.REGISTRATION_DEPARTMENT, NumberRule.ADMIN_CODE}


# ---------------------------------------------------------------------- masking


def test_mask_keeps_first_four_and_last_four() -> None:
    assert mask("32010419900101123X") == "3201**********123X"
    assert CreditCode.parse("91350100M000100Y43").masked() == "9135**********0Y43"
    assert mask("32010419900101123X", keep_start=6, keep_end=0) == "320104************"


def test_mask_hides_everything_when_too_short() -> None:
    assert mask("1234567") == "*******"
    assert mask("") == ""
    with pytest.raises(ValueError):
        mask("32010419900101123X", keep_start=-1)
