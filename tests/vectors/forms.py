"""Records how FastAPI 0.165 reads urlencoded /login bodies into tests/vectors/forms-0.0.34.jsonl.

The oracle for the proxy's urlencoded form parsing (contract v2: python-multipart 0.0.34, where
`&` is the only separator). Run it on demand, never from the tests:

    python3 -m venv /tmp/forms-venv
    /tmp/forms-venv/bin/pip install fastapi==0.165.0 python-multipart==0.0.34 httpx
    /tmp/forms-venv/bin/python tests/vectors/forms.py > tests/vectors/forms-0.0.34.jsonl

One JSON object a line:
- `body_latin1`: the request body, one character per byte (so any byte can be written);
- `fields`: the [name, value] pairs Starlette's FormParser makes of it (python-multipart's
  QuerystringParser callbacks, then Starlette's latin-1 + `unquote_plus`), in order, or
  `form_error`: the message of the 400 Starlette answers instead;
- `status`, `body`: FastAPI's answer for an `OAuth2PasswordRequestForm` endpoint, the body as
  its exact text; a 200 body is the six values the form holds (`scope` as sent);
- `proxy_body`: the body the proxy must send for a 4xx (FastAPI's, with contract §3's secret
  redaction applied), absent for a 200.
"""
import asyncio
import functools
import json
import random
import sys
from typing import Annotated

import fastapi
import python_multipart
import starlette
from fastapi import Depends, FastAPI
from fastapi.security import OAuth2PasswordRequestForm
from fastapi.testclient import TestClient
from starlette.datastructures import Headers
from starlette.formparsers import FormParser, MultiPartException

assert fastapi.__version__ == "0.165.0", fastapi.__version__
assert python_multipart.__version__ == "0.0.34", python_multipart.__version__

SECRETS = {"password", "client_secret", "refresh_token"}
FORM = "application/x-www-form-urlencoded"

# The form keeps `scope` only split into `scopes`; keep the value as sent too. `wraps` keeps
# the signature FastAPI reads the parameters from, so validation is the real class's.
_init = OAuth2PasswordRequestForm.__init__


@functools.wraps(_init)
def _init_keeping_scope(self, *args, **kwargs):
    _init(self, *args, **kwargs)
    self.scope_as_sent = kwargs.get("scope")


OAuth2PasswordRequestForm.__init__ = _init_keeping_scope

app = FastAPI()


@app.post("/login")
def login(form: Annotated[OAuth2PasswordRequestForm, Depends()]):
    return {
        "grant_type": form.grant_type,
        "username": form.username,
        "password": form.password,
        "scope": form.scope_as_sent,
        "client_id": form.client_id,
        "client_secret": form.client_secret,
    }


def starlette_fields(body: bytes):
    async def stream():
        yield body

    parser = FormParser(Headers({"content-type": FORM}), stream())
    try:
        form = asyncio.run(parser.parse())
    except MultiPartException as e:
        return None, e.message
    return [[k, v] for k, v in form.multi_items()], None


def redact(body):
    for error in body.get("detail", []) if isinstance(body.get("detail"), list) else []:
        loc = error.get("loc") or []
        echoed = error.get("input")
        if (loc and loc[-1] in SECRETS) or (isinstance(echoed, dict) and SECRETS & set(echoed)):
            error.pop("input", None)
    return body


def starlette_json(value) -> str:
    return json.dumps(value, ensure_ascii=False, allow_nan=False, separators=(",", ":"))


