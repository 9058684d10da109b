"""The canonical PreferencePair: round trips, row/field-naming validation, label spellings, real rows."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from unireward import PreferencePair, SchemaError, read_pairs, write_pairs
from unireward.data.schema import iter_pairs, normalize_label
from unireward.protocol import Task

VALID = [
    {"id": "ig-1", "task": "image_generation", "prompt": "a red cube {R1} on {prompt}",
     "candidates": ["a.png", "b.png"], "label": 1, "source": "hpd", "meta": {"k": [1, 2]}},
    {"id": "vg-1", "task": "video_generation", "prompt": "a dog runs",
     "candidates": ["videos/a.mp4", ["f/0.png", "f/1.png"]], "label": "tie", "reference": None,
     "source": "videoalign", "meta": {}},
    {"id": "iu-1", "task": "image_understanding", "prompt": "How many cats?",
     "candidates": ["Two.", ""], "label": 2, "reference": "cats.jpg", "source": "vlrb", "meta": {}},
    {"id": "vu-1", "task": "video_understanding", "prompt": "Qu'est-ce qui se passe ? 🐈",
     "candidates": ["Un chat saute.", "Rien."], "label": 1, "reference": "clip.mp4", "source": "", "meta": {}},
    {"id": "ie-1", "task": "image_editing", "prompt": "make the cube blue",
     "candidates": ["edit_a.png", "edit_b.png"], "label": 2, "reference": "source.png", "source": "genai-bench", "meta": {}},
]  # fmt: skip


def test_valid_rows_of_every_task_round_trip(tmp_path: Path) -> None:
    pairs = [PreferencePair.from_dict(d) for d in VALID]
    assert {p.task for p in pairs} == set(Task)
    path = tmp_path / "sub" / "pairs.jsonl"
    assert write_pairs(pairs, path) == 5
    back = read_pairs(path)
    assert back == pairs
    assert [p.to_dict() for p in back] == [{**d, "reference": d.get("reference")} for d in VALID]
    assert not list(tmp_path.glob("sub/*.tmp"))  # the atomic write leaves nothing behind
    assert write_pairs(pairs[:1], path, append=True) == 1
    assert [p.id for p in read_pairs(path)] == ["ig-1", "vg-1", "iu-1", "vu-1", "ie-1", "ig-1"]
    with pytest.raises(SchemaError, match="image_editing needs the source image"):
        PreferencePair.from_dict({**VALID[-1], "reference": None})
    # unicode is written as is, not escaped
    assert "🐈" in path.read_text(encoding="utf-8")


def test_label_text_swapped_and_media_paths() -> None:
    ig, vg, iu, vu, ie = (PreferencePair.from_dict(d) for d in VALID)
    assert ig.label_text == "Image 1 is better" and vg.label_text is None and iu.label_text == "Answer 2 is better"
    sw = iu.swapped()
    assert sw.candidates == ("", "Two.") and sw.label == 1 and sw.label_text == "Answer 1 is better"
    assert sw.swapped().candidates == iu.candidates
    assert vg.media_paths() == ["videos/a.mp4", "f/0.png", "f/1.png"]
    assert vu.media_paths() == ["clip.mp4"]
    assert ie.media_paths() == ["edit_a.png", "edit_b.png", "source.png"] and ie.swapped().reference == "source.png"


@pytest.mark.parametrize(
    "value,expected",
    [(1, 1), (2, 2), (1.0, 1), ("1", 1), (" 2 ", 2), ("A", 1), ("b", 2), ("left", 1), ("rightvote", 2),
     ("same", "tie"), ("Tie", "tie"), ("tievote", "tie"), ("bothbad_vote", "tie"), ("equal", "tie"),
     ("Image 2 is better", 2), ("Video 1 is better", 1), ("Answer 2 is better", 2)],
)  # fmt: skip
def test_label_normalisation(value: object, expected: object) -> None:
    assert normalize_label(value) == expected


@pytest.mark.parametrize("value", [0, 3, 1.5, True, None, "", "C", "both", "Image 3 is better", [1]])
def test_bad_labels(value: object) -> None:
    with pytest.raises(SchemaError) as e:
        normalize_label(value, row=7)
    assert e.value.field == "label" and e.value.row == 7


def _bad(**change: object) -> dict:
    d = dict(VALID[2])
    for k, v in change.items():
        if v is KeyError:
            d.pop(k)
        else:
            d[k] = v
    return d


BAD_ROWS = {
    "missing id": (_bad(id=KeyError), "id"),
    "empty id": (_bad(id=""), "id"),
    "id is a list": (_bad(id=[1]), "id"),
    "id is a bool": (_bad(id=True), "id"),
    "unknown task": (_bad(task="audio_generation"), "task"),
    "missing task": (_bad(task=KeyError), "task"),
    "blank prompt": (_bad(prompt="  "), "prompt"),
    "prompt not a string": (_bad(prompt=5), "prompt"),
    "one candidate": (_bad(candidates=["x"]), "candidates"),
    "candidates a string": (_bad(candidates="ab"), "candidates"),
    "answer not a string": (_bad(candidates=["x", 3]), "candidates[1]"),
    "understanding without reference": (_bad(reference=None), "reference"),
    "empty reference": (_bad(reference=""), "reference"),
    "bad label": (_bad(label="maybe"), "label"),
    "missing label": (_bad(label=KeyError), "label"),
    "meta not an object": (_bad(meta="x"), "meta"),
    "source not a string": (_bad(source=3), "source"),
    "unknown field": (_bad(chosen="x"), "chosen"),
    "generation media empty": ({**VALID[0], "candidates": ["a.png", ""]}, "candidates[1]"),
    "generation frames with a non-string": ({**VALID[1], "candidates": ["a.mp4", ["f0.png", 1]]}, "candidates[1]"),
    "generation empty frame list": ({**VALID[1], "candidates": [[], "a.mp4"]}, "candidates[0]"),
}


@pytest.mark.parametrize("name", list(BAD_ROWS))
def test_bad_rows_name_row_and_field(name: str, tmp_path: Path) -> None:
    row, fld = BAD_ROWS[name]
    path = tmp_path / "bad.jsonl"
    lines = [json.dumps(VALID[0]), "", json.dumps(row)]  # the bad row is line 3 (blank lines count)
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    with pytest.raises(SchemaError) as e:
        read_pairs(path)
    assert e.value.row == "bad.jsonl:3" and e.value.field == fld
    assert str(e.value).startswith(f"row bad.jsonl:3, field {fld!r}: ")
    # errors="yield" carries on past the bad row
    got = list(iter_pairs(path, errors="yield"))
    assert isinstance(got[0], PreferencePair) and isinstance(got[1], SchemaError)


def test_error_message_is_not_mangled_by_an_id_with_a_colon(tmp_path: Path) -> None:
    path = tmp_path / "x.jsonl"
    path.write_text(json.dumps({**VALID[0], "id": "a: b", "prompt": ""}) + "\n", encoding="utf-8")
    with pytest.raises(SchemaError) as e:
        read_pairs(path)
    assert str(e.value) == "row x.jsonl:1, field 'prompt': prompt must be a non-empty string"


def test_direct_construction_names_the_id() -> None:
    with pytest.raises(SchemaError, match=r"^row ig-9, field 'candidates\[0\]'"):
        PreferencePair(id="ig-9", task="image_generation", prompt="p", candidates=("", "b.png"), label=1)


@pytest.mark.parametrize("line", ["{not json", "[1, 2]", '"a string"', "null"])
def test_non_object_lines(line: str, tmp_path: Path) -> None:
    path = tmp_path / "p.jsonl"
    path.write_text(line + "\n", encoding="utf-8")
    with pytest.raises(SchemaError, match=r"^row p.jsonl:1"):
        read_pairs(path)


def test_byte_order_mark_and_crlf(tmp_path: Path) -> None:
    path = tmp_path / "bom.jsonl"
    path.write_bytes(b"\xef\xbb\xbf" + (json.dumps(VALID[0]) + "\r\n" + json.dumps(VALID[3]) + "\r\n").encode())
    assert [p.id for p in read_pairs(path)] == ["ig-1", "vu-1"]


def test_all_vl_rewardbench_annotations_fit_the_schema(shared_data: Path, tmp_path: Path) -> None:
    """The 1,250 real VL-RewardBench rows become valid pairs; ``human_ranking[i] == 0`` marks the winner."""
    rows = [json.loads(x) for x in (shared_data / "vl-rewardbench" / "data.jsonl").read_text().splitlines()]
    pairs = [
        PreferencePair(
            id=f"{r['id']}#{n}", task="image_understanding", prompt=r["query"], candidates=tuple(r["response"]),
            label=r["human_ranking"].index(0) + 1, reference=r["image_path"], source="vl-rewardbench",
            meta={"query_source": r.get("query_source")},
        )
        for n, r in enumerate(rows)
    ]  # fmt: skip
    assert len(pairs) == 1250
    reversed_items = [p for p in pairs if p.label == 2]
    assert len(reversed_items) == 5
    path = tmp_path / "vlrb.jsonl"
    write_pairs(pairs, path)
    assert read_pairs(path) == pairs
