#!/usr/bin/env python3
"""Differential fuzzing: the proxy's Python-faithful parsers against the Python originals.

Compares, input by input, what the proxy's code says with what the code it imitates says:

- `json`: `json.loads(bytes)` of CPython 3.11 (value, or `JSONDecodeError` msg and pos, or any
  other exception = FastAPI's 400) against `src/validate/json.rs`;
- `email`: Pydantic 2.14.4's `EmailStr` on email-validator 2.4.0 (accepted, or `ctx.reason`)
  against `src/validate/email*.rs`, both its fast path and its step-by-step port;
- `form`: Starlette's `Request.form()` on python-multipart 0.0.34 (urlencoded and multipart:
  fields in order, or the 400) against `src/validate/form_parse.rs`;
- `register`, `refresh`, `login`: FastAPI 0.165 itself, the routes declared as the contract
  declares them, called in-process (ASGI) with the same Content-Type and body bytes: the 422/400
  body (after redacting the submitted secrets the proxy leaves out of `input`) against the proxy's, byte for byte, and for a
  valid request the values FastAPI validated against the body the proxy sends upstream;
- with `--proxy`: the same requests once more through the running release binary over
  loopback (a recording upstream behind it), against the same FastAPI answers.

The proxy's side is `examples/diff_oracle.rs` (the `auth_proxy::fuzzing` and `validate` API the
service itself calls), fed JSON lines through a pipe. Inputs: the repository's vectors and fuzz
seeds, then a seeded grammar-aware generator and mutator (JSON values with every number, string
and escape form, whitespace, truncations, splices, UTF-16/32, bad UTF-8; email addresses with
quoted local parts, IDNA, IP literals, display names; urlencoded and multipart forms), bounded by
`--count` per target and by `--seconds` in all. Only 127.0.0.1 is contacted.

    python3.11 -m venv /tmp/diff-venv
    /tmp/diff-venv/bin/pip install fastapi==0.165.0 python-multipart==0.0.34 \\
        email-validator==2.4.0 pydantic==2.14.4 idna==3.21
    cargo build --example diff_oracle            # and `cargo build --release` for --proxy
    /tmp/diff-venv/bin/python bench/diff_fuzz.py --count 5000 --seconds 600 [--proxy]

Each discrepancy is written to bench/out/diff/<target>.jsonl (input, Python's answer, the
proxy's); the ones the README documents as deliberate are counted apart ("intended") with the
reason. Exit status 1 if any other discrepancy is left. Not a CI test (it needs the venv).
"""

import argparse
import asyncio
import glob
import itertools
import json
import math
import os
import random
import socket
import struct
import subprocess
import sys
import threading
import time
import urllib.parse

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TARGET = os.environ.get("CARGO_TARGET_DIR", os.path.join(ROOT, "target"))
SECRETS = {"password", "client_secret", "refresh_token"}
BOUNDARY = "diffB0undary7MA4"

# The decoded values of deep inputs are deep; json.loads of the oracle's answer recurses.
sys.setrecursionlimit(20000)
# CPython's default int digit limit (4300) stays on, as under uvicorn: FastAPI's json.loads of
# a longer integer raises ValueError (a 400). Only untag() lifts it, to rebuild the proxy's ints.


def latin1(b: bytes) -> str:
    return b.decode("latin-1")


# ---- the Python side ----------------------------------------------------------------------------

def python_json(body: bytes):
    try:
        return {"ok": json.loads(body)}
    except json.JSONDecodeError as e:
        return {"syntax": [e.msg, e.pos]}
    except (ValueError, RecursionError, UnicodeDecodeError) as e:
        return {"unparsable": type(e).__name__}


def untag(v):
    """The oracle's tagged value back to the Python value it stands for."""
    if isinstance(v, dict):
        if "i" in v:
            sys.set_int_max_str_digits(0)
            try:
                return int(v["i"])
            finally:
                sys.set_int_max_str_digits(4300)
        if "f" in v:
            return struct.unpack("<d", struct.pack("<Q", int(v["f"])))[0]
        return {"__pairs__": [(k, untag(x)) for k, x in v["o"]]}
    if isinstance(v, list):
        return [untag(x) for x in v]
    return v


def same_value(py, rs) -> bool:
    """Python's value vs the untagged oracle value: types, float bits, key order all equal."""
    if isinstance(py, bool) or isinstance(rs, bool):
        return type(py) is type(rs) and py == rs
    if isinstance(py, float):
        return isinstance(rs, float) and struct.pack("<d", py) == struct.pack("<d", rs) or (
            isinstance(rs, float) and math.isnan(py) and math.isnan(rs))
    if isinstance(py, int):
        return type(rs) is int and py == rs
    if isinstance(py, dict):
        pairs = rs.get("__pairs__") if isinstance(rs, dict) else None
        return pairs is not None and len(pairs) == len(py) and all(
            k1 == k2 and same_value(v1, v2) for (k1, v1), (k2, v2) in zip(py.items(), pairs))
    if isinstance(py, list):
        return isinstance(rs, list) and len(py) == len(rs) and all(
            same_value(a, b) for a, b in zip(py, rs))
    return type(py) is type(rs) and py == rs


def has_surrogate(v) -> bool:
    if isinstance(v, str):
        return any(0xD800 <= ord(c) <= 0xDFFF for c in v)
    if isinstance(v, (list, tuple)):
        return any(has_surrogate(x) for x in v)
    if isinstance(v, dict):
        return any(has_surrogate(k) or has_surrogate(x) for k, x in v.items())
    return False


def lone_surrogate_in(body: bytes) -> bool:
    """Whether the JSON text holds a lone surrogate anywhere (also where a later duplicate
    key drops it from the value)."""
    try:
        return has_surrogate(json.loads(body, object_pairs_hook=list))
    except (ValueError, RecursionError):
        return False


def text_depth(body: bytes) -> int:
    """How deep the brackets of a JSON text nest (outside strings), however it ends."""
    deepest = level = 0
    in_str = escaped = False
    for c in body:
        if in_str:
            in_str = escaped or c != 0x22
            escaped = not escaped and c == 0x5C
        elif c == 0x22:
            in_str = True
        elif c in (0x5B, 0x7B):
            level += 1
            deepest = max(deepest, level)
        elif c in (0x5D, 0x7D):
            level -= 1
    return deepest


def depth(v) -> int:
    if isinstance(v, list):
        return 1 + max((depth(x) for x in v), default=0)
    if isinstance(v, dict):
        return 1 + max((depth(x) for x in v.values()), default=0)
    return 0


def one_shot_receive(body: bytes):
    """An ASGI `receive` that gives the whole body once, then says the client left."""
    sent = False

    async def receive():
        nonlocal sent
        if sent:
            return {"type": "http.disconnect"}
        sent = True
        return {"type": "http.request", "body": body, "more_body": False}

    return receive


