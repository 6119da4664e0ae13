"""Archive search: the search page and GET /api/v1/search."""

from __future__ import annotations

from typing import Any

from flask import jsonify, request
from flask_admin import expose
from flask_login import current_user

from models.document import DIRECTIONS
from views.api import api_bp, api_user, require_auth
from views.base import SecuredBaseView
from workflows.errors import ValidationFailed
from workflows.search import FACETS, search_for

PAGE = 20
FILTER_KEYS = ("direction", "doc_type", "issuer", "year", "state", "migrated")


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


class SearchView(SecuredBaseView):
    """Search everything the user may open: documents, internal memos, migrated content."""

    @expose("/")
    def index(self) -> Any:
        from workflows.errors import DomainError

        page = max(1, request.args.get("page", 1, type=int))
        result: dict[str, Any] = {"total": 0, "hits": [], "facets": {}}
        error = None
        if request.args.get("q") is not None:
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
            directions=DIRECTIONS,
            labels={
                "direction": "Loại",
                "doc_type": "Loại văn bản",
                "issuer": "Nơi ban hành",
                "year": "Năm",
                "state": "Trạng thái",
                "migrated": "Nguồn",
            },
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
    hits = [
        {k: h.get(k) for k in ("id", "legacy_id", "number", "title", "score", "highlights")}
        for h in result["hits"]
    ]
    return jsonify({"total": result["total"], "hits": hits, "facets": result["facets"]})
