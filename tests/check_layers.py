#!/usr/bin/env python3
"""The layering test: reads the layer order and the public-header owners from
docs/architecture.md, then every #include of src/ and include/vdvae/, and fails on any edge
that points up or sideways, on one backend including another, and on a backend constructor
called outside the registry. With --self-test it first checks that it catches each kind of
violation in a small made-up tree."""
import os
import re
import sys
import tempfile

INCLUDE = re.compile(r'^\s*#\s*include\s+"([^"]+)"', re.M)
CTOR_CALL = re.compile(r'\bvd_backend_create_(?!profile\b)\w+\s*\(')
REGISTRY = "src/run/backends.c"


def fenced(text, tag):
    m = re.search(r"```" + tag + r"\n(.*?)```", text, re.S)
    if not m:
        sys.exit(f"docs/architecture.md: no ```{tag} block")
    return [l.strip() for l in m.group(1).splitlines() if l.strip()]


def read_doc(root):
    text = open(os.path.join(root, "docs/architecture.md"), encoding="utf-8").read()
    rows = fenced(text, "layers")
    level = {}
    for depth, row in enumerate(reversed(rows)):
        for mod in row.split():
            level[mod] = depth
    owner = {}
    for line in fenced(text, "headers"):
        names, mod = line.split(":")
        for h in names.split():
            owner[h] = mod.strip()
    return level, owner


def module_of(include, owner):
    """The layer module an include names, or None for includes outside src/ and include/."""
    parts = include.split("/")
    if parts[0] == "vdvae":
        return owner.get(parts[1], "?" + include)
    return parts[0] if len(parts) > 1 else None


def sources(root):
    for top in ("src", "include/vdvae"):
        for dirpath, _, files in os.walk(os.path.join(root, top)):
            for f in sorted(files):
                if f.endswith((".c", ".h", ".cu", ".cuh")):
                    path = os.path.join(dirpath, f)
                    yield os.path.relpath(path, root), open(path, encoding="utf-8").read()


def check(root):
    level, owner = read_doc(root)
    errors = []
    for rel, text in sources(root):
        parts = rel.split("/")
        me = owner.get(parts[2], "?") if parts[0] == "include" else parts[1]
        if me not in level:
            errors.append(f"{rel}: folder '{me}' is not in the layer table of docs/architecture.md")
            continue
        for m in INCLUDE.finditer(text):
            inc = m.group(1)
            line = text.count("\n", 0, m.start()) + 1
            mod = module_of(inc, owner)
            if mod is None or mod == me:
                pass
            elif mod not in level:
                errors.append(f"{rel}:{line}: includes {inc}: '{mod}' is not in the layer table")
            elif level[mod] >= level[me]:
                way = "a sideways" if level[mod] == level[me] else "an upward"
                errors.append(f"{rel}:{line}: {me} includes {inc} of {mod}: {way} edge")
            ip = inc.split("/")
            if ip[0] == "backend" and len(ip) > 2 and parts[:3] != ["src", "backend", ip[1]]:
                errors.append(f"{rel}:{line}: includes {inc}, a header of the {ip[1]} backend")
        if rel.startswith("src/") and not rel.startswith("src/backend/") and rel != REGISTRY:
            for m in CTOR_CALL.finditer(text):
                line = text.count("\n", 0, m.start()) + 1
                errors.append(f"{rel}:{line}: creates a backend ({m.group(0).strip()}...): only "
                              f"vd_backend_open in {REGISTRY} does")
    return errors


def self_test(root):
    """A tree with one violation of each kind must give exactly those errors."""
    doc = open(os.path.join(root, "docs/architecture.md"), encoding="utf-8").read()
    files = {
        "docs/architecture.md": doc,
        "src/synth/a.c": '#include "train/trainer.h"\n',
        "src/nn/b.c": '#include "run/session.h"\n#include "backend/cpu/cpu.h"\n',
        "src/backend/cpu_ref/c.c": '#include "backend/cpu/cpu.h"\n',
        "src/train/d.c": "void f(void) { vd_backend_create_cpu(0, 1, 0); }\n",
        "src/run/ok.c": '#include "nn/net.h"\n#include "vdvae/data.h"\n#include "core/fs.h"\n',
        "include/vdvae/model.h": '#include "vdvae/train.h"\n',
    }
    with tempfile.TemporaryDirectory() as tmp:
        for rel, text in files.items():
            os.makedirs(os.path.dirname(os.path.join(tmp, rel)), exist_ok=True)
            open(os.path.join(tmp, rel), "w").write(text)
        got = check(tmp)
    want = ["src/synth/a.c:1", "src/nn/b.c:1", "src/nn/b.c:2", "src/backend/cpu_ref/c.c:1",
            "src/train/d.c:1", "include/vdvae/model.h:1"]
    found = sorted({e.split(": ")[0] for e in got})
    if found != sorted(want) or any(e.startswith("src/run/ok.c") for e in got):
        print("self-test FAILED: expected violations at", sorted(want), "got:", *got, sep="\n  ")
        return False
    return True


def main():
    root = os.path.abspath(sys.argv[-1]) if len(sys.argv) > 1 and not sys.argv[-1].startswith("-") \
        else os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    if "--self-test" in sys.argv and not self_test(root):
        return 1
    errors = check(root)
    for e in errors:
        print(e)
    if errors:
        print(f"{len(errors)} include(s) break the layering of docs/architecture.md")
        return 1
    print("layering: every #include of src/ and include/vdvae/ follows docs/architecture.md")
    return 0


if __name__ == "__main__":
    sys.exit(main())