class PythonSide:
    """FastAPI 0.165 with the contract's three validating routes, called as an ASGI app."""

    def __init__(self):
        import email_validator
        import fastapi
        import pydantic
        import python_multipart
        assert fastapi.__version__ == "0.165.0", fastapi.__version__
        assert python_multipart.__version__ == "0.0.34", python_multipart.__version__
        assert email_validator.__version__ == "2.4.0", email_validator.__version__
        assert pydantic.VERSION == "2.14.4", pydantic.VERSION
        assert sys.version_info[:2] == (3, 11), sys.version
        from typing import Annotated

        from fastapi import Body, Depends, FastAPI, Request
        from fastapi.security import OAuth2PasswordRequestForm
        from pydantic import BaseModel, EmailStr, TypeAdapter

        class RegisterRequest(BaseModel):
            email: EmailStr
            password: str

        app = FastAPI()

        @app.post("/register")
        async def register(body: RegisterRequest, request: Request):
            # The proxy forwards the email as written (contract v2), not EmailStr's normal form.
            return {"email": (await request.json())["email"], "password": body.password}

        # As the FastAPI app declares it (../shared/vectors: a list body is `missing`).
        @app.post("/refresh")
        async def refresh(refresh_token: Annotated[str, Body(embed=True)]):
            return {"refresh_token": refresh_token}

        @app.post("/login")
        async def login(form: Annotated[OAuth2PasswordRequestForm, Depends()], request: Request):
            # The form keeps `scope` only split into `scopes`; the proxy forwards it as sent.
            sent = await request.form()
            return {"grant_type": form.grant_type, "username": form.username,
                    "password": form.password, "scope": sent.get("scope") or "",
                    "client_id": form.client_id, "client_secret": form.client_secret}

        self.app = app
        self.email_adapter = TypeAdapter(EmailStr)
        self.loop = asyncio.new_event_loop()

    def email(self, address: str):
        from pydantic import ValidationError
        try:
            self.email_adapter.validate_python(address)
            return {"ok": True}
        except ValidationError as e:
            err = e.errors()[0]
            return {"reason": (err.get("ctx") or {}).get("reason", err["msg"])}

    def form(self, ct, body: bytes):
        from starlette.exceptions import HTTPException
        from starlette.formparsers import MultiPartException
        from starlette.requests import Request

        headers = [] if ct is None else [(b"content-type", ct)]
        scope = {"type": "http", "method": "POST", "path": "/", "headers": headers,
                 "query_string": b""}
        receive = one_shot_receive(body)

        async def parse():
            form = await Request(scope, receive).form()
            out = []
            for name, value in form.multi_items():
                if isinstance(value, str):
                    out.append([name, value])
                else:
                    out.append([name, {"file": value.filename, "size": value.size}])
            return {"fields": out}
        try:
            return self.loop.run_until_complete(parse())
        except MultiPartException as e:
            return {"status": 400, "detail": e.message}
        except HTTPException as e:
            return {"status": e.status_code, "detail": e.detail}

    def call(self, path, ct, body: bytes):
        """(status, body bytes) of FastAPI's answer to POST `path`."""
        headers = [(b"content-length", str(len(body)).encode()), (b"host", b"proxy.test")]
        if ct is not None:
            headers.append((b"content-type", ct))
        scope = {"type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1",
                 "method": "POST", "scheme": "http", "path": path, "raw_path": path.encode(),
                 "query_string": b"", "root_path": "", "headers": headers,
                 "client": ("127.0.0.1", 50000), "server": ("127.0.0.1", 8000), "state": {}}
        receive = one_shot_receive(body)
        answer = {"status": None, "body": b""}

        async def send(message):
            if message["type"] == "http.response.start":
                answer["status"] = message["status"]
            elif message["type"] == "http.response.body":
                answer["body"] += message.get("body", b"")
        try:
            self.loop.run_until_complete(self.app(scope, receive, send))
        except Exception as e:  # FastAPI's 500 (e.g. a NaN it cannot render)
            return 500, f"{type(e).__name__}: {e}".encode()
        return answer["status"], answer["body"]


def redact(body):
    """Contract §3, as tests/vectors/render.py applies it."""
    if not isinstance(body, dict) or not isinstance(body.get("detail"), list):
        return body
    for error in body["detail"]:
        loc = error.get("loc") or []
        echoed = error.get("input")
        if (loc and loc[-1] in SECRETS) or (isinstance(echoed, dict) and SECRETS & set(echoed)):
            error.pop("input", None)
    return body


def holds_secret(value) -> bool:
    if isinstance(value, dict):
        return any(k in SECRETS or holds_secret(v) for k, v in value.items())
    if isinstance(value, list):
        return any(holds_secret(v) for v in value)
    return False


def starlette_json(value) -> str:
    return json.dumps(value, ensure_ascii=False, allow_nan=False, separators=(",", ":"))


def expected_rejection(text: bytes) -> str:
    """FastAPI's 4xx body as the proxy must send it: redacted where needed, else verbatim."""
    value = json.loads(text)
    before = starlette_json(value)
    redact(value)
    after = starlette_json(value)
    return text.decode("utf-8") if after == before else after


# ---- the proxy's side ---------------------------------------------------------------------------

class Oracle:
    def __init__(self, binary):
        self.proc = subprocess.Popen([binary], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     bufsize=1 << 20)

    def ask(self, op, body: bytes, ct=None):
        request = {"op": op, "body": latin1(body)}
        if ct is not None:
            request["ct"] = latin1(ct)
        self.proc.stdin.write(json.dumps(request).encode() + b"\n")
        self.proc.stdin.flush()
        line = self.proc.stdout.readline()
        if not line:
            raise SystemExit(f"diff_oracle died on {request!r:.300}")
        return json.loads(line)

    def close(self):
        self.proc.stdin.close()
        self.proc.wait(10)


