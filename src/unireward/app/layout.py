"""The Gradio page: form, the ``judge`` endpoint, what the model sees, and the rendered judgment.

Events: changing the task or mode reshapes the form; every upload shows what the model will see
(the frames after the vision budget, or the file's MediaError); the Judge button calls the named
``judge`` endpoint, whose JSON (the ``unireward judge`` row) is the only thing the result views are
rendered from. Judgments go through Gradio's queue under one concurrency id, so concurrent users
share the one judge.
"""

from __future__ import annotations

import os

# Before gradio is imported: no usage reports, no version check (the app must run offline).
os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")

from dataclasses import dataclass, field  # noqa: E402
from html import escape  # noqa: E402
from typing import Any  # noqa: E402

import gradio as gr  # noqa: E402

from unireward.app import render  # noqa: E402
from unireward.app.examples import Example  # noqa: E402
from unireward.app.judging import FormRequest, run_request  # noqa: E402
from unireward.app.preview import Seen, seen_media  # noqa: E402
from unireward.judge.judge import Judge  # noqa: E402
from unireward.protocol.tasks import Mode, Task, candidate_noun  # noqa: E402
from unireward.protocol.templates import DEFAULT_FAMILY, family_modes, get_family, list_families  # noqa: E402

CSS = """
.ur-cand { border: 3px solid transparent; border-radius: 10px; padding: 4px; }
.ur-cand.ur-winner { border-color: #16a34a; background: rgba(22, 163, 74, 0.06); }
.ur-badge { min-height: 1.6em; font-weight: 600; }
.ur-badge.ur-win { color: #15803d; }
.ur-verdict { font-size: 1.25em; padding: 6px 0; }
.ur-verdict .ur-detail { font-size: 0.8em; font-weight: normal; }
.ur-error { color: #b91c1c; }
.ur-scores table { border-collapse: collapse; }
.ur-scores th, .ur-scores td { border: 1px solid #ccc; padding: 3px 10px; text-align: left; }
.ur-scores tr.ur-total td { font-weight: 600; }
.ur-note { font-size: 0.85em; color: #555; }
"""


@dataclass
class AppSettings:
    """How the page starts; the judge's own options are the defaults of the form."""

    title: str = "unireward judge"
    model_name: str = ""
    #: judgments running at once (a local model batches them; an endpoint receives them in parallel)
    concurrency: int = 4
    examples: list[Example] = field(default_factory=list)
    tasks: tuple[Task, ...] = tuple(Task)

    def __post_init__(self) -> None:
        if self.concurrency < 1:
            raise ValueError(f"concurrency must be >= 1, got {self.concurrency}")


def families(mode: Mode | str, task: Task | str) -> list[str]:
    """The template families with a prompt for ``task`` in ``mode``.

    >>> families("pointwise", "image_editing")
    ['unifiedreward-edit']
    """
    m, t = Mode(mode), Task.parse(task)
    return [name for name in list_families() if m.value in family_modes(name) and t.value in get_family(name, m).tasks()]


def pick_family(mode: Mode | str, task: Task | str, *preferred: str | None) -> str | None:
    """The first of ``preferred`` that covers the task, else the mode's default, else any that does.

    >>> pick_family("pairwise", "image_generation", None), pick_family("pairwise", "image_editing", "unifiedreward-think")
    ('unifiedreward-think', 'unifiedreward-edit')
    """
    choices = families(mode, task)
    for name in (*preferred, DEFAULT_FAMILY[Mode(mode)]):
        if name in choices:
            return name
    return choices[0] if choices else None


def theme() -> Any:
    # System fonts only: the default theme fetches web fonts, which an offline machine cannot.
    return gr.themes.Default(font=["ui-sans-serif", "system-ui", "sans-serif"],
                             font_mono=["ui-monospace", "SFMono-Regular", "monospace"])  # fmt: skip


def _note(seen: Seen | None) -> str:
    if seen is None:
        return ""
    if seen.error:
        return f'<div class="ur-note ur-error">{escape(seen.error)}</div>'
    return f'<div class="ur-note">Model sees: {escape(seen.summary)}</div>'


def _gallery(seen: Seen | None) -> Any:
    return seen.gallery() if seen is not None and not seen.error else None


