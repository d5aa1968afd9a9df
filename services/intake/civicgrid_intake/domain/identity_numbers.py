"""Applicants' identity numbers: resident identity numbers and unified social credit codes.

- A **resident identity number** (公民身份号码, GB 11643-1999) has 18 characters: a 6-digit
  area code (GB/T 2260), the birth date YYYYMMDD, a 3-digit sequence (odd for men, even for
  women) and a check character by ISO 7064 MOD 11-2 (0-9 or X).
- A **unified social credit code** (统一社会信用代码, GB 32100-2015) has 18 characters from
  "0123456789ABCDEFGHJKLMNPQRTUWXY" (no I, O, Z, S, V): the registration department, the
  organisation type, the 6-digit administrative division code of the registering authority,
  the 9-character organisation code and a check character (weights 3^i mod 31).

Check characters and the GB/T 2260 division table come from `python-stdnum` (its cn.ric and
cn.uscc modules and the cn/loc table with historical codes); the rules it does not make
(birth date not in the future nor before 1900, the department and type codes, collecting
every failing rule rather than the first) are here.

Parsing never stops at the first problem it can report: the clerk gets every failing rule
at once (e.g. a wrong check character AND an impossible birth date).
"""
from __future__ import annotations

import enum
from dataclasses import dataclass
from datetime import date

from stdnum import numdb
from stdnum.cn import ric, uscc

# GB 32100's character set: digits and capitals without I, O, Z, S, V.
CREDIT_CODE_ALPHABET = "0123456789ABCDEFGHJKLMNPQRTUWXY"
EARLIEST_BIRTH_YEAR = 1900

# Residence permits of Hong Kong, Macao and Taiwan residents (2018) carry area codes
# 810000, 820000 and 830000; GB/T 2260 itself lists 81 and 82 but has no 83.
_RESIDENCE_PERMIT_PROVINCES = {"83": "台湾居民居住证"}
# A unified social credit code registered by a central authority carries 100000.
_NATIONAL_ADMIN_CODE = "100000"

# GB 32100-2015 (with the later codes A and N): registration department -> its organisation types.
REGISTRATION_DEPARTMENTS: dict[str, tuple[str, frozenset[str]]] = {
    "1": ("机构编制 establishment administration", frozenset("1239")),
    "2": ("外交 foreign affairs", frozenset("19")),
    "3": ("司法行政 justice", frozenset("123459")),
    "4": ("文化 culture", frozenset("19")),
    "5": ("民政 civil affairs", frozenset("1239")),
    "6": ("旅游 tourism", frozenset("129")),
    "7": ("宗教 religious affairs", frozenset("129")),
    "8": ("工会 trade unions", frozenset("19")),
    "9": ("工商 market regulation", frozenset("123")),
    "A": ("中央军委改革和编制办公室 military establishment", frozenset("19")),
    "N": ("农业 agriculture (rural collectives)", frozenset("1239")),
    "Y": ("其他 other", frozenset("1")),
}


class NumberRule(str, enum.Enum):
    """Which rule an identity number broke (stable codes for API error bodies)."""

    LENGTH = "length"
    CHARACTERS = "characters"
    CHECK_CHARACTER = "check_character"
    BIRTH_DATE_INVALID = "birth_date_invalid"
    BIRTH_DATE_IN_FUTURE = "birth_date_in_future"
    BIRTH_DATE_TOO_EARLY = "birth_date_too_early"
    AREA_CODE = "area_code"
    REGISTRATION_DEPARTMENT = "registration_department"
    ORGANISATION_TYPE = "organisation_type"
    ADMIN_CODE = "admin_code"


@dataclass(frozen=True)
class NumberError:
    rule: NumberRule
    message: str


class InvalidIdentityNumber(ValueError):
    """An identity number broke one or more rules; `errors` lists every one of them."""

    def __init__(self, kind: str, errors: list[NumberError]) -> None:
        self.errors = errors
        super().__init__(f"invalid {kind}: " + "; ".join(e.message for e in errors))


