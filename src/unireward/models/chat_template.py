"""Chat templates for tiny models (the real checkpoints ship their own).

They test ``content['type']`` rather than key presence, because datasets/Arrow gives every
content part every key (text parts carry ``image=None``).
"""

_WRAPPED_VIDEO = "<|vision_start|><|video_pad|><|vision_end|>"


def qwen_vl_chat_template(video: str = _WRAPPED_VIDEO) -> str:
    """The Qwen chat layout; ``video`` is what a video part renders as before the processor expands it."""
    return (
        "{%- for message in messages -%}"
        "<|im_start|>{{ message['role'] + '\\n' }}"
        "{%- if message['content'] is string -%}{{ message['content'] }}"
        "{%- else -%}{%- for part in message['content'] -%}"
        "{%- if part['type'] == 'image' -%}<|vision_start|><|image_pad|><|vision_end|>"
        "{%- elif part['type'] == 'video' -%}" + video + ""
        "{%- elif part['type'] == 'text' -%}{{ part['text'] }}"
        "{%- endif -%}{%- endfor -%}{%- endif -%}"
        "<|im_end|>{{ '\\n' }}"
        "{%- endfor -%}"
        "{%- if add_generation_prompt -%}<|im_start|>assistant{{ '\\n' }}{%- endif -%}"
    )


QWEN_VL_CHAT_TEMPLATE = qwen_vl_chat_template()
# Qwen3-VL's processor wraps every frame in its own <|vision_start|>...<|vision_end|> after a
# "<t seconds>" timestamp, so the template leaves the bare placeholder.
QWEN3_VL_CHAT_TEMPLATE = qwen_vl_chat_template("<|video_pad|>")
