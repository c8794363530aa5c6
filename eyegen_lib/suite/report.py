"""``outputs/report.html``: every recorded metric and paper claim in one page, key figures inline.

The page is self-contained (figures embedded as base64 PNG) so it can be mailed or archived.
"""
from __future__ import annotations

import base64
import json
from datetime import datetime, timezone
from html import escape
from pathlib import Path

from ..core.files import atomic_write_text
from ..core.paths import list_notebooks, output_dir
from ..runs.claim_context import account, paper_value, tensions
from ..runs.record import (
    LENGTHS_LEGEND,
    RENDERER_SOURCE,
    STATE_LABELS,
    artifact_origin,
    lengths_text,
    margin_text,
    spread_legend,
    state_of,
)
from ..runs.staleness import stale_reasons

__all__ = ["build_report", "collect_results"]

_FOLD_AFTER = 6  # a metric with more values than this folds in the report

_CSS = """
body{font-family:system-ui,-apple-system,sans-serif;max-width:1240px;margin:2em auto;padding:0 1em;color:#222}
table{border-collapse:collapse;margin:.6em 0 1.4em;width:100%}th,td{border:1px solid #ccc;padding:.3em .6em;text-align:left;vertical-align:top;font-size:.92em}
th{background:#f3f3f3}.yes{color:#0a7a28;font-weight:600}.no{color:#b3141b;font-weight:600}.maybe{color:#a15c00;font-weight:600}.fail{background:#fde8e8}
figure{display:inline-block;margin:.4em;max-width:48%;cursor:zoom-in;vertical-align:top}figure img{max-width:100%;border:1px solid #ddd}figcaption{font-size:.85em;color:#555}
figure.big{display:block;max-width:100%;cursor:zoom-out}figure.big img{width:100%}details summary{cursor:pointer}ul.context li{margin:.2em 0}
code{background:#f5f5f5;padding:0 .2em}table.claims{font-size:.9em}table.claims td{overflow-wrap:anywhere}
table.claims td:nth-child(3){min-width:11em}table.claims td:last-child{min-width:12em;font-size:.85em}
table.mini{margin:0;width:auto;font-size:.9em}table.mini th,table.mini td{padding:.1em .3em;border-color:#e3e3e3}
.nowrap{white-space:nowrap}p.legend{font-size:.85em;color:#555;margin:.2em 0}
"""


def collect_results(out: Path | None = None) -> list[dict]:
    """All ``metrics/*.json`` under the output folder, in notebook order."""
    out = Path(out) if out is not None else output_dir()
    results = []
    for path in sorted((out / "metrics").glob("*.json")):
        try:
            results.append(json.loads(path.read_text()))
        except json.JSONDecodeError as exc:
            results.append({"notebook": path.stem, "error": f"unreadable metrics file: {exc}", "metrics": {}, "claims": [], "figures": []})
    return results


def _fmt(value) -> str:
    if isinstance(value, float):
        return f"{value:.4g}"
    if isinstance(value, dict):
        return ", ".join(f"{escape(str(k))}: {_fmt(v)}" for k, v in value.items())
    if isinstance(value, list):
        return "[" + ", ".join(_fmt(v) for v in value[:12]) + (" …" if len(value) > 12 else "") + "]"
    return escape(str(value))


def _artifact_table(artifacts: list[dict]) -> list[str]:
    """Which models and prediction files a notebook used: from the zoo, trained in this run (and how
    long) or loaded."""
    if not artifacts:
        return []
    rows = ["<table><tr><th>artifact used</th><th>file</th><th>sha256</th><th>seed</th><th>data fingerprint</th>"
            "<th>origin</th></tr>"]
    for a in artifacts:
        origin = artifact_origin(a)
        rows.append(f"<tr><td>{escape(str(a.get('name')))}</td><td><code>{escape(Path(str(a.get('file'))).name)}</code></td>"
                    f"<td><code>{escape(str(a.get('sha256', ''))[:12])}</code></td><td>{escape(str(a.get('seed')))}</td>"
                    f"<td><code>{escape(str(a.get('data_fingerprint')))}</code></td><td>{escape(origin)}</td></tr>")
    rows.append("</table>")
    return rows


def _verdict(state: str) -> str:
    cls = {"holds": "yes", "fails": "no", "inconclusive": "maybe"}[state]
    return f"<span class='{cls}'>{STATE_LABELS[state]}</span>"


