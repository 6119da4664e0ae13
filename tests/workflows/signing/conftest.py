"""Fixtures for the signing core: a test PKI, images, a sample PDF, NSS trust, SoftHSM, CSC."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from pyhanko.sign.timestamps.dummy_client import DummyTimeStamper

from workflows.signing import demo_images
from workflows.signing.demo_pdf import make_sample_pdf
from workflows.signing.demo_pki import DemoPki, make_demo_pki
from workflows.signing.identity import Pkcs12Identity, load_pkcs12_identity

from .csc_server import CscState, dummy_timestamper, serve

PASSPHRASE = "mật khẩu thử"
SOFTHSM_LIB = "/usr/lib/softhsm/libsofthsm2.so"


@pytest.fixture(scope="session")
def pki() -> DemoPki:
    """Build the demo PKI once per session."""
    return make_demo_pki()


@dataclass(frozen=True)
class Images:
    """Demo appearance images (PNG bytes)."""

    signature: bytes
    initial: bytes
    seal: bytes


@pytest.fixture(scope="session")
def images() -> Images:
    """Draw the demo signature, initial and seal images."""
    return Images(
        demo_images.make_signature_image(),
        demo_images.make_initial_image(),
        demo_images.make_seal_image(),
    )


@pytest.fixture(scope="session")
def sample_pdf() -> bytes:
    """Return the one-page sample decision signed by the deputy."""
    return make_sample_pdf()


def _identity(pki: DemoPki, who: str) -> Pkcs12Identity:
    return load_pkcs12_identity(getattr(pki, who).pkcs12(PASSPHRASE.encode()), PASSPHRASE)


@pytest.fixture(scope="session")
def leader(pki: DemoPki) -> Pkcs12Identity:
    """Return the leader's PKCS#12 identity."""
    return _identity(pki, "leader")


@pytest.fixture(scope="session")
def deputy(pki: DemoPki) -> Pkcs12Identity:
    """Return the deputy director's PKCS#12 identity."""
    return _identity(pki, "deputy")


@pytest.fixture(scope="session")
def agency(pki: DemoPki) -> Pkcs12Identity:
    """Return the agency seal identity (used by the clerk)."""
    return _identity(pki, "seal")


@pytest.fixture(scope="session")
def ca_pem(pki: DemoPki) -> bytes:
    """Return the root CA certificate in PEM."""
    return pki.ca.cert_pem


@pytest.fixture(scope="session")
def nss_dir(pki: DemoPki, tmp_path_factory: pytest.TempPathFactory) -> str:
    """Create an NSS database that trusts the test CA, for pdfsig."""
    if shutil.which("certutil") is None or shutil.which("pdfsig") is None:
        pytest.fail("certutil (libnss3-tools) and pdfsig (poppler-utils) are required")
    directory = tmp_path_factory.mktemp("nss")
    ca_file = directory / "ca.pem"
    ca_file.write_bytes(pki.ca.cert_pem)
    db = f"sql:{directory}"
    subprocess.run(["certutil", "-N", "--empty-password", "-d", db], check=True)
    subprocess.run(
        ["certutil", "-A", "-n", "vanthu-test-ca", "-t", "CT,C,C", "-i", str(ca_file), "-d", db],
        check=True,
    )
    return db


PdfSig = Callable[[bytes], list[dict[str, str]]]


@pytest.fixture(scope="session")
def pdfsig(nss_dir: str, tmp_path_factory: pytest.TempPathFactory) -> PdfSig:
    """Return a function running poppler's pdfsig on PDF bytes, one dict per signature."""
    work = tmp_path_factory.mktemp("pdfsig")

    def run(pdf: bytes) -> list[dict[str, str]]:
        path = work / "doc.pdf"
        path.write_bytes(pdf)
        out = subprocess.run(
            ["pdfsig", "-nssdir", nss_dir, str(path)], capture_output=True, text=True, check=False
        ).stdout
        results: list[dict[str, str]] = []
        for line in out.splitlines():
            if re.match(r"^Signature #\d+:", line):
                results.append({})
            elif results and ":" in line:
                key, _, value = line.strip(" -").partition(": ")
                results[-1][key] = value
        return results

    return run


@pytest.fixture(scope="session")
def softhsm(pki: DemoPki, tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, str]]:
    """Create a SoftHSM2 token holding the leader's key and certificate."""
    if shutil.which("softhsm2-util") is None or not Path(SOFTHSM_LIB).exists():
        pytest.skip("softhsm2 is not installed")
    import pkcs11
    from pkcs11 import Attribute, CertificateType, ObjectClass

    base = tmp_path_factory.mktemp("softhsm")
    (base / "tokens").mkdir()
    conf = base / "softhsm2.conf"
    conf.write_text(
        f"directories.tokendir = {base / 'tokens'}\nobjectstore.backend = file\nlog.level = ERROR\n"
    )
    previous = os.environ.get("SOFTHSM2_CONF")
    os.environ["SOFTHSM2_CONF"] = str(conf)
    token, pin = "vanthu-test", "123456"
    key_file = base / "leader.pem"
    key_file.write_bytes(pki.leader.key_pem)
    util = ["softhsm2-util", "--module", SOFTHSM_LIB]
    subprocess.run(
        [*util, "--init-token", "--free", "--label", token, "--so-pin", "12345678", "--pin", pin],
        check=True,
        capture_output=True,
    )
    subprocess.run(
        [
            *util,
            "--import",
            str(key_file),
            "--token",
            token,
            "--label",
            "leader",
            "--id",
            "01",
            "--pin",
            pin,
        ],
        check=True,
        capture_output=True,
    )
    key_file.unlink()
    with pkcs11.lib(SOFTHSM_LIB).get_token(token_label=token).open(rw=True, user_pin=pin) as s:
        s.create_object(
            {
                Attribute.CLASS: ObjectClass.CERTIFICATE,
                Attribute.CERTIFICATE_TYPE: CertificateType.X_509,
                Attribute.TOKEN: True,
                Attribute.LABEL: "leader",
                Attribute.ID: b"\x01",
                Attribute.VALUE: pki.leader.cert_der,
                Attribute.SUBJECT: pki.leader.cert.subject.public_bytes(),
                Attribute.ISSUER: pki.leader.cert.issuer.public_bytes(),
            }
        )
    yield {"lib": SOFTHSM_LIB, "token": token, "pin": pin, "key_label": "leader"}
    if previous is None:
        os.environ.pop("SOFTHSM2_CONF", None)
    else:
        os.environ["SOFTHSM2_CONF"] = previous


@pytest.fixture(scope="session")
def csc_service(pki: DemoPki) -> Iterator[tuple[str, CscState]]:
    """Run the CSC test service and TSA on loopback for the session."""
    with serve(pki.leader, pki.tsa) as running:
        yield running


@pytest.fixture(scope="session")
def timestamper(pki: DemoPki) -> DummyTimeStamper:
    """Return pyHanko's in-process dummy RFC 3161 timestamper with the demo TSA."""
    return dummy_timestamper(pki.tsa)
