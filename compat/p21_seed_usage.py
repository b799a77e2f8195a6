"""The Python usage code of the P21 authentication guide, run against a
gatehouse serving the sandbox (serve --dev --sandbox).

The code is executed exactly as the guide prints it, from
testdata/seed_000_usage_excerpts.txt. The guide's examples name the server
https://play.p21server.com; here that name leads to the gatehouse at
GATEHOUSE_URL, as a hosts-file entry would (httpx's module functions are
wrapped to rewrite the URL, nothing else). Reads GATEHOUSE_URL,
P21_USERNAME and P21_PASSWORD; exits non-zero with a message on the first
mismatch.
"""
import os
import re
import sys

import httpx

GUIDE_HOST = "https://play.p21server.com"
BASE = os.environ["GATEHOUSE_URL"].rstrip("/")
seen = []


def _via_gatehouse(fn):
    def call(url, *args, **kwargs):
        url = str(url)
        if url.startswith(GUIDE_HOST):
            url = BASE + url[len(GUIDE_HOST):]
        r = fn(url, *args, **kwargs)
        seen.append((r.request.method, r.request.url.path, r.status_code))
        return r
    return call


httpx.get = _via_gatehouse(httpx.get)
httpx.post = _via_gatehouse(httpx.post)


def check(cond, what, got):
    if not cond:
        print(f"MISMATCH {what}: {got!r}", file=sys.stderr)
        print(f"requests: {seen}", file=sys.stderr)
        sys.exit(1)


def excerpts():
    here = os.path.dirname(os.path.abspath(__file__))
    with open(os.path.join(here, "testdata", "seed_000_usage_excerpts.txt"), encoding="utf-8") as f:
        text = f.read()
    parts = re.split(r"^== 000_a3d590d8969f5f63\.txt lines \d+-\d+\n", text, flags=re.M)
    return [p.rstrip("\n") + "\n" for p in parts[1:]]


def main():
    get_token, usage, token_manager = excerpts()
    ns = {"__name__": "seed_usage", "base_url": BASE,
          "username": os.environ["P21_USERNAME"], "password": os.environ["P21_PASSWORD"]}

    exec(compile(get_token, "guide:get_token_v2", "exec"), ns)
    exec(compile(usage, "guide:get_auth_headers usage", "exec"), ns)
    body = ns["response"].json()
    check(body["@odata.context"].endswith("/odataservice/odata/$metadata#supplier"), "OData context", body.get("@odata.context"))
    check(len(body["value"]) == 60 and {"supplier_id", "supplier_name", "row_status_flag"} <= set(body["value"][0]),
          "OData suppliers", body["value"][:1])

    exec(compile(token_manager, "guide:TokenManager", "exec"), ns)
    odata, entity = ns["odata_resp"].json(), ns["entity_resp"].json()
    check(len(odata["value"]) == 60, "TokenManager OData suppliers", len(odata["value"]))
    check(isinstance(entity, list) and len(entity) == 120 and {"CustomerCode", "CustomerName"} <= set(entity[0]),
          "TokenManager Entity customers", entity[:1])
    # One token for both calls, as the guide intends.
    tokens = [p for m, p, s in seen if p == "/api/security/token/v2"]
    check(len(tokens) == 2, "token requests (one per example)", seen)
    check([s for _, _, s in seen] == [200] * len(seen), "statuses", seen)
    print("ok", seen)


if __name__ == "__main__":
    main()
