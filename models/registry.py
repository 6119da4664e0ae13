"""The list of top-level models, for index creation and test cleanup."""

from __future__ import annotations

from mongoengine import Document


def all_models() -> list[type[Document]]:
    """Return every top-level Document class of the application."""
    from models.api_token import ApiToken
    from models.audit import AuditEntry
    from models.counter import Counter
    from models.delegation import Delegation
    from models.document import Document
    from models.document_type import DocumentType
    from models.legacy_import import ImportBatch, ImportMapping, ImportProblem
    from models.notification import Notification
    from models.organization import Agency, Position, Unit
    from models.role import Role
    from models.user import User
    from models.workflow import WorkflowDefinition, WorkflowVersion

    return [
        Agency,
        Unit,
        Position,
        Role,
        User,
        DocumentType,
        AuditEntry,
        ApiToken,
        Counter,
        Document,
        WorkflowDefinition,
        WorkflowVersion,
        Delegation,
        Notification,
        ImportBatch,
        ImportProblem,
        ImportMapping,
    ]
