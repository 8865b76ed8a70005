"""The executed findings notebook into ``findings.html`` and ``findings.md`` (nbconvert).

HTML with inputs hidden, images embedded, no script at all and a stylesheet of ours (not
Jupyter's: its tables right-align every cell): the report must read offline, from a mail
attachment or a ticket. The page's title is the report's dated title, from run.json. When the
notebook failed part-way, the sections before the failure render under a notice that says
which cell failed and why. The Markdown is tidied (one blank line between blocks).
nbformat, nbconvert and jinja2 failures become one ReportError; the run directory keeps
everything measured.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

from kiloscribe_lab.errors import ReportError
from kiloscribe_lab.report.document import Banner, Section, tidy_markdown
from kiloscribe_lab.report.imports import decline_slow_optional_imports
from kiloscribe_lab.report.rundata import read_run
from kiloscribe_lab.report.sections import report_title
from kiloscribe_lab.report.style import CSS

OFFLINE_TEMPLATE = """{%- extends 'lab/index.html.j2' -%}
{#- No script, no CDN, no Jupyter CSS: the report must read offline, from a mail attachment. -#}
{%- block html_head -%}
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{{ resources.kiloscribe.title | e }}</title>
<style>{{ resources.kiloscribe.css }}</style>
{%- endblock html_head -%}
{%- block body_header -%}
<body>
<main class="report">
{{ resources.kiloscribe.notice }}
{%- endblock body_header -%}
"""
DEFAULT_TITLE = "Kiloscribe findings report"


def _offline_template_dir(run_dir: Path) -> Path:
    folder = run_dir / ".nbconvert" / "offline"
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "index.html.j2").write_text(OFFLINE_TEMPLATE)
    (folder / "conf.json").write_text(json.dumps({"base_template": "lab", "mimetypes": {"text/html": True}}))
    return folder.parent


def notebook_failures(nb: Any) -> list[str]:
    """Each cell of an executed notebook that raised: "cell N: Name: message"."""
    failures = []
    for n, cell in enumerate(nb.get("cells", []), 1):
        for out in cell.get("outputs", []) if cell.get("cell_type") == "code" else []:
            if out.get("output_type") == "error":
                message = str(out.get("evalue") or "").strip().splitlines()[:1]
                failures.append(
                    f"cell {n}: {out.get('ename') or 'error'}" + (f": {message[0][:200]}" if message else "")
                )
    return failures


def _notice(failures: list[str]) -> Section | None:
    if not failures:
        return None
    text = (
        "the findings notebook failed (" + "; ".join(failures) + "): what comes before the failure "
        "rendered, the rest of this report is missing. Its traceback is where it failed."
    )
    return Section("notice", (Banner("incomplete", "INCOMPLETE REPORT", text, "render-notice"),))


def _title(run_dir: Path) -> str:
    run = read_run(run_dir)
    return report_title(run) if not run.failures else DEFAULT_TITLE


def _export(run_dir: Path, notebook: Path) -> tuple[str, str, dict[str, Any]]:
    """(HTML, Markdown, the Markdown's resources) of ``notebook``; the libraries' own errors."""
    decline_slow_optional_imports()
    import nbformat
    from nbconvert import HTMLExporter, MarkdownExporter
    from traitlets.config import Config

    nb = nbformat.read(notebook, as_version=4)  # type: ignore[no-untyped-call]
    notice = _notice(notebook_failures(nb))
    own = {"title": _title(run_dir), "css": CSS, "notice": notice.html() if notice else ""}
    templates = _offline_template_dir(run_dir)
    try:
        html_exporter = HTMLExporter(  # type: ignore[no-untyped-call]
            config=Config(
                {
                    "HTMLExporter": {
                        "exclude_input": True,
                        "exclude_input_prompt": True,
                        "exclude_output_prompt": True,
                        "embed_images": True,
                    },
                    "TemplateExporter": {"extra_template_basedirs": [str(templates)]},
                }
            ),
            template_name="offline",
        )
        body, _ = html_exporter.from_notebook_node(nb, resources={"kiloscribe": own})
        md_exporter = MarkdownExporter(  # type: ignore[no-untyped-call]
            config=Config(
                {
                    "MarkdownExporter": {"exclude_input": True},
                    "NbConvertBase": {
                        "display_data_priority": ["text/markdown", "image/png", "image/svg+xml", "text/plain"]
                    },
                }
            ),
        )
        md, resources = md_exporter.from_notebook_node(nb, resources={"output_files_dir": "findings_files"})
    finally:
        shutil.rmtree(run_dir / ".nbconvert", ignore_errors=True)
    md = tidy_markdown((notice.markdown() + "\n" if notice else "") + md)
    return body, md, resources


def _library_errors() -> tuple[type[Exception], ...]:
    """What reading and exporting a notebook raises: the libraries' own exceptions, and the
    KeyError/ValueError/OSError a malformed notebook or a missing template file brings."""
    import jinja2
    import nbformat
    import traitlets
    from nbconvert.utils.exceptions import ConversionException

    return (
        nbformat.ValidationError,
        ConversionException,
        jinja2.TemplateError,
        traitlets.TraitError,
        KeyError,
        ValueError,  # nbformat's NotJSONError among them
        OSError,
    )


def render(run_dir: Path, notebook: Path) -> list[Path]:
    """findings.html and findings.md (and the Markdown's images) into ``run_dir``.

    Raises ReportError, with one line saying why, when nbformat, nbconvert or jinja2 fail."""
    try:
        body, md, resources = _export(run_dir, notebook)
    except _library_errors() as exc:
        reason = (str(exc).strip().splitlines() or [""])[0][:300]
        raise ReportError(
            f"cannot render {notebook.name}: {type(exc).__name__}: {reason}; "
            f"what was measured is in {run_dir}"
        ) from exc
    written = [run_dir / "findings.html", run_dir / "findings.md"]
    written[0].write_text(body)
    written[1].write_text(md)
    for name, data in (resources.get("outputs") or {}).items():
        path = run_dir / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
        written.append(path)
    return written
