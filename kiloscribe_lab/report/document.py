"""The report's document model and its two renderers.

Every section is a list of blocks (headings, paragraphs, lists, tables, preformatted text,
collapsible details, a status banner, a table of contents, figures) rendered twice: to HTML
(``_repr_html_``, what nbconvert's HTML export uses) and to Markdown (``_repr_markdown_``).
All text in a block is *text*: whatever a server sent (headers, bodies, error messages, URLs,
labels, commands) is escaped in both outputs and can never become markup, a link, an image or
a table cell boundary. Escaping happens in one place, the two renderers; the sections never
build markup by hand. Links only point inside the page, to anchors made by ``anchor``.

Markdown is written as a person would write it: code spans in backticks, bold in ``**``,
fenced code blocks, and a backslash only before a character that would otherwise be markup
(``snake_case`` stays as it is). HTML is used only where Markdown has no construct: anchors,
``<details>``, and a ``<br>`` for a line break inside a server's text.
"""

from __future__ import annotations

import base64
import hashlib
import html
import re
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

from kiloscribe_lab.untrusted import visible

Tone = Literal["critical", "warning", "info", "ok", "down", "degraded", "healthy", "incomplete", "neutral"]
# What a tone looks like in Markdown, where there is no colour (HTML uses the CSS classes).
TONE_ICONS: dict[str, str] = {
    "critical": "🔴",
    "down": "🔴",
    "warning": "🟠",
    "degraded": "🟠",
    "info": "🔵",
    "ok": "✅",
    "healthy": "✅",
    "incomplete": "⚪",
    "neutral": "",
}
BlockClass = Literal["", "meta", "headline", "note", "steps"]
LONG_CODE = 32  # characters: a longer code span may wrap inside (a URL); a shorter one does not

_ANCHOR = re.compile(r"^[a-z][a-z0-9-]{0,95}$")


def anchor(prefix: str, key: str) -> str:
    """A fragment id for ``key`` (any text): readable, and unique for distinct keys."""
    slug = re.sub(r"[^a-z0-9]+", "-", key.lower()).strip("-")[:60]
    if f"{prefix}-{slug}".strip("-") != f"{prefix}-{key}".strip("-"):
        # The slug lost something (case, punctuation): a hash keeps distinct keys apart.
        slug = f"{slug}-{hashlib.sha1(key.encode()).hexdigest()[:8]}".strip("-")
    return f"{prefix}-{slug}" if slug else prefix


def github_slug(text: str) -> str:
    """The anchor GitHub (and most Markdown viewers) give a heading with this text."""
    lowered = unicodedata.normalize("NFKC", text).strip().lower()
    kept = "".join(c for c in lowered if c.isalnum() or c in " -_")
    return kept.replace(" ", "-")


def _checked(fragment: str) -> str:
    if not _ANCHOR.match(fragment):
        raise ValueError(f"not an anchor made by document.anchor: {fragment!r}")
    return fragment


# --- inline ---------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Span:
    """Inline text with a style. The text is always escaped, whatever the style."""

    text: str
    style: Literal["", "b", "i", "code", "nowrap"] = ""


@dataclass(frozen=True, slots=True)
class Link:
    """A link to an anchor of this page; ``md_anchor`` where the Markdown has no such anchor
    (table rows have none there: a link to a row goes to its table)."""

    text: str
    anchor: str
    md_anchor: str | None = None


@dataclass(frozen=True, slots=True)
class Badge:
    """A word with a tone: coloured in HTML, with an icon in Markdown; the word says it all."""

    text: str
    tone: Tone


Inline = str | Span | Link | Badge
Text = str | Span | Link | Badge | tuple[Inline, ...] | list[Inline]


def rich(text: str) -> tuple[Inline, ...]:
    """Our own prose (a finding's text) with its `code` in backticks as code spans."""
    out: list[Inline] = []
    pos = 0
    for m in re.finditer(r"(`+)(.+?)\1(?!`)", text, flags=re.S):
        if m.start() > pos:
            out.append(text[pos : m.start()])
        out.append(Span(m.group(2).strip() or m.group(2), "code"))
        pos = m.end()
    if pos < len(text):
        out.append(text[pos:])
    return tuple(out)


def plain_text(text: Text) -> str:
    return "".join(i if isinstance(i, str) else i.text for i in _inlines(text))


# --- blocks ---------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Heading:
    level: int
    text: Text
    anchor: str | None = None


@dataclass(frozen=True, slots=True)
class Para:
    text: Text
    cls: BlockClass = ""


