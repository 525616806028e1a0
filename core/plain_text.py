"""Text people typed, shown as HTML: escaped, line breaks kept, web addresses as links.
Pure text work (no ORM); contacts' notes use it."""

from __future__ import annotations

import re

from django.utils.html import escape, format_html
from django.utils.safestring import SafeString, mark_safe

# A web address: http(s) only (never javascript: or data:), up to a space or a character
# that cannot be part of it unescaped.
_LINK = re.compile(r"https?://[^\s<>\"'`]+", re.IGNORECASE)
# Punctuation that ends the sentence around an address ("see https://x.test/a.").
_TRAILING = ".,;:!?'\"»”’"


def _link_end(url: str) -> str:
    """The address without the sentence's punctuation, or a ")" closing a parenthesis
    opened before it ("(see https://x.test/wiki/A_(b))" keeps the "(b)")."""
    while url and (url[-1] in _TRAILING or (url[-1] == ")" and url.count(")") > url.count("("))):
        url = url[:-1]
    return url


def plain_text_html(text: str) -> SafeString:
    """`text` as HTML: everything escaped, line breaks as <br>, http(s) addresses as links
    that open apart and vouch for nothing (rel="noopener nofollow ugc")."""
    parts: list[str] = []
    position = 0
    for match in _LINK.finditer(text):
        url = _link_end(match.group(0))
        if not url.split("://", 1)[1]:
            continue
        parts.append(escape(text[position : match.start()]))
        parts.append(
            format_html('<a href="{}" rel="noopener nofollow ugc" target="_blank">{}</a>', url, url)
        )
        position = match.start() + len(url)
    parts.append(escape(text[position:]))
    return mark_safe("".join(parts).replace("\n", "<br>"))  # noqa: S308 (escaped above)