def _margin(claim: dict, markers: dict[str, str]) -> str:
    return (f"<span class='nowrap'>{escape(margin_text(claim))}</span>"
            + (f"<sup>({markers[claim['name']]})</sup>" if claim["name"] in markers else ""))


def _measured(value) -> str:
    """A claim's measured values: a small table where they are nested (method → metric → value)."""
    if isinstance(value, dict) and value and all(isinstance(v, dict) for v in value.values()):
        cols = list(dict.fromkeys(k for v in value.values() for k in v))
        if all(not isinstance(x, dict) for v in value.values() for x in v.values()):
            return ("<table class='mini'><tr><th></th>" + "".join(f"<th>{escape(str(c))}</th>" for c in cols) + "</tr>"
                    + "".join(f"<tr><th>{escape(str(k))}</th>" + "".join(f"<td>{_fmt(v.get(c, ''))}</td>" for c in cols)
                              + "</tr>" for k, v in value.items()) + "</table>")
    if isinstance(value, dict) and len(value) > 3:
        return "<br>".join(f"{escape(str(k))}: {_fmt(v)}" for k, v in value.items())
    return _fmt(value)


def _img(path: Path) -> str:
    return "data:image/png;base64," + base64.b64encode(path.read_bytes()).decode()


def _value(value) -> str:
    """A metric's value; a long dict or list folds behind its first items (click to unfold)."""
    size = len(value) if isinstance(value, (dict, list)) else 0
    if size <= _FOLD_AFTER:
        return _fmt(value)
    head = dict(list(value.items())[:3]) if isinstance(value, dict) else value[:3]
    return f"<details><summary>{_fmt(head)} … ({size} values)</summary>{_fmt(value)}</details>"


def _context(results: list[dict], runs: dict, total: float) -> list[str]:
    """Where the numbers come from: data, machine, what was trained and what loaded, time in all."""
    sources = list(dict.fromkeys(s for r in results for s in r.get("data_sources", [RENDERER_SOURCE])))
    real = [s for s in sources if s != RENDERER_SOURCE and "renderer's export" not in s]
    data = ("every number comes from " + escape(RENDERER_SOURCE) + "; no licensed dataset was read (README, "
            "“Real datasets”, says what OpenEDS, Columbia Gaze and MPIIGaze are used for)") if not real else \
        "real data read: " + escape("; ".join(real)) + " — besides " + escape(RENDERER_SOURCE)
    on_datasets = [r for r in results if r.get("data", "renderer") != "renderer"]
    if on_datasets:  # name the notebooks that ran on a dataset, and which
        by_source: dict[str, list[str]] = {}
        for r in on_datasets:
            for s in r.get("data_sources") or [r["data"]]:
                by_source.setdefault(s, []).append(r["notebook"])
        data += " (" + "; ".join(f"{', '.join(map(escape, names))} on {escape(s)}" for s, names in by_source.items()) + \
            "; every other notebook on the renderer)"
    machines = list(dict.fromkeys(r["machine"] for r in results if r.get("machine")))
    artifacts = [a for r in results for a in r.get("artifacts", [])]
    zoo = sum(a.get("source") == "zoo" for a in artifacts)
    trained = [a for a in artifacts if a.get("trained_now") and a.get("source") != "zoo"]
    loaded = len(artifacts) - zoo - len(trained)
    train_min = sum(a.get("train_seconds") or 0 for a in trained) / 60
    items = [f"<b>Data</b>: {data}.",
             f"<b>Machine</b>: {escape('; '.join(machines)) if machines else 'not recorded'}.",
             f"<b>Models and predictions used</b>: {zoo} from the model zoo, {len(trained)} trained here "
             f"({train_min:.1f} min of training), {loaded} loaded from earlier runs (per notebook below).",
             f"<b>Time</b>: {total / 60:.1f} min for the last run of each notebook ({len(runs)} notebooks)."]
    return ["<ul class='context'>"] + [f"<li>{i}</li>" for i in items] + ["</ul>"]


