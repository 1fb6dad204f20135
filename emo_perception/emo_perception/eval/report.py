"""The report folder: metrics.json, predictions.csv and report.html, a self-contained page (PNG plots
embedded as data URIs, no script, nothing fetched) that opens offline in any browser. The page is per
person: who was seen when, their means, what each score compared, and a definition of every field."""
from __future__ import annotations

import base64
import csv
import html
import io
import json
import os
import pathlib

import numpy as np

from ..core.alignment import PERIOD
from ..core.speaker import track_name
from .evaluate import (UNNAMED, SessionResult, format_spans, pair, person_label, prediction_series, track_label,
                       track_of, track_summary)
from .latency import STARTUP_S, LiveLatency, describe


INPUT_NAMES = {"image": "camera images (sensor_msgs/Image)", "compressed_image": "camera images (CompressedImage)",
               "audio": "audio chunks (AudioDataStamped)", "audio_info": "audio format (AudioInfo)"}
TIME_AXIS = "time (s from the recording's first camera/microphone message)"
VOICE_COLOUR = "0.45"


def _colours(tracks) -> dict:
    """One colour per person, the same in every plot (voice only: grey)."""
    import matplotlib

    cycle = matplotlib.colormaps["tab10"].colors
    faces = [t for t in sorted(tracks) if t]
    return {**{t: cycle[k % len(cycle)] for k, t in enumerate(faces)}, "": VOICE_COLOUR}


def compared(r: SessionResult, entry: dict, annotations) -> dict:
    """annotated person label -> (track, paired arrays): the steps each score used (evaluate.pair
    again, on the track metrics.json names)."""
    if annotations is None or "per_person" not in entry:
        return {}
    series = prediction_series(r)
    out = {}
    for label, e in entry["per_person"].items():
        person = "" if label == UNNAMED else label
        track = track_of(e["track"])
        if person in annotations.series and track in series:
            out[label] = (track, pair(series[track], annotations.series[person]))
    return out


def write_predictions(path, results: list, metrics: dict | None = None, annotations_for=None):
    """One row per person per AffectArray; `compared_with` names the annotated person a row was scored
    against (empty: not in any score); `mode` and `model_id` say what produced it."""
    with open(path, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["session", "time", "stamp", "track_id", "valence", "arousal", "confidence", "face", "voice",
                    "mode", "model_id", "compared_with"])
        for r in results:
            used = {}
            if metrics is not None and annotations_for is not None:
                for label, (track, pairs) in compared(r, metrics["sessions"][r.bag], annotations_for(r)).items():
                    for d in pairs.values():
                        used.update({(track, int(k)): label for k in np.round(d[2] / PERIOD)})
            for fr in r.frames:
                k = int(round((fr.step.time - r.start) / PERIOD))
                for p in fr.step.people:
                    w.writerow([r.bag, f"{fr.step.time - r.start:.3f}", f"{fr.step.time:.9f}", track_name(p.track_id),
                                f"{p.valence:.6f}", f"{p.arousal:.6f}", f"{p.confidence:.4f}", int(p.face),
                                int(p.voice), fr.mode, fr.model_id, used.get((p.track_id, k), "")])


def write_compared(path, results: list, metrics: dict, annotations_for):
    """compared.csv: every step each score compared, one row per dimension, the values exact (Python's
    shortest round-trip repr): the inputs of CCC/PCC/RMSE, so the merge of shards (eval/shards.py)
    pools sessions exactly as a single run does. Rows in session order, then person, then dimension."""
    with open(path, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["session", "person", "track", "dimension", "time", "prediction", "annotation"])
        for r in results:
            for label, (track, pairs) in compared(r, metrics["sessions"][r.bag], annotations_for(r)).items():
                for dim in ("valence", "arousal"):
                    p, g, t = pairs[dim]
                    w.writerows([r.bag, label, track_label(track), dim, f"{ti:.3f}", repr(float(pi)), repr(float(gi))]
                                for pi, gi, ti in zip(p, g, t))


def _png(fig) -> str:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=80, bbox_inches="tight")
    import matplotlib.pyplot as plt
    plt.close(fig)
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode()


def _va_axes(ax, dim):
    ax.set_ylim(-1.05, 1.05)
    ax.set_yticks([-1, -0.5, 0, 0.5, 1])
    ax.set_ylabel(f"{dim} (-1 to +1)")
    ax.grid(alpha=0.3)


