"""What the page shows of a judgment, rendered from the JSON the ``judge`` endpoint returns.

The page never reads the model's output a second way: everything here is derived from the row
``unireward judge`` prints (pairwise), or from one such row per candidate (pointwise), so what a user
sees and what an API client gets cannot disagree. All model and user text is HTML-escaped.
"""

from __future__ import annotations

import re
from html import escape
from typing import Any

from unireward.protocol.tasks import Task, candidate_noun

Payload = dict[str, Any] | list[dict[str, Any]]


def _fmt(x: Any) -> str:
    """A score as people write it.

    >>> _fmt(9.0), _fmt(7.5), _fmt(None)
    ('9', '7.5', '–')
    """
    if x is None:
        return "–"
    x = float(x)
    return str(int(x)) if x.is_integer() else f"{x:g}"


_PATH_RE = re.compile(r"(?:/[^\s/'\"]+)+/([^\s/'\"]+)")


def short_paths(text: str) -> str:
    """Folders dropped from file paths, for display: uploads live in long temporary folders.

    >>> short_paths("/tmp/gradio/9f3e/bad.mp4: cannot open video (input: '/tmp/gradio/9f3e/bad.mp4')")
    "bad.mp4: cannot open video (input: 'bad.mp4')"
    """
    return _PATH_RE.sub(lambda m: m.group(1), text)


def _rows(payload: Payload) -> list[dict[str, Any]]:
    return payload if isinstance(payload, list) else [payload]


def is_pointwise(payload: Payload) -> bool:
    return isinstance(payload, list)


def winner(payload: Payload) -> int | None:
    """The candidate to highlight: the verdict (pairwise) or the strictly higher score (pointwise).

    >>> winner({"winner": 2}), winner([{"score": 7.0}, {"score": 4.5}]), winner([{"score": 5.0}, {"score": 5.0}])
    (2, 1, None)
    """
    if not is_pointwise(payload):
        return payload.get("winner")  # type: ignore[union-attr]
    scores = [r.get("score") for r in _rows(payload)]
    if len(scores) != 2 or None in scores or scores[0] == scores[1]:
        return None
    return 1 if scores[0] > scores[1] else 2


def verdict_html(payload: Payload, task: Task | str) -> str:
    """The headline: the verdict (a tie, or why there is none), swap agreement and the vote share.

    >>> print(verdict_html({"status": "ok", "winner": 1, "preference": 1.0, "agreement": None}, "image_generation"))
    <div class="ur-verdict ur-ok" data-winner="1"><b>Image 1 is better</b></div>
    >>> "no verdict" in verdict_html({"status": "invalid", "winner": None, "reason": "answer does not name"}, "image_generation")
    True
    """
    noun = candidate_noun(task)
    if is_pointwise(payload):
        parts = []
        for i, row in enumerate(_rows(payload), 1):
            if row.get("error"):
                parts.append(f"{noun} {i}: <span class='ur-error'>{escape(short_paths(row['error']))}</span>")
            elif row.get("score") is None:
                parts.append(f"{noun} {i}: no score ({escape(row.get('reason') or row.get('status') or '')})")
            else:
                parts.append(f"{noun} {i}: <b>{_fmt(row['score'])}/10</b>")
        w = winner(payload)
        head = f"<b>{noun} {w} scores higher</b><br>" if w else ""
        return f'<div class="ur-verdict" data-winner="{w or ""}">{head}{"<br>".join(parts)}</div>'
    row = payload
    if row.get("error"):
        return f'<div class="ur-verdict ur-error" data-winner=""><b>Error</b>: {escape(short_paths(str(row["error"])))}</div>'
    w = row.get("winner")
    if w is None and row.get("tie"):
        return '<div class="ur-verdict ur-ok" data-winner=""><b>Tie: both are equally good</b></div>'
    if w is None:
        why = escape(str(row.get("reason") or row.get("status") or ""))
        return f'<div class="ur-verdict ur-none" data-winner=""><b>{escape(str(row.get("status")))}: no verdict</b> ({why})</div>'
    extra = []
    if row.get("agreement") is not None:
        extra.append("both orders agree" if row["agreement"] == 1.0 else "the two orders disagree")
    votes = [v for v in row.get("votes") or [] if v in (1, 2)]
    if len(row.get("votes") or []) > 1:
        share = row["preference"] if w == 1 else 1 - row["preference"]
        extra.append(f"{share:.0%} of {len(votes)} valid votes")
    tail = f"<br><span class='ur-detail'>{escape('; '.join(extra))}</span>" if extra else ""
    return f'<div class="ur-verdict ur-ok" data-winner="{w}"><b>{noun} {w} is better</b>{tail}</div>'


def badge_html(payload: Payload | None, index: int) -> str:
    """The label on candidate ``index`` (1 or 2): winner, score, or nothing yet.

    >>> badge_html({"winner": 2, "totals": {"1": 12.0, "2": 17.0}}, 2)
    '<div class="ur-badge ur-win">Preferred · total 17</div>'
    >>> badge_html({"winner": None, "tie": True, "overall": {"1": 0.5, "2": 0.5}}, 1)
    '<div class="ur-badge">share 0.50</div>'
    """
    if not payload:
        return '<div class="ur-badge"></div>'
    if is_pointwise(payload):
        rows = _rows(payload)
        score = rows[index - 1].get("score") if index <= len(rows) else None
        text = f"score {_fmt(score)}/10" if score is not None else ""
    else:
        totals = payload.get("totals") or {}  # type: ignore[union-attr]
        share = payload.get("overall") or {}  # type: ignore[union-attr]
        text = (f"total {_fmt(totals[str(index)])}" if str(index) in totals
                else f"share {share[str(index)]:.2f}" if share.get(str(index)) is not None else "")  # fmt: skip
    won = winner(payload) == index
    cls = "ur-badge ur-win" if won else "ur-badge"
    label = " · ".join(x for x in ("Preferred" if won else "", text) if x)
    return f'<div class="{cls}">{escape(label)}</div>'


