"""Typed errors of the search index, each with a Vietnamese message for the user."""

from __future__ import annotations


class SearchIndexError(Exception):
    """Base of search index errors; ``message_vi`` is shown to users."""

    default_message = "Lỗi chỉ mục tìm kiếm."

    def __init__(self, message_vi: str | None = None) -> None:
        self.message_vi = message_vi or self.default_message
        super().__init__(self.message_vi)


class SearchQueryError(SearchIndexError):
    """The query cannot be run as typed (the message says what to change)."""

    default_message = "Câu truy vấn không hợp lệ."


class IndexOutdatedError(SearchIndexError):
    """The index on disk was built with another schema version and must be rebuilt."""

    default_message = "Chỉ mục tìm kiếm đã cũ, cần xây dựng lại."


class IndexMissingError(SearchIndexError):
    """No index exists at the given path yet."""

    default_message = "Chưa có chỉ mục tìm kiếm, cần xây dựng chỉ mục."


class IndexBusyError(SearchIndexError):
    """Another writer holds the index lock longer than the timeout."""

    default_message = "Chỉ mục tìm kiếm đang được cập nhật, vui lòng thử lại sau."