def _plots(r: SessionResult, entry: dict, annotations, latencies) -> list[tuple[str, str]]:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    series = prediction_series(r)
    colour = _colours(series)
    out = []
    fig, axes = plt.subplots(2, 1, figsize=(9, 4.6), sharex=True)
    for ax, dim in zip(axes, ("valence", "arousal")):
        for track, s in sorted(series.items()):
            ax.plot(s["time"], s[dim], ".", ms=2.5, color=colour[track], label=f"predicted: {track_label(track)}")
        if annotations is not None:
            for person, g in annotations.series.items():
                ax.plot(g["time"], g[dim], "k--", lw=1.0, label=f"annotation: {person_label(person)}")
        _va_axes(ax, dim)
    if series or annotations is not None:    # no predictions and no annotations: nothing to name
        axes[0].legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize=8, markerscale=3, frameon=False)
    axes[1].set_xlabel(TIME_AXIS)
    out.append(("Predicted valence (top) and arousal (bottom) of each person over time"
                + (", with the annotation (dashed)" if annotations is not None else
                   "; no annotations were given, so nothing is scored"), _png(fig)))

    for label, (track, pairs) in compared(r, entry, annotations).items():
        e = entry["per_person"][label]
        fig, axes = plt.subplots(2, 1, figsize=(9, 3.4), sharex=True)
        for ax, dim in zip(axes, ("valence", "arousal")):
            p, g, t = pairs[dim]
            ax.plot(t, g, "k.", ms=3, label=f"annotation: {label}")
            ax.plot(t, p, ".", ms=3, color=colour[track], label=f"predicted: {track_label(track)}")
            _va_axes(ax, dim)
        axes[0].legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize=8, markerscale=3, frameon=False)
        axes[1].set_xlabel(TIME_AXIS)
        n = max(len(v[0]) for v in pairs.values())
        out.append((f"What the scores of {label} compared: the annotation and track {track_label(track)} "
                    f"({e['rule']}) at the {n} steps where both have a value, {format_spans(e['spans_s'])}", _png(fig)))

    fig, ax = plt.subplots(figsize=(5.6, 4.6))
    ax.add_patch(plt.Circle((0, 0), 1, fill=False, color="grey", lw=0.8))
    ax.axhline(0, color="grey", lw=0.5)
    ax.axvline(0, color="grey", lw=0.5)
    for track, s in sorted(series.items()):
        ax.plot(s["valence"], s["arousal"], ".", ms=3, alpha=0.6, color=colour[track], label=track_label(track))
        ax.plot(np.mean(s["valence"]), np.mean(s["arousal"]), "X", ms=10, mec="k", color=colour[track])
    for x, y, t in ((0.7, 0.7, "excited"), (-0.7, 0.7, "tense"), (-0.7, -0.7, "sad"), (0.7, -0.7, "calm")):
        ax.text(x, y, t, ha="center", fontsize=8, color="grey")
    ax.set(xlim=(-1.1, 1.1), ylim=(-1.1, 1.1), xlabel="valence (-1 unpleasant to +1 pleasant)",
           ylabel="arousal (-1 calm to +1 excited)", aspect="equal")
    if series:
        ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize=8, markerscale=3, frameon=False)
    out.append(("Valence and arousal of every person on the circumplex: one dot per 25 Hz step, X = the "
                "person's mean", _png(fig)))

    tracks = sorted(series, key=lambda t: (t == "", t))
    fig, ax = plt.subplots(figsize=(9, 0.6 + 0.55 * max(len(tracks), 1)))
    labels = []
    for row, track in enumerate(tracks):
        t, face, voice = [], [], []
        for fr in r.frames:
            p = next((p for p in fr.step.people if p.track_id == track), None)
            if p is not None:
                t.append(fr.step.time - r.start)
                face.append(p.face)
                voice.append(p.voice)
        t = np.asarray(t)
        for on, y0, c in ((np.asarray(face, bool), row + 0.5, "tab:green"),
                          (np.asarray(voice, bool), row + 0.1, "tab:orange")):
            runs = spans_of_steps(t[on])
            if runs:
                ax.broken_barh([(a - PERIOD / 2, b - a + PERIOD) for a, b in runs], (y0, 0.35), color=c)
        labels.append(track_label(track))
    ax.set_yticks(np.arange(len(tracks)) + 0.5, labels)
    ax.set(ylim=(0, max(len(tracks), 1)), xlabel=TIME_AXIS)
    ax.set_xlim(left=0)
    ax.grid(axis="x", alpha=0.3)
    from matplotlib.lines import Line2D
    ax.legend([Line2D([], [], color="tab:green", lw=3), Line2D([], [], color="tab:orange", lw=3)],
              ["face seen", "voice attributed"], loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize=8,
              frameon=False)
    out.append(("When each person was seen (face, upper band) and heard (voice attributed to them, lower band), "
                "per 25 Hz step", _png(fig)))

    if latencies:
        out.append(_latency_plot(plt, latencies))
    return out


