"""`flask --app app signing ...`: verify a PDF, seed the demo, trust a CA, store a key."""

from __future__ import annotations

import json

from flask import Flask

from models.user import User
from workflows.errors import DomainError
from workflows.signing import SigningError, verify_pdf
from workflows.signing_demo import seed_demo_signing
from workflows.signing_identity import create_pkcs12_identity
from workflows.signing_verify import add_trust_root, describe, trust_roots_der


def register_signing_cli(app: Flask) -> None:
    """Register `flask signing verify|seed-demo|add-trust-root|add-identity`."""
    import click
    from flask.cli import AppGroup

    group = AppGroup("signing", help="Ký số: kiểm tra chữ ký, chứng thư số.")

    @group.command("verify")
    @click.argument("pdf", type=click.Path(exists=True, dir_okay=False))
    @click.option("--json", "as_json", is_flag=True, help="Print JSON.")
    @click.option(
        "--trust",
        multiple=True,
        type=click.Path(exists=True, dir_okay=False),
        help="Extra trusted CA certificate (PEM/DER); repeatable.",
    )
    def verify_command(pdf: str, as_json: bool, trust: tuple[str, ...]) -> None:
        """Verify every signature of a PDF; exit 1 if one is broken or invalid."""
        with open(pdf, "rb") as handle:
            data = handle.read()
        roots = trust_roots_der()
        for path in trust:
            with open(path, "rb") as handle:
                roots.append(handle.read())
        try:
            results = describe(verify_pdf(data, roots))
        except SigningError as exc:
            if as_json:
                click.echo(json.dumps({"error": exc.message}, ensure_ascii=False))
            else:
                click.echo(exc.message, err=True)
            raise SystemExit(2) from exc
        if as_json:
            click.echo(json.dumps(results, ensure_ascii=False, indent=2))
        else:
            if not results:
                click.echo("Tệp không có chữ ký số.")
            for item in results:
                click.echo(
                    f"{item['field']}: {item['signer']} lúc {item['signing_time']} – "
                    f"{item['summary']} (PAdES {item['pades_level'] or '-'})"
                )
        raise SystemExit(0 if all(r["ok"] for r in results) else 1)

    @group.command("seed-demo")
    def seed_demo_command() -> None:
        """Create the demo PKI and signing identities."""
        seed_demo_signing()
        click.echo("demo signing ready")

    @group.command("add-trust-root")
    @click.argument("cert", type=click.Path(exists=True, dir_okay=False))
    @click.option("--name", default=None)
    def add_trust_root_command(cert: str, name: str | None) -> None:
        """Trust a CA certificate when verifying signatures."""
        with open(cert, "rb") as handle:
            root = add_trust_root(handle.read(), name)
        click.echo(f"trusted {root.subject} ({root.sha256[:16]})")

    @group.command("add-identity")
    @click.argument("p12", type=click.Path(exists=True, dir_okay=False))
    @click.option("--user", "username", default=None, help="Owner (username).")
    @click.option("--agency-seal", is_flag=True, help="The agency's own signature (seal).")
    @click.option("--passphrase", prompt=True, hide_input=True)
    @click.option("--pin", default="", help="Signing PIN (6-12 digits); prompts when empty.")
    def add_identity_command(
        p12: str, username: str | None, agency_seal: bool, passphrase: str, pin: str
    ) -> None:
        """Store a PKCS#12 identity, encrypted with MASTER_KEY."""
        owner = User.objects(username=username).first() if username else None
        if username and owner is None:
            raise click.ClickException(f"unknown user {username}")
        if not pin:
            pin = click.prompt(
                "Signing PIN (empty: TOTP only)", default="", hide_input=True, show_default=False
            )
        with open(p12, "rb") as handle:
            data = handle.read()
        try:
            identity = create_pkcs12_identity(
                data, passphrase, owner=owner, agency_seal=agency_seal, pin=pin or None
            )
        except DomainError as exc:
            raise click.ClickException(exc.message) from exc
        click.echo(f"stored {identity.label} ({identity.cert_sha256[:16]})")

    app.cli.add_command(group)
