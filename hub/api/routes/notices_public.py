"""Open publication (no key): notices and their versions, OCDS packages, the Atom feed and the changes
feed. Every route is declared with ``PUBLIC_ROUTE``.

The changes feed is the resync contract: ``seq`` strictly increases in commit order, so a consumer that
stores ``next_after`` and asks again from it gets every version exactly once, whenever it comes back.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from decimal import Decimal
from typing import Annotated, Any
from urllib.parse import urlencode

from fastapi import APIRouter, Depends, Path, Query, Request
from fastapi.exceptions import RequestValidationError
from starlette.responses import JSONResponse, Response

from hub.api.conditional import cache_headers, etag_for, not_modified
from hub.api.deps import PUBLIC_ROUTE, HubDep, UowDep
from hub.api.schemas import INT64_MAX
from hub.notices import queries
from hub.notices.atom import ATOM_CONTENT_TYPE, build_feed, entry_for_version, tag_uri
from hub.notices.links import (
    API_PREFIX,
    absolute,
    changes_feed_path,
    notice_path,
    ocds_feed_path,
    ocds_record_path,
    ocds_releases_path,
    version_path,
)
from hub.notices.model import Category, NoticeStatus, NoticeValidationError
from hub.notices.ocds import record_package, release_for, release_package, releases_for
from hub.notices.publication import PublicationSettings
from hub.spine.errors import NotFound
from hub.spine.timestamps import UtcTimestamp

__all__ = ["router"]

router = APIRouter(tags=["open publication"])

_OCDS_LIMIT = 100


def notice_query(
    q: Annotated[str | None, Query(max_length=200, description="Words in the title or description")] = None,
    category: Annotated[list[Category] | None, Query()] = None,
    classification: Annotated[list[str] | None, Query(description="Prefix: 45, CPV:4523, UNSPSC:7214")] = None,
    region: Annotated[list[str] | None, Query(description="KR-11 exactly, or KR for the whole country")] = None,
    institution: Annotated[list[str] | None, Query(description="Publishing institution's organisation id")] = None,
    min_value: Annotated[Decimal | None, Query(ge=0)] = None,
    max_value: Annotated[Decimal | None, Query(ge=0)] = None,
    currency: Annotated[str | None, Query(pattern=r"^[A-Za-z]{3}$")] = None,
    status: Annotated[NoticeStatus | None, Query()] = None,
    published_from: Annotated[UtcTimestamp | None, Query()] = None,
    published_to: Annotated[UtcTimestamp | None, Query()] = None,
    deadline_from: Annotated[UtcTimestamp | None, Query()] = None,
    deadline_to: Annotated[UtcTimestamp | None, Query()] = None,
) -> queries.NoticeQuery:
    try:
        return queries.NoticeQuery(
            q=q, categories=tuple(c.value for c in category or ()), classifications=tuple(classification or ()),
            regions=tuple(region or ()), institutions=tuple(institution or ()), min_value=min_value,
            max_value=max_value, currency=currency, status=status.value if status else None,
            published_from=published_from, published_to=published_to, deadline_from=deadline_from,
            deadline_to=deadline_to,
        )
    except NoticeValidationError as error:
        raise RequestValidationError(
            [{"loc": ("query", *path.split(".")), "msg": message, "type": "value_error"}
             for path, message in error.problems]
        ) from None


QueryDep = Annotated[queries.NoticeQuery, Depends(notice_query)]


def _settings(hub: HubDep) -> PublicationSettings:
    return hub.settings.syndication.publication


PublicationDep = Annotated[PublicationSettings, Depends(_settings)]


def _feed_tag(request: Request, uow: Any) -> str:
    """Answers over many notices depend on the request and on what has been published: the feed's head."""
    return etag_for(request, queries.feed_head(uow.session))


def _notice_tag(request: Request, uow: Any, notice_id: str) -> str | None:
    """Answers about one notice change only with its versions; None: no such notice (answered 404)."""
    last_seq = queries.notice_last_seq(uow.session, notice_id)
    return None if last_seq is None else etag_for(request, last_seq)


def _with_query(request: Request, **replace: Any) -> str:
    params = [(k, v) for k, v in request.query_params.multi_items() if k not in replace]
    params += [(k, str(v)) for k, v in replace.items() if v is not None]
    return f"{request.url.path}?{urlencode(params)}" if params else request.url.path


@router.get("/notices", summary="Search published notices (newest first, cursor pagination)",
            response_model=dict[str, Any],
            **PUBLIC_ROUTE)
