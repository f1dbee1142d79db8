"""The README's code runs as written: its drop-in snippet, saved as a script, against a server."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

from ttc_agent.testing import fenced, judge_reply

ROOT = Path(__file__).resolve().parents[1]
HELPFULNESS = ["correctness", "completeness", "specificity", "clarity"]


def snippet(heading: str) -> str:
    """The first Python block under a README heading."""
    readme = (ROOT / "README.md").read_text()
    section = readme.split(f"\n## {heading}\n", 1)[1]
    return re.search(r"```python\n(.*?)```", section, re.DOTALL).group(1)


def test_the_drop_in_snippet_runs_as_a_script(loopback, tmp_path):
    def handler(request):
        candidate = fenced(request.last_user)
        if candidate is not None:
            return judge_reply(dict.fromkeys(HELPFULNESS, 5 if "best" in candidate else 2))
        return "the best draft" if request.choice == 3 else f"draft {request.choice}"

    server = loopback(handler, honour_n=True)
    script = tmp_path / "drop_in.py"
    script.write_text(snippet("Drop it into your graph"))
    environment = {k: v for k, v in os.environ.items() if not k.startswith(("OPENAI_", "TTC_"))}
    environment |= {"OPENAI_BASE_URL": server.base_url, "OPENAI_API_KEY": "k", "TTC_MODEL": "m"}
    done = subprocess.run(
        [sys.executable, str(script)],
        capture_output=True,
        text=True,
        env=environment,
        cwd=tmp_path,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    answer, usage = done.stdout.splitlines()[:2]
    assert answer == "the best draft"
    assert "generation" in usage and "verification" in usage
    assert len([r for r in server.requests if fenced(r.last_user) is not None]) == 8
