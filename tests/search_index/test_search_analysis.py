"""Vietnamese analysis: NFC/NFD, case, đ, tone placement, syllables, pairs, numbers."""

from __future__ import annotations

import unicodedata
from collections import Counter

from search_index import analysis
from search_index.terms import TermTable


def test_nfd_input_gives_the_same_tokens_as_nfc() -> None:
    text = "Quyết định phê duyệt Đề án"
    nfd = unicodedata.normalize("NFD", text)
    assert nfd != text
    assert (
        analysis.tokenize(nfd)
        == analysis.tokenize(text)
        == [
            "quyết",
            "định",
            "phê",
            "duyệt",
            "đề",
            "án",
        ]
    )


def test_short_syllables_and_common_words_are_kept() -> None:
    # Whoosh's StandardAnalyzer would drop these (stop list, minimum length).
    assert analysis.tokenize("Ý kiến về việc ở và a") == ["ý", "kiến", "về", "việc", "ở", "và", "a"]


def test_folding_removes_marks_and_turns_d_stroke_into_d() -> None:
    assert analysis.fold(analysis.normalize("Đường ĐIỆN lực Ưu Tiên")) == "duong dien luc uu tien"
    assert analysis.fold_tokens(["đồng", "nghị"]) == ["dong", "nghi"]
    assert analysis.has_marks("đường") and not analysis.has_marks("tin")


def test_old_and_new_tone_placement_are_the_same_token() -> None:
    assert analysis.tokenize("hóa đơn thủy lợi") == analysis.tokenize("hoá đơn thuỷ lợi")
    # "qu" is a consonant: "quý" is written the same in both styles and must stay as is.
    assert analysis.tokenize("quý") == ["quý"]


def test_pairs_join_adjacent_syllables() -> None:
    tokens = analysis.tokenize("văn bản quy phạm")
    assert analysis.pairs(tokens) == ["văn_bản", "bản_quy", "quy_phạm"]
    exact, folded, count = TermTable().analyze("Văn bản văn bản")
    assert count == 4
    assert exact["văn"] == 2 and exact["văn_bản"] == 2 and exact["bản_văn"] == 1
    assert folded["van_ban"] == 2 and "văn" not in folded


def test_notation_keys_ignore_case_marks_and_separators() -> None:
    key = analysis.notation_key("70/2018/NĐ-CP")
    assert key == analysis.notation_key("70/2018/nd-cp") == "70.2018.nd.cp"
    assert analysis.notation_terms("70/2018/NĐ-CP") == [
        "70",
        "70.2018",
        "70.2018.nd",
        "70.2018.nd.cp",
    ]
    assert analysis.notation_key("488397-VBĐT") == analysis.notation_key("488397-vbdt")


def test_numbers_are_found_inside_queries() -> None:
    found = analysis.find_notations("tìm 70/2018/ND-CP và 488397-VBĐT năm 2018")
    assert found == ["70/2018/nd-cp", "488397-vbđt"]
    assert analysis.find_notations("quyết định phê duyệt") == []


def test_term_table_counts_the_terms_of_the_query_analysis() -> None:
    """Documents (bytes, numpy) and queries (regex on text) are analysed into the same terms."""
    texts = [
        "Quyết định 70/2018/NĐ-CP về hóa đơn, thủy lợi; hoá đơn thuỷ lợi (quý I)",
        unicodedata.normalize("NFD", "Đường ĐIỆN lực Ưu Tiên"),
        "a_b__c «trích yếu» — “nội dung” … x² ½ Ⅻ\u00a0tab\tdòng\nmới\u2003hết",
        "điều 1 điều 1 điều 1",
        "",
        "...",
        "một",
    ]
    table = TermTable()
    for text in texts:
        tokens = analysis.tokenize(text)
        folded = analysis.fold_tokens(tokens)
        exact, folded_counts, count = table.analyze(text)
        assert count == len(tokens)
        assert dict(exact) == Counter(tokens) + Counter(analysis.pairs(tokens))
        assert dict(folded_counts) == Counter(folded) + Counter(analysis.pairs(folded))
    assert table.analyze(texts[0])[0] is table.analyze(texts[0])[0]  # copies share counts
