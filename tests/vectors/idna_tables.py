"""Writes src/validate/idna_tables.rs: the IDNA 2008 tables of the Python `idna` package.

email-validator 2.4 decodes Punycode domains with `idna.decode`, whose `check_label` uses the
package's own derived tables (PVALID, CONTEXTJ, CONTEXTO, joining types, scripts); these are
copied from it so that the proxy accepts and words exactly what it does. `check_bidi` reads
`unicodedata.bidirectional` (the Python's own Unicode version, "" for a code point it does not
know): that table comes from the Python that runs this script. Run on demand:

    python3 -m venv /tmp/idna-venv && /tmp/idna-venv/bin/pip install idna==3.21
    /tmp/idna-venv/bin/python tests/vectors/idna_tables.py > src/validate/idna_tables.rs
    cargo fmt  # the tables as committed were written by CPython 3.11
"""
import sys
import unicodedata

import idna
from idna import idnadata


def ranges(name, packed):
    # `intranges`: each int is start << 32 | end, end exclusive.
    out = [f"pub const {name}: &[(u32, u32)] = &["]
    for r in packed:
        out.append(f"    (0x{r >> 32:X}, 0x{r & 0xFFFFFFFF:X}),")
    out.append("];")
    return "\n".join(out)


def main():
    print(f"//! IDNA 2008 tables of the Python `idna` package {idna.__version__} (Unicode "
          f"{idnadata.__version__}), written by")
    print("//! `tests/vectors/idna_tables.py`; do not edit. Each range is `(start, end)`, end exclusive.")
    print()
    print("// Generated data: long hexadecimal literals are code points, not numbers to read.")
    print("#![allow(clippy::unreadable_literal)]")
    print()
    print("#[cfg(test)]")
    print(f'pub const IDNA_VERSION: &str = "{idna.__version__}";')
    print()
    classes = idnadata.codepoint_classes
    for name in ["PVALID", "CONTEXTJ", "CONTEXTO"]:
        print(ranges(name, classes[name]))
        print()
    for jt in ["T", "L", "D", "R"]:
        print(f"/// Joining type {jt}.")
        print(ranges(f"JOINING_{jt}", idnadata.joining_types[jt]))
        print()
    for script in ["Greek", "Hebrew", "Hiragana", "Katakana", "Han"]:
        print(ranges(script.upper(), idnadata.scripts[script]))
        print()
    print(f"/// `unicodedata.bidirectional` of Python {sys.version.split()[0]} (Unicode "
          f"{unicodedata.unidata_version}): each run's first code point and class.")
    print("pub const BIDI: &[(u32, &str)] = &[")
    prev = None
    for cp in range(0x110000):
        b = unicodedata.bidirectional(chr(cp))
        if b != prev:
            print(f'    (0x{cp:X}, "{b}"),')
            prev = b
    print("];")


if __name__ == "__main__":
    main()
