"""Writing output files so that they exist whole or not at all."""
from __future__ import annotations

import os
import secrets
from pathlib import Path


def write_atomic(target: Path, data: bytes) -> None:
    """Write beside the target and rename over it. The temp name is unique so that parallel
    writers never collide; os.open honours the umask (mkstemp would force 0600)."""
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_name(f".{target.name}.{os.getpid()}.{secrets.token_hex(4)}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, target)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
