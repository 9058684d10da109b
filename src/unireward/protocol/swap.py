"""A judgment's text rewritten for the pair with its candidates in the other order.

Training on a pair shown the other way round needs the chain of thought that fits it: what was said
of candidate 1 is now said of candidate 2 and the verdict names the other slot. :func:`swap_candidates`
does that and keeps the text reading in its own order: where both candidates are described in one
parallel structure (``Image 1 (9/10); Image 2 (3/10)``, ``Image 1: red, match. Image 2: blue, no
match.``, the ``Total score`` lines; in either order), the two descriptions exchange places under
fixed names; every
other mention ("Image 1 is better", "Image 2 is sharper than Image 1", Flex's ``score_1`` keys) has
its number exchanged, as :func:`~unireward.protocol.parser.relabel_swapped` does. Either way the
text says the same of each candidate, so the parser reads the swapped winner, scores and totals.
The rewrite is an involution; if a text's structures would not make it one, the function falls back
to relabelling every mention (an involution by construction).
"""

from __future__ import annotations

import re

from unireward.protocol.parser import relabel_swapped

_MENTION = re.compile(r"\b(Image|Video|Answer|image|video|answer)([ \t]*)([12])\b")
# What separates candidate 1's description from candidate 2's name: one optional ",", ";" or "."
# and whitespace (a newline included), optionally a connective.
_SEP = re.compile(r"([,;.]?)(\s+(?:(?:and|vs\.?|versus)\s+)?)$")
_NUMBER = re.compile(r"[-+]?\d+(?:\.\d+)?")
_KEY = re.compile(r"\b(score|reason)_([12])\b")


def _skeleton(s: str) -> str:
    """The punctuation and number layout of a description: what two parallel ones share.

    >>> _skeleton(" (9/10) - ..."), _skeleton(": blue, no match"), _skeleton(": -2.25")
    ('(0/0)-...', ':,', ':0')
    """
    return "".join(ch for ch in _NUMBER.sub("0", s) if not ch.isalpha() and not ch.isspace())


def _pair_at(text: str, m1: re.Match[str], m2: re.Match[str], limit: int) -> tuple[str, str, str, int] | None:
    """``(desc_1, separator, desc_2, end of desc_2)`` when ``m1 desc_1 sep m2 desc_2`` is one parallel
    structure, else ``None``."""
    if m1.group(3) == m2.group(3) or m1.group(1).lower() != m2.group(1).lower():
        return None
    between = text[m1.end() : m2.start()]
    sep = _SEP.search(between)
    if sep is None:
        return None
    desc1, mark = between[: sep.start()], sep.group(1)
    lead = desc1.lstrip()[:1]
    if not lead or lead.isalnum() or "\n" in desc1:
        return None
    region_end = text.find("\n", m2.end())
    region_end = min(limit, region_end if region_end >= 0 else len(text))
    region = text[m2.end() : region_end]
    end = len(region)
    if mark:
        stop = re.search(re.escape(mark) + r"(?=\s|$)", region)
        if stop is not None:
            end = stop.start()
    desc2 = region[:end].rstrip()
    if mark and any(re.search(re.escape(mark) + r"(?=\s|$)", d) for d in (desc1, desc2)):
        return None  # the mark ends a description and also sits inside one: no clean boundary
    if desc2.lstrip()[:1] != lead or _skeleton(desc1) != _skeleton(desc2):
        return None
    return desc1, between[sep.start() :], desc2, m2.end() + len(desc2)


def _swap_once(text: str) -> str:
    mentions = list(_MENTION.finditer(text))
    out: list[str] = []
    pos, i = 0, 0
    while i < len(mentions):
        m = mentions[i]
        nxt = mentions[i + 1] if i + 1 < len(mentions) else None
        limit = mentions[i + 2].start() if i + 2 < len(mentions) else len(text)
        found = _pair_at(text, m, nxt, limit) if nxt is not None else None
        if found is not None and nxt is not None:
            desc1, sep, desc2, end = found
            out += [text[pos : m.end()], desc2, sep, nxt.group(0), desc1]
            pos, i = end, i + 2
            continue
        out += [text[pos : m.start()], f"{m.group(1)}{m.group(2)}{3 - int(m.group(3))}"]
        pos, i = m.end(), i + 1
    out.append(text[pos:])
    return _KEY.sub(lambda k: f"{k.group(1)}_{3 - int(k.group(2))}", "".join(out))


def swap_candidates(text: str) -> str:
    """The judgment ``text`` rewritten for its pair with the two candidates exchanged.

    >>> t = '''<think>
    ... Caption: red circle. Image 1: blue, no match. Image 2: red, match.
    ... 1. Semantic consistency: Image 1 (3/10); Image 2 (9/10)
    ... Total score:
    ... Image 1: 3
    ... Image 2: 9
    ... </think>
    ... <answer>Image 2 is better</answer>'''
    >>> print(swap_candidates(t))
    <think>
    Caption: red circle. Image 1: red, match. Image 2: blue, no match.
    1. Semantic consistency: Image 1 (9/10); Image 2 (3/10)
    Total score:
    Image 1: 9
    Image 2: 3
    </think>
    <answer>Image 1 is better</answer>
    >>> swap_candidates("Answer 2 is more precise than Answer 1.")
    'Answer 1 is more precise than Answer 2.'
    >>> swap_candidates(swap_candidates(t)) == t
    True
    """
    swapped = _swap_once(text)
    if _swap_once(swapped) == text:
        return swapped
    return relabel_swapped(text)
