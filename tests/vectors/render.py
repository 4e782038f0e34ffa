"""Renders the shared golden vectors into exact request and response bytes for tests/vectors.rs.

Python does the serialising because the vectors were recorded from Python: a request's `json`
is sent as httpx sends it, and the expected body is the vector's body serialised exactly as
Starlette's JSONResponse does (`ensure_ascii=False, separators=(",", ":")`), so floats print as
Python prints them (1e+16) and large integers stay exact. The one deliberate difference from
FastAPI, the secret redaction of contract §3, is applied to the expectation here.
"""
import json
import sys
import urllib.parse

SECRETS = {"password", "client_secret", "refresh_token"}


def redact(body):
    if not isinstance(body, dict) or not isinstance(body.get("detail"), list):
        return body
    for error in body["detail"]:
        loc = error.get("loc") or []
        field = loc[-1] if loc else None
        echoed = error.get("input")
        if field in SECRETS or (isinstance(echoed, dict) and SECRETS & set(echoed)):
            error.pop("input", None)
    return body


def request_bytes(request):
    headers = dict(request.get("headers", {}))
    if "json" in request:
        body = json.dumps(request["json"], ensure_ascii=False, separators=(",", ":"))
        headers.setdefault("content-type", "application/json")
    elif "data" in request:
        body = urllib.parse.urlencode(request["data"])
        headers.setdefault("content-type", "application/x-www-form-urlencoded")
    else:
        body = request.get("content", "")
    return headers, body


def main(path):
    for line in open(path, encoding="utf-8"):
        vector = json.loads(line)
        headers, body = request_bytes(vector["request"])
        print(json.dumps({
            "case": vector["case"],
            "method": vector["request"]["method"],
            "path": vector["request"]["path"],
            "headers": headers,
            "body": body,
            "status": vector["status"],
            "expect_headers": vector["headers"],
            "expect_body": json.dumps(redact(vector["body"]), ensure_ascii=False, separators=(",", ":")),
        }, ensure_ascii=False))


main(sys.argv[1])