STARTUP_COLOUR, STEADY_COLOUR = "tab:red", "tab:purple"   # the first second / after it, in both latency panels


def _latency_plot(plt, lat: LiveLatency) -> tuple[str, str]:
    """Histogram of the latency with the first second stacked apart (and its own colour), and the latency
    over time with the first second shaded; the percentiles drawn are the steady state's."""
    early, steady = lat.startup_ms(), lat.steady_ms()
    every = np.concatenate([early, steady])
    fig, (ax, ax_t) = plt.subplots(1, 2, figsize=(10, 2.8), gridspec_kw={"width_ratios": [1, 1.3]})
    bins = np.histogram_bin_edges(every, bins=30)
    ax.hist([early, steady], bins=bins, stacked=True, color=[STARTUP_COLOUR, STEADY_COLOUR],
            label=[f"first {STARTUP_S:g} s (start-up): {early.size}", f"after it (steady state): {steady.size}"])
    for q, style in ((50, "-"), (95, "--")):
        if steady.size:
            v = np.percentile(steady, q)
            ax.axvline(v, color="k", ls=style, lw=1, label=f"steady p{q} {v:.0f} ms")
    ax.legend(fontsize=7, frameon=False)
    ax.set(xlabel="image-to-affect latency (ms, wall clock)", ylabel="AffectArray messages")
    since = np.asarray(lat.since_first_s, np.float64)
    ms = np.asarray(lat.latency_s, np.float64) * 1000
    ax_t.axvspan(0, STARTUP_S, color=STARTUP_COLOUR, alpha=0.15, lw=0)
    ax_t.plot(since[since < STARTUP_S], ms[since < STARTUP_S], ".", ms=3, color=STARTUP_COLOUR)
    ax_t.plot(since[since >= STARTUP_S], ms[since >= STARTUP_S], ".", ms=3, color=STEADY_COLOUR)
    ax_t.set(xlabel="time since the first camera image (s, stamps)", ylabel="latency (ms)")
    ax_t.set_xlim(left=0)
    ax_t.set_ylim(bottom=0)
    ax_t.grid(alpha=0.3)
    s = lat.summary()
    first = ("no estimate with a face arrived" if s["first_estimate_ms"] is None
             else f"the first estimate with a face arrived {s['first_estimate_ms']:.0f} ms after the first image")
    return (f"Latency of the live run: from publishing a camera image to receiving the AffectArray it fed "
            f"({every.size} messages with a face); red: the first {STARTUP_S:g} s after the first camera image "
            f"(start-up, shaded on the right), purple: the steady state after it; {first}", _png(fig))


def spans_of_steps(t) -> list:
    """Runs of consecutive 25 Hz steps as (first, last) times."""
    t = np.sort(np.asarray(t, np.float64))
    if not t.size:
        return []
    cut = np.flatnonzero(np.diff(t) > 1.5 * PERIOD)
    return [(float(t[a]), float(t[b])) for a, b in zip(np.r_[0, cut + 1], np.r_[cut, t.size - 1])]


def _esc(x) -> str:
    return html.escape(str(x))


def _kv_table(rows) -> str:
    return ("<table class='kv'>" + "".join(f"<tr><th>{_esc(k)}</th><td>{_esc(v)}</td></tr>" for k, v in rows)
            + "</table>")


def _f(x, fmt="{:.3f}") -> str:
    return "&mdash;" if x is None else fmt.format(x)


def _people_table(stats: dict) -> str:
    head = ("<tr><th>person</th><th>seen (s)</th><th>steps</th><th>face steps</th><th>voice steps</th>"
            "<th>mean valence</th><th>mean arousal</th><th>mean confidence</th></tr>")
    rows = "".join(f"<tr><th>{_esc(track_label(t))}</th><td class='l'>{_esc(format_spans(s['spans_s']))}</td>"
                   f"<td>{s['steps']}</td><td>{s['face_steps']}</td><td>{s['voice_steps']}</td>"
                   f"<td>{s['mean_valence']:+.3f}</td><td>{s['mean_arousal']:+.3f}</td><td>{s['mean_confidence']:.3f}</td></tr>"
                   for t, s in sorted(stats.items(), key=lambda kv: (track_of(kv[0]) == "", kv[0])))
    return "<table>" + head + (rows or "<tr><td colspan=8 class='l'>nobody was seen or heard</td></tr>") + "</table>"


