#!/usr/bin/env python3
"""Fails when files of one crate import each other in a circle.

For every crate's src/ tree, a file's module path is derived from its place (foo.rs and foo/mod.rs
are `foo`, foo/bar.rs is `foo::bar`), and an edge a -> b is every `crate::b…` or `super::…` path the
file a names that resolves to another module b. Edges between a module and its own ancestors or
descendants are left out: a submodule is part of its parent (an `impl` of the parent's type in a
child file is how a role gets a file of its own). What remains must have no cycle: two sibling
modules that use each other are one idea in two files, or need a third module both use.

Usage: .ci/import_cycles.py [crate_dir ...]   (default: every workspace member and the root)
"""

import os
import re
import sys

PATH = re.compile(r"\b(crate|super)((?:::[A-Za-z_][A-Za-z0-9_]*)+|::\{)")
USE_GROUP = re.compile(r"\buse\s+(crate|super)((?:::[A-Za-z_][A-Za-z0-9_]*)*)::\{([^;]*)\};", re.S)


def module_of(src, path):
    rel = os.path.relpath(path, src)[:-3].split(os.sep)
    if rel[-1] in ("mod", "lib", "main"):
        rel = rel[:-1]
    return tuple(rel)


def strip_comments(text):
    text = re.sub(r"//[^\n]*", "", text)
    return re.sub(r"/\*.*?\*/", "", text, flags=re.S)


def resolve(modules, start, segments):
    """The longest module path among `modules` that `start` + `segments` names."""
    best = None
    path = list(start)
    for seg in segments:
        if seg == "super":
            path = path[:-1]
            continue
        path.append(seg)
        if tuple(path) in modules:
            best = tuple(path)
    if best is None and tuple(path[: len(start)]) == start:
        return None
    return best


def edges_of(modules, module, text, is_dir_module):
    # `super` of foo.rs (module foo) is foo's parent; the same for foo/mod.rs.
    parent = module[:-1]
    out = set()
    names = []
    for m in USE_GROUP.finditer(text):
        root, prefix, body = m.group(1), m.group(2), m.group(3)
        base = [s for s in prefix.split("::") if s]
        for item in re.split(r"[,\s{}]+", body):
            item = item.split("::")[0].strip()
            if item and item not in ("self",):
                names.append((root, base + [item]))
            elif item == "self":
                names.append((root, base))
    for m in PATH.finditer(text):
        root = m.group(1)
        segs = [s for s in m.group(2).split("::") if s and s != "{"]
        names.append((root, segs))
    for root, segs in names:
        if root == "crate":
            start = ()
        else:
            start = parent
            # `super::super::x`
            while segs and segs[0] == "super":
                start = start[:-1]
                segs = segs[1:]
        target = resolve(modules, start, segs) if segs else (start if start in modules else None)
        if target is None or target == module:
            continue
        # A module and its ancestors or descendants are one unit.
        n = min(len(target), len(module))
        if target[:n] == module[:n]:
            continue
        out.add(target)
    return out


def cycles(graph):
    index, low, stack, on, comps = {}, {}, [], set(), []
    counter = [0]

    def strong(v):
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on.add(v)
        for w in graph.get(v, ()):
            if w not in index:
                strong(w)
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
                comps.append(comp)

    sys.setrecursionlimit(10000)
    for v in list(graph):
        if v not in index:
            strong(v)
    return comps


def check(crate_dir):
    src = os.path.join(crate_dir, "src")
    files = {}
    for dirpath, _, names in os.walk(src):
        for name in names:
            if name.endswith(".rs"):
                path = os.path.join(dirpath, name)
                files[module_of(src, path)] = path
    modules = set(files)
    # Every prefix of a module is a module too (for `crate::a::b` where a is a folder).
    for m in list(modules):
        for i in range(len(m)):
            modules.add(m[:i])
    graph = {}
    for module, path in files.items():
        text = strip_comments(open(path, encoding="utf-8").read())
        graph[module] = edges_of(modules, module, text, path.endswith("mod.rs"))
    # Edges into a folder module count for the folder's file.
    found = cycles(graph)
    for comp in found:
        names = sorted("::".join(m) or "<root>" for m in comp)
        print(f"{crate_dir}: import circle between {', '.join(names)}")
    return not found


def main():
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    crates = sys.argv[1:]
    if not crates:
        crates = ["."] + [
            d
            for d in sorted(os.listdir(root))
            if os.path.isfile(os.path.join(root, d, "Cargo.toml")) and os.path.isdir(os.path.join(root, d, "src"))
        ]
    ok = all([check(os.path.join(root, c)) for c in crates])
    if ok:
        print(f"no import circles in {len(crates)} crates")
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
