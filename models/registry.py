"""The list of top-level models, for index creation and test cleanup."""

from __future__ import annotations

import importlib
import pkgutil

from mongoengine import Document


def all_models() -> list[type[Document]]:
    """Return every top-level Document class of the application (every models.* module)."""
    from mongoengine.base.common import _document_registry

    import models

    for info in pkgutil.iter_modules(models.__path__):
        importlib.import_module(f"models.{info.name}")
    return [
        cls
        for cls in _document_registry.values()
        if issubclass(cls, Document)
        and not cls._meta.get("abstract")
        and cls.__module__.startswith("models.")
    ]