@dataclass(frozen=True, slots=True)
class ListBlock:
    items: Sequence[Text]
    ordered: bool = False
    cls: BlockClass = ""


@dataclass(frozen=True, slots=True)
class Table:
    """A table; a column whose cells are all numbers is right-aligned, text left-aligned.
    ``row_anchors``: an anchor per row (or None), what evidence links point at."""

    header: Sequence[str]
    rows: Sequence[Sequence[Text]]
    row_anchors: Sequence[str | None] | None = None


@dataclass(frozen=True, slots=True)
class Pre:
    """Preformatted text: commands a reader can copy."""

    text: str


@dataclass(frozen=True, slots=True)
class Details:
    """A collapsible part: closed in HTML until opened (or a link into it opens it)."""

    summary: str
    blocks: tuple[Block, ...]
    anchor: str | None = None


@dataclass(frozen=True, slots=True)
class Banner:
    """The status, first thing on the page: a word (always there) and a colour."""

    tone: Tone
    word: str
    text: Text
    anchor: str | None = None


@dataclass(frozen=True, slots=True)
class Entry:
    text: str
    anchor: str
    children: tuple[Entry, ...] = ()


@dataclass(frozen=True, slots=True)
class Contents:
    """The table of contents: links to the sections and their parts."""

    entries: tuple[Entry, ...]
    anchor: str = "contents"


@dataclass(frozen=True, slots=True)
class Figure:
    """A chart: embedded in the HTML, a file beside the Markdown (``findings_files/NAME.png``),
    with its text alternative as the alt text and the caption."""

    name: str
    png: bytes
    alt: str
    caption: Text = ""
    anchor: str | None = None

    @property
    def path(self) -> str:
        return f"findings_files/{re.sub(r'[^a-z0-9-]+', '-', self.name.lower())}.png"


Block = Heading | Para | ListBlock | Table | Pre | Details | Banner | Contents | Figure


def _inlines(text: Text) -> list[Inline]:
    if isinstance(text, str | Span | Link | Badge):
        return [text]
    return list(text)


def _numeric(text: str) -> bool:
    return bool(re.fullmatch(r"[+\-−]?\d[\d,]*(\.\d+)?( ?(%|ms|s|points))?|\d+ ?/ ?\d+|\d+ of \d+", text))


def numeric_columns(table: Table) -> list[bool]:
    """Which columns hold numbers only ("—", "n/a" and empty cells aside)."""
    out = []
    for i in range(len(table.header)):
        cells = [plain_text(row[i]).strip() for row in table.rows if i < len(row)]
        values = [c for c in cells if c not in {"", "—", "n/a", "-"}]
        out.append(bool(values) and all(_numeric(c) for c in values))
    return out


# --- HTML -----------------------------------------------------------------------------------

_NEWLINES = re.compile(r"\r\n|\r|\n")


def _shown(text: str) -> str:
    """Text as it may appear in either output: control characters (ESC, NUL, C1, bidi
    overrides: a server's) shown as escapes, lone surrogates replaced; newlines kept."""
    return visible(text.replace("\r\n", "\n").replace("\r", "\n"), newlines=True)


def html_text(text: str) -> str:
    """Text for HTML: every special character escaped; newlines become <br>."""
    return _NEWLINES.sub("<br>", html.escape(_shown(text), quote=True))


def _html_inline(text: Text) -> str:
    out = []
    for item in _inlines(text):
        if isinstance(item, str):
            out.append(html_text(item))
        elif isinstance(item, Link):
            out.append(f'<a href="#{_checked(item.anchor)}">{html_text(item.text)}</a>')
        elif isinstance(item, Badge):
            out.append(f'<span class="badge badge-{_tone(item.tone)}">{html_text(item.text)}</span>')
        elif item.style == "code":
            # A long one (a URL) may break anywhere; a short one (a flag) never does.
            long = ' class="long"' if len(item.text) > LONG_CODE else ""
            out.append(f"<code{long}>{html_text(item.text)}</code>")
        elif item.style == "nowrap":
            out.append(f'<span class="nowrap">{html_text(item.text)}</span>')
        else:
            tag = {"b": "strong", "i": "em"}.get(item.style)
            escaped = html_text(item.text)
            out.append(f"<{tag}>{escaped}</{tag}>" if tag else escaped)
    return "".join(out)


def _tone(tone: str) -> str:
    if tone not in TONE_ICONS:
        raise ValueError(f"unknown tone {tone!r}")
    return tone


def _id(fragment: str | None) -> str:
    return f' id="{_checked(fragment)}"' if fragment else ""


def _cls(cls: str) -> str:
    return f' class="{cls}"' if cls else ""


