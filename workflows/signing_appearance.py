"""What a signature shows and where it goes: the signature block (KT./TUQ.), images, placement."""

from __future__ import annotations

import functools
import hashlib
import logging
from dataclasses import dataclass
from typing import Any

from models.document import Document
from models.organization import Agency, Position
from models.signature import SignatureRecord, SigningIdentity
from models.user import User
from workflows.rules import Acting
from workflows.signature import active_steps
from workflows.signing import (
    Appearance,
    Box,
    NearText,
    OverField,
    PageCorner,
    Placement,
    PlacementError,
    initial_appearance,
    leader_appearance,
    seal_appearance,
)
from workflows.signing.placement import resolve as resolve_placement
from workflows.signing.placement import signature_widgets

log = logging.getLogger(__name__)

DELEGATION_PREFIX = {"deputy": "KT.", "delegation": "TUQ."}


@dataclass(frozen=True)
class SignatureBlock:
    """What the leader's signature shows (Decree 30): authority line, title, name."""

    prefix: str  # "", "KT.", "TUQ.", "TL." ...
    authority: str | None  # "KT. GIÁM ĐỐC"
    title: str | None  # "PHÓ GIÁM ĐỐC"
    name: str


def title_of(user: User) -> str:
    """Return the user's position title in capitals, as the signature block prints it."""
    return user.position.name.upper() if user.position else ""


def head_title() -> str:
    """Return the agency head's title in capitals (the "KT. GIÁM ĐỐC" line of a block)."""
    head = Position.objects(level="agency_head").order_by("order").first()
    return head.name.upper() if head else "THỦ TRƯỞNG CƠ QUAN"


def signature_block(doc: Document, acting: Acting) -> SignatureBlock:
    """Return the signature block: KT./TUQ. and the principal's title when acting for them."""
    actor = acting.actor
    if acting.on_behalf:
        kind = acting.delegation.kind if acting.delegation is not None else "delegation"
        prefix = DELEGATION_PREFIX.get(kind, "TUQ.")
        return SignatureBlock(
            prefix,
            f"{prefix} {title_of(acting.principal)}".strip(),
            title_of(actor) or None,
            actor.full_name,
        )
    prefix = doc.signer_authority or ""
    named = doc.signer is not None and doc.signer.pk == actor.pk
    title = (doc.signer_title if named and doc.signer_title else title_of(actor)).upper()
    name = doc.signer_name if named and doc.signer_name else actor.full_name
    authority = f"{prefix} {head_title()}" if prefix else None
    return SignatureBlock(prefix, authority, title or None, name)


@functools.lru_cache(maxsize=64)
def _generated_image(kind: str, seed: int, agency: str = "") -> bytes:
    from workflows.signing import demo_images

    if kind == "initial":
        return demo_images.make_initial_image(seed)
    if kind == "seal":
        return demo_images.make_seal_image(agency or "CƠ QUAN")
    return demo_images.make_signature_image(seed)


def _seed_of(user: User) -> int:
    return int(hashlib.sha256(str(user.pk).encode()).hexdigest()[:6], 16) % 997 + 1


def _stored_image(proxy: Any) -> bytes | None:
    if not proxy:
        return None
    try:
        data = proxy.read()
    except Exception:
        log.warning("stored signature image unreadable")
        return None
    return bytes(data) if data else None


def _image_for(kind: str, actor: User, identity: SigningIdentity) -> bytes:
    if kind == "seal":
        agency = Agency.current()
        return _stored_image(identity.seal_image) or _generated_image(
            "seal", 0, agency.name.upper() if agency else ""
        )
    proxy = actor.initial_image if kind == "initial" else actor.signature_image
    return _stored_image(proxy) or _generated_image(kind, _seed_of(actor))


def _step_placement(doc: Document, actor: User) -> Placement | None:
    for step in active_steps(doc, actor):
        position = dict(step.position or {})
        if position.get("search"):
            return NearText(str(position["search"]))
        if all(k in position for k in ("x", "y", "w", "h")):
            x, y = float(position["x"]), float(position["y"])
            return Box(
                int(position.get("page", -1)),
                x,
                y,
                x + float(position["w"]),
                y + float(position["h"]),
            )
    return None


def _near(reader: Any, data: bytes, text: str, **where: Any) -> Box | None:
    if not text:
        return None
    try:
        spot = resolve_placement(NearText(text, **where), reader, data)
    except PlacementError:
        return None
    return Box(spot.page, *spot.rect)


def _leader_field(doc: Document, widgets: list[tuple[str, int, Any, bool]]) -> str | None:
    signed = {name for name, _, _, is_signed in widgets if is_signed}
    for found in SignatureRecord.objects(document=doc, kind="sign", status="done").order_by(
        "-signed_at"
    ):
        if found.field_name in signed:
            return str(found.field_name)
    return None


def visual_for(
    doc: Document,
    kind: str,
    acting: Acting,
    identity: SigningIdentity,
    reader: Any,
    data: bytes,
) -> tuple[Appearance, Placement | None]:
    """Choose what the signature shows and where it goes."""
    actor = acting.actor
    if kind == "initial":
        return initial_appearance(_image_for("initial", actor, identity)), _step_placement(
            doc, actor
        )
    if kind == "seal":
        field_name = _leader_field(doc, signature_widgets(reader))
        return seal_appearance(_image_for("seal", actor, identity)), OverField(field_name)
    block = signature_block(doc, acting)
    image = _image_for("sign", actor, identity)
    full = leader_appearance(image, authority=block.authority, title=block.title, name=block.name)
    placement = _step_placement(doc, actor)
    if placement is not None:
        return full, placement
    printed = _near(reader, data, block.name)
    if printed is not None:
        # the drafter printed the block: the handwritten image goes between title and name
        return leader_appearance(image), printed
    if acting.on_behalf:
        # a draft prepared for the principal: the full KT./TUQ. block goes under their name
        below = _near(reader, data, acting.principal.full_name, where="below", height=120.0)
        if below is not None:
            return full, below
    return full, PageCorner("bottom-right", page=-1, width=200, height=120, margin=48)
