"""Records what the reference central auth service answers, for tests/dev_parity.rs.

The dev service (`auth-proxy dev-auth`) must answer as the central service's current code does
(AminodinAkbari/auth-central-challange, api/main.py, under FastAPI 0.165 with python-multipart
0.0.34). This script sends CASES, in order, to a freshly started copy of that service and writes
one JSON line per case: the request as sent and the answer as received (status, the headers
below, exact body bytes). tests/dev_parity.rs replays the same requests against a fresh dev
service and wants the same answers, byte for byte. Run it again when that code changes:

    python3 -m venv /tmp/central/.venv    # with the central service checked out in /tmp/central
    /tmp/central/.venv/bin/pip install fastapi==0.165.0 uvicorn python-multipart==0.0.34 PyJWT
    (cd /tmp/central && .venv/bin/uvicorn api.main:app --host 127.0.0.1 --port 18001) &
    python3 tests/vectors/central_record.py http://127.0.0.1:18001 > tests/vectors/central.jsonl

Only the standard library is used, and only the given (loopback) address is contacted. The
service keeps its users in memory: start it afresh for every recording.

Tokens differ between services and runs, so in a body the JWTs are replaced by placeholders:
the refresh token the request presented by `{refresh}`, any other JWT by `<jwt>` (both here and
in the replay). `{access}` and `{refresh}` in a request stand for the tokens of the last
successful login (`{access}` is renewed by a successful refresh), never from a case that has
its own `dev` answer.

Where the dev service differs on purpose (README, "The dev service"), the line carries a `dev`
answer and the reason: a case's own `dev`, or the secret redaction of contract §3 applied to a
422 as the proxy's renderer applies it (the rule of tests/vectors/render.py).
"""
import http.client
import json
import re
import sys
import urllib.parse

JSON = {"content-type": "application/json"}
FORM = {"content-type": "application/x-www-form-urlencoded"}
KEPT_HEADERS = ("content-type", "www-authenticate", "allow", "location")
SECRETS = {"password", "client_secret", "refresh_token"}
JWT = re.compile(r"eyJ[A-Za-z0-9_-]*\.[A-Za-z0-9_-]*\.[A-Za-z0-9_-]*")
BOUNDARY = "----parity7MA4YWxkTrZu0gW"


def multipart(fields):
    parts = [
        f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n{value}\r\n'
        for name, value in fields
    ]
    return "".join(parts) + f"--{BOUNDARY}--\r\n"


MULTIPART = {"content-type": f"multipart/form-data; boundary={BOUNDARY}"}


def case(name, method, path, headers=None, body="", dev=None):
    return {"case": name, "method": method, "path": path, "headers": headers or {}, "body": body,
            **({"dev": dev} if dev else {})}


def register(name, body, headers=JSON, dev=None):
    return case(f"register: {name}", "POST", "/register", headers, body, dev)


def login(name, body, headers=FORM, dev=None):
    return case(f"login: {name}", "POST", "/login", headers, body, dev)


def refresh(name, body, headers=JSON, dev=None):
    return case(f"refresh: {name}", "POST", "/refresh", headers, body, dev)


def protected(name, authorization=None, method="GET", dev=None):
    headers = {} if authorization is None else {"authorization": authorization}
    return case(f"protected: {name}", method, "/protected", headers, "", dev)


def detail(status, message, why):
    return {"status": status, "headers": {"content-type": "application/json"},
            "body": json.dumps({"detail": message}, separators=(",", ":")), "why": why}


ADA = '{"email":"ada@example.com","password":"correct-horse"}'
ADA_FORM = "grant_type=password&username=ada%40example.com&password=correct-horse"
TYPED = "typed tokens: a refresh token is no access token and the other way round"

