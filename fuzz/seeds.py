#!/usr/bin/env python3
"""Writes fuzz/seeds/<target>/ from the golden vectors and the tests' cases (issue 19).

Run from anywhere: python3 fuzz/seeds.py. The seeds are committed; re-run after the vectors
change. Each file is one input in the target's own format (see each target's doc comment).
"""
import hashlib
import json
import pathlib
import urllib.parse

HERE = pathlib.Path(__file__).resolve().parent
ROOT = HERE.parent
SHARED = ROOT.parent / "shared" / "vectors"
if not SHARED.exists():  # a clone without the shared checkout: keep what is committed
    SHARED = None


def write(target, data):
    if isinstance(data, str):
        data = data.encode("utf-8", "surrogatepass")
    out = HERE / "seeds" / target
    out.mkdir(parents=True, exist_ok=True)
    (out / hashlib.sha1(data).hexdigest()[:16]).write_bytes(data)


def vectors(name):
    for base in filter(None, [SHARED, ROOT / "tests" / "vectors"]):
        path = base / name
        if path.exists():
            return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    return []


def request_body(req):
    """(content type, body bytes) of a vector request, as the vectors' client sent it."""
    headers = {k.lower(): v for k, v in (req.get("headers") or {}).items()}
    if "json" in req:
        return headers.get("content-type", "application/json"), json.dumps(req["json"]).encode()
    if "data" in req:
        data = req["data"]
        body = urllib.parse.urlencode(data) if isinstance(data, dict) else data
        return headers.get("content-type", "application/x-www-form-urlencoded"), body.encode()
    content = req.get("content", "")
    return headers.get("content-type", "-"), content.encode("utf-8", "surrogatepass")


for v in vectors("fastapi-errors.jsonl"):
    req = v["request"]
    ctype, body = request_body(req)
    auth = {k.lower(): x for k, x in (req.get("headers") or {}).items()}.get("authorization", "-")
    write("request", f"{req['method']} {req['path']}\n{ctype}\n{auth}\n".encode() + body)
    if ctype != "-" and "json" in ctype:
        write("json", body)
    if "form" in ctype:
        write("form", ctype.encode() + b"\n" + body)

for v in vectors("emails.jsonl"):
    write("email", v["input"])

for v in vectors("forms-0.0.34.jsonl"):
    body = v["body_latin1"].encode("latin-1")
    write("form", b"application/x-www-form-urlencoded\n" + body)

for body in [
    '{"email":"a@example.com","password":"pw"}',
    '{"refresh_token":"t","refresh_token":"u"}',
    '[1, 2.5e10, -0, "\\ud83d\\ude00", {"a": null}]',
    'NaN', '-Infinity', '1e999', '"\\ud800"', '{"a":1,}', '[1,]', '"\\x"', '\ufeff{}',
    '9' * 4301, '[' * 130 + ']' * 130, '{"a" 1}', '"unterminated', '"tab\there"',
]:
    write("json", body)

MULTIPART = (
    "multipart/form-data; boundary=X\n"
    '--X\r\nContent-Disposition: form-data; name="username"\r\n\r\nada@example.com\r\n'
    '--X\r\nContent-Disposition: form-data; name="password"\r\n\r\ns3cret\r\n'
    '--X\r\nContent-Disposition: form-data; name="f"; filename="a.txt"\r\n'
    "Content-Type: text/plain\r\n\r\nhello\r\n--X--\r\n"
)
write("form", MULTIPART)
write("form", "multipart/form-data\n--X\r\n")
write("form", "application/x-www-form-urlencoded\ngrant_type=password&username=a&password=b&scope=x+y&client_id=c&client_secret=d")
write("request", "POST /login\napplication/x-www-form-urlencoded\n-\nusername=a&password=%FF%00&grant_type=nope")
write("request", "GET /protected\n-\nBearer abc.def\n")
write("request", "POST /register/\napplication/json\n-\n{}")

HEAD = "POST /login HTTP/1.1\r\nHost: x\r\n"
for stream in [
    HEAD + "Content-Length: 5\r\n\r\nhello" + "GET /protected HTTP/1.1\r\nHost: x\r\n\r\n",
    HEAD + "Transfer-Encoding: chunked\r\n\r\n5;ext=1\r\nhello\r\n0\r\nX-T: 1\r\n\r\n",
    HEAD + "Content-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
    HEAD + "Transfer-Encoding: chunked\r\n\r\n00000000000000000005\r\nhello\r\n0\r\n\r\n"
    + HEAD + "Content-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
    HEAD + "Transfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\nX: 1\n\n"
    + "POST /x HTTP/1.1\r\nContent-Length: 3\r\n\r\nabc",
    "POST /login HTTP/1.1\nHost: x\nContent-Length: 2\n\nok",
    "\r\n" + HEAD + "Transfer-Encoding: identity, chunked\r\n\r\n0\r\n\r\n",
    HEAD + "Transfer-Encoding:\r\n chunked\r\n\r\n0\r\n\r\n",
    "POST /login HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
    HEAD + "Content-Length: 5\r\nContent-Length: 6\r\n\r\nhello!",
    "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n",
]:
    for step in (b"\x00", b"\x07", b"\xff"):
        write("framing", step + stream.encode("latin-1"))
