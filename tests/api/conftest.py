"""The CRD installed into the real local apiserver, once per session."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

CRD = Path(__file__).resolve().parents[2] / "crds" / "generationclusters.orfeas.ai.yaml"


@pytest.fixture(scope="session")
def crd(cluster) -> Iterator[None]:  # type: ignore[no-untyped-def]
    cluster.kubectl("apply", "--server-side", "--force-conflicts", "-f", str(CRD))
    cluster.kubectl("wait", "--for=condition=Established", "--timeout=60s",
                    "crd/generationclusters.orfeas.ai")
    yield
