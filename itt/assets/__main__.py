"""Command line: ``python -m itt.assets {fetch,verify,status}``."""
from __future__ import annotations

import argparse
import logging
import sys

from itt.assets.errors import AssetError


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m itt.assets",
                                description="Build and check the real offline models and data.")
    sub = p.add_subparsers(dest="command", required=True)
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--dir", help="assets folder (default: $ITT_ASSETS_DIR or outputs/assets)")
    common.add_argument("--only", help="comma-separated assets or groups: sentiment, topics, "
                                       "similarity, models, data, or names such as vader_movie")
    common.add_argument("--stsb-dir", help="stsb-multi-mt data folder (default: $ITT_STSB_DIR or "
                                           "../shared/data/stsb-multi-mt)")
    common.add_argument("-q", "--quiet", action="store_true", help="only warnings and the summary")
    f = sub.add_parser("fetch", parents=[common], help="download, extract and convert what is missing")
    f.add_argument("--force", action="store_true", help="rebuild even what verifies")
    sub.add_parser("verify", parents=[common], help="check the built assets against the manifest")
    sub.add_parser("status", parents=[common], help="list what exists")
    return p


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    logging.basicConfig(level=logging.WARNING if args.quiet else logging.INFO,
                        format="%(message)s", stream=sys.stderr)
    from itt.assets import store as fx

    try:
        if args.command == "fetch":
            summary = fx.fetch(args.only, args.dir, stsb=args.stsb_dir, force=args.force)
            print(summary.table())
        elif args.command == "verify":
            problems = fx.verify(args.dir, args.only, stsb=args.stsb_dir)
            if problems:
                raise AssetError(f"{len(problems)} problem(s) in {fx.assets_dir(args.dir)}:\n"
                                 + "\n".join(f"  {p}" for p in problems))
            print(f"All assets in {fx.assets_dir(args.dir)} verify.")
        else:
            rows = fx.status(args.dir, args.only)
            root = fx.assets_dir(args.dir)
            print(f"Assets in {root}")
            w = max(len(r["name"]) for r in rows)
            for r in rows:
                rows_txt = "" if r["rows"] is None else f"{r['rows']} rows"
                print(f"  {r['name']:<{w}}  {r['kind']:<7}  {r['role']:<13}  {r['state']:<7}  "
                      f"{rows_txt:>11}  {r['mb']:>7.1f} MB")
            sts, note = fx.stsb_dir(args.stsb_dir)
            print(f"STS benchmark: {sts if sts else note}")
    except AssetError as exc:
        if exc.summary is not None:
            print(exc.summary.table())
        print(f"error: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
