"""Bearer-token guard of the admin API (/admin/*).

Why a file: the operator mounts the token from a Secret, and a mounted Secret changes in place
when rotated; re-reading the file when its mtime changes picks a rotation up without a restart.
No token configured means the admin API is off (403), never open.
"""

from __future__ import annotations

import hmac
import os
from pathlib import Path


class AdminAuth:
    def __init__(self, token: str = "", token_file: str = "") -> None:
        self._env_token = token.strip()
        self._file = Path(token_file) if token_file else None
        self._file_token = ""
        self._mtime: float | None = None

    def token(self) -> str:
        if self._file is not None:
            try:
                mtime = os.stat(self._file).st_mtime
                if mtime != self._mtime:
                    self._file_token = self._file.read_text().strip()
                    self._mtime = mtime
            except OSError:
                self._file_token, self._mtime = "", None
            if self._file_token:
                return self._file_token
        return self._env_token

    @property
    def enabled(self) -> bool:
        return bool(self.token())

    def check(self, authorization: str | None) -> tuple[int, str] | None:
        """None when allowed, else (HTTP status, message)."""
        expected = self.token()
        if not expected:
            return 403, (
                "admin API disabled: no token configured (set GENCLUSTER_ADMIN_TOKEN "
                "or GENCLUSTER_ADMIN_TOKEN_FILE)"
            )
        scheme, _, given = (authorization or "").partition(" ")
        if scheme.lower() != "bearer" or not given.strip():
            return 401, "missing bearer token: send 'Authorization: Bearer <token>'"
        if not hmac.compare_digest(given.strip().encode(), expected.encode()):
            return 401, "invalid bearer token"
        return None
