"""Train domain/models/text_model.json: logistic regression over the words of real mail.

    PYTHONPATH=. .venv/bin/python benchmarks/train_text_model.py

Trained on the `train` split only (benchmarks/datasets.py: a hash of each item's id), of the
SpamAssassin public mail corpus and of the project's own corpus; the `test` split is never
read here. The regularisation strength is chosen by 5-fold cross-validation inside `train`.
Needs scikit-learn (training only; the product reads the JSON weights with the standard
library).
"""

from __future__ import annotations

import json
from datetime import UTC, datetime

import numpy as np
from sklearn.feature_extraction.text import CountVectorizer
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import GridSearchCV

from benchmarks.datasets import SPAM_ASSASSIN, corpus, spam_assassin
from domain.text_model import MODEL_FILE, words

KEEP = 4000  # the strongest weights kept: the file stays small, the fit hardly changes


def main() -> None:
    items = [i for i in [*spam_assassin(), *corpus()] if i.split == "train"]
    vectoriser = CountVectorizer(analyzer=lambda text: sorted(words(text)), binary=True, min_df=3)
    features = vectoriser.fit_transform([i.content for i in items])
    labels = np.array([i.scam for i in items])
    search = GridSearchCV(
        LogisticRegression(max_iter=2000),
        {"C": [0.03, 0.1, 0.3, 1.0]},
        scoring="roc_auc",
        cv=5,
    )
    search.fit(features, labels)
    model = search.best_estimator_
    vocabulary = vectoriser.get_feature_names_out()
    coefficients = model.coef_[0]
    strongest = np.argsort(-np.abs(coefficients))[:KEEP]
    payload = {
        "kind": "logistic regression over distinct letters-only words (domain/text_model.py)",
        "trained_on": (
            f"train split of npm {SPAM_ASSASSIN[0]}@{SPAM_ASSASSIN[1]} (SpamAssassin public "
            "mail corpus, PDDL/CC0) and of tests/data/corpus.jsonl"
        ),
        "items": len(items),
        "positives": int(labels.sum()),
        "C": search.best_params_["C"],
        "cv_auc": round(float(search.best_score_), 4),
        "trained_at": datetime.now(UTC).date().isoformat(),
        "bias": round(float(model.intercept_[0]), 5),
        "weights": {
            str(vocabulary[i]): round(float(coefficients[i]), 5)
            for i in sorted(strongest, key=lambda i: vocabulary[i])
        },
    }
    MODEL_FILE.parent.mkdir(exist_ok=True)
    MODEL_FILE.write_text(json.dumps(payload, indent=0, sort_keys=False) + "\n")
    print(json.dumps({k: v for k, v in payload.items() if k != "weights"}, indent=2))


if __name__ == "__main__":
    main()
