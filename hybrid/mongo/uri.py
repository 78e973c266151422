"""Connection URIs in messages and logs: the password never shows."""

from __future__ import annotations

import re
from urllib.parse import unquote

# user:password@ after the scheme (or at the start of a URI missing its scheme), to the
# last @: over-redact, never under
_CREDENTIALS = re.compile(r"(?<=://)([^:/@\s]*):(.*)@")
_BARE_CREDENTIALS = re.compile(r"^([^:/@\s]*):(.*)@")
_PASSWORD_OPTION = re.compile(r"(?i)(password=)[^&\s]*")


def _credentials(uri: str) -> re.Pattern[str]:
    return _CREDENTIALS if "://" in uri else _BARE_CREDENTIALS


def redact(uri: str) -> str:
    """The URI with its password replaced by ***."""
    return _PASSWORD_OPTION.sub(r"\1***", _credentials(uri).sub(r"\1:***@", uri))


def scrub(text: str, uri: str | None) -> str:
    """`text` (an error message, say) without the password of `uri`, quoted or not."""
    text = redact(text)
    match = _credentials(uri or "").search(uri or "")
    secret = match.group(2) if match else ""
    for literal in filter(None, {secret, unquote(secret)}):
        text = text.replace(literal, "***")
    return text
