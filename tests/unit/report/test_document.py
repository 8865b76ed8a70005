"""The document model: nothing a server sent becomes markup in HTML or Markdown, and the
Markdown is what a person would write (backticks, ``**``, fences, no needless escapes)."""

from __future__ import annotations

import re

import pytest

from kiloscribe_lab.report.document import (
    Badge,
    Banner,
    Contents,
    Details,
    Entry,
    Heading,
    Link,
    ListBlock,
    Para,
    Pre,
    Span,
    Table,
    anchor,
    github_slug,
    html_text,
    md_code,
    md_text,
    numeric_columns,
    render_html,
    render_markdown,
    rich,
    tidy_markdown,
)
from tests.unit.report.helpers import (
    EVIL,
    HOSTILE,
    assert_inert_html,
    assert_inert_markdown,
    markdown_to_html,
    parse_html,
)


def shown(markup: str) -> str:
    return "".join(parse_html(markup).text).strip()


def test_md_text_and_html_text_escape_everything() -> None:
    for text in [*HOSTILE, EVIL]:
        md = md_text(text)
        html = html_text(text)
        assert "<script" not in md and "<script" not in html
        assert "\n" not in md and "\r" not in md
        assert not re.search(r"(?<!\\)\$", md), md  # no math can start
        assert_inert_html(html)
        # Rendered, the Markdown and the HTML show the text itself (newlines became <br>), and
        # the Markdown makes no markup but the line breaks.
        rendered = markdown_to_html(md)
        assert parse_html(rendered).tags <= {"p", "br"}, rendered
        for markup in (rendered, html):
            assert shown(markup) == re.sub(r"\r\n|\r|\n", "", text).strip()


@pytest.mark.parametrize(
    ("text", "md"),
    [
        ("socketio_connect and lb_policy", "socketio_connect and lb_policy"),  # intraword: no escape
        ("_leading and trailing_", "\\_leading and trailing\\_"),
        ("a * b", "a \\* b"),
        ("x | y", "x \\| y"),
        ("$HOME", "\\$HOME"),
        ("AT&T &amp; co", "AT&T &amp;amp; co"),  # only an entity's "&" is escaped
        ("1 < 2 > 0", "1 &lt; 2 &gt; 0"),
        ("C# and #tag", "C# and #tag"),  # only a block's first characters are guarded
    ],
)
def test_md_text_escapes_only_what_would_be_markup(text: str, md: str) -> None:
    assert md_text(text) == md
    assert shown(markdown_to_html(md)) == text


@pytest.mark.parametrize(
    ("code", "md"),
    [
        ("lb_policy ip_hash", "`lb_policy ip_hash`"),
        ("a `tick` b", "``a `tick` b``"),
        ("`edge`", "`` `edge` ``"),
        ("<script>", "<code>&lt;script&gt;</code>"),
    ],
)
def test_code_spans_use_backticks_and_survive_any_text(code: str, md: str) -> None:
    assert md_code(code) == md
    rendered = markdown_to_html(md)
    assert parse_html(rendered).tags == {"p", "code"} and shown(rendered) == code


def test_a_block_never_starts_markup() -> None:
    for text in ("# heading", "- item", "1. item", "> quote", "=== rule", "    indented"):
        md = render_markdown([Para(text), ListBlock([text])])
        assert parse_html(markdown_to_html(md)).tags <= {"p", "ul", "li"}, md


def test_markdown_uses_markdown_constructs_not_html() -> None:
    blocks = [
        Heading(2, "Root Cause Analysis", "root-cause-analysis"),
        Para(("Run ", Span("kiloscribe-lab probe", "code"), ", then ", Span("Note:", "b"), " done.")),
        ListBlock([(Span("Critical: ", "b"), "x")]),
        Pre("kiloscribe-lab probe https://a.example \\\n    --network mobile"),
    ]
    md = render_markdown(blocks)
    assert "<" not in md
    assert "## Root Cause Analysis" in md  # its anchor is the slug a viewer makes: no <a id>
    assert "`kiloscribe-lab probe`" in md and "**Note:** done" in md and "- **Critical:** x" in md
    assert "```\nkiloscribe-lab probe https://a.example \\\n    --network mobile\n```" in md
    assert_inert_markdown(md)