class RunningProxy:
    """The release binary in front of an upstream that records each body and answers 200."""

    def __init__(self, binary):
        self.last = None
        self.server = socket.socket()
        self.server.bind(("127.0.0.1", 0))
        self.server.listen(64)
        threading.Thread(target=self.upstream, daemon=True).start()
        port = self.server.getsockname()[1]
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            self.port = s.getsockname()[1]
        self.proc = subprocess.Popen(
            [binary, "--listen", f"127.0.0.1:{self.port}", "--auth-url", f"http://127.0.0.1:{port}",
             "--access-log", "off", "--refresh-coalesce", "off"],
            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        deadline = time.time() + 10
        while time.time() < deadline:
            if b"listening on" in self.proc.stderr.readline():
                break
        else:
            raise SystemExit("auth-proxy did not start")
        threading.Thread(target=self.proc.stderr.read, daemon=True).start()
        self.conn = None

    def upstream(self):
        while True:
            try:
                conn, _ = self.server.accept()
            except OSError:
                return
            threading.Thread(target=self.serve, args=(conn,), daemon=True).start()

    def serve(self, conn):
        f = conn.makefile("rb")
        try:
            for _ in range(100000):
                head = b""
                while not head.endswith(b"\r\n\r\n"):
                    line = f.readline(65536)
                    if not line:
                        return
                    head += line
                length = 0
                for line in head.split(b"\r\n"):
                    if line.lower().startswith(b"content-length:"):
                        length = int(line.split(b":", 1)[1])
                self.last = f.read(length)
                conn.sendall(b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\n"
                             b"content-length: 2\r\n\r\n{}")
        finally:
            conn.close()

    def post(self, path, ct, body: bytes):
        """(status, body, what the upstream received or None)."""
        head = [f"POST {path} HTTP/1.1", "Host: proxy.test", f"Content-Length: {len(body)}"]
        raw = "\r\n".join(head).encode() + b"\r\n"
        if ct is not None:
            raw += b"Content-Type: " + ct + b"\r\n"
        raw += b"\r\n" + body
        self.last = None
        for attempt in range(2):
            try:
                if self.conn is None:
                    self.conn = socket.create_connection(("127.0.0.1", self.port), timeout=10)
                    self.reader = self.conn.makefile("rb")
                self.conn.sendall(raw)
                status_line = self.reader.readline()
                if not status_line:
                    raise ConnectionError("closed")
                status = int(status_line.split()[1])
                length, close = 0, False
                for _ in range(100):
                    line = self.reader.readline()
                    if line in (b"\r\n", b""):
                        break
                    name, _, value = line.partition(b":")
                    if name.lower() == b"content-length":
                        length = int(value)
                    if name.lower() == b"connection" and b"close" in value.lower():
                        close = True
                answer = self.reader.read(length)
                if close:
                    self.conn.close()
                    self.conn = None
                return status, answer, self.last
            except (OSError, ValueError, IndexError):
                if self.conn is not None:
                    self.conn.close()
                self.conn = None
                if attempt:
                    raise
        return None

    def stop(self):
        self.proc.terminate()
        self.proc.wait(10)
        self.server.close()


# ---- inputs: vectors and seeds, then a grammar-aware generator and mutator ---------------------

def seed_files(kind):
    for path in sorted(glob.glob(os.path.join(ROOT, "fuzz", "seeds", kind, "*"))):
        with open(path, "rb") as f:
            yield f.read()


def jsonl(path):
    if not os.path.exists(path):
        return
    with open(path, encoding="utf-8") as f:
        for line in f:
            if line.strip():
                yield json.loads(line)


SHARED = os.path.join(ROOT, "..", "shared", "vectors")
WS = [" ", " ", "", "", "\n", "\t", "\r\n", "  "]
ODD_WS = ["\x0b", "\x0c", "\u00a0", "\u2028", "\ufeff", "\x00"]


class Gen:
    def __init__(self, seed):
        self.rng = random.Random(seed)

    def ws(self):
        r = self.rng
        return r.choice(ODD_WS) if r.random() < 0.01 else r.choice(WS)

    # JSON -------------------------------------------------------------------------------
    def number(self):
        r = self.rng
        if r.random() < 0.06:
            return r.choice(["NaN", "Infinity", "-Infinity", "-NaN", "+1", "01", "-01", "1.",
                             ".5", "1e", "1e+", "-", "0x10", "1_000", "1E400", "-1e400",
                             "1e-400", "2.2250738585072011e-308", "9007199254740993",
                             "18446744073709551616", "-0", "-0.0", "0e0", "1" * 4300,
                             "1" * 4301, "-" + "9" * 4301, "4.9e-324", "1.7976931348623159e308",
                             "Infinityx", "nan", "infinity", "NaN1", "1.0e-0"])
        sign = "-" if r.random() < 0.3 else ""
        n = r.choice([1, 1, 2, 3, 5, 10, 17, 19, 20, 25, 40, 310])
        digits = r.choice("123456789") + "".join(r.choice("0123456789") for _ in range(n - 1))
        if r.random() < 0.15:
            digits = "0"
        frac = "." + "".join(r.choice("0123456789") for _ in range(r.randint(1, 20))) \
            if r.random() < 0.4 else ""
        exp = (r.choice("eE") + r.choice(["", "+", "-"]) + str(r.randint(0, 330))) \
            if r.random() < 0.25 else ""
        return sign + digits + frac + exp

    def string_body(self, alphabet=None):
        r = self.rng
        out = []
        for _ in range(r.choice([0, 1, 2, 4, 8, 16])):
            k = r.random()
            if alphabet and k < 0.5:
                out.append(r.choice(alphabet))
            elif k < 0.45:
                out.append(r.choice("abcxyz019 _-.@+/"))
            elif k < 0.65:
                out.append("\\" + r.choice('"\\/bfnrt'))
            elif k < 0.78:
                cp = r.choice([r.randint(0, 0x7F), r.randint(0x80, 0x7FF), r.randint(0, 0xFFFF),
                               r.randint(0xD800, 0xDBFF), r.randint(0xDC00, 0xDFFF)])
                h = f"{cp:04x}"
                out.append("\\u" + (h.upper() if r.random() < 0.3 else h))
            elif k < 0.82:
                out.append("\\ud83d\\ude00")
            elif k < 0.9:
                out.append(r.choice(["é", "😀", "\u2028", "\ufeff", "ß", "日本", "\u0301", "\x7f"]))
            elif k < 0.95:
                out.append(chr(r.randint(0, 0x1F)))
            else:
                out.append(r.choice(["\\x41", "\\u12", "\\uZZZZ", "\\", "\\U0001F600", "\\'",
                                     "\\u00", "\\ud800\\u0041"]))
        return "".join(out)

    def string(self, alphabet=None):
        return '"' + self.string_body(alphabet) + '"'

    def value(self, depth=0):
        r = self.rng
        k = r.random()
        if depth > 4 or k < 0.45:
            return r.choice([lambda: r.choice(["null", "true", "false"]), self.number,
                             self.string, self.string])()
        if k < 0.72:
            items = [self.value(depth + 1) for _ in range(r.randint(0, 4))]
            return "[" + self.ws() + ("," + self.ws()).join(items) + self.ws() + "]"
        keys = ["email", "password", "refresh_token", "a", "", "email"]
        pairs = []
        for _ in range(r.randint(0, 4)):
            key = '"' + r.choice(keys) + '"' if r.random() < 0.6 else self.string()
            pairs.append(key + self.ws() + ":" + self.ws() + self.value(depth + 1))
        return "{" + self.ws() + ("," + self.ws()).join(pairs) + self.ws() + "}"

    def deep(self):
        r = self.rng
        n = r.choice([100, 127, 128, 129, 500, 958, 959, 960, 961, 962, 990, 999, 1000, 1001, 3000])
        o, c = r.choice([("[", "]"), ('{"a":', "}"), ("[1,", "]")])
        return (o * n + r.choice(["1", "[]", "{}", ""]) + c * n).encode()

    TOKENS = ["{", "}", "[", "]", ",", ":", '"', "\\", "\\u", "\\ud800", "NaN", "Infinity", "-",
              "1e", "0", ".", "true", "nul", '"a"', " ", "\n", "\x00", "\x1f", "\ufeff", "é",
              "\u2028", "//", "/*", "'", "]]", "}}", ",,", '":"']
    BYTES = [b"\xff", b"\xfe", b"\xc3", b"\xed\xa0\x80", b"\xed\xb0\x80", b"\xc0\xaf",
             b"\xf4\x90\x80\x80", b"\xe2\x82", b"\x80", b"\xef\xbb\xbf", b"\x00", b"\x00\x00"]

    def mutate_text(self, text: str) -> str:
        r = self.rng
        for _ in range(r.choice([1, 1, 1, 2, 3])):
            if not text:
                text = r.choice(self.TOKENS)
                continue
            i = r.randrange(len(text) + 1)
            j = min(len(text), i + r.randint(1, 8))
            k = r.random()
            if k < 0.25:
                text = text[:i] + text[j:]
            elif k < 0.55:
                text = text[:i] + r.choice(self.TOKENS) + text[i:]
            elif k < 0.7:
                text = text[:i]
            elif k < 0.8:
                text = text[:i] + text[i:j] + text[i:]
            elif k < 0.9:
                text = text[:i] + r.choice(self.TOKENS) + text[j:]
            else:
                text = text + r.choice(self.TOKENS)
        return text

    def mutate_bytes(self, data: bytes) -> bytes:
        r = self.rng
        k = r.random()
        i = r.randrange(len(data) + 1)
        if k < 0.5:
            return data[:i] + r.choice(self.BYTES) + data[i:]
        if k < 0.7:
            return data[:i] + bytes([r.randrange(256)]) + data[i + 1:]
        if k < 0.8:
            return b"\xef\xbb\xbf" + data
        try:
            text = data.decode("utf-8", "surrogatepass")
            codec = r.choice(["utf-16-le", "utf-16-be", "utf-16", "utf-32-le", "utf-32-be",
                              "utf-32"])
            return text.encode(codec, "surrogatepass")
        except UnicodeError:
            return data

    def json_doc(self) -> bytes:
        r = self.rng
        if r.random() < 0.03:
            return self.deep()
        text = self.ws() + self.value() + self.ws()
        if r.random() < 0.55:
            text = self.mutate_text(text)
        try:
            data = text.encode("utf-8", "surrogatepass")
        except UnicodeError:
            data = text.encode("utf-8", "replace")
        if r.random() < 0.15:
            data = self.mutate_bytes(data)
        return data

    # email ------------------------------------------------------------------------------
    LOCAL = list("abcxyz0189") + list("!#$%&'*+-/=?^_`{|}~") + [".", "..", "é", "ß", "ü", "日",
                                                                 "\u0301", "\u200d", "\x00", " ",
                                                                 "\t", "\u00a0", "\ufeff", "\u2028",
                                                                 '"', "\\", "(", ")", ",", ":", ";",
                                                                 "<", ">", "[", "]", "@", "\U0001F600",
                                                                 "\u0130", "\u212a", "A", "Z"]
    LABELS = ["example", "com", "co", "uk", "a", "b", "xn--bcher-kva", "xn--a", "XN--P1AI",
              "bücher", "BÜCHER", "日本", "ex-ample", "-ex", "ex-", "1", "123", "a" * 63, "a" * 64,
              "localhost", "test", "invalid", "example", "onion", "arpa", "local", "_srv",
              "\u0301a", "ß", "ｅｘａｍｐｌｅ", "ex_ample", "\u00ad", "i\u0307", "\u200c"]

    def email(self) -> str:
        r = self.rng
        k = r.random()
        if k < 0.1:
            n = r.choice([63, 64, 65, 200, 245, 254, 255, 2047, 2048, 2049])
            local = "a" * min(n, r.choice([5, 63, 64, 65]))
            domain = ".".join(["b" * 60] * max(1, (n - len(local)) // 61)) + ".com"
            return local + "@" + domain
        local = "".join(r.choice(self.LOCAL) for _ in range(r.choice([0, 1, 2, 3, 5, 8])))
        if r.random() < 0.1:
            local = '"' + "".join(r.choice(self.LOCAL + [" ", "\\\"", "\\\\"])
                                  for _ in range(r.randint(0, 6))) + '"'
        if r.random() < 0.85 and local == "":
            local = "user"
        labels = [r.choice(self.LABELS) for _ in range(r.randint(1, 3))]
        if r.random() < 0.7:
            labels.append(r.choice(["com", "org", "io", "xn--p1ai", "COM", "c0m", "co.uk"]))
        domain = ".".join(labels)
        k = r.random()
        if k < 0.04:  # IPv6 and IPv4 literals, the inputs of Python's ipaddress
            pieces = ["", "", "0", "1", "db8", "ffff", "fffff", "g", "FFFF", "1.2.3.4", "1.2.3",
                      "01.2.3.4", "256.1.1.1", "1.2.3.x", "1..2.3", "%eth0", "%", "/64", "é"]
            text = "".join(r.choice(pieces) + r.choice([":", ":", "::", ".", ""])
                           for _ in range(r.randint(0, 9)))
            domain = "[" + r.choice(["IPv6:", "ipv6:", "IPV6:", "", "IPv4:"]) + text + "]"
        elif k < 0.08:
            domain = r.choice(["[127.0.0.1]", "[IPv6:::1]", "[IPv6:2001:db8::1]", "[1.2.3]",
                               "[ipv6:::1]", "[300.1.1.1]", "[]", "[a]", "[IPv6:fe80::1%eth0]"])
        elif k < 0.1:
            domain += "."
        elif k < 0.13:
            domain = ""
        at = r.choice(["@"] * 12 + ["@@", "", "＠", " @"])
        address = local + at + domain
        k = r.random()
        if k < 0.08:
            address = r.choice(["Ada ", '"Ada L" ', "", "A <b> ", "Ada"]) + "<" + address + ">"
        elif k < 0.12:
            address = r.choice([" ", "\t", "\n", "\r\n", "\x00", "\u00a0"]) + address
        elif k < 0.16:
            address = address + r.choice([" ", "\n", "\r", "\x00", "\u3000", ">"])
        if r.random() < 0.25:
            address = self.mutate_text(address)
        return address

    # forms ------------------------------------------------------------------------------
    PIECES = [b"username", b"password", b"grant_type", b"scope", b"client_id", b"client_secret",
              b"=", b"=", b"&", b"&", b";", b"+", b"%", b"%26", b"%3D", b"%3B", b"%2", b"%e9",
              b"%C3%A9", b"a", b"b", b"password", b" ", b"\xe9", b"\xc3", b"\x80", b"%00", b"%0a",
              b"%ZZ", b"%%", b"%f0%9f%98%80", b"%ed%a0%80", b"\r\n", b"\n", b"%2B", b"++", b"%20"]
    VALUES = [b"a", b"Z", b"0", b"-", b".", b"~", b"_", b"@", b"%40", b";", b"+", b"%20", b"%",
              b"%2", b"%26", b"%3D", b"%3b", b"=", b"\xe9", b"%e9", b"%C3%A9", b"*", b"/", b"!",
              b"%7E", b"password", b"client_credentials", b"PASSWORD", b"%00", b"\t"]
    FIELDS = [b"username", b"password", b"grant_type", b"scope", b"client_id", b"client_secret"]

    def urlencoded(self) -> bytes:
        r = self.rng
        k = r.random()
        if k < 0.35:
            return b"".join(r.choice(self.PIECES) for _ in range(r.randint(1, 16)))
        if k < 0.38:
            n = r.choice([998, 999, 1000, 1001, 1002])
            return b"&".join([b"x=1"] * n) + b"&username=u&password=p"

        def value():
            if r.random() < 0.1:
                return b"grant_type=password"[:r.randint(0, 19)]
            return b"".join(r.choice(self.VALUES) for _ in range(r.randint(0, 6)))
        fields = [b"username=" + value(), b"password=" + value()]
        for name in r.sample(self.FIELDS[2:], r.randint(0, 4)):
            fields.insert(r.randint(0, len(fields)), name + b"=" + value())
        if r.random() < 0.2:
            fields.insert(r.randint(0, len(fields)), r.choice(self.FIELDS) + r.choice([b"", b"=",
                                                                                        b"=x"]))
        body = r.choice([b"&", b"&", b"&&", b";&"]).join(fields)
        if r.random() < 0.2:
            body = self.mutate_form(body)
        return body

    def mutate_form(self, body: bytes) -> bytes:
        r = self.rng
        i = r.randrange(len(body) + 1)
        j = min(len(body), i + r.randint(1, 6))
        k = r.random()
        if k < 0.4:
            return body[:i] + r.choice(self.PIECES) + body[i:]
        if k < 0.7:
            return body[:i] + body[j:]
        return body[:i] + r.choice(self.PIECES) + body[j:]

    CT_FORM = [b"application/x-www-form-urlencoded"] * 8 + [
        b"APPLICATION/X-WWW-FORM-URLENCODED", b" application/x-www-form-urlencoded ",
        b"application/x-www-form-urlencoded; charset=utf-8", b"application/x-www-form-urlencoded;",
        b"application/x-www-form-urlencoded ; charset=latin-1", b"application/x-www-form-urlencodedx",
        b"text/plain", b"application/json", b"", None, b"\tapplication/x-www-form-urlencoded",
        b"application/x-www-form-urlencoded\xe9", b"application/x-www-form-urlencoded; a=\"b;c\"",
        b"multipart/form-data", b"application/x-www-form-urlencoded,text/plain"]

    def multipart(self):
        """(Content-Type, body) of a multipart form, usually well-formed."""
        r = self.rng
        boundary = r.choice([BOUNDARY, BOUNDARY, "a", "----WebKitFormBoundary7MA4YWxkTrZu0gW",
                             "b o u n d", "x" * 70, "x" * 71, "é", "b\"q", "b;c", "-"])
        quote = r.random() < 0.3
        ct = b"multipart/form-data; boundary=" + (
            b'"' + boundary.encode("utf-8") + b'"' if quote else boundary.encode("utf-8"))
        ct = r.choice([ct, ct, ct, ct, ct.upper(), ct + b"; charset=utf-8",
                       b"multipart/form-data", b"multipart/form-data; boundary=",
                       b"multipart/form-data; boundary=\"\"", b"multipart/form-data;boundary="
                       + boundary.encode("utf-8"), b"MULTIPART/FORM-DATA; BOUNDARY="
                       + boundary.encode("utf-8")])
        nl = b"\r\n" if r.random() < 0.93 else b"\n"
        b = boundary.encode("utf-8")
        parts = []
        names = [r.choice(self.FIELDS) for _ in range(r.randint(0, 5))]
        if r.random() < 0.7:
            names = [b"username", b"password"] + names[:2]
            r.shuffle(names)
        for name in names:
            if r.random() < 0.1:
                name = r.choice([b"", b"user name", b"na\\\"me", b"n\xc3\xa9", b"n;x", b"n\"",
                                 b"name\r\n"])
            disp = r.choice([b"form-data", b"form-data", b"form-data", b"Form-Data",
                             b"attachment", b"inline"])
            head = b"Content-Disposition: " + disp + b'; name="' + name + b'"'
            if r.random() < 0.08:
                head = b"Content-Disposition: " + disp + b"; name=" + name
            if r.random() < 0.12:
                head += r.choice([b'; filename="f.txt"', b'; filename=""', b"; filename=f",
                                  b'; filename="a\\"b"', b"; filename*=UTF-8''%C3%A9",
                                  b'; filename="C:\\\\x\\\\y.txt"', b'; filename="\xc3\xa9"'])
            if r.random() < 0.1:
                head += nl + r.choice([b"Content-Type: text/plain", b"Content-Type: text/plain; "
                                       b"charset=latin-1", b"X-Other: 1", b"Content-Length: 3",
                                       b"content-disposition: form-data; name=\"other\"",
                                       b"Content-Transfer-Encoding: base64", b"NoColon",
                                       b" folded"])
            if r.random() < 0.04:
                head = r.choice([b"", b"Content-Type: text/plain", b"Content-Disposition:",
                                 b"Content-Disposition: form-data"])
            value = b"".join(r.choice(self.VALUES + [b"\r\n", b"\n", b"--", b"--" + b, b"\r",
                                                     b"\xff", b"\x00"])
                             for _ in range(r.randint(0, 6)))
            if value == b"" and r.random() < 0.5:
                value = b"v"
            parts.append(b"--" + b + nl + head + nl + nl + value + nl)
        body = (r.choice([b"", b"", b"", b"preamble" + nl]) + b"".join(parts) + b"--" + b + b"--"
                + r.choice([nl, nl, b"", b"epilogue", nl + b"epilogue"]))
        if not parts and r.random() < 0.5:
            body = r.choice([b"", b"--" + b + b"--", b"--" + b + nl, b"garbage"])
        k = r.random()
        if k < 0.12:
            i = r.randrange(len(body) + 1)
            body = body[:i] + r.choice([b"\r\n", b"\n", b"--", b"\r", b":", b";", b"\"", b"\x00",
                                        b"--" + b, b"\xff"]) + body[i:]
        elif k < 0.2:
            i = r.randrange(len(body) + 1)
            body = body[:i] + body[min(len(body), i + r.randint(1, 8)):]
        elif k < 0.25:
            body = body[:r.randrange(len(body) + 1)]
        return ct, body

    CT_JSON = [b"application/json"] * 10 + [
        b"application/json; charset=utf-8", b"APPLICATION/JSON", b"application/vnd.api+json",
        b"application/+json", b"application/json+x", b"text/json", b"application/jsonx",
        b" application/json", b"application/json ;", b"application/json; charset=latin-1",
        b"application/x-www-form-urlencoded", b"", None, b"application", b"application/",
        b"application/json\xe9", b"application/json, text/plain", b"multipart/form-data",
        b"Application/Problem+JSON", b"application/json;", b'application/json; x="a;b"']

    def float_literal(self) -> str:
        """A double as Python prints it (random bits), or one exactly halfway between two
        shortest forms (where repr rounds half to even)."""
        r = self.rng
        if r.random() < 0.5:
            while True:
                x = struct.unpack("<d", struct.pack("<Q", r.getrandbits(64)))[0]
                if math.isfinite(x):
                    return repr(x)
        return repr(r.randint(2 ** 49, 2 ** 50) + r.choice([0.25, 0.75, 0.125, 0.375]))

    def register_body(self) -> bytes:
        r = self.rng
        k = r.random()
        if k < 0.1:
            # A float the 422 echoes as `input` (Python's repr, byte for byte).
            return r.choice(["%s", '{"email": %s}', "[%s]", '{"password": [%s, %s]}']).replace(
                "%s", self.float_literal()).encode()
        if k < 0.3:
            return self.json_doc()
        fields = []
        for name in r.choice([["email", "password"], ["email", "password"], ["password", "email"],
                              ["email"], ["password"], [], ["email", "password", "extra"],
                              ["email", "email", "password"], ["Email", "password"],
                              ["email", "password", "password"]]):
            if name == "email" and r.random() < 0.8:
                value = json.dumps(self.email(), ensure_ascii=r.random() < 0.3)
            elif r.random() < 0.7:
                value = json.dumps(r.choice(["pw", "", "correct horse", "é", "\x00", "a" * 100]))
            else:
                value = self.value(3)
            fields.append(json.dumps(name) + self.ws() + ":" + self.ws() + value)
        text = "{" + ("," + self.ws()).join(fields) + "}"
        if r.random() < 0.06:
            text = r.choice(["[" + text + "]", "null", '"' + text + '"', "1", text + text])
        if r.random() < 0.15:
            text = self.mutate_text(text)
        data = text.encode("utf-8", "surrogatepass")
        if r.random() < 0.04:
            data = self.mutate_bytes(data)
        return data

    def refresh_body(self) -> bytes:
        r = self.rng
        if r.random() < 0.3:
            return self.json_doc()
        value = r.choice([json.dumps("tok"), json.dumps(""), self.string(), self.value(3), "null",
                          "1", "[]", "{}", json.dumps("a" * 300), "NaN", "1e999"])
        key = r.choice(['"refresh_token"'] * 5 + ['"refresh_tokens"', '"REFRESH_TOKEN"', '""'])
        text = "{" + key + ":" + value + r.choice(["", ',"other":1', ',"refresh_token":"x"']) + "}"
        if r.random() < 0.15:
            text = self.mutate_text(text)
        return text.encode("utf-8", "surrogatepass")


# Multipart findings of this script, fixed in src/validate/form_parse.rs: `--record` writes
# Python's answer for each to tests/vectors/multipart-0.0.34.jsonl, which the unit tests replay.
def _part(disposition: bytes, value: bytes = b"v", boundary: bytes = b"b") -> bytes:
    return b"--" + boundary + b"\r\nContent-Disposition: " + disposition + b"\r\n\r\n" + value + b"\r\n"


def _form(*parts: bytes, boundary: bytes = b"b") -> bytes:
    return b"".join(parts) + b"--" + boundary + b"--\r\n"


MULTIPART_FINDINGS = [
    # python-multipart's IE6 rule: a Windows path as filename keeps its last component.
    (b"multipart/form-data; boundary=b",
     _form(_part(b'form-data; name="f"; filename="C:\\\\dir\\\\y.txt"'))),
    (b"multipart/form-data; boundary=b", _form(_part(b"form-data; name=f; filename=C:\\d\\y.txt"))),
    (b"multipart/form-data; boundary=b",
     _form(_part(b'form-data; name="f"; filename="\\\\\\\\host\\\\share\\\\y.txt"'))),
    (b"multipart/form-data; boundary=b", _form(_part(b'form-data; name="f"; filename="a\\b.txt"'))),
    # Quotes and escapes as parse_options_header reads them, not as multer does.
    (b"multipart/form-data; boundary=b", _form(_part(b'form-data; name="n""'))),
    (b"multipart/form-data; boundary=b", _form(_part(b'form-data; name="a\\"b"'))),
    (b"multipart/form-data; boundary=b", _form(_part(b'form-data; name="a\\\\b"'))),
    (b"multipart/form-data; boundary=b", _form(_part(b'form-data; NAME="upper"'))),
    (b"multipart/form-data; boundary=b", _form(_part(b'form-data; name="x;y"; name="last"'))),
    (b"multipart/form-data; boundary=b",
     _form(_part(b"form-data; name=\"u\"; filename*=UTF-8''%C3%A9.txt"))),
    (b"multipart/form-data; boundary=b", _form(b"--b\r\nContent-Disposition: form-data; name=\"one\""
                                               b"\r\ncontent-disposition: form-data; name=\"two\"\r\n"
                                               b"\r\nv\r\n")),
    # A boundary outside ASCII: the header's latin-1 reading, encoded back, is the body's bytes.
    ("multipart/form-data; boundary=é".encode("utf-8"),
     _form(_part(b'form-data; name="username"', boundary="é".encode("utf-8")),
           boundary="é".encode("utf-8"))),
    ('multipart/form-data; boundary="é-1"'.encode("utf-8"),
     _form(_part(b'form-data; name="a"', b"x", "é-1".encode("utf-8")),
           _part(b'form-data; name="b"; filename="f"', b"yy", "é-1".encode("utf-8")),
           boundary="é-1".encode("utf-8"))),
    # A body that stops inside the delimiter after its last part: Python never ends that part.
    *[(b"multipart/form-data; boundary=b", _part(b'form-data; name="a"', b"x")
       + b'--b\r\nContent-Disposition: form-data; name="c"\r\n\r\ny' + tail)
      for tail in [b"\r\n--b", b"\r\n--b-", b"\r\n--b\r", b"\r\n--b--", b"\r\n--b\r\n",
                   b"\r\n--b--\r\n\r\n--b"]],
    # The opening delimiter: `--boundary-` must go on with `-` (the end), as with an empty boundary.
    (b'multipart/form-data; boundary=""', b"-" + _form(_part(b'form-data; name="a"', b"x", b""),
                                                       boundary=b"")),
    (b"multipart/form-data; boundary=", _form(_part(b'form-data; name="a"', b"x", b""), boundary=b"")),
    (b"multipart/form-data; boundary=b", b"--b-x"),
    (b"multipart/form-data; boundary=b", b"--b-"),
    (b"multipart/form-data; boundary=b", b"--b--x"),
    # Inside part data, `CRLF--boundary` is a delimiter only before CRLF, `--` or padding.
    *[(b"multipart/form-data; boundary=b", _part(b'form-data; name="a"', b"x" + mid + b"y")
       + _form(_part(b'form-data; name="c"', b"z")))
      for mid in [b"\r\n--bx", b"\r\n--b-x", b"\r\n--b\rx", b"\r\n--b\r\r\n--b--"]],
    (b"multipart/form-data; boundary=b", b'--b\r\nContent-Disposition: form-data; name="a"\r\n\r\n'
     b'x\r\n--b \t\r\nContent-Disposition: form-data; name="c"\r\n\r\nz\r\n--b--'),
    (b"multipart/form-data; boundary=b", b'--b\r\nContent-Disposition: form-data; name="a"\r\n\r\n'
     b'x\r\n--b  x\r\nContent-Disposition: form-data; name="c"\r\n\r\nz\r\n--b--'),
    (b"multipart/form-data; boundary=b", b'--b\r\nContent-Disposition: form-data; name="a"\r\n\r\n'
     b"x\r\n--b  "),
    (b"multipart/form-data; boundary=b", b'--b\r\nContent-Disposition: form-data; name="a\r\n--b\r\n'
     b'"\r\n\r\nx\r\n--b--'),
]


def record_multipart(python):
    path = os.path.join(ROOT, "tests", "vectors", "multipart-0.0.34.jsonl")
    with open(path, "w", encoding="utf-8") as f:
        for ct, body in MULTIPART_FINDINGS:
            line = {"ct_latin1": latin1(ct), "body_latin1": latin1(body), **python.form(ct, body)}
            f.write(json.dumps(line, ensure_ascii=False) + "\n")
    print(f"wrote {path}", file=sys.stderr)


# Floats a 422 echoes as `input`, where Python's repr rounds a tie half to even: `--record`
# writes FastAPI's /register answer for each to tests/vectors/float-echo-0.165.jsonl.
FLOAT_ECHO_FINDINGS = [b"8.456820135037403e14", b"845682013503740.25", b"845682013503740.75",
                       b"[600000000000000.25, -845682013503741.25]", b"1.0000000000000002",
                       b"5e-324", b"1.7976931348623157e308", b"0.1", b"1e16", b"123456789012345.67"]


def record_float_echo(python):
    path = os.path.join(ROOT, "tests", "vectors", "float-echo-0.165.jsonl")
    with open(path, "w", encoding="utf-8") as f:
        for body in FLOAT_ECHO_FINDINGS:
            status, text = python.call("/register", b"application/json", body)
            f.write(json.dumps({"body": body.decode(), "status": status, "fastapi_body":
                                text.decode()}, ensure_ascii=False) + "\n")
    print(f"wrote {path}", file=sys.stderr)


# ---- the comparisons -----------------------------------------------------------------------

class Run:
    def __init__(self, args, oracle, python, proxy):
        self.args, self.oracle, self.python, self.proxy = args, oracle, python, proxy
        self.deadline = time.monotonic() + args.seconds
        self.stats = {}
        self.out_dir = os.path.join(ROOT, "bench", "out", "diff")
        os.makedirs(self.out_dir, exist_ok=True)
        for stale in glob.glob(os.path.join(self.out_dir, "*.jsonl")):
            os.remove(stale)
        self.files = {}

    def record(self, target, kind, case, reason=None):
        s = self.stats.setdefault(target, {"inputs": 0, "same": 0, "intended": {}, "differ": 0})
        if kind == "same":
            s["same"] += 1
            return
        if kind == "intended":
            s["intended"][reason] = s["intended"].get(reason, 0) + 1
            return
        s["differ"] += 1
        f = self.files.get(target)
        if f is None:
            f = self.files[target] = open(os.path.join(self.out_dir, f"{target}.jsonl"), "w")
        f.write(json.dumps(case, ensure_ascii=False, default=repr) + "\n")
        if s["differ"] <= 3:
            print(f"[diff] {target}: {json.dumps(case, ensure_ascii=False, default=repr)[:600]}",
                  file=sys.stderr)

    def inputs(self, target, fixed, make):
        """The fixed inputs, then generated ones, up to --count in all and the deadline."""
        seen = set()
        n = 0
        generated = (make() for _ in range(self.args.count * 20))
        for item in itertools.chain(list(fixed), generated):
            if n >= self.args.count or time.monotonic() > self.deadline:
                return
            key = repr(item)
            if key in seen:
                continue
            seen.add(key)
            n += 1
            yield item

    def count(self, target):
        self.stats.setdefault(target, {"inputs": 0, "same": 0, "intended": {}, "differ": 0})
        self.stats[target]["inputs"] += 1

    # json ----------------------------------------------------------------------------
    def json(self, gen):
        fixed = list(seed_files("json"))
        for v in jsonl(os.path.join(SHARED, "fastapi-errors.jsonl")):
            if "content" in v["request"]:
                fixed.append(v["request"]["content"].encode("utf-8", "surrogatepass"))
        for body in self.inputs("json", fixed, gen.json_doc):
            self.count("json")
            py = python_json(body)
            rs = self.oracle.ask("json", body)
            if "ok" in py and "ok" in rs:
                same = same_value(py["ok"], untag(rs["ok"]))
            else:
                same = py == rs or ("unparsable" in py and "unparsable" in rs)
            if same:
                self.record("json", "same", None)
                continue
            reason = None
            if "unparsable" in rs and "ok" in py and lone_surrogate_in(body):
                reason = ("a lone surrogate escape: Python carries it (or drops it with a "
                          "duplicate key), the proxy answers 400 (README)")
            elif "unparsable" in rs and "ok" in py and depth(py["ok"]) > 960:
                reason = ("nesting past 960: FastAPI's own stack raises RecursionError (400) "
                          "between 950 and 1000 levels; json.loads alone goes further")
            elif "unparsable" in rs and text_depth(body) > 960:
                reason = ("nesting past 960 before the text ends or fails: the proxy stops there "
                          "with a 400, as FastAPI's stack does between 950 and 1000 levels")
            elif "unparsable" in py and py["unparsable"] == "RecursionError" and "ok" not in rs:
                reason = "nesting past Python's recursion limit: both refuse, Python with a 400"
            if reason:
                self.record("json", "intended", None, reason)
            else:
                self.record("json", "differ", {"body_latin1": latin1(body), "python": py,
                                               "proxy": rs}, None)

    # email ---------------------------------------------------------------------------
    def email(self, gen):
        fixed = [v["input"] for v in jsonl(os.path.join(SHARED, "emails.jsonl"))]
        fixed += [v["input"] for v in jsonl(os.path.join(ROOT, "tests", "vectors",
                                                         "idna-3.21.jsonl"))]
        for raw in seed_files("email"):
            try:
                fixed.append(raw.decode("utf-8"))
            except UnicodeDecodeError:
                pass
        for address in self.inputs("email", fixed, gen.email):
            try:
                body = address.encode("utf-8")
            except UnicodeEncodeError:
                continue  # a lone surrogate: JSON could not carry it to EmailStr (see json)
            self.count("email")
            py = self.python.email(address)
            rs = self.oracle.ask("email", body)
            if rs["result"] != rs["faithful"]:
                self.record("email", "differ", {"input": address, "python": py, "proxy": rs,
                                                "why": "fast path and faithful port disagree"})
            elif rs["result"] == py:
                self.record("email", "same", None)
            else:
                self.record("email", "differ", {"input": address, "python": py,
                                                "proxy": rs["result"]})

    # forms ---------------------------------------------------------------------------
    def form(self, gen):
        fixed = [(b"application/x-www-form-urlencoded", v["body_latin1"].encode("latin-1"))
                 for v in jsonl(os.path.join(ROOT, "tests", "vectors", "forms-0.0.34.jsonl"))]
        fixed += MULTIPART_FINDINGS
        for raw in seed_files("form"):
            ct, nl, body = raw.partition(b"\n")
            fixed.append((ct, body) if nl else (b"application/x-www-form-urlencoded", raw))

        def make():
            r = gen.rng.random()
            if r < 0.55:
                return gen.rng.choice(gen.CT_FORM), gen.urlencoded()
            return gen.multipart()
        for ct, body in self.inputs("form", fixed, make):
            self.count("form")
            py = self.python.form(ct, body)
            rs = self.oracle.ask("form", body, ct)
            if "fields" in py and "fields" in rs:
                same = py["fields"] == rs["fields"]
            elif "status" in py and "status" in rs:
                same = py["status"] == rs["status"] and json.loads(rs["body"]) == {
                    "detail": py["detail"]}
            else:
                same = False
            if same:
                self.record("form", "same", None)
            else:
                self.record("form", "differ", {"ct_latin1": None if ct is None else latin1(ct),
                                               "body_latin1": latin1(body), "python": py,
                                               "proxy": rs})

    # the routes, end to end ----------------------------------------------------------
    def route(self, route, gen):
        path = "/" + route
        if route == "login":
            fixed = [(b"application/x-www-form-urlencoded", v["body_latin1"].encode("latin-1"))
                     for v in jsonl(os.path.join(ROOT, "tests", "vectors", "forms-0.0.34.jsonl"))]

            def make():
                if gen.rng.random() < 0.7:
                    return gen.rng.choice(gen.CT_FORM), gen.urlencoded()
                return gen.multipart()
        else:
            fixed = []
            for v in jsonl(os.path.join(SHARED, "fastapi-errors.jsonl")):
                req = v["request"]
                if req.get("path") != path:
                    continue
                ct = req.get("headers", {}).get("content-type")
                if "json" in req:
                    body = json.dumps(req["json"], ensure_ascii=False, separators=(",", ":"))
                    ct = ct or "application/json"
                else:
                    body = req.get("content", "")
                fixed.append((None if ct is None else ct.encode("latin-1"),
                              body.encode("utf-8", "surrogatepass")))
            body_of = gen.register_body if route == "register" else gen.refresh_body

            def make():
                return gen.rng.choice(gen.CT_JSON), body_of()
        through_proxy = 0
        for ct, body in self.inputs(route, fixed, make):
            self.count(route)
            status, text = self.python.call(path, ct, body)
            rs = self.oracle.ask(route, body, ct)
            case = {"ct_latin1": None if ct is None else latin1(ct), "body_latin1": latin1(body),
                    "python": [status, text.decode("utf-8", "replace")], "proxy": rs}
            verdict = self.compare(route, status, text, rs["status"], rs.get("body"),
                                   rs.get("upstream"), body)
            # Header bytes hyper refuses (controls) never reach a route: not comparable.
            sendable = ct is None or all(c >= 0x20 or c == 0x09 for c in ct) and 0x7F not in ct
            if self.proxy and through_proxy < self.args.proxy_count and sendable:
                through_proxy += 1
                self.count(route + " via proxy")
                p_status, p_body, p_upstream = self.proxy.post(path, ct, body)
                p_verdict = self.compare(route, status, text, p_status,
                                         p_body.decode("utf-8", "replace"),
                                         None if p_upstream is None else
                                         p_upstream.decode("utf-8", "replace"), body)
                pcase = dict(case, proxy=[p_status, p_body.decode("utf-8", "replace"),
                                          None if p_upstream is None else
                                          p_upstream.decode("latin-1")])
                self.record(route + " via proxy", p_verdict[0], pcase, p_verdict[1])
            self.record(route, verdict[0], case, verdict[1])

    def compare(self, route, status, text, rs_status, rs_body, rs_upstream, body):
        """('same' | 'intended' | 'differ', reason)."""
        if route != "login" and status != rs_status and rs_status == 400:
            if lone_surrogate_in(body):
                return "intended", ("a lone surrogate escape: FastAPI carries it (or drops it, "
                                    "or fails with a 500 rendering it back), the proxy answers "
                                    "400 (README)")
            if text_depth(body) > 960:
                return "intended", "nesting past 960 levels: 400 (FastAPI's own limit is ~950-1000)"
        if status == 500:
            return "intended" if rs_status in (400, 422) else "differ", (
                "FastAPI fails (500) rendering its own 422 (a non-finite float in `input`); the "
                "proxy answers the 422 it meant")
        if status != rs_status:
            return "differ", None
        if status != 200:
            try:
                want = expected_rejection(text)
                # Contract §3 also allows leaving out an `input` that holds a secret key deeper
                # than the body's top level (another field's value): accept that reading too.
                strict = json.loads(text)
                for error in strict.get("detail", []) if isinstance(strict, dict) and isinstance(
                        strict.get("detail"), list) else []:
                    if isinstance(error, dict) and holds_secret(error.get("input")):
                        error.pop("input", None)
                    # FastAPI echoes an UploadFile's internals (temp file state); the proxy
                    # leaves that `input` out (src/validate/form.rs).
                    if isinstance(error, dict) and isinstance(error.get("input"), dict) and (
                            "_max_mem_size" in error["input"]):
                        error.pop("input", None)
                also = starlette_json(redact(strict))
                # ... and keeping it: the contract requires the omission only where the error
                # is about a secret field or `input` is the decoded body holding one.
                minimal = json.loads(text)
                try:
                    decoded = json.loads(body) if route != "login" else None
                except (ValueError, RecursionError):
                    decoded = None
                for error in minimal.get("detail", []) if isinstance(minimal, dict) and \
                        isinstance(minimal.get("detail"), list) else []:
                    loc = error.get("loc") or []
                    echoed = error.get("input")
                    if (loc and loc[-1] in SECRETS) or (isinstance(echoed, dict) and (
                            "_max_mem_size" in echoed or (echoed == decoded
                                                          and SECRETS & set(echoed)))):
                        error.pop("input", None)
                minimal = starlette_json(minimal)
            except ValueError:
                return "differ", None
            return ("same", None) if rs_body in (want, also, minimal) else ("differ", None)
        got = rs_upstream or ""
        valid = json.loads(text)
        if route == "login":
            sent = dict(urllib.parse.parse_qsl(got, keep_blank_values=True))
            for key in ("grant_type", "client_id", "client_secret"):
                if not sent.get(key):
                    sent[key] = None
            sent["scope"] = sent.get("scope") or ""
            valid["scope"] = valid["scope"] or ""
            return ("same", None) if sent == valid and set(sent) == set(valid) else (
                "differ", None)
        try:
            sent = json.loads(got)
        except ValueError:
            return "differ", None
        return ("same", None) if sent == valid else ("differ", None)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=3000, help="inputs per target at most")
    parser.add_argument("--seconds", type=float, default=600, help="time limit for the run")
    parser.add_argument("--seed", type=int, default=19)
    parser.add_argument("--only", default="json,email,form,register,refresh,login")
    parser.add_argument("--oracle", default=os.path.join(TARGET, "debug", "examples",
                                                         "diff_oracle"))
    parser.add_argument("--proxy", action="store_true",
                        help="also send the route requests through the running release binary")
    parser.add_argument("--proxy-count", type=int, default=1000,
                        help="route requests per route sent through the proxy")
    parser.add_argument("--bin", default=os.path.join(TARGET, "release", "auth-proxy"))
    parser.add_argument("--record", action="store_true",
                        help="write the findings' vectors (tests/vectors/multipart-0.0.34.jsonl, "
                        "float-echo-0.165.jsonl) from Python and stop")
    args = parser.parse_args()
    if args.record:
        python = PythonSide()
        record_multipart(python)
        record_float_echo(python)
        return
    oracle = Oracle(args.oracle)
    python = PythonSide()
    proxy = RunningProxy(args.bin) if args.proxy else None
    run = Run(args, oracle, python, proxy)
    started = time.monotonic()
    try:
        for target in args.only.split(","):
            gen = Gen(f"{args.seed}-{target}")
            if target in ("register", "refresh", "login"):
                run.route(target, gen)
            else:
                getattr(run, target)(gen)
            s = run.stats.get(target, {})
            print(f"[diff] {target}: {json.dumps(s)}", file=sys.stderr)
    finally:
        oracle.close()
        if proxy:
            proxy.stop()
        for f in run.files.values():
            f.close()
    summary = {"seed": args.seed, "count": args.count, "proxy": args.proxy,
               "date": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
               "seconds": round(time.monotonic() - started), "targets": run.stats}
    with open(os.path.join(run.out_dir, "summary.json"), "w") as f:
        json.dump(summary, f, indent=1)
    print(json.dumps(summary, indent=1))
    sys.exit(1 if any(s["differ"] for s in run.stats.values()) else 0)


if __name__ == "__main__":
    main()
