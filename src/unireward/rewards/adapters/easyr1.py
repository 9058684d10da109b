"""EasyR1 reward entry point: the paper's format + accuracy reward in EasyR1's shapes.

EasyR1 loads a reward file by path (``worker.reward.reward_function=/path/to/easyr1.py:compute_score``)
and calls it in batch mode (its default: a list of ``{response, response_length, ground_truth}`` in,
a list of ``{overall, format, accuracy}`` out) or in sequential mode (one dict in, one dict out).
EasyR1 up to v0.3.2 takes the mode from its config (``worker.reward.reward_type``); later versions
read the module attribute ``REWARD_TYPE`` of the loaded file instead.
``ground_truth`` is the verdict string our EasyR1 export writes in its ``answer`` column. ``overall`` is
the paper's sum (0-2). The file imports the installed package, so it works from any path:
``python -c "import unireward.rewards.adapters.easyr1 as m; print(m.__file__)"`` prints the one to give.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from unireward.rewards.policy import accuracy_reward, format_reward, strict_format_reward

#: what EasyR1 (after v0.3.2) reads from the file it loads: ``REWARD_TYPE`` picks how it calls
#: ``compute_score`` (``"batch"``: one list per step; ``"sequential"``: one dict per response). Both
#: shapes are taken; ``unireward/integrations/easyr1_sequential.py`` is the same entry in sequential mode.
REWARD_NAME = "unireward"
REWARD_TYPE = "batch"


def _score(responses: list[str], truths: list[Any], strict_format: bool) -> list[dict[str, float]]:
    fmt = (strict_format_reward if strict_format else format_reward)(responses)
    acc = accuracy_reward(responses, label=truths)
    return [{"overall": f + a, "format": f, "accuracy": a} for f, a in zip(fmt, acc, strict=True)]


def compute_score(reward_inputs: Sequence[Mapping[str, Any]] | Mapping[str, Any], strict_format: bool = False) -> Any:
    """Scores for EasyR1; ``strict_format`` (a ``reward_function_kwargs`` entry) closes the format hacks.

    >>> good = {"response": "<think>t</think><answer>Image 2 is better</answer>", "response_length": 9,
    ...         "ground_truth": "Image 2 is better"}
    >>> compute_score([good, {**good, "response": "Image 1 is better"}])
    [{'overall': 2.0, 'format': 1.0, 'accuracy': 1.0}, {'overall': 0.0, 'format': 0.0, 'accuracy': 0.0}]
    >>> compute_score(good)  # sequential mode
    {'overall': 2.0, 'format': 1.0, 'accuracy': 1.0}
    """
    if isinstance(reward_inputs, Mapping):
        return _score([str(reward_inputs["response"])], [reward_inputs["ground_truth"]], strict_format)[0]
    items = list(reward_inputs)
    for i, item in enumerate(items):
        if not isinstance(item, Mapping) or "response" not in item or "ground_truth" not in item:
            raise ValueError(f"reward input {i}: expected a dict with 'response' and 'ground_truth', got {item!r:.120}")
    return _score([str(x["response"]) for x in items], [x["ground_truth"] for x in items], strict_format)
