"""``outputs/report.html``: every recorded metric and paper claim in one page, key figures inline.

The page is self-contained (figures embedded as base64 PNG) so it can be mailed or archived.
"""
from __future__ import annotations

import base64
import json
from datetime import datetime, timezone
from html import escape
from pathlib import Path

from .paths import output_dir

__all__ = ["build_report", "collect_results"]

_CSS = """
body{font-family:system-ui,-apple-system,sans-serif;max-width:1100px;margin:2em auto;padding:0 1em;color:#222}
table{border-collapse:collapse;margin:.6em 0 1.4em;width:100%}th,td{border:1px solid #ccc;padding:.3em .6em;text-align:left;vertical-align:top;font-size:.92em}
th{background:#f3f3f3}.yes{color:#0a7a28;font-weight:600}.no{color:#b3141b;font-weight:600}.maybe{color:#a15c00;font-weight:600}.fail{background:#fde8e8}
figure{display:inline-block;margin:.4em;max-width:48%}figure img{max-width:100%;border:1px solid #ddd}figcaption{font-size:.85em;color:#555}
code{background:#f5f5f5;padding:0 .2em}
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


def artifact_origin(a: dict) -> str:
    """Where an artifact came from, as the report says it: "zoo, 10000 steps", "trained here (212 s), 1000
    steps", "loaded, 1000 steps"."""
    if a.get("source") == "zoo":
        origin = "zoo"
    elif a.get("trained_now"):
        secs = a.get("train_seconds")
        origin = f"trained here ({secs:.0f} s)" if isinstance(secs, (int, float)) else "trained here"
        if a.get("resumed_from") is not None:
            origin += f", resumed at step {a['resumed_from']}"
    else:
        origin = "loaded"
    if a.get("step"):
        origin += f", {a['step']} steps"
    return origin


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


def _state(claim: dict) -> str:
    return claim.get("state") or ("holds" if claim["holds"] else "fails")


def _verdict(state: str) -> str:
    cls = {"holds": "yes", "fails": "no", "inconclusive": "maybe"}[state]
    return f"<span class='{cls}'>{ {'holds': 'holds', 'fails': 'does not hold', 'inconclusive': 'inconclusive'}[state]}</span>"


def _margin(claim: dict) -> str:
    if claim.get("margin") is None:
        return ""
    text = f"{claim['margin']:+.3g}"
    if claim.get("spread") is not None:
        text += f" ± {claim['spread']:.2g}"
    return escape(text) + (f"<br><small>{escape(claim['spread_note'])}</small>" if claim.get("spread_note") else "")


def _lengths(claim: dict) -> str:
    """The claim at a long run's snapshots: "1000: no · 2000: no · 5000: holds"."""
    rows = claim.get("by_length") or {}
    marks = {"holds": "✓", "fails": "✗", "inconclusive": "?"}
    return " · ".join(f"{escape(step)}: {marks[r.get('state') or ('holds' if r['holds'] else 'fails')]}"
                      for step, r in rows.items())


def _img(path: Path) -> str:
    return "data:image/png;base64," + base64.b64encode(path.read_bytes()).decode()


