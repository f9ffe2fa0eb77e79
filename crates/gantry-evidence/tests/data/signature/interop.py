"""Independent signers and verifiers for Gantry's signature tests.

Run by crates/gantry-evidence/tests/it/signature/interop.rs, with a scratch folder that
the Rust side fills or reads:

    interop.py sign DIR      make a P-256 key, a cosign signature and DSSE envelopes
                             (by hand with `cryptography`, and with `securesystemslib`)
    interop.py verify DIR    verify the cosign signature and DSSE envelope Rust made
    interop.py sigstore DIR  verify Rust-made Sigstore bundles with `sigstore`, offline,
                             against the test's own trusted root

Exit status 0 means every check passed; otherwise stderr says why. A missing Python
package is reported with the pip command that installs it.
"""

import base64
import json
import sys
from pathlib import Path


def need(package):
    sys.exit(
        f"the Python package `{package}` is missing: pip install {package} "
        "(the signature interop tests need cryptography, securesystemslib and sigstore)"
    )


try:
    from cryptography.exceptions import InvalidSignature
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec, ed25519
except ImportError:
    need("cryptography")


def pae(payload_type: str, payload: bytes) -> bytes:
    """DSSE v1 pre-authentication encoding, written from the specification."""
    kind = payload_type.encode()
    return b"DSSEv1 %d %s %d %s" % (len(kind), kind, len(payload), payload)


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def public_pem(key) -> str:
    return key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    ).decode()


def sign(folder: Path) -> None:
    digest = (folder / "digest.txt").read_text().strip()
    key = ec.generate_private_key(ec.SECP256R1())
    (folder / "python-p256.pem").write_text(public_pem(key))

    # A cosign simple-signing payload, signed as `cosign sign --key` does: ECDSA
    # P-256 over SHA-256 of the payload bytes, ASN.1 DER, base64.
    payload = json.dumps(
        {
            "critical": {
                "identity": {"docker-reference": "registry.example/acme/shop"},
                "image": {"docker-manifest-digest": digest},
                "type": "cosign container image signature",
            },
            "optional": {"signed-by": "python cryptography"},
        }
    ).encode()
    (folder / "cosign.payload").write_bytes(payload)
    signature = key.sign(payload, ec.ECDSA(hashes.SHA256()))
    (folder / "cosign.sig").write_text(b64(signature))

    # A DSSE envelope of an in-toto statement, by hand.
    statement = json.dumps(
        {
            "_type": "https://in-toto.io/Statement/v1",
            "subject": [{"name": "shop", "digest": {"sha256": digest.split(":", 1)[1]}}],
            "predicateType": "https://example.com/python",
            "predicate": {},
        }
    ).encode()
    payload_type = "application/vnd.in-toto+json"
    envelope = {
        "payloadType": payload_type,
        "payload": b64(statement),
        "signatures": [
            {"keyid": "python", "sig": b64(key.sign(pae(payload_type, statement), ec.ECDSA(hashes.SHA256())))}
        ],
    }
    (folder / "python.dsse.json").write_text(json.dumps(envelope))

    # An Ed25519 envelope, URL-safe base64 as DSSE allows.
    ed_key = ed25519.Ed25519PrivateKey.generate()
    (folder / "python-ed25519.pem").write_text(public_pem(ed_key))
    envelope = {
        "payloadType": "text/plain",
        "payload": base64.urlsafe_b64encode(b"hello from python").decode(),
        "signatures": [
            {"sig": base64.urlsafe_b64encode(ed_key.sign(pae("text/plain", b"hello from python"))).decode()}
        ],
    }
    (folder / "python-ed25519.dsse.json").write_text(json.dumps(envelope))

    # The same statement enveloped by securesystemslib, another DSSE implementation.
    try:
        from securesystemslib.dsse import Envelope
        from securesystemslib.signer import CryptoSigner
    except ImportError:
        need("securesystemslib")
    signer = CryptoSigner.generate_ecdsa()
    sslib_envelope = Envelope(payload=statement, payload_type=payload_type, signatures={})
    sslib_envelope.sign(signer)
    (folder / "sslib.dsse.json").write_text(json.dumps(sslib_envelope.to_dict()))
    (folder / "sslib-p256.pem").write_text(signer.public_key.keyval["public"])


