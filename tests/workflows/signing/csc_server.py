"""A CSC API v2 test server on loopback, backed by a software key, and a local RFC 3161 TSA.

Credential ids pick the behaviour of the user's phone:
  <name>-immediate  signHash answers synchronously,
  <name>-slow       pending for ``slow_seconds``, then signed,
  <name>-refuse     pending briefly, then the user refuses,
  <name>-never      pending forever (the client times out).
"""

from __future__ import annotations

import base64
import json
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from asn1crypto import keys, tsp
from asn1crypto import x509 as asn1_x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding
from cryptography.hazmat.primitives.asymmetric.utils import Prehashed
from cryptography.hazmat.primitives.serialization import Encoding
from pyhanko.sign.timestamps.dummy_client import DummyTimeStamper
from pyhanko_certvalidator.registry import SimpleCertificateStore

from workflows.signing.demo_pki import TestIdentity

TOKEN = "test-access-token"
MODES = ("immediate", "slow", "refuse", "never")
HASH_OIDS = {"2.16.840.1.101.3.4.2.1": hashes.SHA256}


@dataclass
class CscState:
    """Server state shared with the tests (requests seen, labels shown to the user)."""

    identity: TestIdentity
    slow_seconds: float = 0.6
    refuse_after: float = 0.2
    labels: list[str] = field(default_factory=list)
    calls: list[str] = field(default_factory=list)
    pending: dict[str, dict[str, Any]] = field(default_factory=dict)
    sads: dict[str, dict[str, Any]] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)


