#!/usr/bin/env python3
"""Module dependency graph of rcf-core: `crate::X` references per top-level module (submodules
folded into their parent, test modules left out); exits 1 if the graph has a cycle."""
import pathlib, re, sys

src = pathlib.Path(sys.argv[1] if len(sys.argv) > 1 else "rust/rcf-core/src")
edges = {}
for f in sorted(src.rglob("*.rs")):
    rel = f.relative_to(src).parts
    mod = rel[0].removesuffix(".rs")
    if mod in ("lib", "main"):
        continue
    text = f.read_text().split("#[cfg(test)]")[0]
    text = re.sub(r"//.*", "", text)
    deps = set(re.findall(r"\bcrate::([a-z_0-9]+)", text))
    # `use crate::{a::X, b::Y}` groups
    for group in re.findall(r"crate::\{([^}]*)\}", text):
        deps |= set(re.findall(r"\b([a-z_0-9]+)::", group))
    edges.setdefault(mod, set()).update(d for d in deps if d != mod)
for m in sorted(edges):
    print(f"{m:12} -> {', '.join(sorted(edges[m])) or '(nothing)'}")
# cycle check (depth-first)
state, cycle = {}, []
def visit(m, stack):
    state[m] = 1
    for d in sorted(edges.get(m, ())):
        if state.get(d) == 1:
            cycle.append(stack[stack.index(d):] + [d] if d in stack else [m, d])
        elif d not in state:
            visit(d, stack + [d])
    state[m] = 2
for m in sorted(edges):
    if m not in state:
        visit(m, [m])
if cycle:
    print("CYCLES:", *[" -> ".join(c) for c in cycle], sep="\n  ")
    sys.exit(1)
print("no cycle")
