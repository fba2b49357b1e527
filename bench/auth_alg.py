"""Sign and verify cost of RS256, ES256 and EdDSA access tokens with joserfc.

Resource servers verify a token on every request; the auth service signs one per
login or refresh. Run: ``.venv/bin/python -m bench.auth_alg [rounds]``.
"""

from __future__ import annotations

import sys
import time
import uuid
import warnings
from collections.abc import Callable
from typing import Any

from joserfc import jwt
from joserfc.jwk import ECKey, OKPKey, RSAKey

CLAIMS: dict[str, Any] = {
    "iss": "http://localhost:8080",
    "aud": "quartet",
    "sub": str(uuid.uuid4()),
    "client_id": "quartet-web",
    "scope": "profile todos:read todos:write reports:read reports:write",
    "jti": uuid.uuid4().hex,
    "iat": int(time.time()),
    "exp": int(time.time()) + 900,
}


def per_op_us(fn: Callable[[], object], rounds: int) -> float:
    for _ in range(min(rounds, 200)):  # warm up
        fn()
    best = float("inf")
    for _ in range(5):  # best of five runs: the least disturbed by other processes
        start = time.perf_counter()
        for _ in range(rounds):
            fn()
        best = min(best, (time.perf_counter() - start) / rounds)
    return best * 1e6


def main(rounds: int) -> None:
    warnings.simplefilter("ignore")  # joserfc warns that "EdDSA" is deprecated (RFC 9864)
    keys: dict[str, RSAKey | ECKey | OKPKey] = {
        "RS256": RSAKey.generate_key(2048),
        "ES256": ECKey.generate_key("P-256"),
        "EdDSA": OKPKey.generate_key("Ed25519"),
        # RFC 9864's fully specified name for EdDSA over Ed25519 (same signature).
        "Ed25519": OKPKey.generate_key("Ed25519"),
    }
    print(f"{'alg':<8}{'sign µs':>10}{'verify µs':>11}{'verify/s':>10}{'token bytes':>13}")
    for alg, key in keys.items():
        header = {"alg": alg, "typ": "at+jwt", "kid": "bench"}
        token = jwt.encode(header, CLAIMS, key, algorithms=[alg])
        public = key.__class__.import_key(key.as_dict(private=False))
        sign = per_op_us(lambda: jwt.encode(header, CLAIMS, key, algorithms=[alg]), rounds)  # noqa: B023
        verify = per_op_us(lambda: jwt.decode(token, public, algorithms=[alg]), rounds)  # noqa: B023
        print(f"{alg:<8}{sign:>10.1f}{verify:>11.1f}{1e6 / verify:>10.0f}{len(token):>13}")


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 2000)