CASES = [
    register("valid", ADA),
    register("duplicate", ADA),
    register("same address, other case, is another user", '{"email":"Ada@Example.COM","password":"pw"}'),
    register("any string is an email (str, not EmailStr)", '{"email":"nope","password":"pw"}'),
    register("unknown fields are ignored", '{"email":"extra@example.com","password":"pw","is_admin":true}'),
    register("duplicate keys: the last wins", '{"email":"first@example.com","email":"last@example.com","password":"pw"}'),
    register("escaped non-ASCII", '{"email":"\\u00e9l\\u00e8ve@\\u4f8b\\u3048.jp","password":"pw"}'),
    register("UTF-8 byte order mark", '\ufeff{"email":"bom@example.com","password":"pw"}'),
    register("application/*+json", '{"email":"vnd@example.com","password":"pw"}',
             {"content-type": "application/vnd.api+json"}),
    register("empty email", '{"email":"","password":"pw"}'),
    register("empty password", '{"email":"e@example.com","password":""}'),
    register("both empty", '{"email":"","password":""}'),
    register("missing password", '{"email":"e@example.com"}'),
    register("missing email", '{"password":"pw"}'),
    register("empty object", "{}"),
    register("JSON array", "[1]"),
    register("empty JSON array", "[]"),
    register("JSON string", '"ada@example.com"'),
    register("JSON null", "null"),
    register("JSON number", "1"),
    register("empty body", ""),
    register("empty body without content type", "", {}),
    register("form body on a JSON route", "email=f%40example.com&password=pw", FORM),
    register("JSON without content type", ADA, {}),
    register("JSON as text/plain", ADA, {"content-type": "text/plain"}),
    register("truncated JSON", '{"email":'),
    register("not JSON at all", "email me"),
    register("number email", '{"email":5,"password":"pw"}'),
    register("number password", '{"email":"n@example.com","password":5}'),
    register("null email", '{"email":null,"password":"pw"}'),
    register("email longer than 320 bytes", json.dumps({"email": "l" * 330 + "@example.com", "password": "pw"}),
             dev=detail(400, "Email too long", "limit: emails of at most 320 bytes")),
    register("body over 16 KiB", json.dumps({"email": "big@example.com", "password": "p" * 17000}),
             dev=detail(413, "Request body too large", "limit: request bodies of at most 16 KiB")),
    case("register: GET is not allowed", "GET", "/register"),
    case("register: trailing slash redirects", "POST", "/register/", JSON, ADA),

    login("valid", ADA_FORM),
    login("wrong password", "username=ada%40example.com&password=wrong"),
    login("unknown user", "username=nobody%40example.com&password=correct-horse"),
    login("empty grant_type is absent", "grant_type=&username=ada%40example.com&password=correct-horse"),
    login("every field", ADA_FORM + "&scope=read+write&client_id=cli&client_secret=cs"),
    login("repeated field: the last wins", "username=x&username=ada%40example.com&password=correct-horse"),
    login("the address exactly as registered", "username=Ada%40Example.COM&password=pw"),
    login("a registered non-address", "username=nope&password=pw"),
    login("duplicate keys registered the last", "username=last%40example.com&password=pw"),
    login("non-ASCII username", "username=%C3%A9l%C3%A8ve%40%E4%BE%8B%E3%81%88.jp&password=pw"),
    login("grant_type client_credentials", "grant_type=client_credentials&username=ada%40example.com&password=correct-horse"),
    login("missing password", "username=ada%40example.com"),
    login("missing username", "password=correct-horse"),
    login("empty username and password", "username=&password="),
    login("empty body", ""),
    login("JSON body", '{"username":"ada@example.com","password":"correct-horse"}', JSON),
    login("multipart", multipart([("username", "ada@example.com"), ("password", "correct-horse")]), MULTIPART),
    login("multipart, wrong password", multipart([("username", "ada@example.com"), ("password", "nope")]), MULTIPART),
    login("multipart, grant_type client_credentials",
          multipart([("grant_type", "client_credentials"), ("username", "ada@example.com"), ("password", "x")]),
          MULTIPART),
    login("multipart without boundary", multipart([("username", "a")]), {"content-type": "multipart/form-data"}),
    case("login: GET is not allowed", "GET", "/login"),
    login("valid again (the tokens used below)", ADA_FORM),

    refresh("valid", '{"refresh_token":"{refresh}"}'),
    refresh("empty token", '{"refresh_token":""}'),
    refresh("garbage token", '{"refresh_token":"not.a.jwt"}'),
    refresh("access token", '{"refresh_token":"{access}"}',
            dev=detail(401, "Invalid refresh token", TYPED)),
    refresh("empty object", "{}"),
    refresh("JSON array", "[]"),
    refresh("empty body", ""),
    refresh("form body on a JSON route", "refresh_token=x", FORM),
    refresh("truncated JSON", '{"refresh_token":'),
    refresh("number token", '{"refresh_token":5}'),
    case("refresh: GET is not allowed", "GET", "/refresh"),

    protected("access token", "Bearer {access}"),
    protected("lower-case scheme, padded token", "bearer   {access}  "),
    protected("refresh token", "Bearer {refresh}",
              dev=detail(401, "Invalid token", TYPED)),
    protected("garbage token", "Bearer not.a.jwt"),
    protected("scheme without token", "Bearer"),
    protected("no Authorization", None),
    protected("empty Authorization", ""),
    protected("Basic scheme", "Basic YWRhOnB3"),
    protected("no space after the scheme", "Bearer{access}"),
    protected("HEAD is not allowed", None, method="HEAD"),
    protected("POST is not allowed", None, method="POST"),
    case("protected: trailing slash redirects", "GET", "/protected/?a=1"),
    case("unknown path", "GET", "/nope"),
]


