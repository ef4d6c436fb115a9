"""Names that identify someone: agent codes, usernames, and the password rule.

Look-alike identities (issue 15) are refused or folded here, before anything is stored:

- an agent code is plain ASCII (letters, digits, ``.``, ``_``, ``:``, ``-``), so Cyrillic
  letters, zero-width joiners, bidi overrides and fullwidth forms cannot spell a second
  "billing" next to the real one;
- a username is NFKC-normalised and trimmed; control, zero-width, bidi and other invisible
  characters and whitespace are refused, and so is a name mixing Latin, Greek and Cyrillic
  letters (``admin`` spelt with a Cyrillic ``a``, U+0430);
- usernames are unique without regard to case: ``username_key`` is the folded form the database
  keeps unique (store/tables.py, migration 0004) and login looks users up by.
"""

from __future__ import annotations

import re
import unicodedata

AGENT_CODE_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._:-]*$"
AGENT_CODE_MAX_LENGTH = 120
USERNAME_MAX_LENGTH = 320
MIN_PASSWORD_LENGTH = 12

# Cc control, Cf format (zero-width space/joiners, bidi overrides and isolates, soft hyphen),
# Cs surrogates, Co private use, Cn unassigned; Z* every kind of space and line separator.
_REFUSED_CATEGORIES = frozenset({"Cc", "Cf", "Cs", "Co", "Cn", "Zs", "Zl", "Zp"})
# The scripts whose letters are confusable with one another (UTS #39's classic trio).
_CONFUSABLE_SCRIPTS = ("LATIN", "GREEK", "CYRILLIC")
_AGENT_CODE = re.compile(AGENT_CODE_PATTERN)


def agent_code_problem(code: str) -> str | None:
    if not 1 <= len(code) <= AGENT_CODE_MAX_LENGTH or not _AGENT_CODE.match(code):
        return (
            f"must be 1-{AGENT_CODE_MAX_LENGTH} ASCII letters, digits, '.', '_', ':' or '-', "
            "starting with a letter or digit"
        )
    return None


def _script(ch: str) -> str | None:
    if not ch.isalpha():
        return None
    name = unicodedata.name(ch, "")
    return next((s for s in _CONFUSABLE_SCRIPTS if name.startswith(s + " ")), None)


def normalize_username(raw: str) -> str:
    """The username to store: NFKC, trimmed. Raises ``ValueError`` saying what is wrong."""
    name = unicodedata.normalize("NFKC", raw).strip()
    if not name:
        raise ValueError("must not be empty")
    if len(name) > USERNAME_MAX_LENGTH:
        raise ValueError(f"must be at most {USERNAME_MAX_LENGTH} characters")
    for ch in name:
        if unicodedata.category(ch) in _REFUSED_CATEGORIES:
            raise ValueError(
                f"must not contain spaces, control, zero-width or bidi characters "
                f"(found U+{ord(ch):04X})"
            )
    scripts = {s for s in map(_script, name) if s}
    if len(scripts) > 1:
        raise ValueError(f"must not mix {' and '.join(sorted(scripts)).title()} letters")
    return name


def username_key(name: str) -> str:
    """The case-free form usernames are unique by (NFKC_Casefold of the trimmed name).

    Total: it never refuses, so it also folds usernames stored before the rules above.
    """
    folded = unicodedata.normalize("NFKC", name).strip().casefold()
    return unicodedata.normalize("NFKC", folded)


def password_problem(username: str, password: str) -> str | None:
    """The one password rule, everywhere a password is set (API, CLI, bootstrap)."""
    if len(password) < MIN_PASSWORD_LENGTH:
        return f"Password must be at least {MIN_PASSWORD_LENGTH} characters."
    if username_key(password) == username_key(username):
        return "Password must not equal the username."
    return None
