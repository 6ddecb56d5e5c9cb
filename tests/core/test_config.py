"""Settings: every variable read is documented, bad values are refused by name, and the
settings a server hands its child processes come back whole."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from server.config import Settings

ROOT = Path(__file__).parents[2]


def test_every_variable_read_is_in_the_readme() -> None:
    """The README's configuration table lists exactly the variables Settings.from_env reads."""
    read = set(re.findall(r'"((?:EVENTFLOW_|DATABASE_|REDIS_)[A-Z_]+)"',
                          (ROOT / "server" / "config.py").read_text()))
    table = (ROOT / "README.md").read_text().split("## Configuration", 1)[1].split("\n## ", 1)[0]
    documented = set(re.findall(r"^\| `([A-Z_]+)` \|", table, flags=re.MULTILINE))
    assert read == documented


@pytest.mark.parametrize(("name", "value"), [
    ("EVENTFLOW_SWEEP_INTERVAL", "soon"), ("EVENTFLOW_WORKFLOW_RETRY_BASE", "0"),
    ("EVENTFLOW_RATE_LIMIT", "many"), ("EVENTFLOW_LOG_LEVEL", "LOUD"),
    ("EVENTFLOW_INGEST_WRITER", "thread")])
def test_a_bad_value_stops_start_up_naming_the_variable(name: str, value: str) -> None:
    """A value that cannot be used stops start-up with a message naming the variable."""
    with pytest.raises(SystemExit, match=name):
        Settings.from_env({name: value})


def test_settings_survive_the_hand_over_to_a_child() -> None:
    """to_json/from_json give back equal settings, typed (paths, numbers, None)."""
    settings = Settings.from_env({"EVENTFLOW_DATA_DIR": "/tmp/x", "EVENTFLOW_API_KEY": "k",
                                  "EVENTFLOW_WORKFLOW_RETRY_BASE": "0.25",
                                  "EVENTFLOW_LOG_LEVEL": "debug"})
    back = Settings.from_json(settings.to_json())
    assert back == settings
    assert isinstance(back.data_dir, Path) and back.workflow_retry_base == 0.25
    assert back.log_level == "DEBUG" and back.redis_url is None