def build_report(out: Path | None = None, *, title: str = "eyegen report") -> Path:
    """Write ``<out>/report.html`` from the recorded metrics (and ``run_summary.json`` if present)."""
    out = Path(out) if out is not None else output_dir()
    results = collect_results(out)
    summary_path = out / "run_summary.json"
    summary = json.loads(summary_path.read_text()) if summary_path.is_file() else {}
    runs = {r["notebook"]: r for r in summary.get("notebooks", [])}
    now = datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    html = [f"<!doctype html><html><head><meta charset='utf-8'><title>{escape(title)}</title><style>{_CSS}</style></head><body>",
            f"<h1>{escape(title)}</h1><p>Built {now}. Profile: <b>{escape(str(summary.get('profile', '—')))}</b>. "
            f"{len(results)} notebook(s) recorded results.</p>"]

    if runs:
        from .runner import list_notebooks

        total = sum(r.get("seconds", 0) for r in runs.values())
        html.append(f"<h2>Notebook runs</h2><p>The last run of each notebook into this folder ({total / 60:.1f} min "
                    "in all).</p><table><tr><th>notebook</th><th>status</th><th>profile, seed</th><th>finished</th>"
                    "<th>seconds</th><th>executed notebook</th></tr>")
        for name in dict.fromkeys([p.stem for p in list_notebooks()] + list(runs)):
            r = runs.get(name)
            if r is None:
                html.append(f"<tr class='fail'><td>{escape(name)}</td><td>not run</td><td></td><td></td><td></td>"
                            f"<td><code>eyegen run --only {escape(name.partition('_')[0])}</code></td></tr>")
                continue
            cls = "" if r["status"] == "ok" else " class='fail'"
            html.append(f"<tr{cls}><td>{escape(name)}</td><td>{escape(r['status'])}</td>"
                        f"<td>{escape(str(r.get('profile', summary.get('profile', ''))))}, "
                        f"{escape(str(r.get('seed', summary.get('seed', ''))))}</td>"
                        f"<td>{escape(str(r.get('finished', '')))}</td><td>{r.get('seconds', 0):.1f}</td>"
                        f"<td><a href='{escape(r.get('output', ''))}'><code>{escape(r.get('output', ''))}</code></a>{('<br>' + escape(r['error'])) if r.get('error') else ''}</td></tr>")
        html.append("</table>")

    claims = [(res["notebook"], c) for res in results for c in res.get("claims", [])]
    html.append("<h2>Paper claims</h2>")
    if claims:
        states = [_state(c) for _, c in claims]
        counts = {s: states.count(s) for s in ("holds", "inconclusive", "fails")}
        html.append(f"<p>Of {len(claims)} claims, {counts['holds']} hold here, {counts['fails']} do not, and "
                    f"{counts['inconclusive']} are inconclusive (their margin lies within the seed-to-seed spread)."
                    "</p><table><tr><th>notebook</th><th>paper</th><th>claim</th><th>measured</th><th>state</th>"
                    "<th>margin ± spread</th><th>at other lengths</th><th>note</th></tr>")
        for nb, c in claims:
            html.append(f"<tr><td>{escape(nb)}</td><td>{escape(c['paper'])}</td><td><b>{escape(c['name'])}</b><br>{escape(c['statement'])}</td>"
                        f"<td>{_fmt(c['measured'])}</td><td>{_verdict(_state(c))}</td><td>{_margin(c)}</td>"
                        f"<td>{_lengths(c)}</td><td>{escape(c.get('note', ''))}</td></tr>")
        html.append("</table>")
    else:
        html.append("<p>No claims recorded yet.</p>")

    html.append("<h2>Metrics</h2>")
    for res in results:
        html.append(f"<h3>{escape(res['notebook'])} <small>(profile {escape(str(res.get('profile')))}, seed "
                    f"{escape(str(res.get('seed', '—')))}, updated {escape(str(res.get('updated', '')))})</small></h3>")
        if res.get("error"):
            html.append(f"<p class='no'>{escape(res['error'])}</p>")
        html.extend(_artifact_table(res.get("artifacts", [])))
        if res.get("metrics"):
            html.append("<table><tr><th>metric</th><th>value</th><th>unit</th><th>better</th><th>what it is</th></tr>")
            for name, m in res["metrics"].items():
                better = {True: "lower", False: "higher"}.get(m.get("lower_is_better"), "")
                html.append(f"<tr><td>{escape(name)}</td><td>{_fmt(m['value'])}</td><td>{escape(m.get('unit', ''))}</td>"
                            f"<td>{better}</td><td>{escape(m.get('description', ''))}</td></tr>")
            html.append("</table>")
        for fig in res.get("figures", []):
            path = out / fig["path"]
            if path.is_file():
                html.append(f"<figure><img src='{_img(path)}' alt='{escape(fig['name'])}'><figcaption>{escape(fig['name'])}: "
                            f"{escape(fig.get('caption', ''))}</figcaption></figure>")
    html.append("</body></html>")
    target = out / "report.html"
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text("\n".join(html))
    return target
