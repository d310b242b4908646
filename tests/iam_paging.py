"""AWS's ListUsers pagination for the AWS emulator (moto 5.2.5), for discovery tests and bench.

moto 5.2.5's ListUsers ignores MaxItems and Marker: it answers every user with IsTruncated
false. AWS answers at most MaxItems users (default 100, at most 1,000) and a Marker for the
next page. ``iam_paging()`` makes the emulator answer as AWS does while the block runs, by
replacing moto's ListUsers handler in this process (ThreadedMotoServer serves from here), so
the vault's client sees real HTTP pages with an opaque Marker. Everything else is moto's own.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from moto.core.responses import ActionResult
from moto.iam.responses import IamResponse

DEFAULT_MAX_ITEMS = 100  # AWS's default page size for ListUsers


def _paged_list_users(self: IamResponse) -> ActionResult:
    users = list(self.backend.list_users(self._get_param("PathPrefix"), None, None))
    max_items = int(self._get_param("MaxItems") or DEFAULT_MAX_ITEMS)
    marker = self._get_param("Marker") or ""
    start = int(marker[2:]) if marker.startswith("m-") and marker[2:].isdigit() else 0
    end = start + max_items
    result: dict = {"Users": users[start:end], "IsTruncated": end < len(users)}
    if end < len(users):
        result["Marker"] = f"m-{end}"
    return ActionResult(result)


@contextmanager
def iam_paging() -> Iterator[None]:
    original = IamResponse.list_users
    IamResponse.list_users = _paged_list_users  # type: ignore[method-assign]
    try:
        yield
    finally:
        IamResponse.list_users = original  # type: ignore[method-assign]