def _html_entries(entries: Sequence[Entry], ordered: bool) -> str:
    tag = "ol" if ordered else "ul"
    items = []
    for e in entries:
        sub = _html_entries(e.children, False) if e.children else ""
        items.append(f'<li><a href="#{_checked(e.anchor)}">{html_text(e.text)}</a>{sub}</li>')
    return f"<{tag}>{''.join(items)}</{tag}>"


def _html_block(block: Block) -> str:
    if isinstance(block, Heading):
        level = min(max(block.level, 1), 6)
        return f"<h{level}{_id(block.anchor)}>{_html_inline(block.text)}</h{level}>"
    if isinstance(block, Para):
        return f"<p{_cls(block.cls)}>{_html_inline(block.text)}</p>"
    if isinstance(block, ListBlock):
        tag = "ol" if block.ordered else "ul"
        items = "".join(f"<li>{_html_inline(item)}</li>" for item in block.items)
        return f"<{tag}{_cls(block.cls)}>{items}</{tag}>"
    if isinstance(block, Table):
        nums = numeric_columns(block)
        head = "".join(
            f"<th{_cls('num' if n else '')}>{html_text(h)}</th>"
            for h, n in zip(block.header, nums, strict=True)
        )
        anchors = list(block.row_anchors or [])
        rows = []
        for i, row in enumerate(block.rows):
            row_id = _id(anchors[i] if i < len(anchors) else None)
            cells = "".join(
                f"<td{_cls('num' if j < len(nums) and nums[j] else '')}>{_html_inline(c)}</td>"
                for j, c in enumerate(row)
            )
            rows.append(f"<tr{row_id}>{cells}</tr>")
        return (
            f'<div class="table-wrap"><table><thead><tr>{head}</tr></thead>'
            f"<tbody>{''.join(rows)}</tbody></table></div>"
        )
    if isinstance(block, Pre):
        return f"<pre><code>{html.escape(_shown(block.text), quote=True)}</code></pre>"
    if isinstance(block, Details):
        inner = "\n".join(_html_block(b) for b in block.blocks)
        return (
            f"<details{_id(block.anchor)}><summary>{html_text(block.summary)}</summary>\n{inner}\n</details>"
        )
    if isinstance(block, Banner):
        return (
            f'<div class="banner banner-{_tone(block.tone)}"{_id(block.anchor)} role="status">'
            f'<span class="banner-word">{html_text(block.word)}</span> '
            f'<span class="banner-text">{_html_inline(block.text)}</span></div>'
        )
    if isinstance(block, Contents):
        return (
            f'<nav class="toc" aria-label="Contents"><h2{_id(block.anchor)}>Contents</h2>'
            f"{_html_entries(block.entries, True)}</nav>"
        )
    data = base64.b64encode(block.png).decode("ascii")
    caption = f"<figcaption>{_html_inline(block.caption)}</figcaption>" if block.caption else ""
    return (
        f'<figure{_id(block.anchor)}><img src="data:image/png;base64,{data}" '
        f'alt="{html.escape(_shown(block.alt), quote=True)}">{caption}</figure>'
    )


def render_html(blocks: Sequence[Block]) -> str:
    # tex2jax_ignore / mathjax_ignore: a "$" in a server's text must not become math.
    parts = ['<div class="kiloscribe-report-section tex2jax_ignore mathjax_ignore">']
    parts += [_html_block(b) for b in blocks]
    parts.append("</div>")
    return "\n".join(parts)


# --- Markdown -------------------------------------------------------------------------------

# Backslash-escaped in Markdown wherever they appear: what can start or end markup inline
# (code, emphasis with "*", links and images, table cells, strikethrough, math).
_MD_ALWAYS = re.compile(r"([\\`*\[\]|~$])")
# An entity reference would be decoded: its "&" is escaped; any other "&" stays as it is.
_MD_ENTITY = re.compile(r"&(?=#\d+;|#[xX][0-9a-fA-F]+;|[A-Za-z][A-Za-z0-9]*;)")
# What a block's first characters must not be: a list marker, a heading, a quote, a thematic
# break or setext underline, an ordered-list number.
_MD_LINE_START = re.compile(r"^(?:([-+=#>])|(\d+)([.)]))")


def md_text(text: str) -> str:
    """Text for Markdown: it renders as exactly this text, nothing in it becomes markup;
    newlines become <br>. "_" is escaped only where it could start or end emphasis."""
    escaped = _MD_ALWAYS.sub(r"\\\1", _shown(text))
    escaped = _MD_ENTITY.sub("&amp;", escaped)
    escaped = escaped.replace("<", "&lt;").replace(">", "&gt;")
    escaped = re.sub(r"(?<![^\W_])_|_(?![^\W_])", r"\\_", escaped)  # "_" beside a non-alphanumeric
    return _NEWLINES.sub("<br>", escaped)


