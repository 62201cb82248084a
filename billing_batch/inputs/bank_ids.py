"""The SEPA identifiers (IBAN, BIC, Mandate ID, Creditor ID), checked in plain words. The input check
reports a bad one early; the charge post task refuses to collect with it."""
from __future__ import annotations

import re


SEPA_TEXT = re.compile(r"^[A-Za-z0-9/\-?:().,'+ ]+$")  # the SEPA character set for IDs and references
MAX_ID = 35


def iban_problem(text: str) -> str | None:
    """None if text is a valid IBAN (spaces allowed), else what is wrong, in plain words."""
    if not text or not text.strip():
        return "the IBAN is blank"
    from schwifty import IBAN  # its bank registry takes a tenth of a second to load: only for a workbook with IBANs
    from schwifty.exceptions import SchwiftyException

    try:
        IBAN(text)
    except SchwiftyException as exc:
        return f"{text.strip()!r} is not a valid IBAN ({_plain_error(exc)})"
    return None


def bic_problem(text: str) -> str | None:
    """None if text is a well-formed BIC (8 or 11 characters), else what is wrong."""
    if not text or not text.strip():
        return "the BIC is blank"
    from schwifty import BIC
    from schwifty.exceptions import SchwiftyException

    try:
        BIC(text.strip())
    except SchwiftyException as exc:
        return f"{text.strip()!r} is not a valid BIC ({_plain_error(exc)})"
    return None


def mandate_id_problem(text: str) -> str | None:
    """None if text can be a SEPA mandate reference: 1 to 35 of A-Z a-z 0-9 / - ? : ( ) . , ' + space."""
    text = (text or "").strip()
    if not text:
        return "the Mandate ID is blank"
    if len(text) > MAX_ID:
        return f"the Mandate ID {text!r} is longer than {MAX_ID} characters"
    if not SEPA_TEXT.match(text):
        return f"the Mandate ID {text!r} holds characters SEPA does not allow (use letters, digits and / - ? : ( ) . , ' +)"
    return None


def creditor_id_problem(text: str) -> str | None:
    """None if text is a valid SEPA Creditor Identifier (e.g. DE98ZZZ09999999999), else what is wrong.
    Its check digits are ISO 7064 MOD 97-10 over the national identifier and the country code,
    leaving out the 3-character business code."""
    ci = re.sub(r"\s", "", text or "").upper()
    if not ci:
        return "the Creditor ID is blank"
    if not re.fullmatch(r"[A-Z]{2}[0-9]{2}[A-Z0-9]{3}[A-Z0-9]{1,28}", ci):
        return f"{text.strip()!r} is not a SEPA Creditor Identifier (such as DE98ZZZ09999999999)"
    digits = "".join(str(int(c, 36)) for c in ci[7:] + ci[:2] + ci[2:4])
    if int(digits) % 97 != 1:
        return f"{text.strip()!r} is not a valid SEPA Creditor Identifier (its check digits do not match)"
    return None


def _plain_error(exc: Exception) -> str:
    text = str(exc).strip()
    return text[0].lower() + text[1:] if text else type(exc).__name__
