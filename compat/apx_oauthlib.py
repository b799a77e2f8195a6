"""An APX client written with requests-oauthlib, run against gatehouse.

The token requests are the library's documented ones: the password grant
with LegacyApplicationClient and client_credentials with
BackendApplicationClient, both through OAuth2Session.fetch_token. The APX
protocol document's raw request (Basic client:secret, Username/Password in
the form) is sent with requests as well. Reads GATEHOUSE_URL, APX_CLIENT_ID,
APX_CLIENT_SECRET, APX_USERNAME, APX_PASSWORD, SPECIAL_CLIENT_ID and
SPECIAL_CLIENT_SECRET (a secret with characters that need escaping) from the
environment; exits non-zero with a message on the first mismatch.
"""
import os
import sys

# The test server is plain HTTP on loopback.
os.environ.setdefault("OAUTHLIB_INSECURE_TRANSPORT", "1")

import requests  # noqa: E402
from oauthlib.oauth2 import BackendApplicationClient, LegacyApplicationClient  # noqa: E402
from oauthlib.oauth2.rfc6749.errors import OAuth2Error  # noqa: E402
from requests_oauthlib import OAuth2Session  # noqa: E402


def check(cond: bool, what: str, got) -> None:
    if not cond:
        print(f"MISMATCH {what}: {got!r}", file=sys.stderr)
        sys.exit(1)


def password_token(token_url: str, client_id: str, client_secret: str, username: str, password: str) -> dict:
    """The password grant as the requests-oauthlib documentation shows it."""
    oauth = OAuth2Session(client=LegacyApplicationClient(client_id=client_id))
    return oauth.fetch_token(token_url=token_url, username=username, password=password,
                             client_id=client_id, client_secret=client_secret)


def client_token(token_url: str, client_id: str, client_secret: str) -> dict:
    """The client_credentials grant as the requests-oauthlib documentation shows it."""
    oauth = OAuth2Session(client=BackendApplicationClient(client_id=client_id))
    return oauth.fetch_token(token_url=token_url, client_id=client_id, client_secret=client_secret)


def main() -> None:
    base = os.environ["GATEHOUSE_URL"]
    token_url = f"{base}/oauth/token"
    cid, secret = os.environ["APX_CLIENT_ID"], os.environ["APX_CLIENT_SECRET"]
    user, pw = os.environ["APX_USERNAME"], os.environ["APX_PASSWORD"]
    special_id, special_secret = os.environ["SPECIAL_CLIENT_ID"], os.environ["SPECIAL_CLIENT_SECRET"]

    t = password_token(token_url, cid, secret, user, pw)
    check(t["token_type"].lower() == "bearer" and t["scope"] == ["access"] and t["expires_in"] > 0
          and t["access_token"].count(".") == 2 and "refresh_token" not in t, "password token", t)

    # requests sends Basic credentials without form-encoding them.
    t = password_token(token_url, special_id, special_secret, user, pw)
    check(t["access_token"].count(".") == 2, "password token, special secret", t)

    t = client_token(token_url, cid, secret)
    check(t["token_type"].lower() == "bearer" and t["scope"] == ["access"] and t["access_token"].count(".") == 2,
          "client token", t)
    t = client_token(token_url, special_id, special_secret)
    check(t["access_token"].count(".") == 2, "client token, special secret", t)

    # The token works where bearer tokens are checked: introspection says active.
    r = requests.post(f"{base}/oauth/introspect", data={"token": t["access_token"]}, auth=(cid, secret))
    check(r.status_code == 200 and r.json()["active"] is True, "introspection", r.text)

    # Errors surface as oauthlib errors carrying the OAuth error code.
    for what, args, code in (
        ("wrong password", (cid, secret, user, "wrong"), "invalid_grant"),
        ("wrong secret", (cid, secret + "x", user, pw), "invalid_client"),
    ):
        try:
            password_token(token_url, *args)
        except OAuth2Error as e:
            check(e.error == code, what, e.error)
        else:
            check(False, what, "no error")

    # The APX document's request, exactly.
    r = requests.post(token_url, auth=(cid, secret),
                      headers={"Content-Type": "application/x-www-form-urlencoded"},
                      data={"Username": user, "Password": pw, "grant_type": "password"})
    check(r.status_code == 200, "APX request status", r.text)
    body = r.json()
    check(sorted(body) == ["access_token", "expires_in", "scope", "token_type"] and body["scope"] == "access",
          "APX response", body)
    r = requests.post(token_url, auth=(cid, secret),
                      data={"Username": user, "Password": "wrong", "grant_type": "password"})
    check(r.status_code == 401 and r.json()["error"] == "invalid_grant", "APX wrong password", r.text)
    print("ok")


if __name__ == "__main__":
    main()
