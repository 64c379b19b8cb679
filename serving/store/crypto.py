"""Raw complaint text at rest: encrypted with Fernet (AES-128-CBC + HMAC-SHA256).

The key comes from TRIAGE_ENCRYPTION_KEY, else from a key file created once in
the data directory (mode 0600). Losing the key makes stored raw texts
unreadable; masked texts and labels are not encrypted and stay usable.
"""

from __future__ import annotations

import os
from pathlib import Path

from cryptography.fernet import Fernet, InvalidToken


class RawTextCipher:
    def __init__(self, key: bytes) -> None:
        self._fernet = Fernet(key)

    @classmethod
    def from_settings(cls, env_key: str | None, data_dir: Path) -> RawTextCipher:
        if env_key:
            return cls(env_key.encode("ascii"))
        path = data_dir / "raw_text.key"
        if not path.is_file():
            data_dir.mkdir(parents=True, exist_ok=True)
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "wb") as out:
                out.write(Fernet.generate_key())
        return cls(path.read_bytes().strip())

    def encrypt(self, text: str) -> bytes:
        return self._fernet.encrypt(text.encode("utf-8"))

    def decrypt(self, token: bytes) -> str:
        try:
            return self._fernet.decrypt(token).decode("utf-8")
        except InvalidToken as exc:
            raise ValueError("stored raw text cannot be decrypted with this key") from exc
