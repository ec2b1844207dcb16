"""A small learned model of scam and spam wording: logistic regression over the words a
message uses, trained on real labelled mail (benchmarks/train_text_model.py; the weights and
where they come from are in domain/models/text_model.json).

It reads only letters-only words of 3 to 20 letters, so numbers, addresses and links (which
the tools judge) do not leak into it, and the words that name the training corpus itself
(its list names and address placeholders) are left out, so it learns wording, not the data
set. Pure and bounded: a fixed prefix of the text, one linear regex, one dictionary lookup a
distinct word.
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass
from functools import cache
from pathlib import Path

MODEL_FILE = Path(__file__).resolve().parent / "models" / "text_model.json"
MAX_TEXT = 20_000
_WORD = re.compile(r"[a-z]{3,20}")
# Links, host names and addresses are the tools' business: their letters are not wording.
# Every repeat is bounded (a DNS label, an address's local part) and a match starts only where a
# token does, so a 64 KB run without spaces costs linear time.
_LINKISH = re.compile(
    r"(?:https?://|www\.)\S{0,2000}"
    r"|(?<![^\s@])[^\s@]{0,64}@[^\s@]{1,253}"
    r"|(?<![\w-])[\w-]{1,63}(?:\.[\w-]{1,63}){1,10}(?:/\S{0,2000})?"
)
# Tokens that identify the SpamAssassin corpus rather than a kind of message: its address
# placeholders and the names of the mailing lists its ham came from.
CORPUS_ARTIFACTS = frozenset(
    {
        *("zzzz", "yyyy", "taint", "spamassassin", "exmh", "razor", "sourceforge", "freshrpms"),
        *("ilug", "lugh", "tuatha", "jmason", "netnoteinc", "deepeddy", "xent", "rpm", "lists"),
        *("listinfo", "mailman", "fork", "sfnet"),
    }
)


def words(text: str) -> set[str]:
    """The distinct words the model reads in `text`."""
    plain = _LINKISH.sub(" ", text[:MAX_TEXT].lower())
    return set(_WORD.findall(plain)) - CORPUS_ARTIFACTS


@dataclass(frozen=True)
class TextModel:
    bias: float
    weights: dict[str, float]

    def probability(self, text: str) -> tuple[float, list[tuple[str, float]]]:
        """P(scam or spam wording) and the words that moved it most, strongest first."""
        present = [(w, self.weights[w]) for w in words(text) if w in self.weights]
        logit = self.bias + sum(weight for _, weight in present)
        present.sort(key=lambda item: -abs(item[1]))
        return sigmoid(logit), present


def sigmoid(x: float) -> float:
    if x >= 0:
        return 1.0 / (1.0 + math.exp(-x))
    z = math.exp(x)
    return z / (1.0 + z)


@cache
def text_model() -> TextModel | None:
    """The shipped model; None when the weights file is absent (the rules then stand alone)."""
    if not MODEL_FILE.exists():
        return None
    data = json.loads(MODEL_FILE.read_text())
    return TextModel(float(data["bias"]), {str(k): float(v) for k, v in data["weights"].items()})
