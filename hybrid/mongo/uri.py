"""Connection URIs in messages and logs: the password never shows."""

from __future__ import annotations

import re
from urllib.parse import unquote

_CREDENTIALS = re.compile(r"(?<=://)([^:/@]*):(.*)@")  # to the last @: over-redact, never under
_PASSWORD_OPTION = re.compile(r"(?i)(password=)[^&\s]*")


def redact(uri: str) -> str:
    """The URI with its password replaced by ***."""
    return _PASSWORD_OPTION.sub(r"\1***", _CREDENTIALS.sub(r"\1:***@", uri))


def scrub(text: str, uri: str | None) -> str:
    """`text` (an error message, say) without the password of `uri`, quoted or not."""
    text = redact(text)
    match = _CREDENTIALS.search(uri or "")
    secret = match.group(2) if match else ""
    for literal in filter(None, {secret, unquote(secret)}):
        text = text.replace(literal, "***")
    return text
