#!/usr/bin/env python3
"""Finds circles in the graph of `crate::...` paths between the files of src/.

Every `crate::a::b::c` path (in a `use` or inline) is an edge from the file it is written in to
the deepest file the path names (src/a/b.rs or src/a/b/mod.rs, else src/a.rs ...). A file's own
submodules (`mod x;`, `self::`, `super::`) are not edges: they are the file's own rooms. Prints
each strongly connected set of more than one file; exits 1 if there is one.
"""
import os
import re
import sys

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "src")


def module_of(path):
    rel = os.path.relpath(path, ROOT)[:-3].split(os.sep)
    if rel[-1] in ("mod", "lib", "main"):
        rel = rel[:-1]
    return tuple(rel)


def file_of(parts):
    """The deepest file that `crate::parts...` points into."""
    for n in range(len(parts), 0, -1):
        base = os.path.join(ROOT, *parts[:n])
        for candidate in (base + ".rs", os.path.join(base, "mod.rs")):
            if os.path.isfile(candidate):
                return candidate
    return os.path.join(ROOT, "lib.rs")


def uses(text):
    """Every `crate::` path, `use crate::{a, b::{c}}` groups expanded one level deep enough."""
    text = re.sub(r"//[^\n]*", "", text)
    found = []
    for m in re.finditer(r"\bcrate::([A-Za-z_][\w:]*)(::\{([^;]*?)\})?", text):
        head = [p for p in m.group(1).split("::") if p]
        if m.group(3) is None:
            found.append(head)
            continue
        for item in re.split(r",", re.sub(r"\{[^{}]*\}", "", m.group(3))):
            item = item.strip().split(" as ")[0].strip()
            if item and item != "self":
                found.append(head + [p for p in item.split("::") if p])
            elif item == "self":
                found.append(head)
        for inner in re.finditer(r"([\w:]+)::\{", m.group(3)):
            found.append(head + [p for p in inner.group(1).split("::") if p])
    return found


files = []
for dirpath, _, names in os.walk(ROOT):
    files += [os.path.join(dirpath, n) for n in names if n.endswith(".rs")]
graph = {}
for f in files:
    with open(f, encoding="utf-8") as fh:
        text = fh.read()
    edges = set()
    for parts in uses(text):
        target = file_of(parts)
        if os.path.normpath(target) != os.path.normpath(f):
            edges.add(os.path.normpath(target))
    graph[os.path.normpath(f)] = edges

# Tarjan's strongly connected components.
index, low, stack, on, sccs, counter = {}, {}, [], set(), [], [0]
sys.setrecursionlimit(10000)


def visit(v):
    index[v] = low[v] = counter[0]
    counter[0] += 1
    stack.append(v)
    on.add(v)
    for w in graph.get(v, ()):
        if w not in index:
            visit(w)
            low[v] = min(low[v], low[w])
        elif w in on:
            low[v] = min(low[v], index[w])
    if low[v] == index[v]:
        comp = []
        while True:
            w = stack.pop()
            on.discard(w)
            comp.append(w)
            if w == v:
                break
        if len(comp) > 1:
            sccs.append(sorted(comp))


for v in sorted(graph):
    if v not in index:
        visit(v)
for comp in sccs:
    print("circle:", " ".join(os.path.relpath(c, ROOT) for c in comp))
    for c in comp:
        inside = sorted(os.path.relpath(t, ROOT) for t in graph[c] if t in comp)
        print("   ", os.path.relpath(c, ROOT), "->", ", ".join(inside))
print(f"{len(graph)} files, {sum(map(len, graph.values()))} edges, {len(sccs)} circles")
sys.exit(1 if sccs else 0)
