"""The document model's escaping: nothing a server sent becomes markup in HTML or Markdown."""

from __future__ import annotations

import re

from kiloscribe_lab.report.document import html_text, md_text
from tests.unit.report.helpers import EVIL, HOSTILE, assert_inert_html, markdown_to_html, parse_html


def test_md_text_and_html_text_escape_everything() -> None:
    for text in [*HOSTILE, EVIL]:
        md = md_text(text)
        html = html_text(text)
        assert "<script" not in md and "<script" not in html
        assert "\n" not in md and "\r" not in md
        assert not re.search(r"(?<!\\)[`*_\[\]|#~]", md.replace("\\\\", "").replace("&#36;", "")), md
        assert "$" not in md
        assert_inert_html(html)
        # Rendered, the Markdown and the HTML show the text itself (newlines became <br>).
        for markup in (markdown_to_html(md), html):
            shown = "".join(parse_html(markup).text).strip()
            assert shown == re.sub(r"\r\n|\r|\n", "", text).strip()