def list_notices(
    request: Request, response: Response, uow: UowDep, query: QueryDep, publication: PublicationDep,
    cursor: Annotated[str | None, Query(max_length=100, description="`next_cursor` of the previous page")] = None,
    limit: Annotated[int | None, Query(ge=1, le=INT64_MAX, description="Page size; capped by configuration")] = None,
) -> Any:
    tag = _feed_tag(request, uow)
    if (unchanged := not_modified(request, tag, publication.cache_max_age_s)) is not None:
        return unchanged
    cache_headers(response, tag, publication.cache_max_age_s)
    before = None
    if cursor is not None:
        try:
            before = queries.decode_cursor(cursor)
        except ValueError as error:
            raise RequestValidationError([{"loc": ("query", "cursor"), "msg": str(error), "type": "value_error"}]) \
                from None
    size = publication.clamp(limit)
    rows, next_position = queries.list_notices(uow.session, query, size, before)
    next_cursor = queries.encode_cursor(next_position) if next_position is not None else None
    return {
        "items": [queries.notice_summary(row) for row in rows],
        "limit": size,
        "next_cursor": next_cursor,
        "next": _with_query(request, cursor=next_cursor) if next_cursor else None,
    }


def _load(uow: Any, notice_id: str) -> tuple[Any, list[Any]]:
    found = queries.load_notice(uow.session, notice_id)
    if found is None:
        raise NotFound("notice", notice_id)
    return found


@router.get("/notices/{notice_id}", summary="A notice: its current content and every version",
            response_model=dict[str, Any],
            **PUBLIC_ROUTE)
def read_notice(notice_id: str, request: Request, response: Response, uow: UowDep,
                publication: PublicationDep) -> Any:
    if (unchanged := _notice_unchanged(request, response, uow, notice_id, publication)) is not None:
        return unchanged
    row, versions = _load(uow, notice_id)
    return queries.notice_detail(row, versions)


@router.get("/notices/{notice_id}/versions/{number}", summary="One version of a notice",
            response_model=dict[str, Any],
            **PUBLIC_ROUTE)
def read_version(notice_id: str, number: Annotated[int, Path(ge=1, le=INT64_MAX)], request: Request,
                 response: Response, uow: UowDep, publication: PublicationDep) -> Any:
    if (unchanged := _notice_unchanged(request, response, uow, notice_id, publication)) is not None:
        return unchanged
    _, versions = _load(uow, notice_id)
    found = next((v for v in versions if v.number == number), None)
    if found is None:
        raise NotFound("version", f"{notice_id}/{number}")
    return queries.version_detail(found)


def _notice_unchanged(request: Request, response: Response, uow: Any, notice_id: str,
                      publication: PublicationSettings) -> Response | None:
    """A 304 if the caller holds the current answer; else its headers are set on ``response``."""
    tag = _notice_tag(request, uow, notice_id)
    if tag is None:
        return None
    if (unchanged := not_modified(request, tag, publication.cache_max_age_s)) is not None:
        return unchanged
    cache_headers(response, tag, publication.cache_max_age_s)
    return None


def _ocds(body: dict[str, Any]) -> JSONResponse:
    return JSONResponse(body, media_type="application/json")


def _base(hub: Any) -> str:
    return str(hub.settings.api.public_base_url)


def _notice_package(request: Request, notice_id: str, uow: Any, hub: Any, publication: Any,
                    package: Callable[..., dict[str, Any]], path: Callable[[str], str]) -> Response:
    headers = Response()
    if (unchanged := _notice_unchanged(request, headers, uow, notice_id, publication)) is not None:
        return unchanged
    notice = queries.load_notices(uow.session, [notice_id]).get(notice_id)
    if notice is None:
        raise NotFound("notice", notice_id)
    releases = releases_for(notice, publication.ocid_prefix)
    answer = _ocds(package(releases, absolute(_base(hub), path(notice_id)), publication.publisher(),
                           notice.current.published_at))
    answer.headers.update({name: headers.headers[name] for name in ("ETag", "Cache-Control")})
    return answer


@router.get("/notices/{notice_id}/ocds/releases", summary="OCDS 1.1 release package: one release per version",
            **PUBLIC_ROUTE)
def notice_releases(notice_id: str, request: Request, uow: UowDep, hub: HubDep,
                    publication: PublicationDep) -> Response:
    return _notice_package(request, notice_id, uow, hub, publication, release_package, ocds_releases_path)


@router.get("/notices/{notice_id}/ocds/record", summary="OCDS 1.1 record package with the compiled release",
            **PUBLIC_ROUTE)
def notice_record(notice_id: str, request: Request, uow: UowDep, hub: HubDep,
                  publication: PublicationDep) -> Response:
    return _notice_package(request, notice_id, uow, hub, publication, record_package, ocds_record_path)