def build_app(judge: Judge, settings: AppSettings | None = None) -> gr.Blocks:
    """The page over ``judge``; :func:`unireward.app.server.serve` builds and launches it."""
    settings = settings or AppSettings()
    opts = judge.options
    task_names = [t.value for t in settings.tasks]

    def form_for_task(task: str) -> list[Any]:
        t = Task.parse(task)
        noun = candidate_noun(t)
        gen, ref = t.is_generation, t.uses_reference
        edit = gen and ref  # candidates are edits of the reference (the source image)
        ref_label = "Source image" if edit else f"Reference {'video' if t.is_video else 'image'}"
        return [
            gr.update(label="Instruction" if edit else "Caption" if gen else "Question"),
            gr.update(visible=ref, label=ref_label),
            gr.update(visible=ref),
            gr.update(visible=gen, label=f"{noun} 1"),
            gr.update(visible=gen, label=f"{noun} 2"),
            gr.update(visible=not gen, label=f"{noun} 1"),
            gr.update(visible=not gen, label=f"{noun} 2"),
            gr.update(visible=gen),
            gr.update(visible=gen),
        ]

    def family_for(task: str, mode: str, current: str | None) -> Any:
        # keep the user's choice while it covers the task; else the judge's own default for the mode
        start = opts.pointwise_family if Mode(mode) is Mode.POINTWISE else opts.template_family
        return gr.update(choices=families(mode, task), value=pick_family(mode, task, current, start))

    def samples_changed(k: float, temperature: float) -> Any:
        # Several greedy samples would all be the same: start sampling at 1.0 when asked for more.
        return gr.update(value=1.0) if int(k) > 1 and float(temperature) <= 0 else gr.update()

    def preview(task: str, mode: str, candidate_1: str | None, candidate_2: str | None,
                reference: str | None) -> list[Any]:  # fmt: skip
        seen = seen_media(task, (candidate_1, candidate_2), reference, judge.budget, pointwise=mode == "pointwise")
        return [_gallery(seen["candidate_1"]), _note(seen["candidate_1"]), _gallery(seen["candidate_2"]),
                _note(seen["candidate_2"]), _gallery(seen["reference"]), _note(seen["reference"])]  # fmt: skip

    def judge_fn(
        task: str, mode: str, template_family: str | None, swap: bool, num_samples: float, temperature: float,
        max_new_tokens: float | None, prompt: str, candidate_1: str | None, candidate_2: str | None,
        answer_1: str | None, answer_2: str | None, reference: str | None,
    ) -> Any:  # fmt: skip
        """Judge a pair (or score candidates) and return the JSON ``unireward judge`` prints."""
        t = Task.parse(task)
        cands = (candidate_1, candidate_2) if t.is_generation else (answer_1, answer_2)
        try:
            req = FormRequest(
                t, prompt, cands, reference=reference, pointwise=mode == "pointwise",
                template_family=template_family, swap=bool(swap), num_samples=int(num_samples),
                temperature=float(temperature), max_new_tokens=int(max_new_tokens) if max_new_tokens else None,
            )  # fmt: skip
        except (ValueError, KeyError) as e:
            raise gr.Error(str(e.args[0] if isinstance(e, KeyError) else e), print_exception=False) from None
        return run_request(judge, req)

    def show(payload: Any, task: str) -> list[Any]:
        if not payload:
            blank = gr.update(elem_classes=["ur-cand"])
            return ["", render.badge_html(None, 1), render.badge_html(None, 2), blank, blank, "", "", "", ""]
        task = (payload[0] if isinstance(payload, list) else payload).get("task") or task  # what was judged
        w = render.winner(payload)
        cls = [gr.update(elem_classes=["ur-cand", "ur-winner"] if w == i else ["ur-cand"]) for i in (1, 2)]
        return [render.verdict_html(payload, task), render.badge_html(payload, 1), render.badge_html(payload, 2),
                *cls, render.score_table_html(payload, task), render.votes_html(payload),
                render.reasoning_text(payload), render.raw_text(payload)]  # fmt: skip

    first = Task.parse(task_names[0])
    # Uploads are deleted after a day, and all of them when the server stops.
    with gr.Blocks(title=settings.title, delete_cache=(3600, 86400)) as app:
        gr.Markdown(f"## {escape(settings.title)}" + (f" · `{settings.model_name}`" if settings.model_name else ""))
        with gr.Row():
            task = gr.Dropdown(task_names, value=first.value, label="Task", elem_id="ur-task")
            mode = gr.Radio([m.value for m in Mode], value="pairwise", label="Mode", elem_id="ur-mode")
            family = gr.Dropdown(families("pairwise", first), value=pick_family("pairwise", first, opts.template_family),
                                 label="Template family", elem_id="ur-family",
                                 allow_custom_value=True)  # API clients pick any family; the request checks its mode  # fmt: skip
        with gr.Row():
            swap = gr.Checkbox(value=opts.swap, label="Swap: judge both orders", elem_id="ur-swap")
            samples = gr.Slider(1, 16, value=opts.num_samples, step=1, label="Samples (majority vote)", elem_id="ur-samples")
            temperature = gr.Slider(0.0, 2.0, value=opts.temperature, step=0.05, label="Temperature", elem_id="ur-temperature")
            max_new = gr.Number(value=opts.max_new_tokens, precision=0, minimum=1, label="Max new tokens", elem_id="ur-max-new")
        prompt = gr.Textbox(label="Caption", lines=2, elem_id="ur-prompt")
        with gr.Row():
            reference = gr.File(label="Reference image", visible=False, elem_id="ur-reference")
            with gr.Column(visible=False) as ref_view:
                ref_seen = gr.Gallery(label="What the model sees", format="png", columns=4, height=200, object_fit="contain", elem_id="ur-seen-ref")
                ref_note = gr.HTML(elem_id="ur-note-ref")
        cols, badges, files, answers, galleries, notes = [], [], [], [], [], []
        with gr.Row():
            for i in (1, 2):
                with gr.Column(elem_id=f"ur-cand-{i}", elem_classes=["ur-cand"]) as col:
                    badges.append(gr.HTML(render.badge_html(None, i), elem_id=f"ur-badge-{i}"))
                    files.append(gr.File(label=f"{candidate_noun(first)} {i}", elem_id=f"ur-file-{i}",
                                         visible=first.is_generation))  # fmt: skip
                    answers.append(gr.Textbox(label=f"Answer {i}", lines=3, elem_id=f"ur-answer-{i}",
                                              visible=not first.is_generation))  # fmt: skip
                    galleries.append(gr.Gallery(label="What the model sees", format="png", columns=4, height=220, object_fit="contain",
                                                elem_id=f"ur-seen-{i}"))  # fmt: skip
                    notes.append(gr.HTML(elem_id=f"ur-note-{i}"))
                cols.append(col)
        button = gr.Button("Judge", variant="primary", elem_id="ur-judge")
        verdict = gr.HTML(elem_id="ur-verdict")
        table = gr.HTML(elem_id="ur-table")
        votes = gr.HTML(elem_id="ur-votes")
        with gr.Accordion("Reasoning", open=False, elem_id="ur-reasoning-box"):
            reasoning = gr.Textbox(show_label=False, lines=4, max_lines=40, interactive=False, elem_id="ur-reasoning")
        with gr.Accordion("Raw output", open=False, elem_id="ur-raw-box"):
            raw = gr.Textbox(show_label=False, lines=4, max_lines=40, interactive=False, elem_id="ur-raw")
        with gr.Accordion("JSON (what `unireward judge` prints)", open=False):
            result = gr.JSON(elem_id="ur-json")

        example_inputs = [task, prompt, files[0], files[1], answers[0], answers[1], reference]
        judge_inputs = [task, mode, family, swap, samples, temperature, max_new, prompt,
                        files[0], files[1], answers[0], answers[1], reference]  # fmt: skip
        shared = {"concurrency_limit": settings.concurrency, "concurrency_id": "judge"}

        task.change(form_for_task, task, [prompt, reference, ref_view, *files, *answers, *galleries],
                    api_visibility="private", queue=False)  # fmt: skip
        gr.on([task.change, mode.change], family_for, [task, mode, family], family, api_visibility="private", queue=False)
        samples.change(samples_changed, [samples, temperature], temperature, api_visibility="private", queue=False)
        gr.on([task.change, mode.change, files[0].change, files[1].change, reference.change], preview,
              [task, mode, files[0], files[1], reference],
              [galleries[0], notes[0], galleries[1], notes[1], ref_seen, ref_note], api_visibility="private")  # fmt: skip
        button.click(judge_fn, judge_inputs, result, api_name="judge", **shared)
        result.change(show, [result, task], [verdict, *badges, *cols, table, votes, reasoning, raw],
                      api_visibility="private", queue=False)  # fmt: skip
        if settings.examples:
            ex = gr.Examples([e.row() for e in settings.examples], example_inputs, label="Examples (synthetic media; click one to judge it)",
                             api_visibility="private", elem_id="ur-examples", examples_per_page=8)  # fmt: skip
            ex.load_input_event.then(judge_fn, judge_inputs, result, api_visibility="private", **shared)
    return app
