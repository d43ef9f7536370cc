"""Downloads: an export ``Table`` written by ``matcher.export`` (CSV with a BOM for Excel, or XLSX) to a temporary
file, sent, then removed."""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path
from typing import Literal

from fastapi.responses import FileResponse
from starlette.background import BackgroundTask

from api.web.render import secure
from matcher.export import Table, write
from matcher.i18n import Lang

Format = Literal["csv", "xlsx"]


def table_download(table: Table, name: str, fmt: Format, lang: Lang) -> FileResponse:
    folder = Path(tempfile.mkdtemp(prefix="pmatch-web-export-"))
    try:
        path = write(table, folder / f"{name}.{fmt}", lang)
    except BaseException:
        shutil.rmtree(folder, ignore_errors=True)
        raise
    return secure(FileResponse(path, filename=path.name,
                               background=BackgroundTask(shutil.rmtree, folder, ignore_errors=True)))
