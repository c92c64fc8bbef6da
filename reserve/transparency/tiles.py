"""C2SP tlog-tiles: tile coordinates, their paths, entry bundles, and hashes from tiles.

A tiled log serves its Merkle tree (RFC 9162 hashing) as static files:

    checkpoint                       the signed checkpoint (C2SP signed note)
    tile/<L>/<N>[.p/<W>]             256 consecutive hashes at tree level 8*L (8,192 bytes);
                                     a partial tile at the right edge holds W < 256
    tile/entries/<N>[.p/<W>]         the entries of level-0 tile N, each a big-endian
                                     uint16 length followed by the entry's bytes

<N> is written in 3-digit groups, all but the last prefixed with `x` (1234067 is
`x001/x234/067`). Pure: no I/O; `reserve.transparency.publish` writes the files and
`reserve.transparency.witness` reads them back.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass

from reserve.errors import TransparencyError
from reserve.ledger import merkle

TILE_HEIGHT = 8
TILE_WIDTH = 1 << TILE_HEIGHT  # 256 hashes, or entries in a bundle
HASH_BYTES = 32
LEVEL_MAX = 63
ENTRY_BYTES_MAX = 0xFFFF  # the uint16 length prefix

# tile/<level or "entries">/<index groups>[.p/<width 1..255>], nothing else.
_TILE_PATH = re.compile(r"tile/(0|[1-9][0-9]?|entries)/((?:x[0-9]{3}/){0,5}[0-9]{3})"
                        r"(?:\.p/([1-9][0-9]?|1[0-9]{2}|2[0-4][0-9]|25[0-5]))?")
CHECKPOINT_PATH = "checkpoint"


@dataclass(frozen=True, order=True)
class Tile:
    """Tile `index` of `level` (level -1: the entry bundle of level-0 tile `index`),
    `width` hashes or entries wide (TILE_WIDTH: full)."""

    level: int
    index: int
    width: int

    def __post_init__(self) -> None:
        if not -1 <= self.level <= LEVEL_MAX or self.index < 0 or \
                not 1 <= self.width <= TILE_WIDTH:
            raise TransparencyError(f"no such tile: level {self.level}, index {self.index}, "
                                    f"width {self.width}")

    @property
    def full(self) -> bool:
        return self.width == TILE_WIDTH

    @property
    def is_bundle(self) -> bool:
        return self.level == -1

    def path(self) -> str:
        level = "entries" if self.is_bundle else str(self.level)
        suffix = "" if self.full else f".p/{self.width}"
        return f"tile/{level}/{encode_index(self.index)}{suffix}"


def encode_index(index: int) -> str:
    """1234067 -> `x001/x234/067`; 5 -> `005`."""
    if index < 0:
        raise TransparencyError(f"tile index {index} is negative")
    digits = str(index)
    digits = "0" * (-len(digits) % 3) + digits
    groups = [digits[i:i + 3] for i in range(0, len(digits), 3)]
    return "/".join([f"x{group}" for group in groups[:-1]] + [groups[-1]])


def parse_path(path: str) -> Tile | None:
    """The tile a request path names, or None unless it is exactly a spec path
    (`checkpoint` is not a tile: callers test it first)."""
    match = _TILE_PATH.fullmatch(path)
    if match is None:
        return None
    level_text, index_text, width_text = match.group(1), match.group(2), match.group(3)
    groups = index_text.split("/")
    # One spelling per index: no leading zero group (x000/005 is 005).
    if len(groups) > 1 and groups[0] == "x000":
        return None
    index = int("".join(group.lstrip("x") for group in groups))
    level = -1 if level_text == "entries" else int(level_text)
    if level > LEVEL_MAX:
        return None
    width = int(width_text) if width_text else TILE_WIDTH
    return Tile(level, index, width)


def tiles_for_size(size: int, *, start_size: int = 0) -> Iterator[Tile]:
    """Every hash tile of the tree of `size` entries that a tree of `start_size` lacks
    (all of them from 0), level by level, left to right; no empty tile.

    A level-L tile holds the hashes of the complete level-8L subtrees: `size >> 8L` of
    them in all, so tile N is min(256, that - 256 N) wide.
    """
    if not 0 <= start_size <= size:
        raise TransparencyError(f"cannot grow a tree from {start_size} to {size} entries")
    for level in range(LEVEL_MAX + 1):  # bounded: 64 levels at most
        count = size >> (TILE_HEIGHT * level)
        if count == 0:
            return
        before = start_size >> (TILE_HEIGHT * level)
        first = before // TILE_WIDTH
        for index in range(first, (count + TILE_WIDTH - 1) // TILE_WIDTH):
            width = min(TILE_WIDTH, count - index * TILE_WIDTH)
            tile = Tile(level, index, width)
            if index * TILE_WIDTH + width > before:
                yield tile


def bundle_for(tile: Tile) -> Tile:
    """The entry bundle beside level-0 tile `tile`."""
    if tile.level != 0:
        raise TransparencyError(f"only level-0 tiles have entry bundles, not {tile.path()}")
    return Tile(-1, tile.index, tile.width)


def encode_bundle(entries: list[bytes]) -> bytes:
    """Big-endian uint16 length-prefixed entries. Requires 1..256 entries of at most
    65,535 bytes each."""
    if not 1 <= len(entries) <= TILE_WIDTH:
        raise TransparencyError(f"an entry bundle holds 1 to {TILE_WIDTH} entries, "
                                f"got {len(entries)}")
    parts = []
    for entry in entries:
        if len(entry) > ENTRY_BYTES_MAX:
            raise TransparencyError(f"an entry of {len(entry)} bytes does not fit a bundle's "
                                    f"uint16 length (at most {ENTRY_BYTES_MAX})")
        parts.append(len(entry).to_bytes(2, "big") + entry)
    return b"".join(parts)


def decode_bundle(data: bytes, width: int) -> list[bytes]:
    """The `width` entries of a bundle; TransparencyError if it holds another number or
    trailing bytes."""
    entries: list[bytes] = []
    position = 0
    while position < len(data):
        if len(entries) == width or position + 2 > len(data):
            raise TransparencyError(f"entry bundle holds more than {width} entries or a "
                                    "truncated length")
        length = int.from_bytes(data[position:position + 2], "big")
        position += 2
        if position + length > len(data):
            raise TransparencyError("entry bundle ends inside an entry")
        entries.append(data[position:position + length])
        position += length
    if len(entries) != width:
        raise TransparencyError(f"entry bundle holds {len(entries)} entries, expected {width}")
    return entries


def split_hashes(data: bytes, width: int) -> list[bytes]:
    """The `width` hashes of a hash tile; TransparencyError for any other length."""
    if len(data) != width * HASH_BYTES:
        raise TransparencyError(f"tile of width {width} must be {width * HASH_BYTES} bytes, "
                                f"got {len(data)}")
    return [data[i:i + HASH_BYTES] for i in range(0, len(data), HASH_BYTES)]


def tile_range_hash(size: int, read_tile: Callable[[Tile], bytes]) -> merkle.RangeHash:
    """A RangeHash over the tree of `size` entries computed from its tiles, for
    `merkle.consistency_path` and friends.

    The perfect subtree at tree level k, index i lies inside one tile of level k // 8: it
    is the Merkle root of 2^(k mod 8) consecutive hashes of that tile. `read_tile` returns
    a tile's bytes (the caller fetches and caches); nothing here trusts them: a root or
    proof computed from bad tiles fails to match a signed root.
    """
    cache: dict[Tile, list[bytes]] = {}

    def hashes(level: int) -> Callable[[int, int], list[bytes]]:
        count = size >> (TILE_HEIGHT * level)

        def read(start: int, stop: int) -> list[bytes]:
            found: list[bytes] = []
            for index in range(start // TILE_WIDTH, (stop - 1) // TILE_WIDTH + 1):
                width = min(TILE_WIDTH, count - index * TILE_WIDTH)
                tile = Tile(level, index, width)
                if tile not in cache:
                    cache[tile] = split_hashes(read_tile(tile), width)
                row = cache[tile]
                low, high = max(start, index * TILE_WIDTH), min(stop, index * TILE_WIDTH + width)
                found += row[low - index * TILE_WIDTH:high - index * TILE_WIDTH]
            return found

        return read

    def subtree(level: int, index: int) -> bytes:
        tile_level, height = divmod(level, TILE_HEIGHT)
        start = index << height
        return merkle.root_hash(hashes(tile_level)(start, start + (1 << height)))

    def range_hash(begin: int, end: int) -> bytes:
        if end > size:
            raise TransparencyError(f"range {begin}..{end} is beyond the tree of {size}")
        return merkle.fold_frontier([subtree(level, index)
                                     for level, index in merkle.perfect_subtrees(begin, end)])

    return range_hash