def _md_guard(line: str) -> str:
    """A block's first characters must not start a list, a heading, a quote or a code block."""

    def fix(m: re.Match[str]) -> str:
        if m.group(1):
            return "\\" + m.group(1)
        return f"{m.group(2)}\\{m.group(3)}"

    return _MD_LINE_START.sub(fix, line.lstrip(), count=1)


def md_code(text: str, *, in_table: bool = False) -> str:
    """A code span: in backticks (a longer fence than any run inside); HTML only when the text
    holds what a code span cannot (a newline, or "<" that a careless viewer would take for a tag)."""
    if not text:
        return ""
    text = _shown(text)
    if re.search(r"[<>\r\n]", text):
        # Inline HTML: what is between the tags is still Markdown, escaped as text is.
        return f"<code>{md_text(text)}</code>"
    if in_table:
        text = text.replace("|", "\\|")
    fence = "`" * (max((len(r) for r in re.findall(r"`+", text)), default=0) + 1)
    pad = " " if text.startswith("`") or text.endswith("`") or (text[0] == text[-1] == " ") else ""
    return f"{fence}{pad}{text}{pad}{fence}"


_PUNCT_OR_SPACE = re.compile(r"[\s!-/:-@\[-`{-~]")


def _emphasis(marker: str, body: str, before: str, after: str) -> str | None:
    """``body`` between ``marker``s, or None when CommonMark would not read it as emphasis here
    (flanking rules: the markers must touch the text and be set off from their neighbours)."""
    first, last = body[0], body[-1]
    if first.isspace() or last.isspace():
        return None
    opens = not _PUNCT_OR_SPACE.match(first) or before == "" or bool(_PUNCT_OR_SPACE.match(before))
    closes = not _PUNCT_OR_SPACE.match(last) or after == "" or bool(_PUNCT_OR_SPACE.match(after))
    return f"{marker}{body}{marker}" if opens and closes else None


def _md_inline(text: Text, *, in_table: bool = False) -> str:
    items = _inlines(text)
    out: list[str] = []
    for n, item in enumerate(items):
        before = out[-1][-1:] if out and out[-1] else ""
        nxt = items[n + 1] if n + 1 < len(items) else ""
        after = (nxt if isinstance(nxt, str) else nxt.text)[:1]
        if isinstance(item, str):
            out.append(md_text(item))
        elif isinstance(item, Link):
            fragment = _checked(item.md_anchor or item.anchor)
            out.append(f"[{md_text(item.text)}](#{fragment})")
        elif isinstance(item, Badge):
            icon = TONE_ICONS[_tone(item.tone)]
            word = md_text(item.text) if in_table else _bold(item.text, before or " ", after)
            out.append(f"{icon} {word}" if icon else word)
        elif item.style == "code":
            out.append(md_code(item.text, in_table=in_table))
        elif item.style in {"b", "i"} and item.text.strip():
            out.append(_bold(item.text, before, after, "**" if item.style == "b" else "*"))
        else:
            out.append(md_text(item.text))
    return "".join(out)


def _bold(text: str, before: str, after: str, marker: str = "**") -> str:
    """Emphasis with the spaces around the text kept outside the markers."""
    lead = text[: len(text) - len(text.lstrip())]
    trail = text[len(text.rstrip()) :]
    body = md_text(text.strip())
    got = _emphasis(marker, body, lead[-1:] or before, trail[:1] or after)
    if got is None:  # CommonMark would show the markers: say it in HTML instead
        tag = "strong" if marker == "**" else "em"
        got = f"<{tag}>{body}</{tag}>"
    return f"{lead}{got}{trail}"


def _md_anchor_line(fragment: str | None, text: str = "") -> str:
    """An anchor Markdown has no construct for (a viewer slugs headings itself)."""
    if not fragment or github_slug(text) == _checked(fragment):
        return ""
    return f'<a id="{fragment}"></a>\n\n'


def _md_entries(entries: Sequence[Entry], ordered: bool, indent: str = "") -> list[str]:
    lines = []
    for n, e in enumerate(entries, 1):
        marker = f"{n}." if ordered else "-"
        lines.append(f"{indent}{marker} [{md_text(e.text)}](#{_checked(e.anchor)})")
        lines += _md_entries(e.children, False, indent + " " * (len(marker) + 1))
    return lines