def load_area_codes() -> None:
    """Read python-stdnum's GB/T 2260 table now: the first check would otherwise read and
    parse it in the middle of a request (the service calls this once at start-up, in a thread)."""
    numdb.get("cn/loc")


def _province(code: str) -> str | None:
    """The province-level unit of a 2-digit GB/T 2260 prefix, or None if there is none."""
    if code in _RESIDENCE_PERMIT_PROVINCES:
        return _RESIDENCE_PERMIT_PROVINCES[code]
    for _part, props in numdb.get("cn/loc").info(code + "0000"):
        if "province" in props:
            return props["province"]
    return None


def _county(area_code: str) -> str | None:
    """The unit's name in the GB/T 2260 table (also abolished ones: a number is for life)."""
    names = [props["county"] for _part, props in numdb.get("cn/loc").info(area_code) if "county" in props]
    if not names:
        return None
    # Entries look like "[1983-2013]白下区" or "东城区"; several may share a code over time.
    return names[0].split(",")[-1].split("]")[-1]


def _normalise(text: str) -> str:
    if not isinstance(text, str):
        raise TypeError("an identity number is a string")
    return text.strip().upper()


# ---------------------------------------------------------------------- resident numbers


def resident_id_errors(text: str, today: date) -> list[NumberError]:
    """Every rule `text` breaks as a resident identity number (empty: it is valid)."""
    number = _normalise(text)
    if len(number) != 18:
        return [NumberError(NumberRule.LENGTH, f"a resident identity number has 18 characters, got {len(number)}")]
    if not (number[:17].isascii() and number[:17].isdigit() and (number[17].isdigit() or number[17] == "X")):
        return [NumberError(NumberRule.CHARACTERS, "a resident identity number is 17 digits and a digit or X")]
    errors: list[NumberError] = []
    expected = ric.calc_check_digit(number)
    if number[17] != expected:
        errors.append(NumberError(NumberRule.CHECK_CHARACTER,
                                  f"check character is {number[17]}, but the first 17 digits give {expected}"))
    errors.extend(_birth_date_errors(number[6:14], today))
    if _province(number[:2]) is None:
        errors.append(NumberError(NumberRule.AREA_CODE,
                                  f"area code {number[:6]} starts with {number[:2]}, which is no province (GB/T 2260)"))
    return errors


def _birth_date_errors(digits: str, today: date) -> list[NumberError]:
    try:
        born = date(int(digits[:4]), int(digits[4:6]), int(digits[6:]))
    except ValueError:
        return [NumberError(NumberRule.BIRTH_DATE_INVALID, f"birth date {digits} is not a calendar date")]
    if born > today:
        return [NumberError(NumberRule.BIRTH_DATE_IN_FUTURE, f"birth date {born} is in the future")]
    if born.year < EARLIEST_BIRTH_YEAR:
        return [NumberError(NumberRule.BIRTH_DATE_TOO_EARLY, f"birth date {born} is before {EARLIEST_BIRTH_YEAR}")]
    return []


@dataclass(frozen=True)
class ResidentIdNumber:
    """A valid resident identity number (upper-case X). Personal data: never log or emit it."""

    value: str

    @classmethod
    def parse(cls, text: str, today: date) -> "ResidentIdNumber":
        """Accept a valid number (lower-case x too) or raise InvalidIdentityNumber with every error."""
        errors = resident_id_errors(text, today)
        if errors:
            raise InvalidIdentityNumber("resident identity number", errors)
        return cls(_normalise(text))

    @property
    def area_code(self) -> str:
        return self.value[:6]

    @property
    def province(self) -> str:
        return _province(self.value[:2]) or ""

    @property
    def area_name(self) -> str | None:
        """The county-level unit, if the GB/T 2260 table knows the code (informative only)."""
        return _county(self.area_code)

    @property
    def birth_date(self) -> date:
        return date(int(self.value[6:10]), int(self.value[10:12]), int(self.value[12:14]))

    @property
    def sex(self) -> str:
        """GB 11643: the sequence's last digit is odd for men, even for women."""
        return "male" if int(self.value[16]) % 2 else "female"

    def masked(self) -> str:
        return mask(self.value)

    def __repr__(self) -> str:  # keeps the full number out of tracebacks and logs
        return f"ResidentIdNumber({self.masked()!r})"

    __str__ = __repr__


