"""Common first terms take their best documents from a cached score order: same ranking."""

from __future__ import annotations

import random
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from search_index import ranking, searcher, writer

WORDS = "quản lý văn bản hồ sơ lưu trữ thông tư quy định kế hoạch".split()  # noqa: SIM905


@pytest.fixture
def path(tmp_path: Path, record: Callable[..., Any]) -> Path:
    rng = random.Random(5)
    docs = []
    for i in range(160):
        # Distinct lengths: no two documents tie on a term's score.
        body = " ".join(rng.choice(WORDS) for _ in range(5 + i))
        if i % 20 == 0:
            body += " khẩn cấp"  # a rare term scored first, common ones after
        title = " ".join(rng.choice(WORDS) for _ in range(3))
        secret = i % 7 == 0
        docs.append(
            record(
                f"d{i}",
                title,
                body,
                principals=["unit:u2"] if secret else ["all"],
                secrecy=1 if secret else 0,
            )
        )
    path = tmp_path / "ix"
    writer.index_documents(path, docs[:90])
    writer.index_documents(path, docs[90:])  # two segments
    return path


def _ranked(path: Path, text: str, **kwargs: Any) -> list[tuple[float, str]]:
    result = searcher.search(path, text, limit=5, **kwargs)
    return sorted(((h["score"], h["id"]) for h in result["hits"]), reverse=True)


@pytest.mark.parametrize(
    "text", ["quản lý", "quan", "thông tư quy định", "van ban", "khẩn cấp quản lý văn bản"]
)
@pytest.mark.parametrize(
    "who", [{"principals": ["all"]}, {"principals": ["unit:u2"], "clearance": 1}]
)
def test_cached_score_order_ranks_like_scoring_every_posting(
    path: Path, text: str, who: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(ranking, "IMPACT_MIN_POSTINGS", 10**9)
    full = _ranked(path, text, **who)
    # Few candidates (4 x 5 hits) out of ~75 matches per segment; a budget that stops after
    # the first group.
    monkeypatch.setattr(ranking, "IMPACT_MIN_POSTINGS", 0)
    monkeypatch.setattr(ranking, "MIN_CANDIDATES", 0)
    monkeypatch.setattr(ranking, "FULL_SCORING_POSTINGS", 10)
    calls: list[int] = []
    original = ranking._add_best_of_group
    monkeypatch.setattr(ranking, "_add_best_of_group", lambda *a: calls.append(1) or original(*a))
    fast = _ranked(path, text, **who)
    assert calls  # the cached order was used
    assert [i for _, i in fast] == [i for _, i in full]
    assert [s for s, _ in fast] == pytest.approx([s for s, _ in full], abs=2e-4)
