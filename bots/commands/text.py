"""Pure: the command text of a message, with mention pills turned back into user ids.

Element writes a mention as ``<a href="https://matrix.to/#/@alice:server">Alice</a>`` in
``formatted_body`` and only the display name in ``body``; commands need the user id.
"""

from __future__ import annotations

import html
import re
from collections.abc import Mapping
from typing import Any

_PILL = re.compile(
    r"<a\s+[^>]*href=\"https://matrix\.to/#/(@[^\"?/]+)[^\"]*\"[^>]*>.*?</a>", re.I | re.S
)
_TAG = re.compile(r"<[^>]+>")
_REPLY_FALLBACK = re.compile(r"<mx-reply>.*?</mx-reply>", re.I | re.S)


def command_text(content: Mapping[str, Any]) -> str:
    body = content.get("body")
    if not isinstance(body, str):
        return ""
    formatted = content.get("formatted_body")
    if content.get("format") == "org.matrix.custom.html" and isinstance(formatted, str):
        text = _REPLY_FALLBACK.sub("", formatted)
        text = _PILL.sub(lambda m: html.unescape(m.group(1)).replace("%3A", ":"), text)
        text = text.replace("<br>", " ").replace("<br/>", " ").replace("<br />", " ")
        return html.unescape(_TAG.sub("", text)).strip()
    # plain body: drop a reply fallback ("> <@x> quoted" lines then a blank line)
    lines = body.split("\n")
    while lines and lines[0].startswith("> "):
        lines.pop(0)
    return "\n".join(lines).strip()


def is_edit(content: Mapping[str, Any]) -> bool:
    relates = content.get("m.relates_to")
    return isinstance(relates, Mapping) and relates.get("rel_type") == "m.replace"
