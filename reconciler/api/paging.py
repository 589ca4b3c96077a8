"""Pagination: every item of a paged Clarifai listing.

Contract: `list_all` follows ``page``/``per_page`` to the end. The API documents "iterate until an
empty page"; a page shorter than ``per_page`` proves the end just as well (the server would
otherwise have filled it), so the loop stops there and saves one request per listing. That relies
on the server honouring ``per_page`` up to the documented maximum of 1000, so `per_page` is
clamped to 1000; pass ``short_page_ends=False`` to insist on the empty page. When pages read
together (``pages_hint``) show a short page followed by a non-empty one, the server pages with
less than it was asked, and that listing is read to its empty page. A server that ignores paging
-- a page longer than ``per_page``, a page repeating the previous one, more than `MAX_PAGES` pages
-- is an ApiError, not an endless or wrong read.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from reconciler.api.client import Client

MAX_PER_PAGE = 1000
#: Paging stops with an error past this many pages (10 million items at 1000 a page).
MAX_PAGES = 10_000


def list_all(
    client: Client,
    path: str,
    key: str,
    params: dict[str, Any] | None = None,
    *,
    per_page: int = MAX_PER_PAGE,
    short_page_ends: bool = True,
    pages_hint: int = 1,
) -> list[dict[str, Any]]:
    """Every item of a paged listing, in server order: pages 1, 2, ... until an empty page (or
    a short one, see the module docstring). ``pages_hint`` pages are asked for at once (the
    caller's guess of the listing's length, e.g. from the manifest): a right guess costs one
    round trip instead of one per page, a wrong one only the extra (empty) pages, and past the
    guess the pages are read one after another as usual."""
    per_page = max(1, min(int(per_page), MAX_PER_PAGE))
    items: list[dict[str, Any]] = []
    page = 1
    previous: list[dict[str, Any]] | None = None

    def fetch(n: int) -> dict[str, Any]:
        return client.get(path, {**(params or {}), "page": n, "per_page": per_page})

    while True:
        first = max(1, min(int(pages_hint), MAX_PAGES)) if page == 1 else 1
        bodies = client.map(fetch, range(page, page + first)) if first > 1 else [fetch(page)]
        chunks = [_page_items(client, body, key, path) for body in bodies]
        for at, chunk in enumerate(chunks):
            # A server that ignores paging would otherwise be read forever (or misread): refuse.
            if len(chunk) > per_page:
                raise client.error(
                    f"unexpected response: page {page} has {len(chunk)} {key}, more than the "
                    f"per_page={per_page} asked for (the server ignores paging)",
                    "GET",
                    path,
                    http_status=200,
                )
            if chunk and chunk == previous:
                raise client.error(
                    f"unexpected response: page {page} repeats page {page - 1} (the server ignores the page parameter)",
                    "GET",
                    path,
                    http_status=200,
                )
            if page >= MAX_PAGES and chunk:
                raise client.error(f"more than {MAX_PAGES} pages of {key}; giving up", "GET", path, http_status=200)
            items.extend(chunk)
            if not chunk:
                return items
            if short_page_ends and len(chunk) < per_page:
                if not any(chunks[at + 1 :]):
                    return items
                # a later page, already read, is not empty: this server's pages are shorter than
                # the per_page asked for, so a short page proves nothing here; read to the empty one
                short_page_ends = False
            previous = chunk
            page += 1


def _page_items(client: Client, body: dict[str, Any], key: str, path: str) -> list[dict[str, Any]]:
    """The items of one listing page (a missing or null list is empty); any other shape is an error."""
    chunk = body.get(key, [])
    if chunk is None:
        return []
    if not isinstance(chunk, list) or not all(isinstance(i, dict) for i in chunk):
        what = f"unexpected response shape: '{key}' is not a list of objects"
        raise client.error(what, "GET", path, http_status=200, body=body)
    return chunk