def _scores_table(m: dict) -> str:
    rows = "".join(f"<tr><th>{d}</th>" + "".join(f"<td>{_f(m[d][k])}</td>" for k in ("ccc", "pcc", "rmse"))
                   + f"<td>{m[d]['n']}</td></tr>" for d in ("valence", "arousal") if d in m)
    return "<table><tr><th></th><th>CCC</th><th>PCC</th><th>RMSE</th><th>steps</th></tr>" + rows + "</table>"


def _per_person_table(entry: dict) -> str:
    head = ("<tr><th>annotated person</th><th>compared with</th><th>how it was chosen</th><th>time spans (s)</th>"
            "<th></th><th>CCC</th><th>PCC</th><th>RMSE</th><th>steps</th></tr>")
    rows = []
    for label, e in entry["per_person"].items():
        for k, d in enumerate(("valence", "arousal")):
            lead = (f"<th rowspan=2>{_esc(label)}</th><td rowspan=2 class='l'>{_esc(track_label(e['track']))}</td>"
                    f"<td rowspan=2 class='l'>{_esc(e['rule'])}</td><td rowspan=2 class='l'>"
                    f"{_esc(format_spans(e['spans_s']))}</td>") if k == 0 else ""
            rows.append(f"<tr>{lead}<th>{d}</th>" + "".join(f"<td>{_f(e[d][x])}</td>" for x in ("ccc", "pcc", "rmse"))
                        + f"<td>{e[d]['n']}</td></tr>")
    return "<table>" + head + "".join(rows) + "</table>"


def _warnings(ws) -> str:
    return ("<div class='warn'><b>Read before using these numbers:</b><ul>"
            + "".join(f"<li>{_esc(w)}</li>" for w in ws) + "</ul></div>") if ws else ""


CONFIDENCE = {
    "prior": ("prior mode (no trained fusion; core/prior.py): 0.5 for an estimate from a face alone, 0.75 when "
              "the voice is attributed to that face too, 0.25 &times; the voice probability for a voice-only "
              "estimate. It says which cues went in, not how likely the estimate is right."),
    "gru": ("gru mode (the trained fusion model): the model's confidence head, 0 to 1 (a sigmoid), trained to "
            "predict 1 &minus; the mean absolute error of its valence and arousal on labelled steps; 0 when "
            "neither face nor voice was seen."),
}


def _definitions(modes) -> str:
    conf = "".join(f"<li>{CONFIDENCE[m]}</li>" for m in (modes or CONFIDENCE) if m in CONFIDENCE)
    items = [
        ("time", "seconds from the recording's first camera or microphone message (for a bag made with "
                 "<code>emo_bag from-media</code>: the time in the video). One step = one point of the 25 Hz grid "
                 "(0.04 s)."),
        ("person", "a face track of the face tracker (f0, f1, ... in the order they appeared; a person who leaves "
                   "for longer than the tracker's <code>max_age_s</code> comes back as a new track). "
                   "<i>voice</i>: a voice heard while no face was in view (an empty track id in AffectArray)."),
        ("valence", "how pleasant the person appears: &minus;1 (unpleasant) to +1 (pleasant), no unit (the circumplex "
                    "scale, Russell 1980; RECOLA's annotation scale)."),
        ("arousal", "how activated the person appears: &minus;1 (calm, sleepy) to +1 (excited, alert), no unit."),
        ("confidence", "<ul>" + conf + "</ul>"),
        ("steps, face steps, voice steps", "25 Hz steps with an estimate for the person; of those, the steps where "
                                           "their face was seen; and where a voice was attributed to them."),
        ("seen (s)", "the time spans with an estimate for the person (steps less than 0.5 s apart form one span)."),
        ("mean valence / arousal / confidence", "the mean over the person's steps."),
        ("compared with, how it was chosen", "the predicted person a score compares the annotation with, and the "
                                             "rule that chose it (docs/evaluation.md: which person an annotation is "
                                             "compared with)."),
        ("CCC", "Lin's concordance correlation coefficient between prediction and annotation, &minus;1 to 1 "
                "(1: equal); "
                "the AVEC/RECOLA metric. &mdash;: cannot be computed (the warnings say why)."),
        ("PCC", "Pearson's correlation coefficient, &minus;1 to 1; &mdash; when either side is constant."),
        ("RMSE", "root mean square error, on the &minus;1 to +1 scale."),
        ("steps (scores)", "the 25 Hz steps where the prediction and the annotation both have a value."),
        ("latency", "live runs: wall-clock time from publishing a camera image to receiving the AffectArray it fed; "
                    f"<i>steady state</i>: the AffectArrays stamped {STARTUP_S:g} s or more after the first camera "
                    "image; <i>first second</i>: those before (start-up: models warming, the audio window filling); "
                    "<i>first estimate</i>: from publishing the first camera image to receiving the first "
                    "AffectArray with a face."),
    ]
    return ("<h2>What the fields mean</h2><dl>" + "".join(f"<dt>{_esc(k)}</dt><dd>{v}</dd>" for k, v in items)
            + "</dl><p>predictions.csv has one row per person per step with these fields, plus <code>stamp</code> "
              "(the header stamp, s), <code>face</code>/<code>voice</code> (1: the modality contributed), "
              "<code>mode</code>, <code>model_id</code> and <code>compared_with</code> (the annotated person the row "
              "was scored against; empty: in no score).</p>")


