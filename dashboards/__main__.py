"""``python -m dashboards``: regenerate dashboards/json/*.json from the code.
``python -m dashboards --check``: exit 1 listing the files that differ (for CI)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from .build import JSON_DIR, check, write


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m dashboards", description=__doc__)
    parser.add_argument("--check", action="store_true",
                        help="do not write; exit 1 if a file differs from a fresh build")
    parser.add_argument("--out", type=Path, default=JSON_DIR,
                        help=f"directory of the JSON files (default {JSON_DIR})")
    args = parser.parse_args(argv)
    if args.check:
        stale = check(args.out)
        for name in stale:
            print(f"differs: {args.out / name}", file=sys.stderr)
        if stale:
            print("run `python -m dashboards` to regenerate", file=sys.stderr)
            return 1
        print(f"dashboards up to date in {args.out}")
        return 0
    for path in write(args.out):
        print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
