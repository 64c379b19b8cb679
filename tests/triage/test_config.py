"""The data files are validated at load with clear errors."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from triage.config import DEFAULT_DATA_DIR, load_config
from triage.errors import ConfigError


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    target = tmp_path / "data"
    shutil.copytree(DEFAULT_DATA_DIR, target)
    return target


def edit(path: Path, old: str, new: str) -> None:
    text = path.read_text(encoding="utf-8")
    assert old in text
    path.write_text(text.replace(old, new, 1), encoding="utf-8")


def test_shipped_files_load(data_dir: Path) -> None:
    config = load_config(data_dir)
    assert config.label_ids("category")[0] == "credit_card"
    assert len(config.label_ids("issue")) == 10


@pytest.mark.parametrize(
    ("file", "old", "new", "message"),
    [
        ("routing.toml", 'wealth = "财富管理部"', 'wealth = "财富管理部"\nbitcoin = "X"', "unknown category label"),
        ("routing.toml", 'issue = "credit_report"', 'issue = "crypto"', "unknown issue label"),
        ("routing.toml", 'wealth = "财富管理部"\n', "", "no department for category"),
        (
            "templates.toml",
            "{signature}非常抱歉，您反映的",
            "{signatur}非常抱歉，您反映的",
            "placeholder {signatur} does not exist",
        ),
        ("sla.toml", 'resolve = "15d"', 'resolve = "20d"', "exceeds the regulatory cap"),
        ("sla.toml", 'first_response = "15m"', 'first_response = "15 minutes"', "bad duration"),
        (
            "signals.toml",
            'with_any = ["amount", "issue:funds_security"]',
            'with_any = ["issue:phishing"]',
            "unknown label reference",
        ),
        ("thresholds.toml", "category = 0.5", "category = 1.5", "within 0..1"),
        ("thresholds.toml", "P1 = 0.25", "P0 = 0.25", "unknown label 'P0'"),
        ("thresholds.toml", "P1 = 0.25", "P1 = 0", r"P1 must be within \(0, 1\]"),
        ("thresholds.toml", "[decision.urgency]", "[decision.priority]", "unknown head 'priority'"),
        ("deployment.toml", 'timezone = "Asia/Shanghai"', 'timezone = "Mars/Olympus"', "unknown time zone"),
        (
            "deployment.toml",
            'sms_signature = "【示例银行】"',
            'sms_signature = "【中华人民共和国某某省某某市农村商业银行股份有限公司营业部】"',
            "over the sms limit",
        ),
        ("taxonomy.toml", 'id = "P4"', 'id = "P5"', "urgency labels must be"),
    ],
)
def test_inconsistent_files_are_refused(data_dir: Path, file: str, old: str, new: str, message: str) -> None:
    edit(data_dir / file, old, new)
    with pytest.raises(ConfigError, match=message.replace("{", r"\{").replace("}", r"\}")):
        load_config(data_dir)


def test_model_labels_must_match_the_taxonomy(data_dir: Path) -> None:
    config = load_config(data_dir)
    labels = {h: list(config.label_ids(h)) for h in ("category", "issue", "urgency", "sentiment")}
    config.check_model_labels(labels)
    labels["issue"] = [*labels["issue"][:-1], "crypto"]
    with pytest.raises(ConfigError, match="missing \\['other'\\], unknown \\['crypto'\\]"):
        config.check_model_labels(labels)
