"""Position-robust training: swapping a judgment's text, balanced candidate order in every training
set, the both-orders consistency reward, and the GRPO slot monitor."""

from __future__ import annotations

import pytest
from test_parser import official_example
from test_protocol_zoo import PAIR_SCORE_IMAGE, PAIR_SCORE_VIDEO, _flex

from unireward.protocol import Task, parse_judgment
from unireward.protocol.swap import swap_candidates
from unireward.protocol.tasks import THINK_TASKS

# (text, task, template family) for every protocol family whose outputs name the slots
SLOTTED = [
    *[(official_example(t), t, None) for t in THINK_TASKS],
    (PAIR_SCORE_IMAGE, Task.IMAGE_GENERATION, "unifiedreward-2.0-pair-score"),
    (PAIR_SCORE_VIDEO, Task.VIDEO_GENERATION, "unifiedreward-2.0-pair-score"),
    ("Image 1 keeps the cube's shape, but Image 2 is better.", Task.IMAGE_GENERATION, "unifiedreward-2.0"),
    ("Video 1 is better,", Task.VIDEO_GENERATION, "unifiedreward-2.0"),
    ("Edited Image 1 is better.", Task.IMAGE_EDITING, "unifiedreward-edit"),
    ("Image 1: 7.50\nImage 2: -2.25", Task.IMAGE_EDITING, "unifiedreward-edit-pair-score"),
    (_flex(), Task.IMAGE_GENERATION, "unifiedreward-flex"),
    (_flex().replace("Image", "Video"), Task.VIDEO_GENERATION, "unifiedreward-flex"),
]


def _flip(d: dict | None) -> dict | None:
    return None if d is None else {3 - k: v for k, v in d.items()}


@pytest.mark.parametrize(("text", "task", "family"), SLOTTED)
def test_swapping_a_judgment_is_an_involution_the_parser_reads_to_the_swapped_winner(text: str, task: Task, family: str | None) -> None:
    swapped = swap_candidates(text)
    assert swapped != text
    assert swap_candidates(swapped) == text
    before = parse_judgment(text, task, family=family)
    after = parse_judgment(swapped, task, family=family)
    assert before.ok and after.ok, (before.reason, after.reason)
    assert before.winner in (1, 2) and after.winner == 3 - before.winner
    assert after.totals == _flip(before.totals)
    assert {k: _flip(v) for k, v in before.scores.items()} == after.scores
    assert after.overall == _flip(before.overall)
    assert after.totals_consistent == before.totals_consistent


@pytest.mark.parametrize("task", list(THINK_TASKS))
def test_swapped_think_examples_stay_strict_and_keep_reading_order(task: Task) -> None:
    text = official_example(task)
    swapped = swap_candidates(text)
    assert parse_judgment(swapped, task, strict=True).ok
    lines = swapped.splitlines()
    # the Total score lines keep "1" before "2"; their sums moved with the candidates
    i = lines.index("Total score:")
    assert lines[i + 1].split(":")[0].endswith("1") and lines[i + 2].split(":")[0].endswith("2")
    assert lines[i + 1].split(":")[1] == text.splitlines()[i + 2].split(":")[1]


def test_swapping_the_scripted_teachers_chain_of_thought_equals_what_it_writes_for_the_swapped_pair() -> None:
    from unireward.demo.teacher import synthetic_cot

    cases = [
        (Task.IMAGE_GENERATION, "Text Caption: [a red circle]", [["blue"], ["red"]], [["red"], ["blue"]]),
        (Task.VIDEO_GENERATION, "Text Caption: [a square turning from red to blue]",
         [["red", "red"], ["red", "blue"]], [["red", "blue"], ["red", "red"]]),
        (Task.IMAGE_UNDERSTANDING, "about the image\nAnswer 1: [The star is red.]\nAnswer 2: [The star is blue.]",
         [["blue"]], "about the image\nAnswer 1: [The star is blue.]\nAnswer 2: [The star is red.]"),
    ]  # fmt: skip
    for task, text, seen, other in cases:
        for correct in (True, False):
            cot = synthetic_cot(task, text, seen, correct)
            # generation: the candidates' pixels trade places; understanding: the answers in the prompt
            want = synthetic_cot(task, other, seen, correct) if isinstance(other, str) else synthetic_cot(task, text, other, correct)
            assert swap_candidates(cot) == want


