"""The whole method in one resumable run: distill -> cold-start SFT -> rejection sampling -> SFT ->
GRPO, with a held-out evaluation after each stage and a report (JSON, Markdown, PNG plots).

Each finished stage writes ``stages/<name>.json``; a rerun skips finished stages, and the stages
themselves resume (teacher cache, sample file, trainer checkpoints) when killed midway.
"""

from __future__ import annotations

import json
import logging
import time
from collections import defaultdict
from dataclasses import asdict, is_dataclass
from pathlib import Path
from typing import Any

from unireward.manifest import SettingsChanged, code_version, describe_change, differing_keys, normalize
from unireward.rows import has_rows, read_rows, replace_json
from unireward.train.recipe import Layout, Recipe, resolve

log = logging.getLogger(__name__)

EVAL_STAGES = {"eval_base": "base", "eval_cold_start": "cold_start",
               "eval_rejection_sampling": "rejection_sampling", "eval_grpo": "grpo"}  # fmt: skip


def _jsonable(x: Any) -> Any:
    if is_dataclass(x) and not isinstance(x, type):
        return {k: _jsonable(v) for k, v in asdict(x).items()}
    if isinstance(x, dict):
        return {k: _jsonable(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [_jsonable(v) for v in x]
    return x


def dry_run(recipe: Recipe, out_dir: str) -> dict[str, Any]:
    """Every stage's resolved configuration, as JSON-ready data (no model is loaded)."""
    return _jsonable(resolve(recipe, out_dir))


def _fractions(block: dict[str, float | None]) -> dict[str, float | None]:
    return {k: None if v is None else round(v / 100, 4) for k, v in block.items()}


def stage_metrics(records: list[dict[str, Any]], pairs: dict[str, Any]) -> dict[str, Any]:
    """Accuracy (lenient verdict == label, unparsed = wrong; the mean of the two orders when each pair
    was judged both ways), strict format validity over all judgments, per-task accuracy, and the
    ``position`` block (``unireward.metrics.position_block``, as fractions) overall and per task.
    Records carry the verdict in the pair's own order and ``swapped`` for the order shown.

    >>> from unireward.data.schema import PreferencePair
    >>> p = PreferencePair("a", "image_generation", "x", ("1.png", "2.png"), 1)
    >>> t = "<think>t</think><answer>Image 1 is better</answer>"
    >>> recs = [{"id": "a", "winner": 1, "swapped": False, "text": t}, {"id": "a", "winner": 2, "swapped": True, "text": t}]
    >>> m = stage_metrics(recs, {"a": p})
    >>> m["accuracy"], m["format_validity"], m["position"]["consistency"], m["position"]["first_slot_rate"]
    (0.5, 1.0, 0.0, 1.0)
    """
    from unireward.metrics import position_block
    from unireward.protocol.parser import parse_judgment

    judged: dict[str, list[dict[str, Any]]] = defaultdict(list)
    fmt = 0
    for rec in records:
        pair = pairs[rec["id"]]
        fmt += parse_judgment(rec.get("text") or "", pair.task, strict=True).ok
        judged[pair.task.value].append({"id": rec["id"], "label": pair.label, "swapped": bool(rec.get("swapped")),
                                        "winner": rec.get("winner"), "sample": rec.get("sample", 0)})  # fmt: skip
    every = [j for js in judged.values() for j in js]
    position = _fractions(position_block(every))
    per_task = {t: _fractions(position_block(judged[t])) for t in sorted(judged)}
    return {
        "accuracy": position["accuracy"], "format_validity": fmt / len(records) if records else None,
        "n": len({j["id"] for j in every}), "judgments": len(records),
        "per_task": {t: b["accuracy"] for t, b in per_task.items()},
        "per_task_n": {t: len({j["id"] for j in judged[t]}) for t in sorted(judged)},
        "position": position, "per_task_position": per_task,
    }  # fmt: skip


class Pipeline:
    def __init__(self, recipe: Recipe, out_dir: str, stop_after: str | None = None, overwrite: bool = False):
        self.recipe = recipe
        self.lay = Layout(Path(out_dir))
        self.cfg = resolve(recipe, out_dir)
        self.stop_after = stop_after
        self.overwrite = overwrite
        self.lay.stages.mkdir(parents=True, exist_ok=True)

    def stage_settings(self, stage: str) -> dict[str, Any]:
        """What a stage's result depends on in the recipe (its marker records them; a rerun compares)."""
        c = self.cfg
        if stage == "prepare":
            out = {"data": c["data"], "model": c["model"], "seed": self.recipe.seed}
        elif stage in EVAL_STAGES:
            out = {"eval": c["eval"], "test": c["data"]["test"], "template_family": self.recipe.template_family,
                   "budget": self.recipe.vision_budget()}  # fmt: skip
        elif stage in ("cold_start", "rs_sft"):  # their training set is balanced by the recipe's rule
            out = {**_jsonable(c[stage]), "order_balance": self.recipe.order_balance}
        elif stage == "distill":
            out = {k: v for k, v in _jsonable(c["distill"]).items() if k != "base_url"}  # the scripted teacher's port varies
            out["teacher"] = c["teacher"]
        else:
            key = {"base_sft": "base_sft", "cold_start": "cold_start", "sample": "sample", "rs_sft": "rs_sft", "grpo": "grpo"}[stage]
            out = dict(_jsonable(c[key]) or {})  # None: the recipe has no such stage
        out.pop("overwrite", None)
        return normalize({**_jsonable(out), "code_version": code_version()})

    # -- bookkeeping ------------------------------------------------------------------------------
    def _marker(self, stage: str) -> Path:
        return self.lay.stages / f"{stage}.json"

    def done(self, stage: str) -> dict[str, Any] | None:
        m = self._marker(stage)
        return json.loads(m.read_text()) if m.exists() else None

    def _finish(self, stage: str, info: dict[str, Any], started: float) -> dict[str, Any]:
        info = {"stage": stage, "seconds": round(time.time() - started, 1), **info, "settings": self.stage_settings(stage)}
        replace_json(self._marker(stage), _jsonable(info))
        return info

    # -- stages -----------------------------------------------------------------------------------
    def prepare(self) -> dict[str, Any]:
        info: dict[str, Any] = {}
        syn = self.recipe.data.synthetic
        if syn is not None:
            from unireward.demo.synthetic import SyntheticConfig, generate

            root = self.lay.data / "synthetic"
            common = {"size": syn.size, "frames": syn.frames, "seed": syn.seed}
            cold_tasks = dict.fromkeys(syn.cold_start_tasks, syn.cold_start_pairs)
            cold = generate(root, SyntheticConfig(n_per_task=cold_tasks, **common), "cold_start")
            train = generate(root, SyntheticConfig(n_per_task=dict.fromkeys(_tasks(), syn.train_per_task), **common), "train")
            test = generate(root, SyntheticConfig(n_per_task=dict.fromkeys(_tasks(), syn.test_per_task), **common), "test")
            info["data"] = {"kind": "synthetic", "cold_start": len(cold), "train": len(train), "test": len(test)}
        else:
            info["data"] = {"kind": "files", **self.cfg["data"]}
        if self.recipe.model.base == "tiny":
            from unireward.models import get_family

            get_family(self.recipe.model.family).build_tiny(self.lay.model("base"), seed=self.recipe.seed, **self.recipe.model.tiny)
            info["model"] = {"base": "tiny random", "family": self.recipe.model.family, **self.recipe.model.tiny}
        elif self.recipe.model.convert:
            from unireward.models.llava_convert import ConvertConfig, conversion_options, convert_llava_qwen

            target = self.lay.model("base")
            cfg = ConvertConfig(**{**self.recipe.model.convert_options, "overwrite": True})
            want = {"source": self.recipe.model.base, "options": conversion_options(cfg)}
            record = target / "CONVERTED_FROM.json"  # written last: a killed conversion is redone
            done = json.loads(record.read_text(encoding="utf-8")) if record.exists() else {}
            if {k: done.get(k) for k in want} != want:  # missing, or made from another base or options
                convert_llava_qwen(self.recipe.model.base, target, cfg)
            info["model"] = {"base": self.recipe.model.base, "converted_to": str(target), "family": self.recipe.model.family}
        else:
            info["model"] = {"base": self.recipe.model.base, "family": self.recipe.model.family}
        return info

    def base_sft(self) -> dict[str, Any]:
        """A unified judge that answers directly, trained on the labels of the unified set."""
        cfg = self.cfg["base_sft"]
        if cfg is None:
            return {"skipped": "the recipe starts from an existing judge"}
        from unireward.data.schema import read_pairs
        from unireward.rows import replace_rows

        pairs = [p for p in read_pairs(self.cfg["data"]["train"]) if p.label_text]
        if self.recipe.base_style == "rationale":
            from unireward.demo.teacher import brief_judgment

            texts = [brief_judgment(p, cfg.media_root, self.recipe.vision_budget(), cfg.template_family) for p in pairs]
        else:
            texts = [p.label_text for p in pairs]
        replace_rows(cfg.train_file, [{"pair": p.to_dict(), "completion": t} for p, t in zip(pairs, texts, strict=True)])
        info = self._sft("base_sft")
        return {**info, "style": self.recipe.base_style}

    def distill(self) -> dict[str, Any]:
        from unireward.train.distill import distill

        cfg = self.cfg["distill"]
        t = self.recipe.teacher
        if t.kind == "scripted":
            from unireward.demo.teacher import BackgroundServer, ScriptedTeacher, create_teacher_app

            with BackgroundServer(create_teacher_app(ScriptedTeacher(t.accuracy, seed=self.recipe.seed))) as srv:
                cfg.base_url = srv.base_url
                report = distill(cfg)
        else:
            report = distill(cfg)
        if report.kept == 0:
            raise RuntimeError(f"distillation kept no judgments ({report.to_dict()}); see {cfg.out_dir}")
        return {"report": report.to_dict(), "teacher": asdict(t)}

    def _sft(self, key: str) -> dict[str, Any]:
        from unireward.train.sft import run_sft

        final = run_sft(self.cfg[key])
        summary = json.loads((Path(self.cfg[key].output_dir) / "sft_summary.json").read_text())
        return {"model": str(final), "steps": summary["steps"], "rows": summary["rows"], "loss": _curve(summary["log_history"], "loss")}

    def _balance(self, source: Path, stage: str) -> dict[str, Any] | None:
        """Write the stage's training set with its candidate order balanced (``recipe.order_balance``);
        the chains of thought of swapped records are rewritten for the other order."""
        if self.recipe.order_balance == "none":
            return None
        from unireward.data.balance import balance_records
        from unireward.rows import replace_rows

        target = Path(self.cfg[stage].train_file)
        records = read_rows(source, required=("pair", "completion")) if source.exists() else []
        out, stats = balance_records(records, self.recipe.order_balance, seed=self.recipe.seed)
        target.parent.mkdir(parents=True, exist_ok=True)
        replace_rows(target, out)
        return stats

    def cold_start(self) -> dict[str, Any]:
        balance = self._balance(self.lay.root / "distill" / "cold_start.jsonl", "cold_start")
        return {**self._sft("cold_start"), "order_balance": balance}

    def rs_sft(self) -> dict[str, Any]:
        cfg = self.cfg["rs_sft"]
        balance = self._balance(self.lay.root / "sample" / "rs_sft.jsonl", "rs_sft")
        if not has_rows(cfg.train_file):
            # The model judged nothing correctly: there is no CoT of its own to train on.
            return self._carry_over(self.cfg["cold_start"].output_dir, cfg.output_dir, "no pair was judged correctly")
        return {**self._sft("rs_sft"), "order_balance": balance}

    def _carry_over(self, src: str, dst: str, why: str) -> dict[str, Any]:
        import shutil

        shutil.copytree(Path(src) / "final", Path(dst) / "final", dirs_exist_ok=True)
        return {"model": str(Path(dst) / "final"), "skipped": why}

    def sample(self) -> dict[str, Any]:
        from unireward.train.sample import sample

        return {"report": sample(self.cfg["sample"])}

    def grpo(self) -> dict[str, Any]:
        from unireward.train.grpo import run_grpo

        cfg = self.cfg["grpo"]
        if not has_rows(cfg.train_file):
            # Nothing was judged wrongly: under the paper's rule GRPO has no data.
            return self._carry_over(self.cfg["rs_sft"].output_dir, cfg.output_dir, "no pair was judged wrongly")
        final = run_grpo(cfg)
        summary = json.loads((Path(cfg.output_dir) / "grpo_summary.json").read_text())
        hist = summary["log_history"]
        position = summary.get("position") or {}
        return {
            "model": str(final), "prompts": summary["prompts"], "steps": summary["steps"],
            "mean_frac_reward_zero_std": summary["mean_frac_reward_zero_std"],
            "order_balance": summary.get("order_balance"),
            "slot_monitor": {k: v for k, v in position.items() if k != "steps"},
            "curves": {k: _curve(hist, k) for k in ("reward", "rewards/format_reward/mean", "rewards/accuracy_reward/mean",
                                                     "rewards/position_consistency_reward/mean", "rewards/first_slot_share/mean",
                                                     "rewards/label_first_share/mean", "frac_reward_zero_std", "kl", "loss")},
        }  # fmt: skip

    def evaluate(self, stage: str) -> dict[str, Any]:
        from unireward.data.schema import read_pairs
        from unireward.eval.runner import EvalConfig, run_eval
        from unireward.judge import Judge
        from unireward.judge.options import BatchOptions

        model_dir = {"base": self.cfg["base_model"],
                     "cold_start": self.cfg["cold_start"].output_dir + "/final",
                     "rejection_sampling": self.cfg["rs_sft"].output_dir + "/final",
                     "grpo": self.cfg["grpo"].output_dir + "/final"}[stage]  # fmt: skip
        ev = self.recipe.eval
        judge = Judge.from_pretrained(
            model_dir, family=self.recipe.model.family, budget=self.recipe.vision_budget(),
            batch=BatchOptions(max_batch_size=ev.batch_size), template_family=self.recipe.template_family,
            video_as="frames", max_new_tokens=ev.max_new_tokens,
        )  # fmt: skip
        test = self.cfg["data"]["test"]
        cfg = EvalConfig(
            benchmark="pairs", data=test, out_dir=str(self.lay.evals / stage), judge=model_dir,
            media_root=self.cfg["data"]["media_root"], order="both", unparsed="wrong", batch_size=ev.batch_size,
            data_kind="synthetic" if self.recipe.data.synthetic else "real", overwrite=self.overwrite,
            judge_options={"template_family": self.recipe.template_family, "max_new_tokens": ev.max_new_tokens,
                           "video_as": "frames"},
        )  # fmt: skip
        run_eval(cfg, judge=judge)
        records = read_rows(self.lay.evals / stage / "predictions.jsonl", required=("id",))
        pairs = {p.id: p for p in read_pairs(test)}
        return {"name": stage, "model": model_dir, **stage_metrics(records, pairs)}

    # -- driver -----------------------------------------------------------------------------------
    def run(self, progress: Any = print) -> dict[str, Any]:
        from unireward.train.recipe import STAGES

        for i, stage in enumerate(STAGES):
            info = self.done(stage)
            if info is not None:
                self._check_marker(stage, info)
            if info is None or self.done(stage) is None:
                started = time.time()
                progress(f"[unireward] stage {stage} ...")
                self._allow_overwrite(stage)
                result = self.evaluate(EVAL_STAGES[stage]) if stage in EVAL_STAGES else getattr(self, stage)()
                info = self._finish(stage, result, started)
                if stage not in EVAL_STAGES:  # later stages were made from this one's old output
                    for later in STAGES[i + 1 :]:
                        self._marker(later).unlink(missing_ok=True)
                if stage in EVAL_STAGES:
                    pos = info.get("position") or {}
                    progress(f"[unireward] {EVAL_STAGES[stage]}: accuracy {info['accuracy']:.3f} (both orders), format validity "
                             f"{info['format_validity']:.3f}, first-slot rate {pos.get('first_slot_rate')}, consistency "
                             f"{pos.get('consistency')} ({info['seconds']} s)")  # fmt: skip
            else:
                progress(f"[unireward] stage {stage}: done earlier, skipped")
            if stage == self.stop_after:
                break
        return self.report()

    def _check_marker(self, stage: str, info: dict[str, Any]) -> None:
        """A finished stage made with other recipe settings is refused (or, with overwrite, redone)."""
        before, now = info.get("settings") or {}, self.stage_settings(stage)
        keys = differing_keys(before, now)
        if not keys:
            return
        if not self.overwrite:
            what = describe_change(before, now, keys) if before else "the marker records no settings"
            raise SettingsChanged(
                f"stage {stage} in {self.lay.root} was made with other settings ({what}); "
                "rerun with the same recipe to resume, pass --overwrite to redo it and the stages after it, or choose another --out"
            )
        self._marker(stage).unlink()

    def _allow_overwrite(self, stage: str) -> None:
        # The stage's own outputs carry manifests too; with --overwrite they are replaced, not refused.
        key = {"base_sft": "base_sft", "cold_start": "cold_start", "sample": "sample", "rs_sft": "rs_sft",
               "grpo": "grpo", "distill": "distill"}.get(stage)  # fmt: skip
        if self.overwrite and key and self.cfg.get(key) is not None:
            self.cfg[key].overwrite = True

    def report(self) -> dict[str, Any]:
        from unireward.train.report import write_pipeline_report

        return write_pipeline_report(self)


def _tasks() -> list[str]:
    from unireward.protocol.tasks import THINK_TASKS

    return [t.value for t in THINK_TASKS]


def _curve(history: list[dict[str, Any]], key: str) -> list[tuple[int, float]]:
    return [(int(h.get("step", i)), float(h[key])) for i, h in enumerate(history) if key in h]