def verify(folder: Path) -> None:
    key = serialization.load_pem_public_key((folder / "rust-p256.pem").read_bytes())
    payload = (folder / "cosign.payload").read_bytes()
    signature = base64.b64decode((folder / "cosign.sig").read_text())
    key.verify(signature, payload, ec.ECDSA(hashes.SHA256()))
    # The verifier must also say no: a changed payload fails.
    try:
        key.verify(signature, payload + b" ", ec.ECDSA(hashes.SHA256()))
    except InvalidSignature:
        pass
    else:
        sys.exit("cryptography accepted a signature over a changed payload")

    raw = json.loads((folder / "rust.dsse.json").read_text())
    statement = base64.b64decode(raw["payload"])
    for entry in raw["signatures"]:
        key.verify(
            base64.b64decode(entry["sig"]),
            pae(raw["payloadType"], statement),
            ec.ECDSA(hashes.SHA256()),
        )
    if json.loads(statement)["subject"][0]["digest"]["sha256"] != (folder / "digest.txt").read_text().strip().split(":")[1]:
        sys.exit("the Rust envelope's statement names another digest")

    try:
        from securesystemslib.dsse import Envelope
        from securesystemslib.signer import SSlibKey
    except ImportError:
        need("securesystemslib")
    sslib_key = SSlibKey.from_crypto(key, keyid=raw["signatures"][0]["keyid"])
    Envelope.from_dict(json.loads((folder / "rust.dsse.json").read_text())).verify([sslib_key], 1)

    ed_key = serialization.load_pem_public_key((folder / "rust-ed25519.pem").read_bytes())
    raw = json.loads((folder / "rust-ed25519.dsse.json").read_text())
    ed_key.verify(
        base64.b64decode(raw["signatures"][0]["sig"]),
        pae(raw["payloadType"], base64.b64decode(raw["payload"])),
    )
    print("verified")


def sigstore_verify(folder: Path) -> None:
    try:
        from sigstore.hashes import Hashed
        from sigstore.models import Bundle, TrustedRoot
        from sigstore.verify import Verifier, policy
        from sigstore_models.common.v1 import HashAlgorithm
    except ImportError:
        need("sigstore")
    root = TrustedRoot.from_file(str(folder / "trusted_root.json"))
    verifier = Verifier(trusted_root=root)
    identity = policy.Identity(
        identity=(folder / "identity.txt").read_text().strip(),
        issuer=(folder / "issuer.txt").read_text().strip(),
    )
    digest = (folder / "digest.txt").read_text().strip().split(":", 1)[1]
    hashed = Hashed(algorithm=HashAlgorithm.SHA2_256, digest=bytes.fromhex(digest))

    for name in ["message.bundle.json", "message-p384.bundle.json"]:
        bundle = Bundle.from_json((folder / name).read_text())
        verifier.verify_artifact(hashed, bundle, identity)

    bundle = Bundle.from_json((folder / "dsse.bundle.json").read_text())
    payload_type, payload = verifier.verify_dsse(bundle, identity)
    if payload_type != "application/vnd.in-toto+json":
        sys.exit(f"unexpected payload type {payload_type}")

    # And it says no to a bundle Rust refuses too: the signature by another key.
    from sigstore.errors import VerificationError

    bundle = Bundle.from_json((folder / "impostor.bundle.json").read_text())
    try:
        verifier.verify_artifact(hashed, bundle, identity)
    except VerificationError as error:
        print(f"impostor refused: {error}")
    else:
        sys.exit("sigstore accepted a signature by another key than the certificate's")
    print("verified")


def main() -> None:
    command, folder = sys.argv[1], Path(sys.argv[2])
    {"sign": sign, "verify": verify, "sigstore": sigstore_verify}[command](folder)


if __name__ == "__main__":
    main()
