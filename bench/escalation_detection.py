"""Scenario escalation_detection: RoleWarden's no-privilege-escalation rule and cloudsplaining side by side
on the same corpus (tests/escalation_corpus.py): escalations with their variants, benign and scoped-safe
controls.

RoleWarden judges each role with ``rolewarden.decide.compliance.judge_documents`` (the rule the handler
runs, on the role's inline and attached documents) and is counted as finding an escalation only when it
names the expected path. cloudsplaining 0.9.1 (``PolicyDocument.allows_privilege_escalation``) runs in a
virtual environment of its own (bench/.cloudsplaining-venv, made on first run with the same Python as
.venv, like Cloud Custodian's) on the role's statements merged into one document, the principal-centric
way it reads a role; any method it reports counts as found. No AWS call: both read documents only.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

from bench.common import BENCH, Context, Result

NAME = "escalation_detection"
REQUIRES = "layers/core/rolewarden/decide/escalation/catalog.py"
CLOUDSPLAINING_VERSION = "0.9.1"
CLOUDSPLAINING_VENV = BENCH / ".cloudsplaining-venv"
CLOUDSPLAINING_PYTHON = CLOUDSPLAINING_VENV / "bin" / "python"

#: Run inside cloudsplaining's venv: {case id: merged document} in, {case id: [method names]} out.
_SCAN = """
import json, sys
from cloudsplaining.scan.policy_document import PolicyDocument
cases = json.load(open(sys.argv[1]))
found = {cid: [e["type"] for e in PolicyDocument(doc).allows_privilege_escalation] for cid, doc in cases.items()}
json.dump(found, open(sys.argv[2], "w"))
"""


def sizes(small: bool) -> dict[str, int]:
    """``cases``: how many corpus cases (0: all); a small run keeps every control and a stride of escalations."""
    return {"cases": 120} if small else {"cases": 0}


def _installed_version() -> str | None:
    if not CLOUDSPLAINING_PYTHON.exists():
        return None
    code = "import importlib.metadata as m; print(m.version('cloudsplaining'))"
    proc = subprocess.run([str(CLOUDSPLAINING_PYTHON), "-c", code], capture_output=True, text=True, check=False)
    return proc.stdout.strip() if proc.returncode == 0 else None


def ensure_cloudsplaining(log: Any = print) -> Path:
    """cloudsplaining's interpreter, installing cloudsplaining==CLOUDSPLAINING_VERSION in its venv when needed
    (its pins, policy_sentry's among them, stay out of RoleWarden's .venv)."""
    if _installed_version() == CLOUDSPLAINING_VERSION:
        return CLOUDSPLAINING_PYTHON
    base = Path(sys.base_prefix) / "bin" / "python3"
    log(
        f"creating {CLOUDSPLAINING_VENV.relative_to(BENCH.parent)} with cloudsplaining=={CLOUDSPLAINING_VERSION} (once)"
    )
    subprocess.run([str(base), "-m", "venv", "--clear", str(CLOUDSPLAINING_VENV)], check=True)
    subprocess.run(
        [
            str(CLOUDSPLAINING_PYTHON),
            "-m",
            "pip",
            "install",
            "--quiet",
            "--disable-pip-version-check",
            f"cloudsplaining=={CLOUDSPLAINING_VERSION}",
        ],
        check=True,
    )
    return CLOUDSPLAINING_PYTHON


def select(cases: Any, limit: int) -> list[Any]:
    """Every control, and escalations at an even stride up to ``limit`` cases in all (0: everything)."""
    cases = list(cases)
    if not limit or limit >= len(cases):
        return cases
    controls = [c for c in cases if not c.escalation]
    escalations = [c for c in cases if c.escalation]
    room = max(1, limit - len(controls))
    stride = max(1, len(escalations) // room)
    return escalations[::stride][:room] + controls


def cloudsplaining_finds(cases: Any, workdir: Path, log: Any) -> dict[str, list[str]]:
    python = ensure_cloudsplaining(log)
    source = workdir / "escalation-cases.json"
    target = workdir / "escalation-cloudsplaining.json"
    source.write_text(json.dumps({c.id: c.merged() for c in cases}))
    subprocess.run([str(python), "-c", _SCAN, str(source), str(target)], check=True, capture_output=True, text=True)
    found: dict[str, list[str]] = json.loads(target.read_text())
    return found


def _rates(hits: dict[str, bool], cases: Any) -> tuple[float, int, list[str], list[str]]:
    escalations = [c for c in cases if c.escalation]
    controls = [c for c in cases if not c.escalation]
    missed = [c.id for c in escalations if not hits[c.id]]
    flagged = [c.id for c in controls if hits[c.id]]
    recall = (len(escalations) - len(missed)) / len(escalations) if escalations else 1.0
    return round(recall, 4), len(flagged), missed, flagged


def run(ctx: Context, cases: int) -> Result:
    sys.path.insert(0, str(BENCH.parent))  # the corpus lives under tests/
    from tests.escalation_corpus import CASES, expected_ids, rolewarden_finds

    chosen = select(CASES, cases)
    result = Result(NAME, sizes={"cases": len(chosen)})
    rolewarden = {
        c.id: bool(rolewarden_finds(c) & expected_ids(c)) if c.escalation else bool(rolewarden_finds(c)) for c in chosen
    }
    peer = cloudsplaining_finds(chosen, ctx.workdir, ctx.log)
    cloudsplaining = {c.id: bool(peer[c.id]) for c in chosen}
    rw_recall, rw_fp, rw_missed, rw_flagged = _rates(rolewarden, chosen)
    cs_recall, cs_fp, cs_missed, cs_flagged = _rates(cloudsplaining, chosen)
    result.figures = {
        "cases": len(chosen),
        "escalations": sum(1 for c in chosen if c.escalation),
        "controls": sum(1 for c in chosen if not c.escalation),
        "rolewarden_recall": rw_recall,
        "rolewarden_false_positives": rw_fp,
        "cloudsplaining_recall": cs_recall,
        "cloudsplaining_false_positives": cs_fp,
        "cloudsplaining_version": CLOUDSPLAINING_VERSION,
    }
    result.goal("rolewarden_recall", rw_recall, ">=", 0.97)
    result.goal("rolewarden_false_positives", rw_fp, "==", 0)
    result.goal("recall_above_cloudsplaining", round(rw_recall - cs_recall, 4), ">=", 0.0001)
    result.notes.append(f"RoleWarden missed: {rw_missed or 'none'}; flagged controls: {rw_flagged or 'none'}")
    result.notes.append(f"cloudsplaining missed {len(cs_missed)}: {cs_missed[:60]}")
    result.notes.append(f"cloudsplaining flagged controls: {cs_flagged or 'none'}")
    ctx.log(
        f"{NAME}: RoleWarden recall {rw_recall} ({rw_fp} false positives), "
        f"cloudsplaining recall {cs_recall} ({cs_fp} false positives) on {len(chosen)} cases"
    )
    return result