def _run_table(runs: dict, stale: dict[str, list[str]], out: Path, total: float) -> list[str]:
    html = [f"<h2>Notebook runs</h2><p>The last run of each notebook into this folder ({total / 60:.1f} min in all). "
            "A run is <span class='maybe'>stale</span> when a file it read has changed since, or one it looked for "
            "exists now: run it again.</p><table><tr><th>notebook</th><th>status</th><th>profile, seed</th>"
            "<th>finished</th><th>seconds</th><th>executed notebook</th></tr>"]
    for name in dict.fromkeys([p.stem for p in list_notebooks()] + list(runs)):
        r = runs.get(name)
        command = f"<code>eyegen run --only {escape(name.partition('_')[0])}</code>"
        if r is None:
            html.append(f"<tr class='fail'><td>{escape(name)}</td><td>not run</td><td></td><td></td><td></td>"
                        f"<td>{command}</td></tr>")
            continue
        status = escape(r["status"])
        if stale.get(name):
            status += ("<br><span class='maybe'>stale</span>: " + escape("; ".join(stale[name]))
                       + f"<br>re-run: {command}")
        cls = "" if r["status"] == "ok" and not stale.get(name) else " class='fail'"
        output = r.get("output", "")
        rendered = Path(output).with_suffix(".html")
        link = (f"<a href='{escape(str(rendered))}'>{escape(rendered.name)}</a> "
                f"<small>(<a href='{escape(output)}'>.ipynb</a>)</small>" if (out / rendered).is_file()
                else f"<a href='{escape(output)}'><code>{escape(output)}</code></a>")
        html.append(f"<tr{cls}><td>{escape(name)}</td><td>{status}</td>"
                    f"<td>{escape(str(r.get('profile', '')))}"
                    + (f" on {escape(str(r['data']))}" if r.get("data", "renderer") != "renderer" else "")
                    + f", {escape(str(r.get('seed', '')))}</td>"
                    f"<td>{escape(str(r.get('finished', '')))}</td><td>{r.get('seconds', 0):.1f}</td>"
                    f"<td>{link}{('<br>' + escape(r['error'])) if r.get('error') else ''}</td></tr>")
    html.append("</table>")
    return html


def superseded(results: list[dict], runs: dict) -> dict[str, str]:
    """Notebooks whose latest run did not finish, and why their recorded claims are not current:
    ``{notebook: note}``. A record written before that run began is an earlier run's; one written
    during it is the failed run's, and incomplete."""
    notes = {}
    for res in results:
        run = runs.get(res["notebook"])
        if not run or run.get("status") == "ok":
            continue
        try:
            finished = datetime.fromisoformat(run["finished"])
            began = finished.timestamp() - float(run.get("seconds", 0))
            updated = datetime.fromisoformat(res["updated"]).timestamp()
        except (KeyError, TypeError, ValueError):
            began, updated = None, None
        when = f"the latest run {run['status']}" + (f" ({run['error']})" if run.get("error") else "")
        if updated is not None and updated < began:
            notes[res["notebook"]] = f"from an earlier run ({res['updated']}); {when}"
        else:
            notes[res["notebook"]] = f"recorded by a run that did not finish: {when}"
    return notes


def _claims_table(claims: list[tuple[str, dict]], old: dict[str, str] | None = None) -> list[str]:
    html = ["<h2>Paper claims</h2>"]
    if not claims:
        return html + ["<p>No claims recorded yet.</p>"]
    old = old or {}
    states = [state_of(c) for _, c in claims]
    counts = {s: states.count(s) for s in ("holds", "inconclusive", "fails")}
    at_odds = tensions([c for _, c in claims])
    markers, legend = spread_legend([c for _, c in claims])
    html.append(f"<p>Of {len(claims)} claims, {counts['holds']} hold here, {counts['fails']} do not, and "
                f"{counts['inconclusive']} are inconclusive (their margin lies within the seed-to-seed spread). "
                "Every claim that does not hold carries our best account of why."
                + (f" {sum(nb in old for nb, _ in claims)} claim(s) are not current: their notebook's latest run did "
                   "not finish (marked <span class='maybe'>not current</span>)." if old else "") + "</p>"
                "<table class='claims'><tr><th>notebook</th><th>paper</th><th>claim</th><th>paper's value</th><th>measured here</th>"
                "<th>state</th><th>margin ± spread</th><th>at other lengths</th><th>note</th></tr>")
    for nb, c in claims:
        notes = [n for n in (c.get("note", ""), account(c), at_odds.get(c["name"], "")) if n]
        on = f"<br><small>on {escape(c['data'])}</small>" if c.get("data", "renderer") != "renderer" else ""
        html.append(f"<tr><td>{escape(nb)}{on}</td><td>{escape(c['paper'])}</td><td><b>{escape(c['name'])}</b><br>"
                    f"{escape(c['statement'])}</td><td>{escape(paper_value(c['name']))}</td><td>{_measured(c['measured'])}</td>"
                    f"<td>{_verdict(state_of(c))}" + (f"<br><span class='maybe'>not current</span>: {escape(old[nb])}"
                                                        if nb in old else "") + f"</td><td>{_margin(c, markers)}</td><td>{escape(lengths_text(c))}</td>"
                    f"<td>{'<br>'.join(escape(n) for n in notes)}</td></tr>")
    html.append("</table>")
    html.extend(f"<p class='legend'>{escape(line)}</p>" for line in legend + [LENGTHS_LEGEND])
    return html


