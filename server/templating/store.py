"""Stored message templates of an account: create and update (compiled first), list, get."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import and_, insert, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from server.db.models import as_utc, id_is, table_of, utcnow
from server.errors import InvalidArgument, NotFound, TemplateError, TemplateSyntaxInvalid, Violation
from server.templating.engine import compile_template
from server.templating.models import MessageTemplateRow

_t = table_of(MessageTemplateRow)
MAX_NAME = 200
MAX_SOURCE = 256 * 1024


@dataclass(frozen=True, slots=True)
class StoredTemplate:
    id: int
    name: str
    subject: str
    html: str
    text: str
    created_at: datetime


def check_template(*, name: str, subject: str, html: str, text: str) -> None:
    """Every rule a template must meet to be saved; raises InvalidArgument or TemplateSyntaxInvalid."""
    out: list[Violation] = []
    if not name.strip():
        out.append(Violation("name", "is required: give the template a name"))
    elif len(name) > MAX_NAME:
        out.append(Violation("name", f"is {len(name)} characters long; the limit is {MAX_NAME}"))
    if not html.strip() and not text.strip():
        out.append(Violation("html", "and text are both empty: give at least one body"))
    for part, source in (("subject", subject), ("html", html), ("text", text)):
        if len(source) > MAX_SOURCE:
            out.append(Violation(part, f"is longer than {MAX_SOURCE} characters"))
    if out:
        raise InvalidArgument.from_violations(out)
    for part, source in (("subject", subject), ("html", html), ("text", text)):
        try:
            compile_template(source)
        except TemplateError as exc:
            raise TemplateSyntaxInvalid(field=part, error=exc) from None


def _row(r: object) -> StoredTemplate:
    return StoredTemplate(id=int(r.id), name=r.name, subject=r.subject,  # type: ignore[attr-defined]
                          html=r.html, text=r.text,  # type: ignore[attr-defined]
                          created_at=as_utc(r.created_at))  # type: ignore[attr-defined]


async def create_template(conn: AsyncConnection, *, account_id: int, name: str, subject: str,
                          html: str, text: str) -> StoredTemplate:
    check_template(name=name, subject=subject, html=html, text=text)
    now = utcnow()
    new_id = (await conn.execute(insert(_t).values(
        account_id=account_id, name=name, subject=subject, html=html, text=text, created_at=now,
    ).returning(_t.c.id))).scalar_one()
    return StoredTemplate(id=int(new_id), name=name, subject=subject, html=html, text=text,
                          created_at=now)


async def update_template(conn: AsyncConnection, *, account_id: int, template_id: int,
                          name: str, subject: str, html: str, text: str) -> StoredTemplate:
    """Replace the template's name, subject and bodies in place (it keeps its id and creation
    time); the same checks as creating. The store keeps no older texts: a letter already
    sent is unchanged, the next one uses the new text."""
    check_template(name=name, subject=subject, html=html, text=text)
    r = (await conn.execute(update(_t).where(and_(id_is(_t.c.id, template_id),
                                                  _t.c.account_id == account_id))
                            .values(name=name, subject=subject, html=html, text=text)
                            .returning(_t.c.id, _t.c.created_at))).first()
    if r is None:
        raise NotFound(f"no message template with id {template_id} in this account")
    return StoredTemplate(id=int(r.id), name=name, subject=subject, html=html, text=text,
                          created_at=as_utc(r.created_at))


async def get_template(conn: AsyncConnection, *, account_id: int, template_id: int
                       ) -> StoredTemplate:
    r = (await conn.execute(select(_t).where(and_(id_is(_t.c.id, template_id),
                                                   _t.c.account_id == account_id)))).first()
    if r is None:
        raise NotFound(f"no message template with id {template_id} in this account")
    return _row(r)


async def missing_templates(conn: AsyncConnection, *, account_id: int,
                            template_ids: set[int]) -> set[int]:
    """Which of ``template_ids`` name no template of this account (another account's
    templates are missing too: their existence is not shown)."""
    if not template_ids:
        return set()
    found = (await conn.execute(select(_t.c.id).where(and_(
        _t.c.account_id == account_id, _t.c.id.in_(sorted(template_ids)))))).scalars().all()
    return template_ids - {int(i) for i in found}


async def list_templates(conn: AsyncConnection, *, account_id: int) -> list[StoredTemplate]:
    rows = (await conn.execute(select(_t).where(_t.c.account_id == account_id)
                               .order_by(_t.c.id))).all()
    return [_row(r) for r in rows]
