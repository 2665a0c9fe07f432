"""JSON from a websocket frame, parsed without letting the frame choose the cost.

`json.loads` recurses once per nesting level: a 1,000-deep array (2 KiB) raises RecursionError,
which is not a ValueError, so a consumer that only catches ValueError crashes (the client sees
1006 and the server logs "Exception in ASGI application"). `loads` scans the nesting depth first
(linear in the frame, which the consumers bound to 2 KiB) and refuses anything deeper than
MAX_DEPTH, and turns any other failure of the parser into ValueError, so a caller has one
exception to answer with its "bad message" close code.
"""

import json

MAX_DEPTH = 16  # the sockets' messages are objects of scalars and short arrays: 2 levels


def nesting_depth(text: str) -> int:
    """The deepest nesting of arrays and objects in `text` (brackets inside strings ignored)."""
    depth = deepest = 0
    in_string = escaped = False
    for char in text:
        if in_string:
            if escaped:
                escaped = False
            elif char == "\\":
                escaped = True
            elif char == '"':
                in_string = False
        elif char == '"':
            in_string = True
        elif char in "[{":
            depth += 1
            if depth > deepest:
                deepest = depth
        elif char in "]}":
            depth -= 1
    return deepest


def loads(text: str, *, max_depth: int = MAX_DEPTH):
    """`json.loads(text)`, or ValueError when it is not JSON or nests deeper than `max_depth`."""
    # Nothing nests deeper than it has opening brackets: counting them (in C) spares the scan in
    # Python (~25 µs for a ping's 100 characters) for every ordinary message (a ping has one).
    if text.count("[") + text.count("{") > max_depth and nesting_depth(text) > max_depth:
        raise ValueError(f"JSON nested deeper than {max_depth} levels")
    try:
        return json.loads(text)
    except RecursionError as exc:  # not reachable under max_depth; kept as a second guard
        raise ValueError("JSON nested too deeply") from exc
