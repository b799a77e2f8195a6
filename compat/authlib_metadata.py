"""Strict validators against gatehouse's OAuth2 identity, with Authlib.

Authlib's AuthorizationServerMetadata.validate() checks the RFC 8414
metadata member by member (an https issuer, a non-empty
response_types_supported, https endpoints, known auth methods). A
resource server that discovers the issuer from that metadata then checks
an access token from /oauth/token as go-oidc or Spring Security do: the
signature with a key of the metadata's jwks_uri, and iss equal to the
metadata's issuer. Reads GATEHOUSE_URL (where the test server listens),
PUBLIC_URL (what it calls itself), CLIENT_ID and CLIENT_SECRET from the
environment; exits non-zero with a message on the first mismatch.
"""
import os
import sys
import time
from urllib.parse import urlsplit

import requests
from authlib.jose import JsonWebKey, jwt
from authlib.oauth2.rfc8414 import AuthorizationServerMetadata


def check(cond: bool, what: str, got) -> None:
    if not cond:
        print(f"MISMATCH {what}: {got!r}", file=sys.stderr)
        sys.exit(1)


def local(url: str, base: str, public: str) -> str:
    """The metadata names the public URL; the test reaches the server here."""
    check(url.startswith(public + "/"), "endpoint under the public URL", url)
    return base + url[len(public):]


def main() -> None:
    base = os.environ["GATEHOUSE_URL"]
    public = os.environ["PUBLIC_URL"]

    r = requests.get(base + "/.well-known/oauth-authorization-server", timeout=10)
    check(r.status_code == 200, "metadata status", r.status_code)
    md = r.json()
    AuthorizationServerMetadata(md).validate()
    check(md["issuer"] == public, "issuer", md["issuer"])
    check(md["response_types_supported"], "response_types_supported", md["response_types_supported"])

    # The value gatehouse used to publish is one Authlib refuses.
    old = dict(md, response_types_supported=[])
    try:
        AuthorizationServerMetadata(old).validate()
    except ValueError:
        pass
    else:
        check(False, "Authlib accepted an empty response_types_supported", old)

    r = requests.post(local(md["token_endpoint"], base, public), data={"grant_type": "client_credentials"},
                      auth=(os.environ["CLIENT_ID"], os.environ["CLIENT_SECRET"]), timeout=10)
    check(r.status_code == 200, "token status", (r.status_code, r.text))
    access = r.json()["access_token"]

    r = requests.get(local(md["jwks_uri"], base, public), timeout=10)
    check(r.status_code == 200, "jwks status", r.status_code)
    keys = JsonWebKey.import_key_set(r.json())
    claims = jwt.decode(access, keys, claims_options={"iss": {"essential": True, "value": md["issuer"]},
                                                      "exp": {"essential": True}})
    claims.validate(now=int(time.time()))
    check(claims.header.get("alg") in ("ES256", "RS256", "EdDSA"), "asymmetric alg", claims.header.get("alg"))
    check(urlsplit(md["issuer"]).scheme == "https", "https issuer", md["issuer"])
    print("metadata valid; token verified with the JWKS, iss", claims["iss"], "alg", claims.header["alg"])


if __name__ == "__main__":
    main()
