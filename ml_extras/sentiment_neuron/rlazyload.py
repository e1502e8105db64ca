"""Read R lazy-load data bases (Rdata.rdx/.rdb) with the `rdata` package.

`rdata` reads .rds/.rda files but not lazy-load DBs, which is how Debian's r-cran-* packages
ship their data. The format is simple: ``Rdata.rdx`` is an .rds file holding a list with
``variables`` (name -> [offset, length] into ``Rdata.rdb``); each rdb entry is a 4-byte
big-endian uncompressed size followed by a zlib stream of one R-serialized object.
"""

from __future__ import annotations

import struct
import warnings
import zlib
from pathlib import Path
from typing import Any

from ml_extras.common import MissingDataError, require


def _index(data_dir: Path) -> dict[str, tuple[int, int]]:
    rdata = require("rdata")
    rdx = data_dir / "Rdata.rdx"
    if not rdx.is_file() or not (data_dir / "Rdata.rdb").is_file():
        raise MissingDataError(f"no R lazy-load data base (Rdata.rdx/.rdb) in {data_dir}")
    index = rdata.read_rds(rdx)
    variables = {str(k): v for k, v in index["variables"].items()} if "variables" in index else None
    if variables is None:
        raise ValueError(f"{rdx} has no 'variables' entry; not a lazy-load index")
    return {name: (int(pos[0]), int(pos[1])) for name, pos in variables.items()}


def list_objects(data_dir: Path) -> list[str]:
    """Names of the objects stored in a lazy-load DB."""
    return sorted(_index(data_dir))


def decode_entry(blob: bytes) -> bytes:
    """The serialized R object inside one rdb entry (size header + zlib stream)."""
    if len(blob) < 5:
        raise ValueError(f"rdb entry too short ({len(blob)} bytes)")
    expected = struct.unpack(">I", blob[:4])[0]
    payload = zlib.decompress(blob[4:])
    if len(payload) != expected:
        raise ValueError(f"rdb entry decompressed to {len(payload)} bytes, header says {expected}")
    return payload


def read_object(data_dir: Path, name: str) -> Any:
    """One object of a lazy-load DB converted to Python (character vectors -> numpy str arrays)."""
    rdata = require("rdata")
    index = _index(data_dir)
    if name not in index:
        raise KeyError(f"'{name}' is not in {data_dir}; it holds {sorted(index)}")
    offset, length = index[name]
    with open(data_dir / "Rdata.rdb", "rb") as handle:
        handle.seek(offset)
        blob = handle.read(length)
    with warnings.catch_warnings():  # rdata warns that a bare serialization has no file-type magic
        warnings.simplefilter("ignore", UserWarning)
        parsed = rdata.parser.parse_data(decode_entry(blob))
        return rdata.conversion.convert(parsed)
