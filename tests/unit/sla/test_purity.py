"""The sla package stays pure: importing it loads no web framework and no database layer."""
from __future__ import annotations

import pathlib
import subprocess
import sys

ROOT = pathlib.Path(__file__).resolve().parents[3]


def test_importing_sla_loads_neither_flask_nor_sqlalchemy():
    result = subprocess.run(
        [sys.executable, "-c", "import sla, sys; print('flask' in sys.modules or 'sqlalchemy' in sys.modules)"],
        cwd=ROOT, capture_output=True, text=True, check=True,
    )
    assert result.stdout.strip() == "False"


def test_sla_sources_do_not_mention_the_app_or_the_wall_clock():
    sources = "\n".join(path.read_text() for path in (ROOT / "sla").glob("*.py"))
    for forbidden in ("import flask", "from flask", "sqlalchemy", "helpdesk", ".now(", "utcnow", "time.time("):
        assert forbidden not in sources.lower(), forbidden
