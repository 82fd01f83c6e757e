"""`python -m bench`: run the benchmark, print the table, write bench/RESULTS.md."""

import argparse
import dataclasses
import sys
from pathlib import Path

from bench import report
from bench.run import FULL, QUICK, Bench


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench", description="Measure the service against its floors.")
    parser.add_argument("--quick", action="store_true", help="a tiny configuration (seconds, not minutes)")
    parser.add_argument("--seconds", type=float, help="length of each load run")
    parser.add_argument("--repeats", type=int, help="load runs per figure (the median is kept)")
    parser.add_argument(
        "--output",
        type=Path,
        help=f"where to write the Markdown report (default: {report.RESULTS_FILE.name} for a full run, "
        "nowhere for --quick)",
    )
    parser.add_argument("--json", type=Path, help="also write the rows as JSON here")
    parser.add_argument(
        "--queue-only", action="store_true", help="only the training queue's rows (9); writes no report unless --output"
    )
    parser.add_argument(
        "--store-only", action="store_true", help="only the object store's rows (14); writes no report unless --output"
    )
    args = parser.parse_args(argv)
    config = QUICK if args.quick else FULL
    overrides = {key: value for key, value in (("seconds", args.seconds), ("repeats", args.repeats)) if value}
    config = dataclasses.replace(config, **overrides, queue_only=args.queue_only, store_only=args.store_only)
    output = args.output or (None if args.quick or args.queue_only or args.store_only else report.RESULTS_FILE)

    before = report.machine()
    results = Bench(config, log=lambda line: print(line, file=sys.stderr, flush=True)).run()
    after = report.machine()
    print(report.table(results.rows))
    print(report.summary(results))
    command = "uv run python -m bench" + (" --quick" if args.quick else "")
    if output:
        output.write_text(report.markdown(results, before, after, command))
        print(f"written to {output}", file=sys.stderr)
    if args.json:
        args.json.write_text(results.to_json())
    return 0


if __name__ == "__main__":
    sys.exit(main())