# --- balanced candidate order ------------------------------------------------------------------

def _pairs(counts: dict[str, tuple[int, int]]) -> list:
    from unireward.data.schema import PreferencePair

    out = []
    for task, (n1, n2) in counts.items():
        t = Task.parse(task)
        cands = ("a.png", "b.png") if t.is_generation else ("The star is red.", "The star is blue.")
        ref = None if t.is_generation else ("r.png" if t is Task.IMAGE_UNDERSTANDING else "r.mp4")
        if t is Task.VIDEO_GENERATION:
            cands = ("a.mp4", "b.mp4")
        for i in range(n1 + n2):
            out.append(PreferencePair(f"{task}-{i}", t, "a red star" if t.is_generation else "What colour is the star?",
                                      cands, 1 if i < n1 else 2, reference=ref))  # fmt: skip
    return out


SKEWED = {"image_generation": (9, 3), "video_generation": (2, 7), "image_understanding": (5, 5), "video_understanding": (0, 4)}


def test_swap_half_gives_exact_per_task_slot_counts_on_skewed_labels() -> None:
    from unireward.data.balance import balance_pairs, slot_counts

    pairs = _pairs(SKEWED)
    assert slot_counts(pairs)["image_generation"] == {"label_1": 9, "label_2": 3, "label_1_share": 0.75}
    out = balance_pairs(pairs, "swap_half", seed=0)
    counts = slot_counts(out)
    # n // 2 of each (task, label) group swapped: label 1 ends up (n1 - n1 // 2) + n2 // 2 times in slot 1
    assert {t: (c["label_1"], c["label_2"]) for t, c in counts.items()} == {
        "image_generation": (6, 6), "video_generation": (4, 5), "image_understanding": (5, 5), "video_understanding": (2, 2)}
    swapped = [p for p in out if p.id.endswith("#swap")]
    by_group = {(t, lab): sum(1 for p in swapped if p.task.value == t and p.label == 3 - lab) for t in SKEWED for lab in (1, 2)}
    assert by_group == {(t, lab): SKEWED[t][lab - 1] // 2 for t in SKEWED for lab in (1, 2)}
    # swapped pairs carry the candidates in the other order; the input order is kept
    for p, q in zip(pairs, out, strict=True):
        assert q.id in (p.id, p.id + "#swap")
        if q.id != p.id:
            assert q.candidates == p.candidates[::-1] and q.label == 3 - p.label
    # deterministic in the seed, independent of the input order, different for another seed
    assert [p.id for p in balance_pairs(pairs, "swap_half", seed=0)] == [p.id for p in out]
    assert sorted(p.id for p in balance_pairs(pairs[::-1], "swap_half", seed=0)) == sorted(p.id for p in out)
    assert [p.id for p in balance_pairs(pairs, "swap_half", seed=1)] != [p.id for p in out]
    assert balance_pairs(pairs, "none") == pairs


def test_both_orders_puts_each_pair_next_to_its_swap() -> None:
    from unireward.data.balance import balance_pairs, slot_counts

    pairs = _pairs(SKEWED)
    out = balance_pairs(pairs, "both_orders")
    assert [p.id for p in out[:4]] == ["image_generation-0", "image_generation-0#swap", "image_generation-1", "image_generation-1#swap"]
    assert all(c["label_1"] == c["label_2"] == sum(SKEWED[t]) for t, c in slot_counts(out).items())


def test_balanced_sft_records_carry_the_rewritten_chain_of_thought() -> None:
    from unireward.data.balance import balance_records, slot_counts
    from unireward.data.schema import PreferencePair
    from unireward.demo.teacher import synthetic_cot

    records = []
    for p in _pairs({"image_generation": (8, 2), "image_understanding": (1, 5)}):
        if p.task is Task.IMAGE_GENERATION:
            seen = [["red"], ["blue"]] if p.label == 1 else [["blue"], ["red"]]
            cot = synthetic_cot(p.task, "Text Caption: [a red star]", seen)
        else:
            text = f"about the image\nAnswer 1: [{p.candidates[0]}]\nAnswer 2: [{p.candidates[1]}]"
            cot = synthetic_cot(p.task, text, [["red" if p.label == 1 else "blue"]])
        assert parse_judgment(cot, p.task, strict=True).winner == p.label
        records.append({"pair": p.to_dict(), "completion": cot, "source": "teacher"})
    out, stats = balance_records(records, "swap_half", seed=3)
    assert stats["unswappable"] == 0 and stats["swapped"] == 8 // 2 + 2 // 2 + 1 // 2 + 5 // 2
    assert stats["after"] == {"image_generation": {"label_1": 5, "label_2": 5, "label_1_share": 0.5},
                              "image_understanding": {"label_1": 3, "label_2": 3, "label_1_share": 0.5}}  # fmt: skip
    for rec in out:
        pair = PreferencePair.from_dict(rec["pair"])
        j = parse_judgment(rec["completion"], pair.task, strict=True)
        assert j.ok and j.winner == pair.label and j.totals_consistent
        assert rec["source"] == "teacher"
    assert slot_counts(PreferencePair.from_dict(r["pair"]) for r in out) == stats["after"]
    # a completion that cannot be rewritten to the swapped label keeps its record unswapped, counted
    bad = [{**records[0], "completion": "<answer>Image 1 is better</answer>"}]  # no think block: not strict
    kept, s = balance_records(bad, "both_orders")
    assert kept == bad and s["unswappable"] == 1 and s["swapped"] == 0


def test_rejection_sampling_reports_and_warns_on_the_grpo_label_prior(caplog: pytest.LogCaptureFixture) -> None:
    import logging

    from unireward.train.sample import split_samples

    pairs = {p.id: p for p in _pairs({"image_generation": (3, 9), "video_generation": (5, 5)})}
    rows = [{"id": pid, "texts": ["x"], "winners": [1], "strict_ok": [True], "correct": [False]} for pid in pairs]
    with caplog.at_level(logging.WARNING, logger="unireward.train.sample"):
        _, grpo, stats = split_samples(rows, pairs, "majority", 1)
    prior = stats["grpo_label_prior"]
    assert len(grpo) == 22 and prior["per_task"]["image_generation"]["label_1_share"] == 0.25
    assert prior["warnings"] == ["image_generation: 3 of 12 pairs prefer slot 1 (label prior 0.25, outside 0.4-0.6)"]
    assert "GRPO set image_generation: 3 of 12" in caplog.text and "video_generation" not in caplog.text


# --- the both-orders consistency reward --------------------------------------------------------

def _brute_force(right: dict[str, list[bool]], pid: str, i: int) -> float:
    """Mean over every pairing of completion i with one completion of the other order of 1[both right]."""
    other = pid[: -len("#swap")] if pid.endswith("#swap") else pid + "#swap"
    if other not in right:
        return 0.0
    pairings = [(right[pid][i], r) for r in right[other]]
    return sum(a and b for a, b in pairings) / len(pairings)


@pytest.mark.parametrize("g", [1, 2, 3])
def test_position_consistency_reward_against_a_brute_force_table(g: int) -> None:
    import itertools

    from unireward.rewards import get_reward_functions

    (reward,) = get_reward_functions(["position_consistency"])
    verdict = {True: "<think>t</think><answer>Image {} is better</answer>"}
    for pattern in itertools.product((False, True), repeat=2 * g):
        fwd, rev = list(pattern[:g]), list(pattern[g:])
        # forward label is slot 1, the swapped prompt's label slot 2; a wrong completion names the other slot
        comps = [verdict[True].format(1 if r else 2) for r in fwd] + [verdict[True].format(2 if r else 1) for r in rev]
        labels = ["Image 1 is better"] * g + ["Image 2 is better"] * g
        ids = ["p"] * g + ["p#swap"] * g
        got = reward(comps + ["<answer>Image 1 is better</answer>"], label=labels + ["Image 1 is better"], pair_id=ids + ["lonely"])
        table = {"p": fwd, "p#swap": rev}
        want = [_brute_force(table, pid, i % g) for i, pid in enumerate(ids)] + [0.0]
        assert got == pytest.approx(want), pattern
        if not any(rev):  # nothing right in the other order: nothing pays in this one
            assert not any(got[:g])
    with pytest.raises(ValueError, match="pair_id"):
        reward(["<answer>Image 1 is better</answer>"], label=["Image 1 is better"])


def test_grpo_config_refuses_position_consistency_without_both_orders() -> None:
    from unireward.train.grpo import GRPOStageConfig

    common = {"model": "m", "train_file": "f", "output_dir": "o", "num_generations": 4}
    with pytest.raises(ValueError, match="set order_balance: both_orders"):
        GRPOStageConfig(**common, per_device_train_batch_size=8, rewards=("format", "accuracy", "position_consistency"))
    with pytest.raises(ValueError, match="even number of prompts"):
        GRPOStageConfig(**common, per_device_train_batch_size=4, order_balance="both_orders")
    with pytest.raises(ValueError, match="order_balance must be one of"):
        GRPOStageConfig(**common, per_device_train_batch_size=8, order_balance="half")
    cfg = GRPOStageConfig(**common, per_device_train_batch_size=8, order_balance="both_orders",
                          rewards=("format", "accuracy", "position_consistency"))  # fmt: skip
    args = cfg.trl_args()
    assert args.shuffle_dataset is False and args.reward_weights == [1.0, 1.0, 1.0, 0.0, 0.0]


# --- GRPO with both orders in one batch, and the slot monitor ----------------------------------

def test_grpo_both_orders_batches_hold_each_pair_in_both_orders_and_log_the_slot_share(tiny_model, tmp_path) -> None:
    import json

    from unireward.data.schema import read_pairs
    from unireward.demo.synthetic import SyntheticConfig, generate
    from unireward.rewards import position_consistency_reward
    from unireward.rows import append_rows
    from unireward.train.grpo import GRPOStageConfig, run_grpo

    root = tmp_path / "syn"
    generate(root, SyntheticConfig(n_per_task={t.value: 3 for t in THINK_TASKS}, seed=2), "train")
    records = tmp_path / "grpo.jsonl"
    append_rows(records, [{"pair": p.to_dict()} for p in read_pairs(root / "train.jsonl")])
    calls: list[list[str]] = []

    def recorder(completions, pair_id, **kwargs):  # type: ignore[no-untyped-def]
        calls.append(list(pair_id))
        return [0.0] * len(completions)

    cfg = GRPOStageConfig(model=str(tiny_model), train_file=str(records), output_dir=str(tmp_path / "out"), media_root=str(root),
                          template_family="unireward-compact", num_generations=4, per_device_train_batch_size=16,
                          max_completion_length=8, learning_rate=1e-3, beta=0.0, max_steps=3, save_steps=100,
                          order_balance="both_orders", rewards=("accuracy", "position_consistency"), slot_patience=2)  # fmt: skip
    run_grpo(cfg, reward_funcs=[recorder, position_consistency_reward])
    assert len(calls) == 3
    for ids in calls:  # 4 prompts of 4 completions: two pairs, each in both orders
        assert len(ids) == 16
        bases = {i.removesuffix("#swap") for i in ids}
        assert len(bases) == 2 and all(ids.count(b) == 4 and ids.count(b + "#swap") == 4 for b in bases)
    summary = json.loads((tmp_path / "out" / "grpo_summary.json").read_text())
    hist = summary["log_history"]
    assert [h["rewards/label_first_share/mean"] for h in hist if "rewards/label_first_share/mean" in h] == [0.5, 0.5, 0.5]
    assert all(0 <= h["rewards/first_slot_share/mean"] <= 1 for h in hist if "rewards/first_slot_share/mean" in h)
    assert summary["order_balance"]["mode"] == "both_orders" and summary["order_balance"]["records"] == 24
    assert all(c["label_1"] == c["label_2"] == 3 for c in summary["order_balance"]["after"].values())
    pos = summary["position"]
    assert len(pos["steps"]) == 3 and pos["mean_label_first_share"] == 0.5
    # a random model names no slot, so the share sits at 0, 0.5 from the prior: the drift warning fires
    assert pos["mean_first_slot_share"] == 0 and pos["warning"].startswith("the share of completions naming slot 1")
    balanced = [json.loads(x)["pair"]["id"] for x in (tmp_path / "out" / "train.balanced.jsonl").read_text().splitlines()]
    assert all(balanced[i] + "#swap" == balanced[i + 1] for i in range(0, len(balanced), 2))
