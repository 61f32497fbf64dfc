"""The workload's documentation and image recipe stay in step with the code."""

from __future__ import annotations

import re

from conftest import ROOT

from gencluster_workload.config import OPTIONS
from gencluster_workload.metrics import CONTRACT_NAMES

DOC = ROOT / "docs" / "workload.md"


def test_configuration_table_lists_every_option_with_its_flag_and_default() -> None:
    rows = {
        m.group(1): (m.group(2), m.group(3))
        for m in re.finditer(r"^\| `(GENCLUSTER_\w+)` \| `(--[\w-]+)` \| `([^`]*)` \|", DOC.read_text(), re.M)
    }
    for opt in OPTIONS:
        assert opt.env in rows, opt.env
        flag, default = rows[opt.env]
        assert flag == opt.flag
        assert default == (str(opt.default) if opt.default != "" else '""'), opt.env
    assert set(rows) == {o.env for o in OPTIONS}


def test_every_contract_metric_is_documented() -> None:
    text = DOC.read_text()
    for name in CONTRACT_NAMES:
        assert f"`{name}`" in text, name


def test_dockerfile_recipe() -> None:
    text = (ROOT / "workload" / "Dockerfile").read_text()
    assert "ARG BASE=docker.io/library/python:3.11-slim-bookworm\nFROM ${BASE}" in text
    assert "ARG PIP_FIND_LINKS" in text and "--find-links" in text
    assert re.search(r"^USER 10001", text, re.M)
    assert "EXPOSE 8080" in text
    assert 'ENTRYPOINT ["/opt/venv/bin/gencluster", "serve"]' in text
    # Dependencies are installed before the sources are copied (layer caching).
    assert text.index("-r /tmp/requirements.txt") < text.index("COPY workload")
    assert "--no-deps" in text