def build_report(out: Path | None = None, *, title: str = "eyegen report",
                 stale: dict[str, list[str]] | None = None) -> Path:
    """Write ``<out>/report.html`` from the recorded metrics (and ``run_summary.json`` if present);
    ``stale`` the notebooks' stale reasons when the caller has them already (else found here)."""
    out = Path(out) if out is not None else output_dir()
    results = collect_results(out)
    summary_path = out / "run_summary.json"
    summary = json.loads(summary_path.read_text()) if summary_path.is_file() else {}
    runs = {r["notebook"]: r for r in summary.get("notebooks", [])}
    if stale is None:
        stale = {res["notebook"]: reasons for res in results if (reasons := stale_reasons(res))}
    profiles = sorted({str(r.get("profile")) for r in runs.values()} or {str(summary.get("profile", "—"))})
    now = datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    html = [f"<!doctype html><html><head><meta charset='utf-8'><title>{escape(title)}</title><style>{_CSS}</style></head><body>",
            f"<h1>{escape(title)}</h1><p>Built {now}. Profile: <b>{escape(', '.join(profiles))}</b>. "
            f"{len(results)} notebook(s) recorded results"
            + (f"; <span class='maybe'>{sum(map(bool, stale.values()))} stale</span>" if any(stale.values()) else "")
            + ".</p>"]
    total_s = sum(r.get("seconds", 0) for r in runs.values())
    html.extend(_context(results, runs, total_s))
    if runs:
        html.extend(_run_table(runs, stale, out, total_s))
    html.extend(_claims_table([(res["notebook"], c) for res in results for c in res.get("claims", [])],
                              superseded(results, runs)))

    html.append("<h2>Metrics</h2><p><small>Click a figure to enlarge it; click again to shrink it.</small></p>")
    for res in results:
        html.append(f"<h3>{escape(res['notebook'])} <small>(profile {escape(str(res.get('profile')))}, data "
                    f"{escape(str(res.get('data', 'renderer')))}, seed "
                    f"{escape(str(res.get('seed', '—')))}, updated {escape(str(res.get('updated', '')))})</small></h3>")
        if res.get("error"):
            html.append(f"<p class='no'>{escape(res['error'])}</p>")
        html.extend(_artifact_table(res.get("artifacts", [])))
        if res.get("metrics"):
            html.append("<table><tr><th>metric</th><th>value</th><th>unit</th><th>better</th><th>what it is</th></tr>")
            for name, m in res["metrics"].items():
                better = {True: "lower", False: "higher"}.get(m.get("lower_is_better"), "")
                html.append(f"<tr><td>{escape(name)}</td><td>{_value(m['value'])}</td><td>{escape(m.get('unit', ''))}</td>"
                            f"<td>{better}</td><td>{escape(m.get('description', ''))}</td></tr>")
            html.append("</table>")
        for fig in res.get("figures", []):
            path = out / fig["path"]
            if path.is_file():
                html.append(f"<figure onclick=\"this.classList.toggle('big')\"><img src='{_img(path)}' "
                            f"alt='{escape(fig['name'])}'><figcaption>{escape(fig['name'])}: "
                            f"{escape(fig.get('caption', ''))}</figcaption></figure>")
    html.append("</body></html>")
    target = out / "report.html"
    return atomic_write_text(target, "\n".join(html))
