"""The Python modules a tool in tools/ needs: present, or exit 2 saying which are missing and how
to get them (no traceback). Shared by convert_checkpoint.py and fid_weights.py."""
import sys


def require_modules(tool, needs=("numpy", "torch")):
    missing = []
    for m in needs:
        try:
            __import__(m)
        except ImportError:
            missing.append(m)
    if missing:
        print(f"{tool}: error: {sys.executable} lacks the Python module(s) "
              f"{', '.join(missing)}; this tool needs {' and '.join(needs)}.\n"
              "  Install them with `bash scripts/install-deps.sh` (Debian: python3-numpy "
              "python3-torch), or run the tool with an interpreter that has them, e.g.\n"
              f"  third_party/venv/bin/python tools/{tool} ...", file=sys.stderr)
        sys.exit(2)
