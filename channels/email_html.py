"""What a reader sees of an HTML e-mail, as text, without the history quoted under it.

Some mail programs send a reply as HTML only (no ``text/plain`` part), and
an inbound service then posts an empty ``text`` and the HTML beside it. Read
as empty, a customer's "STOP" in such a mail would be lost, and a question
would be met with silence. The HTML is reduced to its text with the
standard library's HTML parser: block elements and ``<br>`` become line
breaks, scripts, styles and the head are left out, and reading stops at the
quoted history, which mail programs mark in their own ways (a
``<blockquote>``; Gmail's ``gmail_quote``; Thunderbird's
``moz-cite-prefix``; Outlook's ``divRplyFwdMsg`` and ``appendonsend``;
Apple Mail's ``<blockquote type="cite">``). What is left goes through the
same cut as a plain-text reply (``channels.email.reply_text``), for the
"On ... wrote:" line a program writes just before the quote.
"""

from __future__ import annotations

import re
from html.parser import HTMLParser

# Elements whose start or end is a line break in what a reader sees.
BLOCKS = frozenset({
    "address", "article", "aside", "br", "dd", "div", "dl", "dt", "footer", "h1", "h2",
    "h3", "h4", "h5", "h6", "header", "hr", "li", "ol", "p", "pre", "section", "table",
    "tr", "ul",
})
# Elements whose content nobody reads.
HIDDEN = frozenset({"head", "script", "style", "template", "title"})
# Where mail programs put the message being answered (class or id values).
QUOTE_MARKS = frozenset({"gmail_quote", "gmail_attr", "moz-cite-prefix", "divrplyfwdmsg",
                         "appendonsend", "yahoo_quoted", "protonmail_quote"})
VOID = frozenset({"area", "base", "br", "col", "embed", "hr", "img", "input", "link",
                  "meta", "source", "track", "wbr"})
MAX_HTML = 1_000_000  # characters read; a reply's own words come first


class _Reader(HTMLParser):
    """Collects the visible text until the quoted history starts."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []
        self.hidden = 0  # depth inside elements nobody reads
        self.quoted = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if self.quoted:
            return
        marks = {word.lower() for name, value in attrs if name in ("class", "id") and value
                 for word in value.split()}
        if tag == "blockquote" or marks & QUOTE_MARKS:
            self.quoted = True
            return
        if tag in HIDDEN:
            self.hidden += 1
        elif tag in BLOCKS:
            self.parts.append("\n")

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.handle_starttag(tag, attrs)
        if tag not in VOID:
            self.handle_endtag(tag)

    def handle_endtag(self, tag: str) -> None:
        if self.quoted:
            return
        if tag in HIDDEN:
            self.hidden = max(0, self.hidden - 1)
        elif tag in BLOCKS:
            self.parts.append("\n")

    def handle_data(self, data: str) -> None:
        if not self.quoted and not self.hidden:
            self.parts.append(data)


def _read(html: str) -> tuple[_Reader, bool]:
    """The reader fed ``html``, and whether the parser read all of it."""
    reader = _Reader()
    try:
        reader.feed(html)
        reader.close()
    except AssertionError:  # the standard parser's way of refusing markup
        return reader, False
    return reader, True


def html_text(html: str) -> str:
    """The text a reader sees above the quoted history of an HTML e-mail.

    Runs of spaces within a line become one (as a browser shows them), at
    most one empty line is kept between paragraphs, and non-breaking spaces
    are spaces, so keyword matching ("STOP") sees what the customer wrote.
    """
    html = html[:MAX_HTML]
    reader, whole = _read(html)
    if not whole:
        # The parser gives up on a "<![" that opens no marked section it
        # knows (found fuzzing it): read that as text, as a browser shows it.
        reader, _ = _read(html.replace("<![", "&lt;!["))
    text = "".join(reader.parts).replace("\xa0", " ")
    lines = [re.sub(r"[ \t\r\f\v]+", " ", line).strip() for line in text.split("\n")]
    return re.sub(r"\n{3,}", "\n\n", "\n".join(lines)).strip()


__all__ = ["html_text"]
