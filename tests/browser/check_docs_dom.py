"""Checks the DOM that headless Chromium rendered for /docs: Swagger UI loaded the embedded
bundle, fetched /openapi.json, and shows every operation of the proxy.

Usage: python3 check_docs_dom.py DOM_FILE
"""

import re
import sys

# (method, path) of every operation the page must show; the four forwarded routes first.
EXPECTED = [
    ("post", "/register"),
    ("post", "/login"),
    ("post", "/refresh"),
    ("get", "/protected"),
    ("get", "/healthz"),
    ("get", "/readyz"),
]


def main(dom_path: str) -> int:
    with open(dom_path, encoding="utf-8") as dom_file:
        dom = dom_file.read()
    problems = []
    if 'class="swagger-ui' not in dom:
        problems.append("Swagger UI did not render (no .swagger-ui element): bundle not loaded?")
    if "Failed to load API definition" in dom:
        problems.append("Swagger UI could not load /openapi.json")
    # Each operation renders as <div class="opblock opblock-post ..."> holding
    # <span class="opblock-summary-path" data-path="/register">.
    shown = set()
    for block in dom.split('class="opblock opblock-')[1:]:
        method = re.match(r"[a-z]+", block)
        path = re.search(r'data-path="([^"]*)"', block)
        if method and path:
            shown.add((method.group(0), path.group(1)))
    for method, path in EXPECTED:
        if (method, path) not in shown:
            problems.append(f"operation {method.upper()} {path} not shown")
    if "Authorize" not in dom:
        problems.append("no Authorize button: the security scheme is missing")
    for problem in problems:
        print(f"docs DOM check: {problem}", file=sys.stderr)
    if not problems:
        print(f"docs DOM check: Swagger UI shows all {len(EXPECTED)} operations and Authorize")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
