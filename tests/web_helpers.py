"""What the page's tests share: hostile records (markup in a title and an applicant) added to the small workspace
``api_server.running_server`` builds and serves with a real uvicorn."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path

from api_server import ApiServer, running_server

from matcher.records import Demand, Patent

HOSTILE_TITLE = '<script>window.__pwned = 1</script><img src=x onerror="window.__pwned = 2">'
HOSTILE_APPLICANT = '" onmouseover="window.__pwned = 3" x="'
HOSTILE = Patent(id="CN000000001A", title=HOSTILE_TITLE, applicants=[HOSTILE_APPLICANT], language="zh",
                 abstract="一种锂离子电池正极材料的制备方法，" + HOSTILE_TITLE, legal_status="valid",
                 applicant_type="company", ipc=["H01M4/58"])
HOSTILE_DEMAND = Demand(id="ZB-D-XSS", title=HOSTILE_TITLE + "锂电池正极材料需求", enterprise=HOSTILE_APPLICANT,
                        description="寻求锂离子电池正极材料技术。")


@contextlib.contextmanager
def page_server(tmp: Path, patents: list[Patent], demands: list[Demand],
                env: dict[str, str] | None = None) -> Iterator[tuple[ApiServer, str]]:
    """``running_server`` over the records plus the hostile ones: (server, API key)."""
    with running_server(tmp, [*patents, HOSTILE], [*demands, HOSTILE_DEMAND], env) as served:
        yield served
