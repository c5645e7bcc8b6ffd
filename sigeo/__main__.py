"""The ``sigeo`` command (also ``python -m sigeo``): use the models the workflow found.

``sigeo predict MODEL RAW -o OUT.csv`` writes the click probability of every good row of a raw file;
``sigeo export MODEL -o model.pt2`` writes the self-contained program. MODEL is a ``best.json``, a
``model.pt`` (with its ``metrics.json`` beside it) or, for predict, a ``model.pt2``. An input problem
ends the command with one line on stderr and exit status 1.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path

from .errors import SigeoError

MODEL_HELP = (
    "best.json (select_best's choice), a model.pt (its metrics.json beside it) or, for predict, a model.pt2; "
    "under the workflow's results/final/<dataset>/ the data set's meta.json is found from it"
)


def _count(minimum: int):
    """An argparse type: an integer of at least ``minimum``."""

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not an integer") from None
        if value < minimum:
            raise argparse.ArgumentTypeError(f"{value} is below {minimum}")
        return value

    return parse


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="sigeo", description="Use the CTR models SiGeo-NAS found.")
    commands = parser.add_subparsers(dest="command", required=True)

    predict = commands.add_parser(
        "predict",
        help="click probabilities for the rows of a raw file",
        description="Parse and hash RAW exactly as `prepare` did for the model's data set (Criteo, Avazu or KDD "
        "format, plain or .gz; for a tabular data set a .csv, .tsv (plain or .gz) or .parquet file with the "
        "declared columns; the label column must be there: write 0 where it is unknown) and write "
        "line,label,probability for every good row. Bad rows are skipped and reported by line number "
        "(a header is line 1; a Parquet file's rows are numbered from 1).",
    )
    predict.add_argument("model", metavar="MODEL", type=Path, help=MODEL_HELP)
    predict.add_argument(
        "raw", metavar="RAW", type=Path, help="a raw file in the data set's own format (tabular: any of its file types)"
    )
    predict.add_argument("-o", "--output", type=Path, required=True, help="CSV to write (atomically)")
    predict.add_argument("--meta", type=Path, help="the prepared data set's meta.json (default: found from MODEL)")
    predict.add_argument("--arch", type=Path, help="architecture JSON of a model.pt (default: the workflow's)")
    predict.add_argument("--profile", type=Path, help="KDD userid_profile.txt (default: the data set's)")
    predict.add_argument(
        "--max-bad-rows", type=_count(0), help="fail past this many bad rows (default: the data set's max_bad_rows)"
    )
    predict.add_argument("--batch-size", type=_count(1), help="rows per forward pass (default: 4096)")

    export = commands.add_parser(
        "export",
        help="the model as a self-contained torch.export program (model.pt2)",
        description="Write MODEL as a torch.export program that runs without sigeo: see `pydoc sigeo.export`.",
    )
    export.add_argument("model", metavar="MODEL", type=Path, help=MODEL_HELP)
    export.add_argument("-o", "--output", type=Path, required=True, help="model.pt2 to write (atomically)")
    export.add_argument("--meta", type=Path, help="the prepared data set's meta.json (default: found from MODEL)")
    export.add_argument("--arch", type=Path, help="architecture JSON of a model.pt (default: the workflow's)")
    return parser


def _run(args: argparse.Namespace) -> str:
    from .predict import PredictSettings, default_meta, export_model, load_model, predict_raw

    meta = args.meta or default_meta(args.model)
    if args.command == "export":
        export_model(args.model, meta, args.output, args.arch)
        return f"wrote {args.output}"
    model = load_model(args.model, meta, args.arch)
    settings = PredictSettings(max_bad_rows=args.max_bad_rows)
    if args.batch_size:
        settings = replace(settings, batch_size=args.batch_size)
    report = predict_raw(model, meta, args.raw, args.output, settings, args.profile)
    bad = f"; {report['bad_rows']} bad rows" if report["bad_rows"] else ""
    if report["bad_rows"]:
        more = " ..." if report["bad_rows"] > len(report["bad_lines"]) else ""
        bad += f" (lines {', '.join(map(str, report['bad_lines']))}{more}; first: {'; '.join(report['bad_examples'])})"
    return f"wrote {report['rows']} predictions to {args.output}{bad}"


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        print(_run(args), file=sys.stderr)
    except SigeoError as exc:
        print(f"sigeo {args.command}: error: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
