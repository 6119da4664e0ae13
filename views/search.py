"""Archive search: the search page and GET /api/v1/search."""

from __future__ import annotations

from typing import Any

from flask import jsonify, request, url_for
from flask_admin import expose
from flask_login import current_user

from models.case_file import CASE_FILE_STATES, TRANSFER_STATES, CaseFile
from models.document import DIRECTIONS
from models.retention import retention_label
from models.workflow import WorkflowVersion
from views.api import api_bp, api_user, require_auth
from views.base import SecuredBaseView
from workflows.errors import ValidationFailed
from workflows.search import FACETS, search_for

PAGE = 20
FILTER_KEYS = (*FACETS, "case_file")
FACET_TITLES = {
    "kind": "Loại kết quả",
    "direction": "Loại",
    "doc_type": "Loại văn bản",
    "issuer": "Nơi ban hành",
    "year": "Năm",
    "state": "Trạng thái",
    "migrated": "Nguồn",
    "retention": "Thời hạn bảo quản",
    "transfer": "Nộp lưu",
    "case_file": "Hồ sơ",
}
KINDS = {"document": "Văn bản", "case_file": "Hồ sơ lưu trữ"}
SOURCES = {"yes": "Dữ liệu chuyển đổi", "no": "Trên hệ thống"}
API_HIT_KEYS = ("id", "kind", "legacy_id", "number", "title", "score", "highlights")


def _filters(args: Any) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key in FILTER_KEYS:
        values = [v for v in args.getlist(key) if v][:20]
        if values:
            out[key] = values
    return out


def _run(user: Any, args: Any, limit: int, offset: int) -> dict[str, Any]:
    from search_index.errors import SearchQueryError

    sort = args.get("sort", "relevance")
    try:
        return search_for(
            user, args.get("q", ""), filters=_filters(args), sort=sort, limit=limit, offset=offset
        )
    except SearchQueryError as exc:
        raise ValidationFailed(str(exc.message if hasattr(exc, "message") else exc)) from exc


def _state_labels() -> dict[str, str]:
    """Labels of the states of every published workflow, and of case files."""
    labels: dict[str, str] = {"migrated": "Dữ liệu chuyển đổi"}
    for version in WorkflowVersion.objects.only("spec"):
        for state in version.spec.get("states") or []:
            if state.get("code") and state.get("label"):
                labels.setdefault(state["code"], state["label"])
    labels.update(CASE_FILE_STATES)
    return labels


def _retention_label(value: str) -> str:
    if value == "permanent":
        return retention_label(None, True)
    return retention_label(int(value), False) if value.isdigit() else value


def _value_labels(filters: dict[str, Any]) -> dict[str, Any]:
    """Return a function naming a facet or filter value in Vietnamese."""
    states = _state_labels()
    case_files = {
        str(c.pk): f"{c.code} – {c.title}"
        for c in CaseFile.objects(pk__in=filters.get("case_file", [])).only("code", "title")
    }
    names = {
        "kind": KINDS,
        "direction": DIRECTIONS,
        "migrated": SOURCES,
        "state": states,
        "transfer": TRANSFER_STATES,
        "case_file": case_files,
    }

    def label(name: str, value: Any) -> str:
        value = str(value)
        if name == "retention":
            return _retention_label(value)
        return str(names.get(name, {}).get(value, value))

    return {"label": label}


def _hit_url(hit: dict[str, Any]) -> str:
    if hit.get("kind") == "case_file":
        return url_for("case_file.detail", case_file_id=hit["id"])
    return url_for("document.detail", doc_id=hit["id"])


class SearchView(SecuredBaseView):
    """Search everything the user may open: documents, memos, migrated content, case files."""

    @expose("/")
    def index(self) -> Any:
        from workflows.errors import DomainError

        page = max(1, request.args.get("page", 1, type=int))
        result: dict[str, Any] = {"total": 0, "hits": [], "facets": {}}
        error = None
        filters = _filters(request.args)
        if request.args.get("q") is not None or filters:
            try:
                result = _run(current_user, request.args, PAGE, (page - 1) * PAGE)
            except DomainError as exc:
                error = exc.message
        return self.render(
            "search/index.html",
            result=result,
            error=error,
            page=page,
            page_size=PAGE,
            args=request.args,
            facets=FACETS,
            filters=filters,
            titles=FACET_TITLES,
            hit_url=_hit_url,
            searched=request.args.get("q") is not None or bool(filters),
            **_value_labels(filters),
        )


@api_bp.get("/search")
@require_auth()
def api_search() -> Any:
    try:
        limit = int(request.args.get("limit", 10))
        offset = int(request.args.get("offset", 0))
    except ValueError as exc:
        raise ValidationFailed("'limit' và 'offset' phải là số nguyên.") from exc
    result = _run(api_user(), request.args, limit, offset)
    hits = [{k: h.get(k) for k in API_HIT_KEYS} for h in result["hits"]]
    return jsonify({"total": result["total"], "hits": hits, "facets": result["facets"]})
