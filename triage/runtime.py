"""Building a Triager from Settings: the data files plus the bundle that serves."""

from __future__ import annotations

from triage.bundle import load_bundle
from triage.config import load_config
from triage.errors import ConfigError
from triage.pipeline import Triager
from triage.settings import Settings


def load_triager(settings: Settings) -> Triager:
    """Raises ConfigError when no bundle exists or its labels disagree with the data files."""
    config = load_config(settings.config_dir)
    path = settings.model_path()
    if not path.is_dir():
        raise ConfigError(f"no model bundle at {path}; run `triage build-default` first")
    return Triager(config, load_bundle(path))
