"""The report folder: metrics.json, predictions.csv and report.html, a self-contained page (PNG plots
embedded as data URIs, no script, nothing fetched) that opens offline in any browser."""
from __future__ import annotations

import base64
import csv
import html
import io
import json
import pathlib

import numpy as np

from .evaluate import PERIOD, SessionResult, main_track, prediction_series


def write_predictions(path, results: list):
    with open(path, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["session", "time", "stamp", "track_id", "valence", "arousal", "confidence", "face", "voice"])
        for r in results:
            for fr in r.frames:
                for p in fr.step.people:
                    w.writerow([r.bag, f"{fr.step.time - r.start:.3f}", f"{fr.step.time:.9f}", p.track_id,
                                f"{p.valence:.6f}", f"{p.arousal:.6f}", f"{p.confidence:.4f}", int(p.face), int(p.voice)])


def _png(fig) -> str:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=90, bbox_inches="tight")
    import matplotlib.pyplot as plt
    plt.close(fig)
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode()


def _plots(r: SessionResult, annotations, latencies) -> list[tuple[str, str]]:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    series = prediction_series(r)
    main = main_track(series)
    out = []
    fig, axes = plt.subplots(2, 1, figsize=(9, 4.6), sharex=True)
    for ax, dim in zip(axes, ("valence", "arousal")):
        for track, s in series.items():
            ax.plot(s["time"], s[dim], lw=1.2, label=f"predicted {track or 'voice only'}")
        if annotations is not None:
            for person, g in annotations.series.items():
                ax.plot(g["time"], g[dim], "k--", lw=1.0, label=f"gold {person}".strip())
        ax.set_ylim(-1.05, 1.05)
        ax.set_ylabel(dim)
        ax.grid(alpha=0.3)
    axes[0].legend(loc="upper right", fontsize=7)
    axes[1].set_xlabel("time (s)")
    out.append(("Prediction and gold over time", _png(fig)))

    fig, ax = plt.subplots(figsize=(4.6, 4.6))
    ax.add_patch(plt.Circle((0, 0), 1, fill=False, color="grey", lw=0.8))
    ax.axhline(0, color="grey", lw=0.5)
    ax.axvline(0, color="grey", lw=0.5)
    if main is not None:
        s = series[main]
        ax.scatter(s["valence"], s["arousal"], c=s["time"], cmap="viridis", s=6)
        ax.plot(s["valence"], s["arousal"], lw=0.4, color="tab:blue", alpha=0.5)
    for x, y, t in ((0.7, 0.7, "excited"), (-0.7, 0.7, "tense"), (-0.7, -0.7, "sad"), (0.7, -0.7, "calm")):
        ax.text(x, y, t, ha="center", fontsize=8, color="grey")
    ax.set(xlim=(-1.1, 1.1), ylim=(-1.1, 1.1), xlabel="valence", ylabel="arousal", aspect="equal")
    out.append((f"Valence-arousal trajectory ({main or 'nobody'}, colour = time)", _png(fig)))

    fig, ax = plt.subplots(figsize=(9, 1.8))
    t = np.array([fr.step.time - r.start for fr in r.frames])
    face = np.array([any(p.face for p in fr.step.people) for fr in r.frames], float)
    voice = np.array([any(p.voice for p in fr.step.people) for fr in r.frames], float)
    ax.fill_between(t, 1.1, 1.1 + 0.8 * face, step="mid", color="tab:green", label="face")
    ax.fill_between(t, 0.1, 0.1 + 0.8 * voice, step="mid", color="tab:orange", label="voice")
    ax.set(yticks=[0.5, 1.5], yticklabels=["voice", "face"], xlabel="time (s)", ylim=(0, 2))
    out.append(("Modality presence", _png(fig)))

    if latencies:
        fig, ax = plt.subplots(figsize=(6, 2.6))
        ax.hist(np.array(latencies) * 1000, bins=30, color="tab:purple")
        ax.set(xlabel="image-to-affect latency (ms)", ylabel="AffectArray")
        out.append(("Latency (live)", _png(fig)))
    return out


def write_report(folder, results: list, metrics: dict, annotations_for, latencies=None, title="emo_eval report"):
    folder = pathlib.Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "metrics.json").write_text(json.dumps(metrics, indent=2, sort_keys=True, default=float) + "\n")
    write_predictions(folder / "predictions.csv", results)
    parts = [f"<h1>{html.escape(title)}</h1>"]
    if "pooled" in metrics:
        parts.append("<h2>Pooled over sessions</h2>" + _table(metrics["pooled"]))
    for r in results:
        entry = metrics["sessions"][r.bag]
        parts.append(f"<h2>Session {html.escape(r.bag)}</h2><p>{len(r.frames)} AffectArray at "
                     f"{1 / PERIOD:.0f} Hz; inputs {html.escape(json.dumps(entry['inputs']))}; rejected "
                     f"{html.escape(json.dumps(entry['rejected']))}{'' if r.complete else '; <b>the bag ends in a broken message: partial report</b>'}</p>")
        if "metrics" in entry:
            parts.append(_table(entry["metrics"]))
        for caption, uri in _plots(r, annotations_for(r), (latencies or {}).get(r.bag)):
            parts.append(f'<figure><img alt="{html.escape(caption)}" src="{uri}"><figcaption>{html.escape(caption)}'
                         "</figcaption></figure>")
    page = ("<!doctype html><html><head><meta charset='utf-8'><title>" + html.escape(title) + "</title><style>"
            "body{font-family:sans-serif;max-width:960px;margin:2em auto}table{border-collapse:collapse}"
            "td,th{border:1px solid #ccc;padding:4px 10px;text-align:right}img{max-width:100%}</style></head><body>"
            + "\n".join(parts) + "</body></html>\n")
    (folder / "report.html").write_text(page)
    return folder / "report.html"


def _table(m: dict) -> str:
    rows = "".join(f"<tr><th>{d}</th>" + "".join(f"<td>{'' if m[d][k] is None else f'{m[d][k]:.3f}'}</td>"
                                                 for k in ("ccc", "pcc", "rmse")) + f"<td>{m[d]['n']}</td></tr>"
                   for d in ("valence", "arousal"))
    return "<table><tr><th></th><th>CCC</th><th>PCC</th><th>RMSE</th><th>steps</th></tr>" + rows + "</table>"
