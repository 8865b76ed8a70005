"""The report's document model and its two renderers.

Every section is a list of blocks (headings, paragraphs, lists, tables, preformatted text)
rendered twice: to HTML (``_repr_html_``, what nbconvert's HTML export uses) and to Markdown
(``_repr_markdown_``). All text in a block is *text*: whatever a server sent (headers,
bodies, error messages, URLs, labels, commands) is escaped in both outputs and can never
become markup, a link, an image or a table cell boundary. Escaping happens in one place,
the two renderers; the sections never build markup by hand.
"""

from __future__ import annotations

import html
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal


@dataclass(frozen=True, slots=True)
class Span:
    """Inline text with a style. The text is always escaped, whatever the style."""

    text: str
    style: Literal["", "b", "i", "code"] = ""


Inline = str | Span
Text = str | Span | tuple[Inline, ...] | list[Inline]


@dataclass(frozen=True, slots=True)
class Heading:
    level: int
    text: Text


@dataclass(frozen=True, slots=True)
class Para:
    text: Text


@dataclass(frozen=True, slots=True)
class ListBlock:
    items: Sequence[Text]
    ordered: bool = False


@dataclass(frozen=True, slots=True)
class Table:
    header: Sequence[str]
    rows: Sequence[Sequence[Text]]


@dataclass(frozen=True, slots=True)
class Pre:
    """Preformatted text: commands a reader can copy."""

    text: str


Block = Heading | Para | ListBlock | Table | Pre


def _spans(text: Text) -> list[Span]:
    if isinstance(text, str):
        return [Span(text)]
    if isinstance(text, Span):
        return [text]
    return [Span(t) if isinstance(t, str) else t for t in text]


_NEWLINES = re.compile(r"\r\n|\r|\n")


def html_text(text: str) -> str:
    """Text for HTML: every special character escaped; newlines become <br>."""
    return _NEWLINES.sub("<br>", html.escape(text, quote=True))


def _html_inline(text: Text) -> str:
    out = []
    for span in _spans(text):
        escaped = html_text(span.text)
        tag = {"b": "strong", "i": "em", "code": "code"}.get(span.style)
        out.append(f"<{tag}>{escaped}</{tag}>" if tag else escaped)
    return "".join(out)


def render_html(blocks: Sequence[Block]) -> str:
    # tex2jax_ignore / mathjax_ignore: a "$" in a server's text must not become math.
    parts = ['<div class="kiloscribe-report-section tex2jax_ignore mathjax_ignore">']
    for block in blocks:
        if isinstance(block, Heading):
            level = min(max(block.level, 1), 6)
            parts.append(f"<h{level}>{_html_inline(block.text)}</h{level}>")
        elif isinstance(block, Para):
            parts.append(f"<p>{_html_inline(block.text)}</p>")
        elif isinstance(block, ListBlock):
            tag = "ol" if block.ordered else "ul"
            items = "".join(f"<li>{_html_inline(item)}</li>" for item in block.items)
            parts.append(f"<{tag}>{items}</{tag}>")
        elif isinstance(block, Table):
            head = "".join(f"<th>{html_text(h)}</th>" for h in block.header)
            rows = "".join(
                "<tr>" + "".join(f"<td>{_html_inline(c)}</td>" for c in row) + "</tr>" for row in block.rows
            )
            parts.append(f"<table><thead><tr>{head}</tr></thead><tbody>{rows}</tbody></table>")
        else:
            parts.append(f"<pre><code>{html.escape(block.text, quote=True)}</code></pre>")
    parts.append("</div>")
    return "\n".join(parts)


# Backslash-escaped in Markdown: every character that can start or end markup inline
# (emphasis, code, links and images, tables, headings, strikethrough). "$" (math in
# Jupyter and GitHub) and < > & (raw HTML, entities) become HTML entities.
_MD_SPECIAL = re.compile(r"([\\`*_\[\]|#~])")
_MD_LINE_START = re.compile(r"^(\s*)(?:([-+=])|(\d+)([.)]))")


def md_text(text: str) -> str:
    """Text for Markdown: nothing in it can become markup; newlines become <br>."""
    escaped = _MD_SPECIAL.sub(r"\\\1", text)  # first: the entities below bring their own "#"
    escaped = escaped.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;").replace("$", "&#36;")
    return _NEWLINES.sub("<br>", escaped)


def _md_guard(line: str) -> str:
    """A block's first characters must not start a list, a heading underline or a code block."""

    def fix(m: re.Match[str]) -> str:
        if m.group(2):
            return "\\" + m.group(2)
        return f"{m.group(3)}\\{m.group(4)}"

    return _MD_LINE_START.sub(fix, line.lstrip(), count=1)


def _md_inline(text: Text) -> str:
    out = []
    for span in _spans(text):
        escaped = md_text(span.text)
        if span.style == "code":
            out.append(f"<code>{escaped}</code>" if escaped else "")
        elif span.style in {"b", "i"} and escaped.strip():
            plain = span.text[:1].isalnum() and span.text[-1:].isalnum()
            if plain:
                mark = "**" if span.style == "b" else "*"
                out.append(f"{mark}{escaped}{mark}")
            else:  # emphasis next to punctuation may not parse: say it in HTML
                tag = "strong" if span.style == "b" else "em"
                out.append(f"<{tag}>{escaped}</{tag}>")
        else:
            out.append(escaped)
    return "".join(out)


def render_markdown(blocks: Sequence[Block]) -> str:
    parts = []
    for block in blocks:
        if isinstance(block, Heading):
            level = min(max(block.level, 1), 6)
            parts.append("#" * level + " " + _md_inline(block.text))
        elif isinstance(block, Para):
            parts.append(_md_guard(_md_inline(block.text)))
        elif isinstance(block, ListBlock):
            lines = []
            for n, item in enumerate(block.items, 1):
                marker = f"{n}." if block.ordered else "-"
                lines.append(f"{marker} {_md_guard(_md_inline(item))}")
            parts.append("\n".join(lines))
        elif isinstance(block, Table):
            if not block.header:
                continue
            lines = [
                "| " + " | ".join(md_text(h) for h in block.header) + " |",
                "|" + "|".join("---" for _ in block.header) + "|",
            ]
            for row in block.rows:
                cells = [_md_inline(c) for c in row]
                cells += [""] * (len(block.header) - len(cells))
                lines.append("| " + " | ".join(cells) + " |")
            parts.append("\n".join(lines))
        else:
            # An HTML block: its content is not Markdown, the entities are decoded by the browser.
            body = html.escape(block.text, quote=False).replace("$", "&#36;")
            parts.append(f"<pre><code>{body}</code></pre>")
    return "\n\n".join(parts) + "\n"


@dataclass(frozen=True)
class Section:
    """One part of the report, displayable as HTML and as Markdown."""

    name: str
    blocks: tuple[Block, ...]

    def html(self) -> str:
        return render_html(self.blocks)

    def markdown(self) -> str:
        return render_markdown(self.blocks)

    def _repr_html_(self) -> str:
        return self.html()

    def _repr_markdown_(self) -> str:
        return self.markdown()

    def __repr__(self) -> str:
        return f"<report section: {self.name}>"