def _latency_line(latencies: LiveLatency | None) -> str:
    if not latencies:
        return ""
    return f"<p class='latency'>Live: {_esc(describe(latencies.summary()))}.</p>"


def write_report(folder, results: list, metrics: dict, annotations_for, latencies=None, title="emo_eval report",
                 run: dict | None = None):
    """`run`: how the report was made (what was run on which input), shown first as a table; `latencies`:
    bag -> LiveLatency of its live run."""
    folder = pathlib.Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "metrics.json").write_text(json.dumps(metrics, indent=2, sort_keys=True, default=float) + "\n")
    write_predictions(folder / "predictions.csv", results, metrics, annotations_for)
    write_compared(folder / "compared.csv", results, metrics, annotations_for)
    modes = sorted({m for e in metrics["sessions"].values() for m in e.get("modes", [])})
    made = list((run or {}).items()) + [
        ("fusion mode", ", ".join(modes) or "none (no AffectArray)"),
        ("models", ", ".join(sorted({i for e in metrics["sessions"].values() for i in e.get("model_ids", [])})) or "-"),
        ("annotations", ", ".join(sorted({e["annotations"] for e in metrics["sessions"].values()
                                          if "annotations" in e}))
         or "none: nothing is scored"),
    ]
    parts = [f"<h1>{_esc(title)}</h1>", _kv_table(made)]
    if len(results) > 1:     # one session: its warnings stand next to its scores
        parts.append(_warnings(metrics.get("warnings")))
    if "pooled" in metrics and len(metrics["sessions"]) > 1:
        parts.append("<h2>Pooled over sessions</h2>" + _scores_table(metrics["pooled"]))
    for r in results:
        entry = metrics["sessions"][r.bag]
        annotations = annotations_for(r)
        parts.append(f"<h2>Session {_esc(pathlib.Path(r.bag).name)}</h2><p class='path'>{_esc(r.bag)}</p>")
        if not r.complete:
            parts.append("<p class='warn'><b>The bag ends in a broken message: this report covers what came before."
                         "</b></p>")
        inputs = [(INPUT_NAMES.get(k, k), v) for k, v in sorted(entry["inputs"].items())]
        rejected = _kv_table(sorted(entry["rejected"].items())) if entry["rejected"] else "<p>none</p>"
        parts.append("<div class='row'><div><h3>Inputs</h3>" + _kv_table(inputs) + "</div><div><h3>Rejected messages"
                     "</h3>" + rejected + "</div><div><h3>Output</h3>" + _kv_table(
                         [("AffectArray messages", entry["affect_messages"]), ("rate", f"{1 / PERIOD:.0f} Hz")])
                     + "</div></div>")
        parts.append("<h3>People</h3>" + _people_table(entry.get("tracks") or track_summary(r))
                     + _latency_line((latencies or {}).get(r.bag)))
        if "per_person" in entry:
            parts.append("<h3>Scores</h3>" + _per_person_table(entry))
            if len(entry["per_person"]) > 1 and "valence" in entry["metrics"]:
                parts.append("<p>All compared people of the session together:</p>" + _scores_table(entry["metrics"]))
        parts.append(_warnings(entry.get("warnings")))
        for caption, uri in _plots(r, entry, annotations, (latencies or {}).get(r.bag)):
            parts.append(f'<figure><img alt="{_esc(caption)}" src="{uri}"><figcaption>{_esc(caption)}'
                         "</figcaption></figure>")
    parts.append(_definitions(modes))
    (folder / "report.html").write_text(_page(title, parts))
    return folder / "report.html"