class _Handler(BaseHTTPRequestHandler):
    server: _Server

    def log_message(self, format: str, *args: Any) -> None:
        return

    def _send(self, status: int, body: dict[str, Any]) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length", 0))
        raw = self.rfile.read(length)
        if self.path.rstrip("/").endswith("/tsa"):
            self._timestamp(raw)
            return
        if self.headers.get("Authorization") != f"Bearer {TOKEN}":
            self._send(401, {"error": "invalid_token", "error_description": "bad token"})
            return
        endpoint = self.path.split("/csc/v2/", 1)[-1]
        state = self.server.state
        with state.lock:
            state.calls.append(endpoint)
        body = json.loads(raw or b"{}")
        handler = {
            "info": self._info,
            "credentials/list": self._list,
            "credentials/info": self._cred_info,
            "credentials/authorize": self._authorize,
            "signatures/signHash": self._sign_hash,
            "signatures/signPolling": self._poll,
        }.get(endpoint)
        if handler is None:
            self._send(404, {"error": "invalid_request", "error_description": "unknown"})
            return
        handler(body)

    def _mode(self, credential_id: str) -> str | None:
        mode = credential_id.rsplit("-", 1)[-1]
        return mode if mode in MODES else None

    def _info(self, body: dict[str, Any]) -> None:
        self._send(
            200,
            {
                "specs": "2.0.0.2",
                "name": "VanThu test RSSP",
                "authType": ["oauth2code"],
                "methods": [
                    "credentials/list",
                    "credentials/info",
                    "credentials/authorize",
                    "signatures/signHash",
                    "signatures/signPolling",
                ],
            },
        )

    def _list(self, body: dict[str, Any]) -> None:
        self._send(200, {"credentialIDs": [f"leader-{m}" for m in MODES]})

    def _cred_info(self, body: dict[str, Any]) -> None:
        if self._mode(body.get("credentialID", "")) is None:
            self._send(400, {"error": "invalid_request", "error_description": "credentialID"})
            return
        ident = self.server.state.identity
        chain = [ident.cert_der] + [c.public_bytes(Encoding.DER) for c in ident.chain]
        self._send(
            200,
            {
                "key": {"status": "enabled", "algo": ["1.2.840.113549.1.1.1"], "len": 2048},
                "cert": {
                    "status": "valid",
                    "certificates": [base64.b64encode(c).decode() for c in chain],
                },
                "authMode": "explicit",
                "SCAL": "2",
                "multisign": 50,
            },
        )

    def _authorize(self, body: dict[str, Any]) -> None:
        sad = uuid.uuid4().hex
        state = self.server.state
        with state.lock:
            state.sads[sad] = {"credential": body["credentialID"], "hashes": body["hashes"]}
            state.labels.append(body.get("description", ""))
        self._send(200, {"SAD": sad, "expiresIn": 300})

    def _signatures(self, hashes_b64: list[str], algo_oid: str) -> list[str]:
        key = self.server.state.identity.key
        out = []
        for h in hashes_b64:
            digest = base64.b64decode(h)
            signature = key.sign(digest, padding.PKCS1v15(), Prehashed(HASH_OIDS[algo_oid]()))
            out.append(base64.b64encode(signature).decode())
        return out

    def _sign_hash(self, body: dict[str, Any]) -> None:
        state = self.server.state
        with state.lock:
            grant = state.sads.pop(body.get("SAD", ""), None)
        if grant is None or grant["credential"] != body.get("credentialID"):
            self._send(400, {"error": "invalid_request", "error_description": "invalid SAD"})
            return
        if grant["hashes"] != body.get("hashes"):
            self._send(400, {"error": "invalid_request", "error_description": "hash mismatch"})
            return
        mode = self._mode(body["credentialID"])
        signatures = self._signatures(body["hashes"], body["hashAlgorithmOID"])
        if mode == "immediate" or body.get("operationMode", "S") != "A":
            self._send(200, {"signatures": signatures})
            return
        response_id = uuid.uuid4().hex
        with state.lock:
            state.pending[response_id] = {
                "mode": mode,
                "since": time.monotonic(),
                "signatures": signatures,
            }
        self._send(200, {"responseID": response_id})

    def _poll(self, body: dict[str, Any]) -> None:
        state = self.server.state
        with state.lock:
            item = state.pending.get(body.get("responseID", ""))
        if item is None:
            self._send(400, {"error": "invalid_request", "error_description": "responseID"})
            return
        waited = time.monotonic() - item["since"]
        if item["mode"] == "slow" and waited >= state.slow_seconds:
            self._send(200, {"signatures": item["signatures"]})
        elif item["mode"] == "refuse" and waited >= state.refuse_after:
            self._send(400, {"error": "access_denied", "error_description": "user refused"})
        else:
            self._send(
                400, {"error": "authorization_pending", "error_description": "waiting for the user"}
            )

    def _timestamp(self, raw: bytes) -> None:
        request = tsp.TimeStampReq.load(raw)
        response = self.server.tsa.request_tsa_response(request).dump()
        self.send_response(200)
        self.send_header("Content-Type", "application/timestamp-reply")
        self.send_header("Content-Length", str(len(response)))
        self.end_headers()
        self.wfile.write(response)


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    state: CscState
    tsa: DummyTimeStamper


def dummy_timestamper(tsa: TestIdentity) -> DummyTimeStamper:
    """Return pyHanko's in-process RFC 3161 timestamper with the demo TSA key."""
    key_der = tsa.key.private_bytes(
        serialization.Encoding.DER,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    chain = [asn1_x509.Certificate.load(c.public_bytes(Encoding.DER)) for c in tsa.chain]
    return DummyTimeStamper(
        tsa_cert=asn1_x509.Certificate.load(tsa.cert_der),
        tsa_key=keys.PrivateKeyInfo.load(key_der),
        certs_to_embed=SimpleCertificateStore.from_certs(chain),
    )


@contextmanager
def serve(identity: TestIdentity, tsa: TestIdentity) -> Iterator[tuple[str, CscState]]:
    """Run the CSC API (at <base>/csc/v2) and a TSA (at <base>/tsa) on a loopback port."""
    server = _Server(("127.0.0.1", 0), _Handler)
    server.state = CscState(identity)
    server.tsa = dummy_timestamper(tsa)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", server.state
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)
