"""The closed loop, end to end, as a bank runs it: serve, correct, export, retrain, gate, promote, refuse, roll back.

    .venv/bin/python -m bench.closed_loop [--data-dir DIR] [--model tfidf|encoder] [--initial-bundle DIR]
                                          [--legacy-size 1500] [--keep]

Every step goes through the product's own commands (`triage ...`, separate processes) and its
HTTP API (`triage serve` on loopback), in one fresh TRIAGE_DATA_DIR with DATABASE_URL and
TRIAGE_MODEL_DIR unset: the store is the data directory's SQLite file and the registry decides
what serves.

1. `triage retrain --model M` on the corpus alone: nothing serves yet, so the gate promotes it
   (with --initial-bundle, an existing bundle is copied into the registry and `triage models promote`d).
2. `triage serve` with an intake and an agent key. The agreement sample (datasets/agreement: 10%
   of the corpus relabelled by a second, independent pass) goes in through POST /v1/triage
   (conversations through POST /v1/handoff); the agent key sends the second pass's labels through
   POST /v1/feedback, only the heads that differ from the ticket's (a head left out is confirmed
   as predicted, as an agent's screen sends it; an empty feedback confirms the whole ticket).
3. `triage export-cases` -> `triage retrain --model M --cases cases.jsonl`: comparison and decision.
4. A bad batch: the same cases with each head's labels shuffled among them (an agent clicking
   through with wrong labels) -> `triage retrain`; then `triage models rollback`.
5. A much larger bad batch: a "legacy import" of corpus train-split texts whose label columns were
   shuffled apart from the texts -> `triage retrain`, which the gate must refuse.
Every change of CURRENT while the service runs must show on GET /readyz within seconds (the
registry watcher), without a restart.

Only corpus *train*-split texts are sent or imported: the test split is the evaluation set (retrain
also drops near-duplicates of it), and the dev split picks C, the temperatures and the review
thresholds, so training on it would flatter calibration. Writes bench/reports/closed_loop.{md,json}.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import re
import shlex
import shutil
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from bench.common import ServerNotReady, free_port, machine, triage_server, write
from bench.load import percentiles
from training.data import DATASETS, jsonl_files, read_jsonl
from training.registry import COMPARISON, POINTER, current_version, read_history, register
from triage import HEADS
from triage.bundle import MANIFEST, read_manifest

AGREEMENT = DATASETS / "agreement"
INTAKE_KEY = "closed-loop-intake-key"
AGENT_KEY = "closed-loop-agent-key"
READY_TIMEOUT_S = 300.0
PICKUP_TIMEOUT_S = 60.0
REQUEST_TIMEOUT_S = 60.0
SEED = 13
LEGACY_SIZE = 1500
FEEDBACK_NOTE = "second labelling pass (datasets/agreement)"
# The reply channel an intake system would pick for each source (sms unless the customer came another way).
CHANNEL_BY_SOURCE = {"app": "app", "email": "email", "chatbot": "chat"}
VERSION_LINE = re.compile(r"^version (\S+): (promoted|held|refused);", re.MULTILINE)
RETRAINS = {
    "initial": "1. The first model: the corpus alone",
    "corrected": "2. Retrained with the agents' corrections",
    "scrambled": "3. A bad batch: the same cases, each head's labels shuffled among them",
    "legacy": "5. A larger bad batch: a legacy import with shuffled label columns",
}


class ClosedLoopError(RuntimeError):
    """A step of the loop failed in a way that makes the rest meaningless."""


@dataclass(frozen=True)
class Case:
    """One agreement-sample record as the second labeller saw it, with their labels."""

    id: str
    split: str
    source: str | None
    text: str | None
    conversation: tuple[dict[str, Any], ...] | None
    labels: dict[str, str]


@dataclass(frozen=True)
class Ticket:
    case_id: str
    ticket_id: str
    predicted: dict[str, str]
    ms: float


@dataclass(frozen=True)
class Command:
    """A `triage` command as a user types it, and what it did."""

    shown: str
    rc: int
    seconds: float
    output: str


@dataclass(frozen=True)
class Retrain:
    command: Command
    version: str
    action: str  # promoted | held | refused
    comparison: dict[str, Any]  # empty for a bundle registered with --initial-bundle
    markdown: str
    pickup_s: float | None  # CURRENT written -> /readyz shows the version; None: no service, or not promoted


@dataclass(frozen=True)
class Switch:
    """A rollback or promotion by hand, and when the service showed it (None: refused, nothing changed)."""

    command: Command
    pickup_s: float | None


@dataclass(frozen=True)
class Service:
    url: str
    pid: int
    log: Path


# --- the corpus and the agreement sample -------------------------------------------------------------------


def corpus_records(root: Path = DATASETS) -> dict[str, dict[str, Any]]:
    rows = read_jsonl(f for sub in ("complaints", "conversations") for f in jsonl_files(root / sub))
    return {str(r["id"]): dict(r) for r in rows}


def agreement_cases(corpus: Mapping[str, Mapping[str, Any]], root: Path = AGREEMENT) -> tuple[list[Case], Counter[str]]:
    """The sample with the second pass's labels and each record's corpus split (all splits: the caller
    picks). Counts per split, and "edited": sample texts that the corpus rewrote after the sample was drawn."""
    second = {str(r["id"]): r for r in read_jsonl([root / "second_pass.jsonl"])}
    cases, counts = [], Counter[str]()
    for raw in read_jsonl([root / "sample.jsonl"]):
        row: dict[str, Any] = dict(raw)
        rid = str(row["id"])
        if rid not in corpus or rid not in second:
            raise ClosedLoopError(f"agreement record {rid} is missing from the corpus or the second pass")
        record = corpus[rid]
        conversation = row.get("conversation")
        cases.append(
            Case(
                id=rid,
                split=str(record["split"]),
                source=record.get("source"),
                text=row.get("text"),
                conversation=tuple(conversation) if conversation else None,
                labels={h: str(second[rid][h]) for h in HEADS},
            )
        )
        counts[str(record["split"])] += 1
        counts["edited"] += row.get("text", record.get("text")) != record.get("text")
    return cases, counts


def p1_test_cases(corpus: Mapping[str, Mapping[str, Any]]) -> int:
    """How many test cases P1 recall rests on."""
    return sum(r.get("split") == "test" and r.get("urgency") == "P1" for r in corpus.values())


# --- the product's commands ---------------------------------------------------------------------------------


def loop_env(data_dir: Path) -> dict[str, str]:
    """The environment of every command: this data directory's registry and SQLite store only."""
    env = {k: v for k, v in os.environ.items() if k not in ("TRIAGE_MODEL_DIR", "DATABASE_URL")}
    return env | {
        "TRIAGE_DATA_DIR": str(data_dir),
        "TRIAGE_API_KEYS": f"{INTAKE_KEY}:intake,{AGENT_KEY}:agent",
        "TRIAGE_RATE_LIMIT": "0",
        "PYTHONUNBUFFERED": "1",
    }


