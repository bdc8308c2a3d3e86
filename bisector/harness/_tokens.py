"""Tokens per input on a fixed text set (the tokenizer-efficiency regression).

``--tokenizer`` names a ``tokenizer.json`` file (loaded with ``tokenizers``), a local
tokenizer folder (``AutoTokenizer.from_pretrained(..., local_files_only=True)``), or a
``MODULE:FUNCTION`` of the repository under test returning any object with
``encode(text)`` (a list of ids, or an object with ``.ids``) or ``__call__(text)``
(a dict with ``input_ids``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from bisector.harness._model import load_callable

DEFAULT_TEXTS = (
    "The quick brown fox jumps over the lazy dog.",
    "Serving latency regressed from 142 ms to 589 ms after the v2.4.0 release.",
    "def forward(self, input_ids, attention_mask=None):\n    return self.lm_head(self.body(input_ids))",
    "Bonjour à tous, voici les résultats du trimestre : +3,2 % sur un an.",
    "東京の天気は晴れ、最高気温は二十三度です。",
    "SELECT name, COUNT(*) FROM requests WHERE status = 'timeout' GROUP BY name;",
    "3.14159265358979 2.71828182845905 1.41421356237310 0.57721566490153",
    "Please summarise the following document in three bullet points for an executive audience.",
)


def load_texts(path: str | None) -> list[str]:
    if path is None:
        return list(DEFAULT_TEXTS)
    return [line for line in Path(path).read_text(encoding="utf-8").splitlines() if line.strip()]


def load_tokenizer(spec: str) -> Any:
    path = Path(spec)
    if path.is_file():
        import tokenizers

        return tokenizers.Tokenizer.from_file(str(path))
    if path.is_dir():
        import transformers

        return transformers.AutoTokenizer.from_pretrained(str(path), local_files_only=True)
    if ":" in spec:
        return load_callable(spec)()
    raise FileNotFoundError(f"--tokenizer {spec}: no such file, folder or MODULE:FUNCTION")


def count_tokens(tokenizer: Any, text: str) -> int:
    if hasattr(tokenizer, "encode"):
        encoded = tokenizer.encode(text)
        ids = getattr(encoded, "ids", encoded)
        return len(ids)
    encoded = tokenizer(text)
    if isinstance(encoded, dict) or hasattr(encoded, "keys"):
        return len(encoded["input_ids"])
    return len(encoded)


def tokens_per_input(spec: str, texts_path: str | None) -> float:
    tokenizer = load_tokenizer(spec)
    texts = load_texts(texts_path)
    if not texts:
        raise ValueError("the tokenizer text set is empty")
    return sum(count_tokens(tokenizer, t) for t in texts) / len(texts)
