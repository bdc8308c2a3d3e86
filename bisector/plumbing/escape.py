"""Text from commits and configs, made inert for the systems it is sent to.

A commit subject or a config key is written by whoever can push: in Slack `<!channel>`
pings everyone and `<https://evil|docs>` is a disguised link; in a Markdown report
`<script>`, `[docs](https://evil)` and `![x](https://tracker)` are live. Both helpers
keep the text readable and only take the meaning out of the characters. Control
characters (an ESC that starts a terminal escape sequence, a carriage return that hides
what came before it) are shown as `\\x1b`, not sent: a report or an alert is read in a
terminal too (`cat report.md`).
"""

from __future__ import annotations

import re

__all__ = ["markdown_code", "markdown_text", "slack_text", "visible"]

# C0 controls but tab, DEL and the C1 controls (U+0080-U+009F: a terminal reads U+009B as
# an escape sequence's start, like ESC [).
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")


def visible(text: str) -> str:
    """`text` with every control character but tab and newline written out as `\\xNN`."""
    return _CONTROL.sub(lambda m: f"\\x{ord(m.group()):02x}", text)


def slack_text(text: str) -> str:
    """Slack's own escaping of message text: `&`, `<` and `>` as entities.

    Mentions (`<!channel>`, `<@U123>`) and links (`<url|label>`) need `<`, so none is
    left; `&` goes first so an entity already in the text stays literal.
    """
    return visible(text).replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


# Markdown's punctuation that can start markup inline, plus `|` (tables) and `<`/`>`/`&`
# (HTML, which Markdown renderers pass through).
_MD_SPECIAL = re.compile(r"([\\`*_{}\[\]()#+!|~])")


def markdown_text(text: str) -> str:
    """`text` as literal Markdown inline text, on one line: markup escaped, HTML as entities."""
    text = visible(" ".join(text.splitlines()))
    text = text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    return _MD_SPECIAL.sub(r"\\\1", text)


def markdown_code(text: str, *, in_table: bool = False) -> str:
    """`text` as one Markdown code span: a fence longer than any run of backticks in it.

    Inside a code span nothing is markup and HTML is shown, not run; only a backtick
    could close it early, and in a table row only `|` could end the cell.
    """
    text = visible(" ".join(str(text).splitlines()))
    longest = max((len(run) for run in re.findall(r"`+", text)), default=0)
    fence = "`" * (longest + 1)
    pad = " " if text.startswith("`") or text.endswith("`") or longest else ""
    if in_table:
        text = text.replace("|", "\\|")
    return f"{fence}{pad}{text}{pad}{fence}"
