#!/usr/bin/env python3
"""Token server for the token-auth OCI registry in castoff's tests (distribution's token spec).

Started by `cargo xtask test` (xtask/src/harness/servers.rs). It issues ES256-signed JWTs that
docker-registry 2.8 verifies against `--cert` (its `rootcertbundle`), so castoff's registry
client is tested against the real Bearer-token flow:

* `GET /token?service=S&scope=repository:team/app:pull,push` (scope may repeat or hold several
  space-separated scopes), credentials in `Authorization: Basic`:
  right password -> every requested action; wrong -> 401 JSON error; none -> a valid token that
  grants nothing (the registry then answers `denied`, like a real anonymous pull of a private repo).
* `POST /token` with the OAuth2 form `grant_type=password&username=&password=&service=&scope=`.
* Lifetime: `--lifetime SECONDS` (default 300); a request may ask for a shorter one with the
  non-standard `expires_in=SECONDS` query/form parameter, so tests can watch tokens expire.
  (docker-registry 2.8 adds 60 s of leeway to `exp`, so it rejects a token ~60 s after that.)

Passwords are checked against a bcrypt htpasswd file (the registry's own), never logged.
"""

import argparse
import base64
import binascii
import datetime
import hashlib
import json
import sys
import time
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

import bcrypt
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def libtrust_key_id(public_key) -> str:
    """distribution's `kid`: base32 of the first 240 bits of sha256(DER SPKI), in 4-char groups."""
    der = public_key.public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    encoded = base64.b32encode(hashlib.sha256(der).digest()[:30]).decode("ascii")
    return ":".join(encoded[i : i + 4] for i in range(0, len(encoded), 4))


class Issuer:
    def __init__(self, key_path, cert_path, issuer, lifetime, users):
        with open(key_path, "rb") as f:
            self.key = serialization.load_pem_private_key(f.read(), password=None)
        with open(cert_path, "rb") as f:
            cert = x509.load_pem_x509_certificate(f.read())
        self.header = {
            "typ": "JWT",
            "alg": "ES256",
            # Both, so either verification path of distribution is exercised by clients.
            "kid": libtrust_key_id(cert.public_key()),
            "x5c": [base64.b64encode(cert.public_bytes(serialization.Encoding.DER)).decode("ascii")],
        }
        self.issuer = issuer
        self.lifetime = lifetime
        self.users = users

    def check(self, user, password):
        stored = self.users.get(user)
        return stored is not None and bcrypt.checkpw(password.encode(), stored)

    def sign(self, subject, service, access, lifetime):
        now = int(time.time())
        claims = {
            "iss": self.issuer,
            "sub": subject,
            "aud": service,
            "exp": now + lifetime,
            "nbf": now - 10,
            "iat": now,
            "jti": uuid.uuid4().hex,
            "access": access,
        }
        signing_input = (
            b64url(json.dumps(self.header, separators=(",", ":")).encode())
            + "."
            + b64url(json.dumps(claims, separators=(",", ":")).encode())
        )
        der = self.key.sign(signing_input.encode("ascii"), ec.ECDSA(hashes.SHA256()))
        r, s = decode_dss_signature(der)
        # JWS wants raw r||s (32 bytes each), not the DER that cryptography returns.
        signature = r.to_bytes(32, "big") + s.to_bytes(32, "big")
        return signing_input + "." + b64url(signature)


def parse_scopes(values):
    access = []
    for value in values:
        for scope in value.split():
            # type:name:actions -- the name itself may contain ':' (a registry with a port).
            if scope.count(":") < 2:
                continue
            kind, rest = scope.split(":", 1)
            name, actions = rest.rsplit(":", 1)
            access.append(
                {"type": kind, "name": name, "actions": [a for a in actions.split(",") if a]}
            )
    return access


def load_htpasswd(path):
    users = {}
    with open(path, "rb") as f:
        for line in f:
            line = line.strip()
            if line and b":" in line:
                user, hashed = line.split(b":", 1)
                users[user.decode()] = hashed
    return users


class Handler(BaseHTTPRequestHandler):
    issuer: Issuer = None  # set in main()
    server_version = "castoff-test-token-server"

    def log_message(self, fmt, *args):  # quiet: the harness keeps the log for failures only
        pass

    def do_GET(self):
        parsed = urlsplit(self.path)
        if parsed.path != "/token":
            return self.reply(404, {"errors": [{"code": "NOT_FOUND", "message": "try /token"}]})
        query = parse_qs(parsed.query)
        user, password = None, None
        header = self.headers.get("Authorization", "")
        if header.startswith("Basic "):
            try:
                user, _, password = base64.b64decode(header[6:]).decode().partition(":")
            except (binascii.Error, UnicodeDecodeError):
                return self.reply(400, {"errors": [{"code": "BAD_REQUEST", "message": "bad Basic header"}]})
        self.issue(query, user, password, oauth=False)

    def do_POST(self):
        if urlsplit(self.path).path != "/token":
            return self.reply(404, {"errors": [{"code": "NOT_FOUND", "message": "try /token"}]})
        length = int(self.headers.get("Content-Length") or 0)
        form = parse_qs(self.rfile.read(length).decode())
        if form.get("grant_type", [""])[0] != "password":
            return self.reply(400, {"error": "unsupported_grant_type"})
        self.issue(form, form.get("username", [""])[0], form.get("password", [""])[0], oauth=True)

    def issue(self, params, user, password, oauth):
        service = params.get("service", [""])[0]
        access = parse_scopes(params.get("scope", []))
        if user is None:
            subject, access = "", []
        elif self.issuer.check(user, password):
            subject = user
        else:
            return self.reply(
                401,
                {"errors": [{"code": "UNAUTHORIZED", "message": "invalid username/password"}]},
            )
        lifetime = self.issuer.lifetime
        try:
            lifetime = max(1, min(lifetime, int(params.get("expires_in", [lifetime])[0])))
        except ValueError:
            pass
        token = self.issuer.sign(subject, service, access, lifetime)
        issued_at = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
        body = {"access_token": token, "expires_in": lifetime, "issued_at": issued_at}
        if not oauth:
            body["token"] = token
        self.reply(200, body)

    def reply(self, status, body):
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--key", required=True, help="PEM EC P-256 private key")
    parser.add_argument("--cert", required=True, help="PEM certificate of --key (registry rootcertbundle)")
    parser.add_argument("--htpasswd", required=True, help="bcrypt htpasswd file")
    parser.add_argument("--issuer", default="test-token-issuer")
    parser.add_argument("--lifetime", type=int, default=300, help="token lifetime in seconds")
    args = parser.parse_args()
    Handler.issuer = Issuer(args.key, args.cert, args.issuer, args.lifetime, load_htpasswd(args.htpasswd))
    server = ThreadingHTTPServer((args.host, args.port), Handler)
    print(f"token server listening on {args.host}:{args.port}", file=sys.stderr, flush=True)
    server.serve_forever()


if __name__ == "__main__":
    main()
