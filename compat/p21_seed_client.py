"""The client code of the P21 authentication guide, run against gatehouse.

The request functions are those of the guide, unchanged; the checks after
them assert the documented response shapes. Reads GATEHOUSE_URL,
P21_USERNAME, P21_PASSWORD, P21_CONSUMER_KEY, P21_CONSUMER_UID and
EXPECT_XML ("1" when the server answers XML) from the environment; exits
non-zero with a message on the first mismatch.
"""
import base64
import json
import os
import re
import sys

import httpx


def get_token_v2(base_url: str, username: str, password: str) -> dict:
    """Get token using V2 endpoint (recommended)."""
    response = httpx.post(
        f"{base_url}/api/security/token/v2",
        json={"username": username, "password": password},
        headers={"Accept": "application/json"}
    )
    response.raise_for_status()
    return response.json()


def get_token_v1(base_url: str, username: str, password: str) -> dict:
    """Get token using V1 endpoint (legacy)."""
    response = httpx.post(
        f"{base_url}/api/security/token",
        headers={
            "username": username,
            "password": password,
            "Content-Type": "application/json",
            "Accept": "application/json"
        },
        content=""
    )
    response.raise_for_status()
    return response.json()


def get_consumer_token(
    base_url: str,
    consumer_key: str,
    username: str = "",
) -> dict:
    """Get token using consumer key authentication."""
    payload = {
        "GrantType": "client_credentials",
        "ClientSecret": consumer_key,
    }
    if username:
        payload["username"] = username

    response = httpx.post(
        f"{base_url}/api/security/token/v2",
        json=payload,
        headers={
            "Accept": "application/json",
            "Content-Type": "application/json",
        },
    )
    response.raise_for_status()
    return response.json()


def parse_token_response(response: httpx.Response) -> dict:
    """Parse token response, handling both JSON and XML formats."""
    # Try JSON first
    try:
        data = response.json()
        if isinstance(data, dict) and "AccessToken" in data:
            return data
    except (ValueError, KeyError):
        pass

    # Fall back to XML regex parsing
    text = response.text
    result = {}
    for field in ("AccessToken", "TokenType", "ExpiresIn",
                  "ExpiresInSeconds", "RefreshToken"):
        match = re.search(rf"<{field}>([^<]*)</{field}>", text)
        if match and match.group(1):
            result[field] = match.group(1)

    if "AccessToken" not in result:
        raise ValueError(f"Could not parse token from response: {text[:500]}")

    return result


def claims(jwt: str) -> dict:
    payload = jwt.split(".")[1]
    payload += "=" * (-len(payload) % 4)
    return json.loads(base64.urlsafe_b64decode(payload))


def check(cond: bool, what: str, got) -> None:
    if not cond:
        print(f"MISMATCH {what}: {got!r}", file=sys.stderr)
        sys.exit(1)


def main() -> None:
    base = os.environ["GATEHOUSE_URL"]
    user = os.environ["P21_USERNAME"]
    pw = os.environ["P21_PASSWORD"]
    key = os.environ["P21_CONSUMER_KEY"]
    uid = os.environ["P21_CONSUMER_UID"]

    if os.environ.get("EXPECT_XML") == "1":
        # The guide's dual-format parser against an XML-answering server.
        r = httpx.post(f"{base}/api/security/token/v2",
                       json={"username": user, "password": pw},
                       headers={"Accept": "application/json"})
        r.raise_for_status()
        check(r.headers["content-type"].startswith("application/xml"), "content type", r.headers["content-type"])
        t = parse_token_response(r)
        check(set(t) == {"AccessToken", "TokenType", "ExpiresIn", "RefreshToken"}, "XML user fields", sorted(t))
        check(t["ExpiresIn"] == "86400" and t["TokenType"] == "Bearer", "XML user values", t)
        r = httpx.post(f"{base}/api/security/token/v2",
                       json={"GrantType": "client_credentials", "ClientSecret": key},
                       headers={"Accept": "application/json"})
        r.raise_for_status()
        t = parse_token_response(r)
        check(t["ExpiresIn"] == "630720000" and "AccessToken" in t, "XML consumer", t)
        print("ok xml")
        return

    for name, t in (("v2", get_token_v2(base, user, pw)), ("v1", get_token_v1(base, user, pw))):
        check(list(t) == ["AccessToken", "RefreshToken", "ExpiresInSeconds", "TokenType"], f"user {name} fields", list(t))
        check(t["ExpiresInSeconds"] == 86400 and t["TokenType"] == "Bearer" and t["RefreshToken"], f"user {name} values", t)
        c = claims(t["AccessToken"])
        check(c["iss"] == "P21.Soa" and c["sub"] == user and c["aud"] == "/api" and "P21.SessionId" in c,
              f"user {name} claims", c)
        check(c["exp"] - c["iat"] == 86400, f"user {name} lifetime", c)

    fields = ["AccessToken", "TokenType", "UserName", "ExpiresIn", "RefreshToken", "Scope", "SessionId", "ConsumerUid", "AppKey"]
    for username in ("", user):
        t = get_consumer_token(base, key, username)
        check(list(t) == fields, "consumer fields", list(t))
        check(t["TokenType"] == "Bearer" and t["UserName"] == username and t["ExpiresIn"] == 630720000
              and t["RefreshToken"] == "" and t["Scope"] == "/api;/p21sdk" and t["ConsumerUid"] == uid
              and t["AppKey"] is None and len(t["SessionId"]) == 36, "consumer values", t)
        c = claims(t["AccessToken"])
        check(c["exp"] == 2147483647 and c["aud"] == "/api;/p21sdk" and c["sub"] == username
              and c["P21.ConsumerUid"] == uid and c["P21.SessionId"] == t["SessionId"], "consumer claims", c)

    # A Scope in the request changes nothing.
    r = httpx.post(f"{base}/api/security/token/v2",
                   json={"GrantType": "client_credentials", "ClientSecret": key, "Scope": "/odata:supplier"},
                   headers={"Accept": "application/json"})
    check(r.status_code == 200 and r.json()["Scope"] == "/api;/p21sdk", "scope ignored", r.text)

    # Failures.
    r = httpx.post(f"{base}/api/security/token/v2", json={"username": user, "password": "wrong"},
                   headers={"Accept": "application/json"})
    wrong = r.content
    check(r.status_code == 401, "wrong password status", r.status_code)
    r = httpx.post(f"{base}/api/security/token/v2", json={"username": "nobody_here", "password": "wrong"},
                   headers={"Accept": "application/json"})
    check(r.status_code == 401 and r.content == wrong, "unknown user body", r.content)
    r = httpx.post(f"{base}/api/security/token/v2",
                   json={"GrantType": "client_credentials", "ClientSecret": "00000000-0000-4000-8000-000000000000"},
                   headers={"Accept": "application/json"})
    check(r.status_code == 401 and r.json() == {"error": "invalid_client", "error_description": "Client authentication failed."},
          "wrong consumer key", r.text)
    print("ok json")


if __name__ == "__main__":
    main()
