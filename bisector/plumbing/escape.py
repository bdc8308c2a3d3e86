"""Text from commits and configs, made inert for the systems it is sent to.

A commit subject or a config key is written by whoever can push: in Slack `<!channel>`
pings everyone and `<https://evil|docs>` is a disguised link; in a Markdown report
`<script>`, `[docs](https://evil)` and `![x](https://tracker)` are live. Both helpers
keep the text readable and only take the meaning out of the characters. Control
characters (an ESC that starts a terminal escape sequence, a carriage return that hides
what came before it) are shown as `\\x1b`, not sent: a report or an alert is read in a
terminal too (`cat report.md`). So are Unicode format characters, shown as `\\u202e`
(as Python's `repr` shows them): a RIGHT-TO-LEFT OVERRIDE makes `fix\\u202etxt.exe` read
as `fixexe.txt`, and zero-width ones hide text.
"""

from __future__ import annotations

import re
import unicodedata

__all__ = ["markdown_code", "markdown_text", "one_line", "slack_text", "visible"]

# Candidates: anything but tab, newline and printable ASCII; `_shown` decides.
_SUSPECT = re.compile(r"[^\t\n\x20-\x7e]")
# Format characters that are kept: the zero-width (non-)joiners shape emoji sequences and
# many scripts, and reorder nothing.
_KEPT_FORMAT = frozenset("\u200c\u200d")


def _shown(ch: str) -> str:
    code = ord(ch)
    # C0 controls, DEL and the C1 controls (U+0080-U+009F: a terminal reads U+009B as an
    # escape sequence's start, like ESC [).
    if code < 0x20 or 0x7F <= code <= 0x9F:
        return f"\\x{code:02x}"
    # Format characters (Cf): the bidi controls U+200E/F, U+202A-U+202E, U+2066-U+2069,
    # U+061C, zero-width ones, the BOM, tag characters.
    if unicodedata.category(ch) == "Cf" and ch not in _KEPT_FORMAT:
        return f"\\u{code:04x}" if code <= 0xFFFF else f"\\U{code:08x}"
    return ch


def visible(text: str) -> str:
    """`text` with every control character but tab and newline written out as `\\xNN`, and
    every Unicode format character (bidi overrides, zero-width ones) as `\\uNNNN`."""
    return _SUSPECT.sub(lambda m: _shown(m.group()), text)


def one_line(text: str) -> str:
    """`visible(text)` kept on its line: a line break (git allows one in a file name, YAML
    in a key) is written `\\n`, so it cannot start a line of its own, such as an `error:`
    line or a row of a table that reads as another file."""
    return visible(text).replace("\n", "\\n")


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