def triage(args: Sequence[str], env: Mapping[str, str], ok: Sequence[int] = (0,)) -> Command:
    """Run `triage ARGS`, echoing its output as it comes (retraining takes minutes) and keeping it."""
    shown = shlex.join(["triage", *args])
    print(f"\n$ {shown}", flush=True)
    start = time.perf_counter()
    proc = subprocess.Popen(
        [sys.executable, "-m", "triage", *args],
        env=dict(env),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    assert proc.stdout is not None
    lines = []
    for line in proc.stdout:
        print(line, end="", flush=True)
        lines.append(line)
    rc = proc.wait()
    command = Command(shown, rc, time.perf_counter() - start, "".join(lines))
    if rc not in ok:
        raise ClosedLoopError(f"`{shown}` exited with {rc}")
    return command


def run_retrain(args: Sequence[str], env: Mapping[str, str], registry_dir: Path, service: Service | None) -> Retrain:
    """`triage retrain ARGS` (exit 1 is a refusal, not a failure); its comparison report; the pickup time."""
    command = triage(["retrain", *args], env, ok=(0, 1))
    found = VERSION_LINE.findall(command.output)
    if not found:
        raise ClosedLoopError(f"`{command.shown}` printed no 'version ...: action' line")
    version, action = found[-1]
    reports = registry_dir / version / "reports"
    comparison = json.loads((reports / COMPARISON).read_text(encoding="utf-8"))
    pickup = wait_for_model(service, registry_dir) if service is not None and action == "promoted" else None
    md = (reports / "comparison.md").read_text(encoding="utf-8")
    return Retrain(command, version, action, comparison, md, pickup)


def install_initial(bundle: Path, env: Mapping[str, str], registry_dir: Path) -> Retrain:
    """An existing bundle copied into the registry (as an operator copies a folder in) and promoted."""
    read_manifest(bundle)  # a clear error now rather than a registry entry that cannot load
    version = register(bundle, registry_dir, actor="closed-loop")
    command = triage(["models", "promote", version, "--reason", f"initial model from {bundle}"], env)
    return Retrain(command, version, "promoted", {}, "", None)


def switch(args: Sequence[str], env: Mapping[str, str], service: Service, registry_dir: Path) -> Switch:
    """`triage models rollback|promote ...` (exit 2: refused, e.g. nothing to roll back to) and its pickup."""
    command = triage(args, env, ok=(0, 2))
    return Switch(command, wait_for_model(service, registry_dir) if command.rc == 0 else None)


# --- the service --------------------------------------------------------------------------------------------


@contextmanager
def serving(env: Mapping[str, str], log: Path) -> Iterator[Service]:
    """`triage serve` on a free loopback port, ready (model loaded) before this yields; stopped afterwards."""
    port = free_port()
    print(f"\n$ triage serve --host 127.0.0.1 --port {port}   (log: {log})", flush=True)
    with triage_server(port, [], env, log, READY_TIMEOUT_S) as (url, pid):
        yield Service(url, pid, log)


def readyz(service: Service) -> dict[str, str] | None:
    """The model /readyz reports, or None while the service is not ready (or not answering yet)."""
    try:
        r = httpx.get(f"{service.url}/readyz", timeout=5)
    except httpx.TransportError:
        return None
    return dict(r.json()["model"]) if r.status_code == 200 else None


def wait_for_model(service: Service, registry_dir: Path) -> float:
    """Seconds from CURRENT being written to /readyz reporting the model it names (its manifest's version)."""
    version = current_version(registry_dir)
    if version is None:
        raise ClosedLoopError(f"nothing is promoted in {registry_dir}")
    expected = read_manifest(registry_dir / version).version
    written = (registry_dir / POINTER).stat().st_mtime
    deadline = time.monotonic() + PICKUP_TIMEOUT_S
    while time.monotonic() < deadline:
        model = readyz(service)
        if model is not None and model["version"] == expected:
            return time.time() - written
        time.sleep(0.1)
    raise ClosedLoopError(f"/readyz did not show {expected} within {PICKUP_TIMEOUT_S:.0f} s of CURRENT changing")


def client(service: Service, key: str) -> httpx.Client:
    return httpx.Client(base_url=service.url, headers={"Authorization": f"Bearer {key}"}, timeout=REQUEST_TIMEOUT_S)


def _expect(r: httpx.Response, what: str) -> dict[str, Any]:
    if r.status_code != 200:
        raise ClosedLoopError(f"{what}: HTTP {r.status_code} {r.text[:300]}")
    body: dict[str, Any] = r.json()
    return body


def intake_request(case: Case) -> tuple[str, dict[str, Any]]:
    """The endpoint and body the bank's systems would send; the idempotency key makes a retry harmless."""
    key = f"agreement-{case.id}"
    if case.conversation is not None:
        return "/v1/handoff", {"conversation": list(case.conversation), "idempotency_key": key}
    channel = CHANNEL_BY_SOURCE.get(case.source or "", "sms")
    return "/v1/triage", {"text": case.text, "source": case.source, "channel": channel, "idempotency_key": key}


def open_tickets(intake: httpx.Client, cases: Sequence[Case]) -> list[Ticket]:
    """Each case through the intake API, one request at a time, timed."""
    tickets = []
    for case in cases:
        path, body = intake_request(case)
        start = time.perf_counter()
        answer = _expect(intake.post(path, json=body), f"{path} for {case.id}")
        ms = (time.perf_counter() - start) * 1000
        tickets.append(Ticket(case.id, answer["ticket_id"], {h: answer[h]["label"] for h in HEADS}, ms))
    return tickets


def give_feedback(agent: httpx.Client, tickets: Sequence[Ticket], cases: Sequence[Case]) -> dict[str, Any]:
    """The second pass's labels as agents' feedback: the changed heads only (an empty one confirms)."""
    labels = {c.id: c.labels for c in cases}
    changed = Counter[str]()
    corrected = 0
    for ticket in tickets:
        wanted = labels[ticket.case_id]
        diff = {h: wanted[h] for h in HEADS if wanted[h] != ticket.predicted[h]}
        body = {"ticket_id": ticket.ticket_id, "note": FEEDBACK_NOTE, **diff}
        _expect(agent.post("/v1/feedback", json=body), f"/v1/feedback for {ticket.ticket_id}")
        changed.update(diff.keys())
        corrected += bool(diff)
    n = len(tickets)
    return {
        "tickets": n,
        "corrected": corrected,
        "confirmed": n - corrected,
        "changed_per_head": {h: changed[h] for h in HEADS},
        "served_model_agrees_with_second_pass": {h: round(1 - changed[h] / n, 3) for h in HEADS},
    }


def send_cases(service: Service, cases: Sequence[Case]) -> tuple[dict[str, Any], dict[str, Any]]:
    """Step 2: tickets in through the intake key, the second pass back through the agent key."""
    start = time.perf_counter()
    with client(service, INTAKE_KEY) as intake:
        tickets = open_tickets(intake, cases)
    seconds = time.perf_counter() - start
    sent = {
        "tickets": len(tickets),
        "handoffs": sum(c.conversation is not None for c in cases),
        "seconds": seconds,
        "latency": percentiles([t.ms for t in tickets]),
    }
    start = time.perf_counter()
    with client(service, AGENT_KEY) as agent:
        feedback = give_feedback(agent, tickets, cases)
    feedback["seconds"] = time.perf_counter() - start
    print(f"{len(tickets)} tickets opened in {seconds:.1f} s; feedback: {feedback}", flush=True)
    return sent, feedback


# --- the bad batches ----------------------------------------------------------------------------------------


def shuffle_labels(rows: list[dict[str, Any]], rng: random.Random) -> dict[str, float]:
    """Shuffle each head's labels among `rows` in place (the label mix stays the same, so nothing looks
    odd in a histogram); returns the share of labels that changed per head."""
    changed = {}
    for head in HEADS:
        labels = [r[head] for r in rows]
        rng.shuffle(labels)
        changed[head] = round(sum(r[head] != new for r, new in zip(rows, labels, strict=True)) / len(rows), 3)
        for row, new in zip(rows, labels, strict=True):
            row[head] = new
    return changed


def write_cases(rows: Sequence[Mapping[str, Any]], path: Path) -> None:
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")


def scrambled_batch(exported: Path, target: Path, seed: int = SEED) -> dict[str, Any]:
    """The exported cases as an agent who clicked through wrong labels would have left them."""
    rows = [dict(r) | {"feedback": "corrected"} for r in read_jsonl([exported])]
    changed = shuffle_labels(rows, random.Random(seed))
    write_cases(rows, target)
    return {"file": str(target), "cases": len(rows), "seed": seed, "labels_changed": changed}


def legacy_batch(
    corpus: Mapping[str, Mapping[str, Any]], exclude: set[str], size: int, target: Path, seed: int = SEED
) -> dict[str, Any]:
    """`size` train-split texts (not in the agreement sample) as a legacy ticket-system import whose
    label columns were sorted apart from the text column: each head's labels shuffled among them."""
    pool = sorted(i for i, r in corpus.items() if r.get("split") == "train" and i not in exclude)
    if size > len(pool):
        raise ClosedLoopError(f"--legacy-size {size}: only {len(pool)} train-split texts to import")
    rng = random.Random(seed)
    rows = [
        {k: v for k, v in corpus[i].items() if k != "split"} | {"id": f"legacy-{i}", "brief": "legacy-import"}
        for i in rng.sample(pool, size)
    ]
    changed = shuffle_labels(rows, rng)
    write_cases(rows, target)
    return {"file": str(target), "cases": len(rows), "seed": seed, "labels_changed": changed}


# --- the report ---------------------------------------------------------------------------------------------


def _fence(text: str) -> list[str]:
    return ["```", text.rstrip(), "```"]


def _num(x: float | None, signed: bool = False) -> str:
    return "-" if x is None else f"{x:+.3f}" if signed else f"{x:.3f}"


def failing(r: Retrain) -> list[str]:
    """The gate's reasons that are not 'ok'."""
    return [x for x in r.comparison.get("decision", {}).get("reasons", []) if not x.endswith(": ok")]


def _retrain_section(key: str, r: Retrain, note: str = "") -> list[str]:
    head = f"`{r.command.shown}` -> exit {r.command.rc} in {r.command.seconds:.0f} s: version `{r.version}` **{r.action}**."
    if r.pickup_s is not None:
        head += f" The running service showed it on /readyz {r.pickup_s:.1f} s after CURRENT was written."
    if not r.comparison:  # --initial-bundle
        return [f"## {_step(key)}: an existing bundle", "", head, ""]
    lines = [f"## {RETRAINS[key]}", "", *([note, ""] if note else []), head, ""]
    lines += ["| head | macro-F1 old | macro-F1 new | delta |", "|---|---|---|---|"]
    for name, h in r.comparison["heads"].items():
        lines.append(f"| {name} | {_num(h['old'])} | {_num(h['new'])} | {_num(h['delta'], True)} |")
    p1 = r.comparison["p1_recall"]
    lines.append(f"| P1 recall | {_num(p1['old'])} | {_num(p1['new'])} | {_num(_delta(p1), True)} |")
    lines += ["", "The comparison report `triage retrain` printed (`reports/comparison.md` in the new bundle):", ""]
    return [*lines, *_fence(r.markdown), ""]


def _step(key: str) -> str:
    """A retrain's step name, e.g. "3. A bad batch"."""
    return RETRAINS[key].split(":")[0]


def _delta(pair: Mapping[str, float | None]) -> float | None:
    old, new = pair["old"], pair["new"]
    return None if old is None or new is None else new - old


def _batch_note(batch: Mapping[str, Any], what: str) -> str:
    changed = ", ".join(f"{h} {v:.2f}" for h, v in batch["labels_changed"].items())
    return f"{batch['cases']} {what}, each head's labels shuffled among them (seed {batch['seed']}); share changed: {changed}."


def _outcome(key: str, r: Retrain) -> str:
    if not r.comparison:
        return f"{r.action} (registered from an existing bundle)"
    why = "; ".join(failing(r)) or ("nothing to compare with" if key == "initial" else "every head within the margin")
    return f"{r.action} ({why})"


def _summary(retrains: Mapping[str, Retrain], switches: Sequence[Switch]) -> list[str]:
    """One row per step, in the order they ran (the rollback comes between the two bad batches)."""

    def seen(pickup: float | None) -> str:
        return "-" if pickup is None else f"{pickup:.1f} s"

    def row(step: str, outcome: str, command: Command, pickup: float | None) -> str:
        return f"| {step} | {outcome} | {command.seconds:.0f} s | {seen(pickup)} |"

    rows = ["| step | outcome | time | /readyz shows it |", "|---|---|---|---|"]
    for key in ("initial", "corrected", "scrambled"):
        r = retrains[key]
        rows.append(row(_step(key), _outcome(key, r), r.command, r.pickup_s))
    for sw in switches:
        rows.append(row(f"4. `{sw.command.shown}`", sw.command.output.strip(), sw.command, sw.pickup_s))
    legacy = retrains["legacy"]
    return [*rows, row(_step("legacy"), _outcome("legacy", legacy), legacy.command, legacy.pickup_s)]


def observations(data: Mapping[str, Any], retrains: Mapping[str, Retrain]) -> list[str]:
    """What the figures say, stated from them (the outcomes differ between models and runs)."""
    n_p1, out = data["p1_test_cases"], []
    for key, r in retrains.items():
        if key == "initial" or not r.comparison:
            continue
        p1 = r.comparison["p1_recall"]
        change = _delta(p1)
        lost = (
            "" if change is None else f"; P1 recall {change:+.3f} = {round(change * n_p1):+d} of {n_p1} P1 test cases"
        )
        worst = min(r.comparison["heads"].items(), key=lambda kv: kv[1]["delta"] if kv[1]["delta"] is not None else 0)
        out.append(
            f"- {_step(key)}: {r.action}; largest macro-F1 drop {worst[0]} {_num(worst[1]['delta'], True)}"
            f" (margin {r.comparison['margin']:.3f}){lost}."
        )
    agree = data["feedback"]["served_model_agrees_with_second_pass"]
    passes = json.loads((AGREEMENT / "report.json").read_text(encoding="utf-8"))
    out.append(
        "- The served model agreed with the second pass on "
        + ", ".join(f"{h} {v:.2f}" for h, v in agree.items())
        + " of the tickets: training texts, which it learnt with the first pass's labels, so this is not a test "
        "score; the two passes agree on "
        + ", ".join(f"{h} {passes[h]['agreement']:.2f}" for h in HEADS)
        + " (datasets/agreement/report.json)."
    )
    return out


def markdown(
    data: Mapping[str, Any],
    retrains: Mapping[str, Retrain],
    switches: Sequence[Switch],
    commands: Sequence[tuple[str, str]],
) -> str:
    s, fb, sent, legacy, bad = data["sample"], data["feedback"], data["intake"], data["legacy"], data["scrambled"]
    lines = [
        "# Closed loop: serve, correct, export, retrain, gate, roll back",
        "",
        f"`python -m bench.closed_loop --model {data['model']}` on {data['machine']['cores']} cores, "
        f"{data['machine']['when']}; {data['total_s'] / 60:.1f} min in all. A fresh TRIAGE_DATA_DIR (SQLite store; "
        "DATABASE_URL and TRIAGE_MODEL_DIR unset); every step is a `triage` command or an HTTP call to "
        "`triage serve`, which runs from step 2 to the end without a restart. Evaluation: the corpus test split "
        f"({data['test_cases']} cases; P1 recall rests on its {data['p1_test_cases']} P1 cases, so one case moves "
        f"it by {1 / data['p1_test_cases']:.4f}). Gate: no head's macro-F1 may drop by more than the margin, "
        "P1 recall may not drop.",
        "",
        *_summary(retrains, switches),
        "",
        *observations(data, retrains),
        "",
        "## The cases: the agreement sample, the second pass as the agents' labels",
        "",
        f"- {s['records']} records relabelled by a second, independent pass (datasets/agreement); by corpus split: "
        + ", ".join(f"{k} {v}" for k, v in sorted(s["splits"].items()))
        + f". Sent: the {s['sent']} train-split records (test: the evaluation split; dev: picks C, temperatures "
        f"and review thresholds), as the second labeller saw them ({s['edited']} of the sample's texts were "
        "lengthened in the corpus afterwards). They are corpus texts: the corrected cases repeat training texts "
        "with the second pass's labels.",
        f"- Intake: {sent['tickets']} tickets ({sent['handoffs']} chatbot conversations via /v1/handoff, the rest "
        f"via /v1/triage), one request at a time: p50 {sent['latency']['p50_ms']:.0f} ms, "
        f"p99 {sent['latency']['p99_ms']:.0f} ms, {sent['seconds']:.1f} s in all.",
        f"- Feedback ({fb['seconds']:.1f} s): {fb['corrected']} tickets corrected, {fb['confirmed']} confirmed. Only "
        "changed heads are sent; a head left out is confirmed as predicted (an empty feedback confirms the ticket). "
        "Changed labels: " + ", ".join(f"{h} {n}" for h, n in fb["changed_per_head"].items()) + ".",
        f"- `triage export-cases`: {data['export']['line']}",
        "",
    ]
    lines += _retrain_section("initial", retrains["initial"])
    lines += _retrain_section("corrected", retrains["corrected"])
    lines += _retrain_section("scrambled", retrains["scrambled"], _batch_note(bad, "exported cases"))
    lines += ["## 4. Rollback", ""]
    for sw in switches:
        pickup = "nothing changed" if sw.pickup_s is None else f"/readyz showed it after {sw.pickup_s:.1f} s"
        lines.append(f"- `{sw.command.shown}` -> exit {sw.command.rc}: {sw.command.output.strip()} ({pickup})")
    what = "corpus train-split texts (none from the agreement sample)"
    note = _batch_note(legacy, what) + " A file handed to the data scientist; it does not pass through the service."
    lines += ["", *_retrain_section("legacy", retrains["legacy"], note)]
    lines += ["## The registry", "", "`triage models list` after step 1:", "", *_fence(data["models_before"]), ""]
    lines += ["At the end:", "", *_fence(data["models_after"]), ""]
    lines += [
        "`history.jsonl`:",
        "",
        "| event | version | previous | reason (the first failing one, if any) |",
        "|---|---|---|---|",
    ]
    for e in data["history"]:
        reasons = [x for x in e["reasons"] if not x.endswith(": ok")] or e["reasons"] or [""]
        reason = reasons[0].replace("|", "/")
        lines.append(f"| {e['event']} | {e['version']} | {e['previous'] or '-'} | {reason} |")
    lines += ["", "The service's log lines about models (the registry watcher):", ""]
    lines += [*_fence("\n".join(data["service_model_log"]) or "(none)"), ""]
    lines += ["## The commands, as typed", "", "```bash", f"export TRIAGE_DATA_DIR={data['data_dir']}"]
    lines += [f"{line}    # {comment}" for line, comment in commands]
    return "\n".join([*lines, "```", ""])


# --- the loop -----------------------------------------------------------------------------------------------


def prepare_data_dir(given: Path | None) -> tuple[Path, bool]:
    """The fresh data directory (a new temporary one by default); True when this run created it."""
    if given is None:
        return Path(tempfile.mkdtemp(prefix="triage-closed-loop-")), True
    if given.exists() and any(given.iterdir()):
        raise ClosedLoopError(f"{given} is not empty: the loop starts from a fresh data directory")
    given.mkdir(parents=True, exist_ok=True)
    return given, False


def model_log(log: Path) -> list[str]:
    return [line for line in log.read_text(encoding="utf-8").splitlines() if "now serving" in line]


def retrain_summary(r: Retrain) -> dict[str, Any]:
    return {
        "command": r.command.shown,
        "rc": r.command.rc,
        "seconds": r.command.seconds,
        "version": r.version,
        "action": r.action,
        "failing": failing(r),
        "pickup_s": r.pickup_s,
        "comparison": r.comparison,
    }


def run(data_dir: Path, model: str, initial_bundle: Path | None, legacy_size: int) -> tuple[dict[str, Any], str]:
    """The whole loop in `data_dir`; returns the report's data and its Markdown."""
    start = time.perf_counter()
    env, registry_dir, work = loop_env(data_dir), data_dir / "registry", data_dir / "loop"
    work.mkdir(exist_ok=True)
    corpus = corpus_records()
    cases, counts = agreement_cases(corpus)
    sample = [c for c in cases if c.split == "train"]
    built = ["--model", model]

    if initial_bundle is None:
        initial = run_retrain(built, env, registry_dir, None)
    else:
        initial = install_initial(initial_bundle, env, registry_dir)
    before = triage(["models", "list"], env)
    with serving(env, data_dir / "serve.log") as service:
        sent, feedback = send_cases(service, sample)
        exported = work / "cases.jsonl"
        export = triage(["export-cases", "--output", str(exported)], env)
        corrected = run_retrain([*built, "--cases", str(exported)], env, registry_dir, service)
        bad = scrambled_batch(exported, work / "cases-scrambled.jsonl")
        scrambled = run_retrain([*built, "--cases", bad["file"]], env, registry_dir, service)
        # Whatever the last promotion was, the operator takes it back (refused when only one was ever made).
        switches = [switch(["models", "rollback", "--reason", "closed-loop demonstration"], env, service, registry_dir)]
        legacy = legacy_batch(corpus, {c.id for c in cases}, legacy_size, work / "legacy-import.jsonl")
        imported = run_retrain([*built, "--cases", legacy["file"]], env, registry_dir, service)
        after = triage(["models", "list"], env)
        serve_log = model_log(service.log)
        keys = f"TRIAGE_API_KEYS={env['TRIAGE_API_KEYS']}"
        served = f"{keys} triage serve --host 127.0.0.1 --port {service.url.rsplit(':', 1)[1]} &"

    retrains = {"initial": initial, "corrected": corrected, "scrambled": scrambled, "legacy": imported}
    ran = [initial.command, before, export, corrected.command, scrambled.command, *(s.command for s in switches)]
    commands = [(c.shown, f"{c.seconds:.0f} s, exit {c.rc}") for c in [*ran, imported.command, after]]
    commands.insert(2, (served, "then POST /v1/triage, /v1/handoff (intake key) and /v1/feedback (agent key)"))
    data: dict[str, Any] = {
        "machine": machine(),
        "model": model,
        "initial_bundle": str(initial_bundle) if initial_bundle else None,
        "data_dir": str(data_dir),
        "total_s": time.perf_counter() - start,
        "test_cases": sum(r.get("split") == "test" for r in corpus.values()),
        "p1_test_cases": p1_test_cases(corpus),
        "sample": {
            "records": len(cases),
            "splits": {k: v for k, v in counts.items() if k != "edited"},
            "edited": counts["edited"],
            "sent": len(sample),
        },
        "intake": sent,
        "feedback": feedback,
        "export": {"line": export.output.strip().splitlines()[-1], "seconds": export.seconds},
        "scrambled": bad,
        "legacy": legacy,
        "retrains": {name: retrain_summary(r) for name, r in retrains.items()},
        "switches": [
            {"command": s.command.shown, "rc": s.command.rc, "output": s.command.output, "pickup_s": s.pickup_s}
            for s in switches
        ],
        "models_before": before.output,
        "models_after": after.output,
        "history": read_history(registry_dir),
        "service_model_log": serve_log,
        "commands": [{"command": line, "note": comment} for line, comment in commands],
    }
    return data, markdown(data, retrains, switches, commands)


def check(data: Mapping[str, Any]) -> list[str]:
    """What the demonstration must show; each miss is listed in the report and makes the exit status 1."""
    r = data["retrains"]
    problems = []
    if r["initial"]["action"] != "promoted":
        problems.append("the first model was not promoted")
    if r["legacy"]["action"] != "refused":
        problems.append("the legacy import with shuffled labels was not refused by the gate")
    changes = [x["pickup_s"] for k, x in r.items() if k != "initial" and x["action"] == "promoted"]
    changes += [s["pickup_s"] for s in data["switches"] if s["rc"] == 0]
    if not changes:
        problems.append("the served model never changed while the service ran (no promotion, no rollback)")
    return problems


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data-dir", type=Path, help="an empty or new TRIAGE_DATA_DIR (default: a temporary one)")
    parser.add_argument("--model", choices=("tfidf", "encoder"), default="tfidf", help="what every retrain builds")
    parser.add_argument(
        "--initial-bundle", type=Path, help="register and promote this bundle instead of building the first model"
    )
    parser.add_argument(
        "--legacy-size", type=int, default=LEGACY_SIZE, help=f"texts in the bad legacy import (default {LEGACY_SIZE})"
    )
    parser.add_argument("--keep", action="store_true", help="keep the temporary data directory")
    parser.add_argument("--name", default="closed_loop", help="report name under bench/reports/")
    args = parser.parse_args()
    if args.initial_bundle is not None and not (args.initial_bundle / MANIFEST).is_file():
        parser.error(f"--initial-bundle {args.initial_bundle}: no {MANIFEST}")
    try:
        data_dir, temporary = prepare_data_dir(args.data_dir)
    except ClosedLoopError as exc:
        parser.error(str(exc))
    try:
        data, md = run(data_dir, args.model, args.initial_bundle, args.legacy_size)
    except (ClosedLoopError, ServerNotReady) as exc:
        print(f"closed_loop: {exc}", file=sys.stderr)
        raise SystemExit(2) from exc
    finally:
        if temporary and not args.keep:
            shutil.rmtree(data_dir, ignore_errors=True)
    data["problems"] = problems = check(data)
    if problems:
        md += "\n## Not shown\n\n" + "\n".join(f"- {p}" for p in problems) + "\n"
    path = write(args.name, data, md)
    print(f"\n{md}\nreport: {path} (and .json)")
    if problems:
        raise SystemExit(1)


if __name__ == "__main__":
    main()
