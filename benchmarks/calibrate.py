"""Fit domain/models/calibration.json: how the rules' score and the wording model's logit
combine into a calibrated probability, and the verdict thresholds.

    PYTHONPATH=. .venv/bin/python benchmarks/calibrate.py

Train split only (benchmarks/datasets.py). The wording model's logits used here are
cross-validated (each item scored by a model that did not see it), as the product will score
messages it never saw. Thresholds: the lowest scam threshold at which the policy's `scam`
keeps precision >= TARGET_PRECISION on train, and the suspicious threshold at which at most
SUSPICIOUS_FPR of the legitimate train items are flagged.
"""

from __future__ import annotations

import asyncio
import json
from dataclasses import replace

import numpy as np
from sklearn.feature_extraction.text import CountVectorizer
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import cross_val_predict
from sklearn.pipeline import make_pipeline

from benchmarks.datasets import Item, corpus, legitimate_domains, spam_assassin
from benchmarks.verdicts import build_stream
from domain import events as ev
from domain import reasoning
from domain.evidence import collect
from domain.text_model import MODEL_FILE, words
from domain.tools import Tool
from infrastructure.tools.domain_reputation import DomainReputation
from infrastructure.tools.phone_validator import PhoneValidator

TARGET_PRECISION = 0.95
SUSPICIOUS_FPR = 0.05


async def main() -> None:
    items = [i for i in [*spam_assassin(), *corpus(), *legitimate_domains()] if i.split == "train"]
    tools: dict[str, Tool] = {
        "domain_reputation": DomainReputation(),
        "phone_validator": PhoneValidator(),
    }
    findings = []
    for item in items:
        stream = await build_stream(item, tools)
        findings.append(reasoning.rule_reasons(collect(stream)))
    model_logits = _cross_validated_logits(items)
    channels = {}
    for name in ("email", "short"):
        members = [n for n, i in enumerate(items) if reasoning.channel(i.kind) == name]
        fit = _fit(
            [findings[n] for n in members],
            model_logits[members],
            np.array([items[n].scam for n in members]),
        )
        channels[name] = {
            "items": len(members),
            "intercept": round(fit.intercept, 5),
            "rules": round(fit.rules, 5),
            "model": round(fit.model, 5),
            "scam_threshold": round(fit.scam_threshold, 4),
            "suspicious_threshold": round(fit.suspicious_threshold, 4),
        }
    payload = {
        "fitted_on": "train split of the SpamAssassin corpus, the own corpus and the "
        "legitimate-domain sample (benchmarks/datasets.py), analysis without look-ups",
        "target_precision": TARGET_PRECISION,
        "suspicious_fpr": SUSPICIOUS_FPR,
        "channels": channels,
    }
    reasoning.CALIBRATION_FILE.write_text(json.dumps(payload, indent=2) + "\n")
    print(json.dumps(payload, indent=2))


def _fit(
    findings: list[list[ev.Reason]], model_logits: np.ndarray, labels: np.ndarray
) -> reasoning.Calibration:
    rules = np.array([min(max(reasoning._noisy_or(f), 0.001), 0.999) for f in findings])
    x = np.column_stack([np.log(rules / (1 - rules)), model_logits])
    stacker = LogisticRegression(C=10.0).fit(x, labels)
    fit = reasoning.Calibration(
        float(stacker.intercept_[0]),
        float(stacker.coef_[0][0]),
        float(stacker.coef_[0][1]),
        0.5,
        0.3,
    )
    scores = [
        reasoning.combined_score(f, logit, fit)
        for f, logit in zip(findings, model_logits, strict=True)
    ]
    scam_t = _scam_threshold(fit, findings, model_logits, scores, labels)
    negatives = sorted(s for s, y in zip(scores, labels, strict=True) if not y)
    suspicious_t = max(0.2, negatives[int(len(negatives) * (1 - SUSPICIOUS_FPR))])
    return replace(fit, scam_threshold=scam_t, suspicious_threshold=min(suspicious_t, scam_t))


def _cross_validated_logits(items: list[Item]) -> np.ndarray:
    c = json.loads(MODEL_FILE.read_text())["C"]
    pipeline = make_pipeline(
        CountVectorizer(analyzer=lambda text: sorted(words(text)), binary=True, min_df=3),
        LogisticRegression(C=c, max_iter=2000),
    )
    worded = [i for i in items if i.kind not in reasoning.WORDLESS]
    logits = np.zeros(len(items))
    predicted = cross_val_predict(
        pipeline,
        [i.content for i in worded],
        [i.scam for i in worded],
        cv=5,
        method="decision_function",
    )
    positions = [n for n, i in enumerate(items) if i.kind not in reasoning.WORDLESS]
    logits[positions] = predicted
    return logits


def _scam_threshold(
    fit: reasoning.Calibration,
    findings: list[list[ev.Reason]],
    model_logits: np.ndarray,
    scores: list[float],
    labels: np.ndarray,
) -> float:
    for t in np.arange(0.5, 0.99, 0.01):
        candidate = replace(fit, scam_threshold=float(t))
        flagged = [
            reasoning._policy(s, f, m, candidate) == "scam"
            for s, f, m in zip(scores, findings, model_logits, strict=True)
        ]
        tp = sum(1 for f, y in zip(flagged, labels, strict=True) if f and y)
        fp = sum(1 for f, y in zip(flagged, labels, strict=True) if f and not y)
        if tp and tp / (tp + fp) >= TARGET_PRECISION:
            return round(float(t), 2)
    return 0.99


if __name__ == "__main__":
    asyncio.run(main())
