"""The README is an operator's first deploy guide: the two omissions a first deploy tripped over stay fixed."""

from __future__ import annotations

import re
from pathlib import Path

README = (Path(__file__).resolve().parents[2] / "README.md").read_text()


def deploy_section() -> str:
    match = re.search(r"^## Deploying to AWS\n(.*?)^## ", README, flags=re.S | re.M)
    assert match, "README has no '## Deploying to AWS' section"
    return match.group(1)


def test_deploy_section_bootstraps_the_account_before_the_first_deploy():
    section = deploy_section()
    assert section.index("cdk bootstrap") < section.index("cdk deploy")


def test_idle_cost_counts_the_search_index_and_the_glue_runs():
    section = deploy_section()
    idle = section[section.index("Monthly cost when idle"):]
    assert "t3.small.search" in idle and "OCU" in idle and "DPU-hour" in idle
    assert "$3–5" not in README and "$3-5" not in README


def test_deploy_section_names_the_post_deploy_smoke_command():
    assert "photo-organizer cloud smoke" in deploy_section()
