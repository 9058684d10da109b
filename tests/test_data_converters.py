"""Each converter on a fixture in its source's published layout, malformed row included."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest

from unireward.data.converters import CONVERTERS, ConvertContext, SourceUnavailable, convert
from unireward.data.schema import read_pairs

_spec = importlib.util.spec_from_file_location("materialize", Path(__file__).parent / "fixtures/sources/materialize.py")
materialize_mod = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(materialize_mod)  # type: ignore[union-attr]
materialize = materialize_mod.materialize

# source name -> (fixture folder, pairs written, rows rejected, labels in order)
CASES = {
    "hpd": ("hpd", 3, 1, [1, 2, 2]),
    "oip": ("oip", 2, 1, None),
    "evalmuse": ("evalmuse", 3, 1, None),
    "rapidata-t2i": ("rapidata_t2i", 3, 1, [1, 2, "tie"]),
    "rapidata-t2v": ("rapidata_t2v", 2, 1, [1, 2]),
    "videodpo": ("videodpo", 3, 1, None),
    "llava-critic": ("llava_critic", 3, 1, [1, 2, "tie"]),
    "sharegptvideo-dpo": ("sharegptvideo", 3, 1, None),
    "imagegen-cot-5k": ("imagegen_cot", 3, 1, [1, 2, 1]),
}


def test_every_registered_source_has_a_fixture_case():
    assert set(CASES) == set(CONVERTERS)


@pytest.fixture()
def run(tmp_path):
    def _run(source: str, **kw):
        folder, *_ = CASES[source]
        src = materialize(folder, tmp_path / "src")
        out = tmp_path / "out" / f"{source}.jsonl"
        rep = convert(source, src, out, check_media=True, **kw)
        rejects = [json.loads(line) for line in open(out.with_name(out.name + ".rejects.jsonl"))]
        return rep, read_pairs(out), rejects, src

    return _run


@pytest.mark.parametrize("source", sorted(CASES))
def test_converter_counts_labels_media_and_rejects(run, source):
    _, n_ok, n_bad, labels = CASES[source]
    rep, pairs, rejects, _ = run(source)
    assert (rep.written, rep.rejected) == (n_ok, n_bad), rep.to_dict()
    assert len(pairs) == n_ok and len(rejects) == n_bad
    assert all(r["reason"] and r["row"] for r in rejects)
    if labels is not None:
        assert [p.label for p in pairs] == labels
    for p in pairs:
        assert p.source == source
        for m in p.media_paths():  # check_media=True: every written pair's media exist
            assert Path(m).is_file(), m
    assert len({p.id for p in pairs}) == len(pairs)


def test_hpd_reject_names_the_field(run):
    _, pairs, rejects, _ = run("hpd")
    assert "human_preference" in rejects[0]["reason"]
    assert pairs[0].prompt == "a red cube on a table" and pairs[0].candidates[0].endswith("00000.jpg")


def test_evalmuse_pairs_prefer_the_higher_mean_score(run):
    _, pairs, rejects, _ = run("evalmuse")
    assert "total_score" in rejects[0]["reason"]
    for p in pairs:
        win = p.meta["scores"][p.label - 1]
        lose = p.meta["scores"][2 - p.label]
        assert win - lose >= 1.0
    assert {p.meta["prompt_id"] for p in pairs} == {"0001", "0002"}


def test_evalmuse_margin_option_changes_pairing(run):
    rep, *_ = run("evalmuse", min_margin=3.0)
    assert rep.written == 0


def test_videodpo_winner_is_the_win_video_and_positions_are_balanced(run, tmp_path):
    _, pairs, _, src = run("videodpo")
    for p in pairs:
        assert "winvideos" in p.candidates[p.label - 1] and "losevideos" in p.candidates[2 - p.label]
    out = tmp_path / "nb.jsonl"
    convert("videodpo", src, out, balance=False)
    assert [p.label for p in read_pairs(out)] == [1, 1, 1]


def test_balance_is_stable_and_roughly_fair():
    ctx = ConvertContext()
    labels = [ctx.place(f"k{i}", "c", "r")[1] for i in range(400)]
    assert 150 < labels.count(2) < 250
    assert labels == [ctx.place(f"k{i}", "c", "r")[1] for i in range(400)]
    assert ctx.place("x", "c", "r")[0][ctx.place("x", "c", "r")[1] - 1] == "c"


def test_sharegptvideo_frames_tie_and_placeholder(run):
    _, pairs, rejects, _ = run("sharegptvideo-dpo")
    assert "invalid JSON" in rejects[0]["reason"]
    assert all("<video>" not in p.prompt for p in pairs)
    assert all(isinstance(p.reference, list) and len(p.reference) == 4 for p in pairs)
    tie = [p for p in pairs if p.label == "tie"]
    assert len(tie) == 1 and tie[0].meta["scores"] == [3.0, 3.0]
    for p in pairs:
        if p.label != "tie":
            assert p.candidates[p.label - 1].startswith(("He holds a red", "Yes, light rain"))


def test_imagegen_cot_keeps_caption_and_cot(run):
    _, pairs, rejects, _ = run("imagegen-cot-5k")
    assert pairs[1].prompt == "an owl reading a [big] book"
    assert pairs[1].meta["cot"].endswith("<answer>Image 2 is better</answer>")
    assert "<think>" in rejects[0]["reason"]


def test_embedded_images_are_written_once(run, tmp_path):
    _, pairs, _, _ = run("oip")
    paths = [m for p in pairs for m in p.media_paths()]
    assert all("oip-media" in m for m in paths) and len(set(paths)) == 4
    # the preferred image is the source's "chosen" one, wherever it was placed
    rows = json.loads((Path(materialize_mod.HERE) / "oip" / "rows.json").read_text())
    for p, row in zip(pairs, rows, strict=False):
        chosen_png = materialize_mod.png_bytes(row["chosen"][5:-1])
        assert Path(p.candidates[p.label - 1]).read_bytes() == chosen_png


def test_llava_critic_keeps_brackets_in_answers(run):
    _, pairs, _, _ = run("llava-critic")
    assert pairs[0].candidates == ("The bus is red.", "The bus is blue [and long].")
    assert pairs[0].task.value == "image_understanding" and Path(pairs[0].reference).is_file()


def test_rapidata_criterion_option(run):
    _, pairs, _, _ = run("rapidata-t2i", criterion="alignment")
    assert [p.label for p in pairs] == [2, 1, "tie", 2]  # the row malformed for "preference" is fine here


def test_missing_media_is_rejected_when_checked(tmp_path):
    src = materialize("hpd", tmp_path / "src", with_media=False)
    rep = convert("hpd", src, tmp_path / "o.jsonl", check_media=True)
    assert rep.written == 0 and rep.reasons
    rep = convert("hpd", src, tmp_path / "o2.jsonl")  # unchecked: converted, stats reports it later
    assert rep.written == 3


def test_hub_offline_gives_a_clear_error(tmp_path, monkeypatch):
    monkeypatch.setenv("HF_DATASETS_OFFLINE", "1")
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(SourceUnavailable, match="download it and pass the local folder"):
        convert("hpd", "hub", tmp_path / "o.jsonl")


def test_unknown_source_and_option():
    with pytest.raises(KeyError):
        convert("nope", "x", "y")
    with pytest.raises(ValueError, match="no option"):
        convert("hpd", "x", "y", criterion="alignment")