def _md_fence(text: str) -> str:
    text = _shown(text)
    if "<" in text or ">" in text:
        # Kept an HTML block: its content is not Markdown, only entities matter, and a "<"
        # never reaches a viewer that would not know the fence.
        body = html.escape(text, quote=False).replace("$", "&#36;")
        return f"<pre><code>{body}</code></pre>"
    longest = max((len(r) for r in re.findall(r"^\s*(`{3,})", text, flags=re.M)), default=0)
    fence = "`" * max(3, longest + 1)
    return f"{fence}\n{text.rstrip(chr(10))}\n{fence}"


def _md_block(block: Block) -> str:
    if isinstance(block, Heading):
        level = min(max(block.level, 1), 6)
        body = re.sub(r"(?<!&)#", r"\\#", _md_inline(block.text))  # a closing "#" sequence
        return _md_anchor_line(block.anchor, plain_text(block.text)) + "#" * level + " " + body
    if isinstance(block, Para):
        return _md_guard(_md_inline(block.text))
    if isinstance(block, ListBlock):
        lines = []
        for n, item in enumerate(block.items, 1):
            marker = f"{n}." if block.ordered else "-"
            lines.append(f"{marker} {_md_guard(_md_inline(item))}")
        return "\n".join(lines)
    if isinstance(block, Table):
        if not block.header:
            return ""
        nums = numeric_columns(block)
        lines = [
            "| " + " | ".join(md_text(h) for h in block.header) + " |",
            "|" + "|".join("---:" if n else "---" for n in nums) + "|",
        ]
        for row in block.rows:
            cells = [_md_inline(c, in_table=True) for c in row]
            cells += [""] * (len(block.header) - len(cells))
            lines.append("| " + " | ".join(cells) + " |")
        return "\n".join(lines)
    if isinstance(block, Pre):
        return _md_fence(block.text)
    if isinstance(block, Details):
        inner = "\n\n".join(p for b in block.blocks if (p := _md_block(b)))
        summary = html.escape(_shown(block.summary), quote=False)
        return (
            _md_anchor_line(block.anchor)
            + f"<details>\n<summary>{summary}</summary>\n\n{inner}\n\n</details>"
        )
    if isinstance(block, Banner):
        icon = TONE_ICONS[_tone(block.tone)]
        head = f"{icon} **{md_text(block.word)}**".strip()
        return _md_anchor_line(block.anchor) + f"> {head} — {_md_inline(block.text)}"
    if isinstance(block, Contents):
        return "**Contents**\n\n" + "\n".join(_md_entries(block.entries, True))
    caption = f"\n\n{_md_guard(_md_inline(block.caption))}" if block.caption else ""
    return _md_anchor_line(block.anchor) + f"![{md_text(block.alt)}]({block.path}){caption}"


def render_markdown(blocks: Sequence[Block]) -> str:
    return "\n\n".join(p for b in blocks if (p := _md_block(b))) + "\n"


_FENCE = re.compile(r"^\s{0,3}(`{3,}|~{3,})")


def tidy_markdown(markdown: str) -> str:
    """At most one blank line between blocks, none at the ends; fenced code and <pre> blocks
    are left exactly as they are (a blank line there is content)."""
    out: list[str] = []
    fence: str | None = None
    in_pre = False
    blank = 0
    for line in markdown.split("\n"):
        if fence is None and not in_pre:
            m = _FENCE.match(line)
            if not line.strip():
                blank += 1
                continue
            if out and blank:
                out.append("")
            blank = 0
            out.append(line.rstrip())
            if m:
                fence = m.group(1)
            elif line.lstrip().startswith("<pre") and "</pre>" not in line:
                in_pre = True
            continue
        out.append(line)
        stripped = line.strip()
        if fence is not None and stripped.startswith(fence) and not stripped.strip(fence[0]):
            fence = None
        elif in_pre and "</pre>" in line:
            in_pre = False
    return "\n".join(out).strip("\n") + "\n"


@dataclass(frozen=True)
class Section:
    """One part of the report, displayable as HTML and as Markdown."""

    name: str
    blocks: tuple[Block, ...]

    def html(self) -> str:
        return render_html(self.blocks)

    def markdown(self) -> str:
        return render_markdown(self.blocks)

    def figures(self) -> list[Figure]:
        return [b for b in self.blocks if isinstance(b, Figure)]

    def _repr_html_(self) -> str:
        return self.html()

    def _repr_markdown_(self) -> str:
        return self.markdown()

    def __repr__(self) -> str:
        return f"<report section: {self.name}>"