@router.get("/ocds/releases", summary="OCDS 1.1 release package over the changes feed", **PUBLIC_ROUTE)
def ocds_feed(
    request: Request, uow: UowDep, hub: HubDep, publication: PublicationDep,
    after: Annotated[int, Query(ge=0, le=INT64_MAX, description="Releases of versions with seq > after")] = 0,
    limit: Annotated[int, Query(ge=1, le=INT64_MAX)] = _OCDS_LIMIT,
) -> Response:
    """Releases in seq order; ``links.next`` continues after the last one (OCDS pagination)."""
    tag = _feed_tag(request, uow)
    if (unchanged := not_modified(request, tag, publication.cache_max_age_s)) is not None:
        return unchanged
    size = min(limit, publication.max_page_size)
    versions = queries.versions_after(uow.session, after, size)
    notices = queries.load_notices(uow.session, [v.notice_id for v in versions])
    releases = [release_for(notices[v.notice_id], v.number, publication.ocid_prefix) for v in versions]
    base = _base(hub)
    published = max((v.published_at for v in versions), default=None) or datetime.now(UTC)
    package = release_package(releases, absolute(base, _with_query(request)), publication.publisher(), published)
    next_after = versions[-1].seq if versions else after
    package["links"] = {"next": absolute(base, f"{ocds_feed_path()}?{urlencode({'after': next_after, 'limit': size})}")}
    answer = _ocds(package)
    cache_headers(answer, tag, publication.cache_max_age_s)
    return answer


@router.get("/feeds/changes", summary="Changes feed: every version in seq order, from any cursor",
            response_model=dict[str, Any],
            **PUBLIC_ROUTE)
def changes_feed(
    request: Request, response: Response, uow: UowDep, publication: PublicationDep,
    after: Annotated[int, Query(ge=0, le=INT64_MAX, description="Last seq you processed (0: from the beginning)")] = 0,
    limit: Annotated[int | None, Query(ge=1, le=INT64_MAX)] = None,
) -> Any:
    """``next_after`` is the cursor for the next call; ``head`` the newest seq; a cancellation is a
    tombstone. Versions are never rewritten, so any cursor replays the same history."""
    head = queries.feed_head(uow.session)
    tag = etag_for(request, head)
    if (unchanged := not_modified(request, tag, publication.cache_max_age_s)) is not None:
        return unchanged
    cache_headers(response, tag, publication.cache_max_age_s)
    size = publication.clamp(limit)
    rows = queries.changes_after(uow.session, after, size)
    return {
        "changes": [queries.change_entry(r.seq, r.notice_id, r.number, r.kind, r.published_at, r.recorded_at)
                    for r in rows],
        "next_after": rows[-1].seq if rows else after,
        "head": max(head, rows[-1].seq if rows else 0),
        "next": f"{changes_feed_path()}?{urlencode({'after': rows[-1].seq if rows else after, 'limit': size})}",
    }


@router.get("/feeds/notices.atom", summary="Atom feed of notice versions (same filters as the list)",
            response_class=Response, responses={200: {"content": {"application/atom+xml": {}}}}, **PUBLIC_ROUTE)
def atom_feed(request: Request, uow: UowDep, hub: HubDep, query: QueryDep, publication: PublicationDep) -> Response:
    tag = _feed_tag(request, uow)
    if (unchanged := not_modified(request, tag, publication.cache_max_age_s)) is not None:
        return unchanged
    base = _base(hub)
    authority = publication.authority(base)
    found = queries.versions_matching(uow.session, query, publication.feed_entries)
    names = queries.institution_names(uow.session, [notice.institution_org_id for _, notice in found])
    entries = [
        entry_for_version(
            notice_id=version.notice_id, number=version.number, kind=version.kind, content=version.content,
            published_at=version.published_at, first_published_at=notice.published_at, reason=version.reason,
            author=names.get(notice.institution_org_id),
            links={
                "json": absolute(base, version_path(version.notice_id, version.number)),
                "notice": absolute(base, notice_path(version.notice_id)),
                "ocds_releases": absolute(base, ocds_releases_path(version.notice_id)),
                "ocds_record": absolute(base, ocds_record_path(version.notice_id)),
            },
            authority=authority, tag_date=publication.tag_date,
        )
        for version, notice in found
    ]
    filters = urlencode(sorted(request.query_params.multi_items()))
    body = build_feed(
        feed_id=tag_uri(authority, publication.tag_date, "feeds/notices" + (f"?{filters}" if filters else "")),
        title=f"{publication.publisher_name}: bid notices",
        updated=max((e.updated for e in entries), default=None) or datetime.now(UTC),
        self_url=absolute(base, _with_query(request)),
        alternate_url=absolute(base, f"{API_PREFIX}/notices" + (f"?{filters}" if filters else "")),
        author=publication.publisher_name,
        entries=entries,
    )
    answer = Response(body, media_type=ATOM_CONTENT_TYPE)
    cache_headers(answer, tag, publication.cache_max_age_s)
    return answer