HANDWRITTEN = [
    # `&` is the only separator; `;` is data (0.0.20 and older split on it).
    b"username=a;password=b",
    b"username=a&password=t;",
    b"username=a;&password=b;c=d",
    b"username=u&password=p;grant_type=password",
    b";username=a&password=b",
    b"username=a&password=b&;",
    b"username=a&password=b&scope=a;b c",
    # Empty fields, runs of `&`, `&` at either end.
    b"",
    b"&",
    b"&&&",
    b"username=a&&password=b",
    b"&username=a&password=b&",
    b"&&username=a&&&password=b&&",
    b"username=&password=b",
    b"username=a&password=",
    b"username=a&password=b&grant_type=",
    b"username=a&password=b&scope=&client_id=&client_secret=",
    # `=` in values, names without `=` (an empty value, also at the very end), empty names.
    b"username=a=b&password=c==",
    b"username&password=b",
    b"username=a&password",
    b"username=a&password=b&username",
    b"password=b&username",
    b"=a&username=u&password=p",
    b"=&username=u&password=p",
    b"==&username=u&password=p",
    b"username=u&password=p&=",
    b"a&b&c",
    # `+` and `%` escapes, valid and not; percent-encoded `&`, `=` and `;`.
    b"username=a+b&password=c%20d",
    b"username=a%2Bb&password=%2B",
    b"username=a%26password%3Db&password=p",
    b"user%6Eame=a&pass%77ord=b",
    b"username=a%3Bpassword%3Db",
    b"username=%zz&password=%4",
    b"username=%&password=%%",
    b"username=%e9&password=%C3%A9",
    b"username=%c3&password=%a9%c3",
    b"username=%F0%9F%98%80&password=%ED%A0%80",
    b"username=a%00b&password=p%0a",
    b"username=+&password=+",
    b"username=%20&password=p",
    # Non-UTF-8 and non-ASCII bytes (Starlette decodes the body as latin-1).
    b"username=\xe9&password=\xff",
    b"username=\xc3\xa9&password=p",
    b"username=a\x80b&password=p",
    b"\xe9=x&username=u&password=p",
    # Repeated keys: the last value is the one FastAPI reads; "" counts as not sent.
    b"username=a&username=b&password=p",
    b"username=a&password=p&username=",
    b"username=&username=a&password=p",
    b"username=a&password=p&password=q",
    b"username=a&password=p&grant_type=password&grant_type=client_credentials",
    b"username=a&password=p&grant_type=client_credentials&grant_type=password",
    b"username=a&password=p&grant_type=client_credentials&grant_type=",
    # grant_type and the optional fields.
    b"grant_type=password&username=a&password=p&scope=read+write&client_id=c&client_secret=s",
    b"grant_type=PASSWORD&username=a&password=p",
    b"grant_type=password%0A&username=a&password=p",
    b"username=a&password=p&scope=+a++b+",
    b"username=a&password=p&scope",
    b"username=a&password=p&client_id&client_secret",
    b"username=a&password=p&unknown=1&Username=x",
    b"USERNAME=a&PASSWORD=b",
    b"username =a&password= b",
    # Field counts around Starlette's max_fields (1000).
    b"&".join([b"x"] * 999) + b"&username=u&password=p",
    b"&".join([b"x"] * 998) + b"&username=u&password=p",
    b"&".join([b"x"] * 1001),
    b"&" * 3000 + b"username=u&password=p",
]

# Random bodies over the bytes that matter, for the cases no one thought of (seeded: the file
# is the same on every run).
PIECES = [b"username", b"password", b"grant_type", b"scope", b"client_id", b"client_secret",
          b"=", b"=", b"&", b"&", b";", b"+", b"%", b"%26", b"%3D", b"%3B", b"%2", b"%e9",
          b"%C3%A9", b"a", b"b", b"password", b" ", b"\xe9", b"\xc3", b"\x80", b"=password"]


VALUE_PIECES = [b"a", b"Z", b"0", b"-", b".", b"~", b"_", b"@", b"%40", b";", b"+", b"%20", b"%", b"%2",
                b"%26", b"%3D", b"%3b", b"=", b"\xe9", b"%e9", b"%C3%A9", b"*", b"/", b"!", b"%7E"]
OPTIONAL = [b"grant_type", b"scope", b"client_id", b"client_secret"]


def generated(count: int):
    rng = random.Random(34)
    for _ in range(count):
        yield b"".join(rng.choice(PIECES) for _ in range(rng.randint(1, 14)))


def generated_forms(count: int):
    """Forms with both required fields and random values, so that most are valid."""
    rng = random.Random(340)

    def value():
        return b"".join(rng.choice(VALUE_PIECES) for _ in range(rng.randint(0, 6)))

    for _ in range(count):
        fields = [b"username=" + value(), b"password=" + value()]
        for name in rng.sample(OPTIONAL, rng.randint(0, 4)):
            fields.insert(rng.randint(0, len(fields)), name + b"=" + value())
        yield rng.choice([b"&", b"&", b"&&", b";&"]).join(fields)


def main():
    client = TestClient(app)
    seen = set()
    for body in HANDWRITTEN + list(generated(250)) + list(generated_forms(250)):
        if body in seen:
            continue
        seen.add(body)
        fields, form_error = starlette_fields(body)
        r = client.post("/login", content=body, headers={"content-type": FORM})
        line = {"body_latin1": body.decode("latin-1")}
        if form_error is None:
            line["fields"] = fields
        else:
            line["form_error"] = form_error
        line["status"] = r.status_code
        line["body"] = r.text
        if r.status_code != 200:
            line["proxy_body"] = starlette_json(redact(r.json()))
        sys.stdout.write(json.dumps(line, ensure_ascii=False) + "\n")


if __name__ == "__main__":
    main()
