"""The executed findings notebook into ``findings.html`` and ``findings.md`` (nbconvert).

HTML with inputs hidden, images embedded and no CDN script: the report must read offline, from
a mail attachment or a ticket. nbformat, nbconvert and jinja2 failures become one ReportError;
the run directory keeps everything measured.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

from kiloscribe_lab.errors import ReportError

OFFLINE_TEMPLATE = """{%- extends 'lab/index.html.j2' -%}
{#- No CDN scripts: the report must read offline, from a mail attachment or a ticket. -#}
{%- block html_head_js_requirejs -%}{%- endblock html_head_js_requirejs -%}
{%- block html_head_js_mathjax -%}{%- endblock html_head_js_mathjax -%}
{%- block html_head_js_mermaidjs -%}{%- endblock html_head_js_mermaidjs -%}
{%- block jupyter_widgets -%}{%- endblock jupyter_widgets -%}
"""
HTML_TITLE = "Kiloscribe findings report"


def _offline_template_dir(run_dir: Path) -> Path:
    folder = run_dir / ".nbconvert" / "offline"
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "index.html.j2").write_text(OFFLINE_TEMPLATE)
    (folder / "conf.json").write_text(json.dumps({"base_template": "lab", "mimetypes": {"text/html": True}}))
    return folder.parent


def _export(run_dir: Path, notebook: Path) -> tuple[str, str, dict[str, Any]]:
    """(HTML, Markdown, the Markdown's resources) of ``notebook``; the libraries' own errors."""
    import nbformat
    from nbconvert import HTMLExporter, MarkdownExporter
    from traitlets.config import Config

    nb = nbformat.read(notebook, as_version=4)  # type: ignore[no-untyped-call]
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
        body, _ = html_exporter.from_notebook_node(nb)
        body = body.replace("<title>Notebook</title>", f"<title>{HTML_TITLE}</title>")
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
