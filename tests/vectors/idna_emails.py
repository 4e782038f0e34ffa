"""Records what EmailStr says about addresses whose domain has a Punycode (`xn--`) label, into
tests/vectors/idna-3.21.jsonl: email-validator 2.4 decodes such a domain with the `idna`
package, and its errors carry that package's wording. At the end come the addresses on which
bench/diff_fuzz.py found the proxy's reason different (IDNA, IP literals). Run on demand:

    python3 -m venv /tmp/idna-venv
    /tmp/idna-venv/bin/pip install pydantic==2.14.4 email-validator==2.4.0 idna==3.21
    /tmp/idna-venv/bin/python tests/vectors/idna_emails.py > tests/vectors/idna-3.21.jsonl

One JSON object a line: `input`, `valid`, and `normalized` or `msg`, as in ../shared/vectors/emails.jsonl.
"""
import json
import random
import sys

import email_validator
import idna
from pydantic import BaseModel, EmailStr, ValidationError

assert email_validator.__version__ == "2.4.0", email_validator.__version__
assert idna.__version__ == "3.21", idna.__version__


class M(BaseModel):
    email: EmailStr


def punycode(text: str) -> str:
    return "xn--" + text.encode("punycode").decode("ascii")


# Code points near every rule of IDNA 2008's check_label.
POOL = (
    [chr(c) for c in range(0x80, 0x100)]  # C1 controls, latin-1 (PVALID and not)
    + list("éüßøæ")
    + ["\u0300", "\u0301", "\u0308", "\u094d", "\u0903"]  # combining marks, a virama
    + ["\u200c", "\u200d"]  # CONTEXTJ joiners
    + ["\u00b7", "l", "\u0375", "\u03b1", "\u05f3", "\u05d0", "\u30fb", "\u30a2", "\u4e00"]  # CONTEXTO
    + ["\u0660", "\u0661", "\u06f0", "\u06f1", "\u0628", "\u0644", "\u0627", "\u05d1"]  # Arabic, Hebrew
    + ["1", "a", "-", "z", "\u0915", "\u0939", "\u0646"]
    + ["\u2163", "\u212b", "\u00c5", "A\u030a", "\u1e9e", "\u03c2", "\uff21"]  # mapped, non-NFC
    + ["\u0378", "\ue000", "\U000e0001", "\u2028", "\ufeff", "\u00ad"]  # unassigned, private, format
    + ["\u0627\u0661", "\u05d0-", "-\u05d0", "\u05d01", "1\u05d0"]
)


def labels():
    yield from ["xn--a", "XN--A", "xn--ls8h", "xn--bcher-kva", "xn---bbk", "xn--bbk",
                "xn--zz", "xn--99999999", "xn--a-", "xn--ab-", "xn--0", "xn--9", "xn--aa",
                "xn--bcher-KVA", "xn--BCHER-kva", "xn--abc-def-", "xn----", "xn--a--b",
                "xn--e1afmkfd", "xn--p1ai", "xn--mgbh0a", "xn--4gbrim", "xn--4dbrk0ce",
                "xn--1ch", "xn--ssa", "xn--zca", "xn--ida", "xn--nxa", "xn--wgv71a"]
    rng = random.Random(321)
    for _ in range(400):  # raw Punycode digits: mostly invalid or forbidden code points
        yield "xn--" + "".join(rng.choice("abcdefghijklmnopqrstuvwxyz0123456789")
                               for _ in range(rng.randint(1, 8)))
    for _ in range(900):  # encodings of code point mixes
        text = "".join(rng.choice(POOL) for _ in range(rng.randint(1, 4)))
        try:
            label = punycode(text)
        except UnicodeError:
            continue
        if len(label) <= 63 and not label.endswith("-"):
            yield label
    for _ in range(150):  # ASCII base with an extension
        base = "".join(rng.choice("ab-1") for _ in range(rng.randint(0, 3)))
        text = base + rng.choice(POOL)
        label = punycode(text)
        if len(label) <= 63:
            yield label


# Found by bench/diff_fuzz.py where the proxy's reason differed (it validated labels while
# mapping them, as the Rust `idna` crate does, where email-validator only maps, checks dots and
# hyphens, then runs `idna.alabel` label by label): each now a vector.
DIFFERENTIAL_FINDINGS = [
    "|@example.xn--a.i\u0307",
    '"Ada L" <user@\u65e5\u672c.\u0301a>',
    "{\u212a@com.\u0301a.1.",
    "user@example.B\u00dcCHER." + "a" * 64 + ".co.uk",
    "user@b\u00fccher." + "a" * 63 + ".com",
    "a@\u0301b.com",
    "a@b\u00fccher-.com",
    "a@xn--a.b\u00fccher.com",
    "a@\u05d0\u0661.com",
    "a@a\u200d.com",
    # Domain literals: email-validator quotes Python's ipaddress errors word for word.
    "user@[IPv6:fe80::1%eth0]",
    "user@[IPv6:fe80::1%]",
    "user@[ipv6:::/*1]",
    "user@[IPv6:fe80'eth0]",
    "user@[IPv6:1:2:3:4:5:6:7:8:9]",
    "user@[IPv6:1::2::3]",
    "user@[IPv6::1:2:3:4:5:6:7]",
    "user@[IPv6:1:2:3:4:5:6:7:]",
    "user@[IPv6:1:2:3:4:5:6:7::8]",
    "user@[IPv6:1:2:3:4:5:6:7]",
    "user@[IPv6:fffff::1]",
    "user@[IPv6:g::1]",
    "user@[IPv6:::1.2.3]",
    "user@[IPv6:::01.2.3.4]",
    "user@[IPv6:::256.1.1.1]",
    "user@[IPv6:::1.2.3.x]",
    "user@[IPv6:]",
    "user@[IPv6:::\u00e9]",
    "user@[IPv6:2001:db8::1]",
    "user@[1.2.3.04]",
]


def line_for(address):
    """One vector line: EmailStr's verdict on `address`, and its normalised form or message."""
    try:
        return {"input": address, "valid": True, "normalized": M(email=address).email}
    except ValidationError as e:
        return {"input": address, "valid": False, "msg": e.errors()[0]["msg"]}


def main():
    seen = set()
    generated = (address for label in labels() for address in [f"a@{label}.com", f"a@example.{label}"])
    for address in [*generated, *DIFFERENTIAL_FINDINGS]:
        if address in seen:
            continue
        seen.add(address)
        sys.stdout.write(json.dumps(line_for(address), ensure_ascii=False) + "\n")

if __name__ == "__main__":
    main()