def test_links_badges_banner_contents_details_render_in_both() -> None:
    blocks = [
        Banner("critical", "CRITICAL", ("2 critical; see ", Link("the finding", "finding-x")), "summary"),
        Contents((Entry("Summary", "summary", (Entry("A finding", "finding-x"),)),)),
        Heading(4, (Badge("Critical", "critical"), " Backend down"), "finding-x"),
        Details(
            "Socket.IO connect: 2 results", (Table(["Target", "ms"], [("lb", "3.1")], ["r-1"]),), "family-x"
        ),
        Para(Link("row", "r-1", md_anchor="family-x")),
    ]
    html, md = render_html(blocks), render_markdown(blocks)
    assert_inert_html(html)
    assert_inert_markdown(md)
    assert 'class="banner banner-critical"' in html and ">CRITICAL<" in html and 'role="status"' in html
    assert '<nav class="toc" aria-label="Contents">' in html and '<a href="#finding-x">A finding</a>' in html
    assert '<h4 id="finding-x"><span class="badge badge-critical">Critical</span> Backend down</h4>' in html
    assert '<details id="family-x"><summary>Socket.IO connect: 2 results</summary>' in html
    assert '<tr id="r-1">' in html and '<a href="#r-1">row</a>' in html
    assert "> 🔴 **CRITICAL** — 2 critical; see [the finding](#finding-x)" in md
    assert "1. [Summary](#summary)\n   - [A finding](#finding-x)" in md
    assert '<a id="finding-x"></a>\n\n#### 🔴 **Critical** Backend down' in md
    assert (
        '<a id="family-x"></a>\n\n<details>\n<summary>Socket.IO connect: 2 results</summary>\n\n| Target'
        in md
    )
    assert "[row](#family-x)" in md  # a table row has no anchor in Markdown: its table has


def test_anchors_are_safe_and_distinct() -> None:
    assert anchor("finding", "backend-down") == "finding-backend-down"
    assert anchor("r", "a:b@https://x#y") != anchor("r", "a:b@https://x#z")
    hostile = anchor("finding", "<script>alert(1)</script>")
    assert re.fullmatch(r"[a-z][a-z0-9-]+", hostile)
    assert github_slug("Appendix: Test Details") == "appendix-test-details"
    with pytest.raises(ValueError):
        render_html([Para(Link("x", '"><script>'))])
    with pytest.raises(ValueError):
        render_html([Para(Badge("x", "evil"))])  # type: ignore[arg-type]


def test_numbers_right_aligned_text_left() -> None:
    table = Table(
        ["Target", "ms", "Rate", "Why"],
        [("lb", "3.1", "67 % (8/12)", "down"), ("edge", "—", "12/12", "fine"), ("x", "620", "4 of 4", "1 s")],
    )
    assert numeric_columns(table) == [False, True, False, False]
    html, md = render_html([table]), render_markdown([table])
    assert '<th class="num">ms</th>' in html and '<td class="num">3.1</td>' in html and "<td>lb</td>" in html
    assert '<div class="table-wrap">' in html  # a wide table scrolls in its own box
    assert "|---|---:|---|---|" in md


def test_rich_turns_backticks_into_code_spans() -> None:
    assert rich("use `lb_policy ip_hash` or ``a`b``.") == (
        "use ",
        Span("lb_policy ip_hash", "code"),
        " or ",
        Span("a`b", "code"),
        ".",
    )
    assert rich("no code") == ("no code",)
    html = render_html([Para(rich("start Node with `--experimental-websocket`"))])
    assert "`" not in shown(html) and "<code>--experimental-websocket</code>" in html


def test_tidy_markdown_keeps_one_blank_line_and_leaves_code_alone() -> None:
    md = (
        "# T\n\n\n\n\npara\n   \n\n```\na\n\n\n\nb\n```\n\n\n"
        "<pre><code>x\n\n\ny</code></pre>\n\n\n\nend\n\n\n"
    )
    assert (
        tidy_markdown(md)
        == "# T\n\npara\n\n```\na\n\n\n\nb\n```\n\n<pre><code>x\n\n\ny</code></pre>\n\nend\n"
    )
    assert not re.search(r"\n\n\n", tidy_markdown("a\n\n\n\nb").replace("```", ""))
