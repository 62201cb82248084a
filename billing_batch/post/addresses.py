"""Email addresses as a cell holds them (one or several, separated by ; or , not inside quotes), and the
sender's from Settings."""
from __future__ import annotations

import re
from email.utils import getaddresses

from billing_batch.model import Settings


def one_address(text: str) -> str:
    found = parse_addresses(text)
    return found[0][1] if len(found) == 1 else ""


ADDRESS = re.compile(r"^[^@\s<>(),;:\"\[\]]+@[^@\s<>(),;:\"\[\]]+\.[^@\s<>(),;:\"\[\]]+$")


def parse_addresses(text: str) -> list[tuple[str, str]]:
    """(display name, address) pairs from a cell that may hold several, separated by ; or , (not
    inside quotes). Raises ValueError with the first part that is not an address."""
    pairs = []
    for part in re.split(r'[;,](?=(?:[^"]*"[^"]*")*[^"]*$)', text):
        part = part.strip()
        if not part:
            continue
        found = getaddresses([part])
        if len(found) != 1 or not ADDRESS.match(found[0][1]):
            raise ValueError(part)
        pairs.append(found[0])
    return pairs


def addresses_problem(text: str) -> str | None:
    """For the input check of Email and CC cells: None if every address (separated by ; or ,) is one."""
    try:
        parse_addresses(text or "")
    except ValueError as exc:
        return f"{str(exc)!r} is not an email address"
    return None


def sender_problem(settings: Settings) -> str:
    sender = settings.smtp_from or settings.company_email
    if not sender.strip():
        return "No sender address: fill in SMTP From or Company Email in the Settings sheet."
    if not one_address(sender):
        return f"The sender address {sender!r} is not an email address: correct SMTP From or Company Email in Settings."
    return ""


def envelope_sender(settings: Settings) -> str:
    return one_address(settings.smtp_from or settings.company_email)
