"""The chat templates a family file can name (stored in the GGUF as tokenizer.chat_template and
rendered by the gateway through node-llama-cpp's Jinja engine)."""

from typing import Any, Dict

TEMPLATES = {
    # Plain-text role markers: encodable by any vocabulary without special tokens (tiny).
    "role-colon": (
        "{% for message in messages %}"
        "{{ message['role'] }}: {{ message['content'] }}\n"
        "{% endfor %}"
        "{% if add_generation_prompt %}assistant:{% endif %}"
    ),
    # ChatML with <|im_start|> / <|im_end|> as the vocabulary's control tokens.
    "chatml": (
        "{% for message in messages %}"
        "{{ '<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>' + '\\n' }}"
        "{% endfor %}"
        "{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}"
    ),
}


def chat_template(family: Dict[str, Any]) -> str:
    t = family["chat_template"]
    return t["jinja"] if isinstance(t, dict) else TEMPLATES[t]