def score_table_html(payload: Payload, task: Task | str) -> str:
    """Per-dimension scores of both candidates, their stated totals, and whether the totals agree
    with the verdict.

    >>> row = {"winner": 1, "dimensions": [{"name": "Semantic consistency", "scores": {"1": 9.0, "2": 3.0}}],
    ...        "totals": {"1": 9.0, "2": 3.0}, "totals_consistent": True}
    >>> html = score_table_html(row, "image_generation")
    >>> "<td>Semantic consistency</td><td>9</td><td>3</td>" in html, "agree with the verdict: yes" in html
    (True, True)
    """
    noun = candidate_noun(task)
    head = f"<tr><th>Dimension</th><th>{noun} 1</th><th>{noun} 2</th></tr>"
    body: list[str] = []
    if is_pointwise(payload):
        rows = _rows(payload)
        names: list[str] = []
        per: list[dict[str, float]] = []
        for row in rows:
            got = {}
            for d in row.get("dimensions") or []:
                got.setdefault(d["name"], d["scores"].get("1"))
                if d["name"] not in names:
                    names.append(d["name"])
            per.append(got)
        cells = lambda vals: "".join(f"<td>{_fmt(v)}</td>" for v in vals)  # noqa: E731
        pad = [None] * (2 - len(rows))
        for name in names:
            body.append(f"<tr><td>{escape(name)}</td>{cells([p.get(name) for p in per] + pad)}</tr>")
        body.append(f"<tr class='ur-total'><td>Overall score</td>{cells([r.get('score') for r in rows] + pad)}</tr>")
        note = ""
    else:
        row = payload
        for d in row.get("dimensions") or []:  # type: ignore[union-attr]
            s = d["scores"]
            body.append(f"<tr><td>{escape(d['name'] or '(unnamed)')}</td><td>{_fmt(s.get('1'))}</td><td>{_fmt(s.get('2'))}</td></tr>")
        totals = row.get("totals")  # type: ignore[union-attr]
        if totals:
            body.append(f"<tr class='ur-total'><td>Total (stated)</td><td>{_fmt(totals.get('1'))}</td><td>{_fmt(totals.get('2'))}</td></tr>")
        share = row.get("overall")  # type: ignore[union-attr]
        if share:  # each candidate's share of the preference, whatever the protocol's own scale
            body.append(f"<tr class='ur-total'><td>Preference share (0–1)</td><td>{_fmt(share.get('1'))}</td><td>{_fmt(share.get('2'))}</td></tr>")
        consistent = row.get("totals_consistent")  # type: ignore[union-attr]
        if not totals:
            note = "No stated totals."
        elif consistent is None:
            note = "Totals stated; no verdict to compare them with."
        else:
            note = f"Stated totals agree with the verdict: {'yes' if consistent else 'no'}."
        if row.get("swapped_representative"):  # type: ignore[union-attr]
            note += " Scores and reasoning are from a swapped-order sample, relabelled to the order shown."
    if not body:
        return f'<div class="ur-scores"><p>No per-dimension scores in the output.</p><p class="ur-consistency">{escape(note)}</p></div>'
    return (f'<div class="ur-scores"><table>{head}{"".join(body)}</table>'
            f'<p class="ur-consistency">{escape(note)}</p></div>')  # fmt: skip


def votes_html(payload: Payload) -> str:
    """Each sample's verdict, forward order first, then the swapped order (already mapped back).

    >>> print(votes_html({"votes": [1, None], "samples": ["a"], "swapped_samples": ["b"]}))
    <ol class="ur-votes"><li>as given: 1</li><li>swapped: none</li></ol>
    """
    if is_pointwise(payload):
        items = [f"<li>candidate {i}: {len(r.get('samples') or [])} sample(s), mean {_fmt(r.get('score'))}</li>"
                 for i, r in enumerate(_rows(payload), 1)]  # fmt: skip
        return f'<ol class="ur-votes">{"".join(items)}</ol>'
    votes = payload.get("votes") or []  # type: ignore[union-attr]
    n_fwd = len(payload.get("samples") or [])  # type: ignore[union-attr]
    items = [f"<li>{'as given' if i < n_fwd else 'swapped'}: {v if v is not None else 'none'}</li>"
             for i, v in enumerate(votes)]  # fmt: skip
    return f'<ol class="ur-votes">{"".join(items)}</ol>'


def reasoning_text(payload: Payload) -> str:
    """The ``<think>`` block(s) of the representative sample(s)."""
    rows = _rows(payload)
    if len(rows) == 1:
        return rows[0].get("think") or "(no <think> block)"
    return "\n\n".join(f"[candidate {i}]\n{r.get('think') or '(no <think> block)'}" for i, r in enumerate(rows, 1))


def raw_text(payload: Payload) -> str:
    """Every sample's raw output, labelled when there is more than one."""
    chunks: list[tuple[str, str]] = []
    for i, row in enumerate(_rows(payload), 1):
        pre = f"candidate {i}, " if is_pointwise(payload) else ""
        for order, texts in (("as given", row.get("samples") or []), ("swapped", row.get("swapped_samples") or [])):
            chunks.extend((f"{pre}{order}, sample {k}", t) for k, t in enumerate(texts, 1))
        if not row.get("samples") and row.get("text"):
            chunks.append((f"{pre}output", row["text"]))
    if len(chunks) == 1:
        return chunks[0][1]
    return "\n\n".join(f"--- {label} ---\n{text}" for label, text in chunks)
