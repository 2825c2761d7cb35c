#!/usr/bin/env python
"""Write the JSON Schema of every event type to ``schemas/jsonschema/<event tag>.json``.

python scripts/export_jsonschema.py          # (re)write the files, remove stale ones
python scripts/export_jsonschema.py --check  # exit 1 if any committed file is missing, stale or extra
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
if str(REPO_ROOT) not in sys.path:
    sys.path.insert(0, str(REPO_ROOT))

from schemas.export import json_schemas  # noqa: E402

OUT_DIR = REPO_ROOT / "schemas" / "jsonschema"


def stale_files(out_dir: Path = OUT_DIR) -> list[str]:
    """Names of files that differ from the generated ones (missing, changed, or no longer generated)."""
    wanted = json_schemas()
    problems = [
        n for n, text in wanted.items() if not (out_dir / n).is_file() or (out_dir / n).read_text("utf-8") != text
    ]
    problems += [p.name for p in sorted(out_dir.glob("*.json")) if p.name not in wanted]
    return problems


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--check", action="store_true", help="only check; exit 1 when files are stale")
    ap.add_argument("--out", type=Path, default=OUT_DIR, help="output directory (default: schemas/jsonschema)")
    args = ap.parse_args(argv)
    if args.check:
        stale = stale_files(args.out)
        if stale:
            print(f"stale JSON Schema files in {args.out}: {', '.join(stale)}; run python scripts/export_jsonschema.py")
            return 1
        print(f"{len(json_schemas())} JSON Schema files up to date")
        return 0
    args.out.mkdir(parents=True, exist_ok=True)
    wanted = json_schemas()
    for name, text in wanted.items():
        path = args.out / name
        if not path.is_file() or path.read_text("utf-8") != text:
            path.write_text(text, "utf-8")
            print(f"wrote {path.relative_to(REPO_ROOT) if path.is_relative_to(REPO_ROOT) else path}")
    for path in args.out.glob("*.json"):
        if path.name not in wanted:
            path.unlink()
            print(f"removed {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
