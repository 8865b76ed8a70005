"""The report's stylesheet, inlined into findings.html and reports/index.html (no file to lose,
nothing fetched). Text left-aligned, numbers right-aligned; tables scroll inside their own box
on a narrow screen instead of widening the page; prose never breaks inside a word."""

CSS = """
:root { --fg: #1f2328; --muted: #57606a; --line: #d0d7de; --soft: #f6f8fa; --link: #0b5cad; }
* { box-sizing: border-box; }
html { -webkit-text-size-adjust: 100%; text-size-adjust: 100%; }
body { margin: 0; color: var(--fg); background: #fff;
  font: 16px/1.5 system-ui, -apple-system, "Segoe UI", Roboto, "DejaVu Sans", sans-serif; }
main { max-width: 74rem; margin: 0 auto; padding: 1.25rem 1.25rem 3rem; }
h1 { font-size: 1.8rem; line-height: 1.25; margin: .4rem 0 .3rem; }
h2 { font-size: 1.35rem; line-height: 1.3; margin: 2.4rem 0 .7rem; padding-bottom: .3rem;
  border-bottom: 1px solid var(--line); }
h3 { font-size: 1.12rem; margin: 1.6rem 0 .5rem; }
h4 { font-size: 1rem; margin: 1.6rem 0 .4rem; }
p, li { max-width: 80ch; }
a { color: var(--link); }
a:focus-visible { outline: 2px solid var(--link); outline-offset: 2px; }
.meta { color: var(--muted); font-size: .9rem; margin-top: 0; }
.note { color: var(--muted); font-size: .9rem; }
.banner { display: flex; flex-wrap: wrap; gap: .2rem .8rem; align-items: baseline;
  margin: 1rem 0 .8rem; padding: .8rem 1rem; border: 1px solid; border-left-width: .55rem;
  border-radius: 6px; font-size: 1.05rem; }
.banner-word { font-weight: 800; letter-spacing: .05em; }
.banner-critical, .banner-down { background: #fdecea; border-color: #c62828; color: #7f1d1d; }
.banner-degraded, .banner-warning { background: #fff4e0; border-color: #c56a00; color: #6b3500; }
.banner-healthy, .banner-ok { background: #e8f5e9; border-color: #2e7d32; color: #1b4d20; }
.banner-incomplete, .banner-info, .banner-neutral
  { background: #f1f3f5; border-color: #6b7280; color: #1f2937; }
ul.headline { list-style: none; padding: 0; margin: .4rem 0 1.2rem; }
ul.headline li { margin: .45rem 0; }
ol.steps li { margin: .35rem 0; }
.badge { display: inline-block; padding: 0 .45em; border: 1px solid transparent; border-radius: .7em;
  font-size: .82em; font-weight: 650; line-height: 1.45; white-space: nowrap; }
.badge-critical, .badge-down { background: #fdecea; color: #9b1c1c; border-color: #f2b8b5; }
.badge-warning, .badge-degraded { background: #fff4e0; color: #7a3e00; border-color: #f3cf96; }
.badge-info { background: #e8f0fe; color: #1a4d8f; border-color: #c3d5f5; }
.badge-ok, .badge-healthy { background: #e8f5e9; color: #1b5e20; border-color: #b9dfbe; }
.badge-incomplete, .badge-neutral { background: #f1f3f5; color: #374151; border-color: #d1d5db; }
nav.toc { background: var(--soft); border: 1px solid var(--line); border-radius: 6px;
  padding: .4rem 1rem .6rem; margin: 1rem 0 1.6rem; }
nav.toc h2 { border: 0; margin: .3rem 0; padding: 0; font-size: 1rem; }
nav.toc ol { margin: .2rem 0; padding-left: 1.5rem; columns: 2 20rem; column-gap: 2.5rem; }
nav.toc ul { margin: .1rem 0 .3rem; padding-left: 1.1rem; font-size: .9rem; }
nav.toc li { break-inside: avoid; max-width: none; }
code { font-family: ui-monospace, "DejaVu Sans Mono", Menlo, Consolas, monospace; font-size: .88em;
  background: var(--soft); padding: .05em .3em; border-radius: 3px; white-space: nowrap; }
code.long { white-space: normal; overflow-wrap: anywhere; }
.nowrap { white-space: nowrap; }
pre { background: var(--soft); border: 1px solid var(--line); border-radius: 6px; padding: .6rem .8rem;
  overflow-x: auto; white-space: pre; max-width: 100%; }
pre code { background: none; padding: 0; overflow-wrap: normal; }
.table-wrap { overflow-x: auto; max-width: 100%; margin: .5rem 0 1rem; }
table { border-collapse: collapse; font-size: .9rem; }
th, td { text-align: left; vertical-align: top; padding: .35rem .65rem;
  border-bottom: 1px solid var(--line); }
th { background: var(--soft); font-weight: 600; white-space: nowrap; }
th.num, td.num { text-align: right; white-space: nowrap; font-variant-numeric: tabular-nums; }
td { overflow-wrap: normal; word-break: normal; min-width: 5.5rem; }
td:last-child:not(.num) { min-width: 12rem; }
td:first-child { white-space: nowrap; }
td code, td code.long { white-space: nowrap; overflow-wrap: normal; }
tr:target, tr:target td { background: #fff3b0; }
details { border: 1px solid var(--line); border-radius: 6px; padding: .45rem .8rem; margin: .6rem 0; }
details[open] { padding-bottom: .8rem; }
summary { cursor: pointer; font-weight: 600; }
figure { margin: 1rem 0 1.4rem; }
figure img { display: block; max-width: 100%; height: auto; }
figcaption { color: var(--muted); font-size: .9rem; margin-top: .3rem; }
.jp-Cell, .jp-Cell-outputWrapper, .jp-OutputArea, .jp-OutputArea-child, .jp-OutputArea-output
  { margin: 0; padding: 0; }
.jp-OutputPrompt, .jp-InputPrompt, .jp-Collapser { display: none; }
.jp-RenderedText pre { white-space: pre-wrap; }
@media (max-width: 640px) {
  body { font-size: 15px; }
  main { padding: .8rem .8rem 2rem; }
  h1 { font-size: 1.4rem; }
  h2 { font-size: 1.2rem; }
  nav.toc ol { columns: 1; }
  .banner { font-size: 1rem; }
}
@media print { details { border: 0; } nav.toc { break-after: page; } }
"""