# ---------------------------------------------------------------------- credit codes


def credit_code_errors(text: str) -> list[NumberError]:
    """Every rule `text` breaks as a unified social credit code (empty: it is valid)."""
    code = _normalise(text)
    if len(code) != 18:
        return [NumberError(NumberRule.LENGTH, f"a unified social credit code has 18 characters, got {len(code)}")]
    bad = sorted({c for c in code if c not in CREDIT_CODE_ALPHABET})
    if bad:
        return [NumberError(NumberRule.CHARACTERS,
                            f"characters {''.join(bad)!r} are not allowed (digits and capitals without I, O, Z, S, V)")]
    errors: list[NumberError] = []
    # stdnum's validate() wants 8 leading digits, which refuses the codes of departments
    # A, N and Y; only its check character calculation is used.
    expected = uscc.calc_check_digit(code[:17])
    if code[17] != expected:
        errors.append(NumberError(NumberRule.CHECK_CHARACTER,
                                  f"check character is {code[17]}, but the first 17 characters give {expected}"))
    department = REGISTRATION_DEPARTMENTS.get(code[0])
    if department is None:
        errors.append(NumberError(NumberRule.REGISTRATION_DEPARTMENT,
                                  f"{code[0]} is no registration department code of GB 32100"))
    elif code[1] not in department[1]:
        allowed = ", ".join(sorted(department[1]))
        errors.append(NumberError(NumberRule.ORGANISATION_TYPE,
                                  f"{code[1]} is no organisation type of department {code[0]} (allowed: {allowed})"))
    admin = code[2:8]
    if not admin.isdigit() or (admin != _NATIONAL_ADMIN_CODE and _province(admin[:2]) is None):
        errors.append(NumberError(NumberRule.ADMIN_CODE,
                                  f"{admin} is no administrative division code (GB/T 2260) nor 100000"))
    return errors


@dataclass(frozen=True)
class CreditCode:
    """A valid unified social credit code: an enterprise's or organisation's identity."""

    value: str

    @classmethod
    def parse(cls, text: str) -> "CreditCode":
        errors = credit_code_errors(text)
        if errors:
            raise InvalidIdentityNumber("unified social credit code", errors)
        return cls(_normalise(text))

    @property
    def registration_department(self) -> str:
        return self.value[0]

    @property
    def organisation_type(self) -> str:
        return self.value[1]

    @property
    def admin_code(self) -> str:
        return self.value[2:8]

    @property
    def organisation_code(self) -> str:
        """The 9-character organisation code (the former 组织机构代码)."""
        return self.value[8:17]

    def masked(self) -> str:
        return mask(self.value)


def credit_code_check_character(first_17: str) -> str:
    """The check character completing 17 characters into a code (for making test codes)."""
    return uscc.calc_check_digit(_normalise(first_17))


def resident_id_check_character(first_17: str) -> str:
    """The check character completing 17 digits into a resident identity number."""
    return ric.calc_check_digit(_normalise(first_17) + "0")


# ---------------------------------------------------------------------- masking


def mask(number: str, keep_start: int = 4, keep_end: int = 4, fill: str = "*") -> str:
    """'320104199001011234' -> '3201**********1234': for roles that do not need the full number.

    Too short to hide anything (keep_start + keep_end >= length): everything is masked.
    """
    if keep_start < 0 or keep_end < 0:
        raise ValueError("keep_start and keep_end must not be negative")
    if keep_start + keep_end >= len(number):
        return fill * len(number)
    end = number[len(number) - keep_end:] if keep_end else ""
    return number[:keep_start] + fill * (len(number) - keep_start - keep_end) + end