def write_merged_report(folder, metrics: dict, headers: dict, tables: dict, settings: dict):
    """The merge of shards: metrics.json, the shares' predictions.csv and compared.csv rows (`tables`,
    name -> rows in session order, under `headers`), and a page with the pooled and per-session scores
    and people, linking each session to its share's report.html for the plots."""
    folder = pathlib.Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "metrics.json").write_text(json.dumps(metrics, indent=2, sort_keys=True, default=float) + "\n")
    for name, rows in tables.items():
        with open(folder / name, "w", newline="") as f:
            w = csv.writer(f)
            w.writerow(headers[name])
            w.writerows(rows)
    sessions, shares = metrics["sessions"], metrics["merged_from"]
    where = {b: s["folder"] for s in shares for b in s["sessions"]}
    title = f"emo_eval: {len(sessions)} sessions merged from {len(shares)} shares"
    made = [("made by", "emo_eval merge of the report folders of emo_eval --shard I/N runs (docs/evaluation.md)"),
            *((f"share {s['shard']}", f"{s['folder']}: {s['command'] or '-'}") for s in shares),
            *sorted((k, _setting(v)) for k, v in settings.items()),
            ("fusion mode", ", ".join(sorted({m for e in sessions.values() for m in e.get("modes", [])})) or "none"),
            ("models", ", ".join(sorted({i for e in sessions.values() for i in e.get("model_ids", [])})) or "-")]
    parts = [f"<h1>{_esc(title)}</h1>", _kv_table(made), _warnings(metrics.get("warnings"))]
    if "pooled" in metrics:
        parts.append("<h2>Pooled over sessions</h2>" + _scores_table(metrics["pooled"]))
    for bag, entry in sessions.items():
        link = pathlib.Path(os.path.relpath(pathlib.Path(where[bag]) / "report.html", folder)).as_posix()
        parts.append(f"<h2>Session {_esc(pathlib.Path(bag).name)}</h2><p class='path'>{_esc(bag)}; plots: "
                     f"<a href='{_esc(link)}'>{_esc(link)}</a></p>")
        if not entry["complete"]:
            parts.append("<p class='warn'><b>The bag ends in a broken message: this report covers what came before."
                         "</b></p>")
        parts.append("<h3>People</h3>" + _people_table(entry["tracks"]))
        if "per_person" in entry:
            parts.append("<h3>Scores</h3>" + _per_person_table(entry))
    parts.append(_definitions(sorted({m for e in sessions.values() for m in e.get("modes", [])})))
    (folder / "report.html").write_text(_page(title, parts))
    return folder / "report.html"


def _setting(v) -> str:
    """A shard's setting as a reader wants it: no/yes, '-' for none, lists joined."""
    if isinstance(v, bool):
        return "yes" if v else "no"
    if isinstance(v, (list, tuple)):
        return ", ".join(map(str, v))
    return "-" if v is None else str(v)


def _page(title: str, parts: list) -> str:
    return ("<!doctype html><html><head><meta charset='utf-8'><title>" + _esc(title) + "</title><style>"
            "body{font-family:sans-serif;max-width:1000px;margin:2em auto;color:#222}table{border-collapse:collapse;"
            "margin:0.4em 0}td,th{border:1px solid #ccc;padding:3px 9px;text-align:right}"
            "th{background:#f4f4f4;white-space:nowrap}"
            "td.l,.kv td{text-align:left}.kv th{text-align:left}img{max-width:100%}.path{color:#777;margin-top:-0.6em;"
            "font-size:90%}.warn{background:#fff4d6;border:1px solid #e0b040;padding:0.4em 1em;margin:0.6em 0}"
            ".row{display:flex;gap:2em;flex-wrap:wrap}figcaption{font-size:90%;color:#444}dt{font-weight:bold;"
            "margin-top:0.5em}h3{margin-bottom:0.2em}</style></head><body>"
            + "\n".join(p for p in parts if p) + "</body></html>\n")
