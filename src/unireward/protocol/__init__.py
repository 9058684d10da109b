"""The judgment protocol: tasks, prompt templates and the verdict parser."""

from unireward.protocol.parser import DimensionScore, Judgment, parse_judgment
from unireward.protocol.tasks import Mode, Task, answer_label, candidate_noun, label_to_winner
from unireward.protocol.templates import TemplateFamily, get_family, list_families, render_messages

__all__ = [
    "DimensionScore",
    "Judgment",
    "Mode",
    "Task",
    "TemplateFamily",
    "answer_label",
    "candidate_noun",
    "get_family",
    "label_to_winner",
    "list_families",
    "parse_judgment",
    "render_messages",
]