def fill(text, tokens):
    for name, value in tokens.items():
        text = text.replace("{" + name + "}", value)
    return text


def send(base, request, tokens):
    url = urllib.parse.urlsplit(base)
    conn = http.client.HTTPConnection(url.hostname, url.port, timeout=10)
    body = fill(request["body"], tokens).encode()
    conn.putrequest(request["method"], request["path"], skip_host=True, skip_accept_encoding=True)
    conn.putheader("host", "localhost")
    for name, value in request["headers"].items():
        conn.putheader(name, fill(value, tokens))
    if request["method"] != "GET" and request["method"] != "HEAD":
        conn.putheader("content-length", str(len(body)))
    conn.endheaders(body or None)
    response = conn.getresponse()
    answer = response.read().decode()
    headers = {name: response.getheader(name) for name in KEPT_HEADERS if response.getheader(name) is not None}
    conn.close()
    return response.status, headers, answer


def placeholders(body, presented_refresh):
    """JWTs out of a body: the presented refresh token as `{refresh}`, any other as `<jwt>`."""
    return JWT.sub(lambda m: "{refresh}" if m.group(0) == presented_refresh else "<jwt>", body)


def redact(body):
    """Contract §3 on a 422 body: no `input` that is, or holds, a secret (as render.py)."""
    try:
        parsed = json.loads(body)
    except ValueError:
        return body
    if not isinstance(parsed, dict) or not isinstance(parsed.get("detail"), list):
        return body
    for error in parsed["detail"]:
        loc = error.get("loc") or []
        echoed = error.get("input")
        if (loc[-1] if loc else None) in SECRETS or (isinstance(echoed, dict) and SECRETS & set(echoed)):
            error.pop("input", None)
    return json.dumps(parsed, ensure_ascii=False, separators=(",", ":"))


def main(base):
    tokens = {}
    for request in CASES:
        presented = tokens.get("refresh") if "{refresh}" in request["body"] else None
        status, headers, body = send(base, request, tokens)
        # The tokens of a case the dev service answers differently are not used further on.
        if status == 200 and request["path"] in ("/login", "/refresh") and "dev" not in request:
            issued = json.loads(body)
            tokens["access"] = issued["access_token"]
            tokens["refresh"] = issued["refresh_token"]
        expect = {"status": status, "headers": headers, "body": placeholders(body, presented)}
        line = {**{k: v for k, v in request.items() if k != "dev"}, "expect": expect}
        if "dev" in request:
            line["dev"] = request["dev"]
        elif status == 422 and redact(body) != body:
            line["dev"] = {**expect, "body": redact(body), "why": "contract §3: no secret echoed in a 422"}
        print(json.dumps(line, ensure_ascii=False))


if __name__ == "__main__":
    main(sys.argv[1])
