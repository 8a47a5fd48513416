"""Full-text search over posts and comments, in English and German, on both backends.

Words are stemmed here, with the Snowball stemmers of both languages (PyStemmer),
before they are indexed and before a query is run, so that "Plakat" finds "Plakate"
and "poster" finds "posters" on SQLite and PostgreSQL alike (SQLite's FTS5 stems only
English by itself, and only with a tokenizer chosen per table). Each document stores
its terms: every word's English and German stem. SQLite indexes them in an FTS5 table
kept in step with `search_docs` by triggers; PostgreSQL keeps them as a `tsvector`
('simple' configuration: the stemming is already done) with a GIN index.

Documents are written by the same transaction that writes the post or comment
(`ItemRepository.add`, `add_comment`, a preview's update), so the index never lags.
Visibility is not decided here: the caller passes the groups the reader may see.
"""

from __future__ import annotations

import re
from collections.abc import Collection
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import cache

import Stemmer  # PyStemmer
from sqlalchemy import DateTime, Integer, String, bindparam, text
from sqlalchemy.orm import Session

from store.driver import Prebuilt, connection_of
from store.models import Comment, Item

_WORD = re.compile(r"\w+", re.UNICODE)
MAX_WORD = 64  # longer "words" (hashes, base64) are not worth indexing
MAX_QUERY_WORDS = 12
# Dropped from queries (not from documents) when other words remain: they would
# only narrow an AND query to the documents that happen to contain them.
_STOPWORDS = """a an and are as at be by for from in is it of on or the to with
der die das den dem des ein eine einen einem einer und oder ist im in am an auf
aus bei mit von zu zum zur für fur über uber es sie er wir ich du"""
STOPWORDS = frozenset(_STOPWORDS.split())
LANGUAGES = ("english", "german")


@cache
def _stemmers() -> tuple[Stemmer.Stemmer, ...]:
    return tuple(Stemmer.Stemmer(language) for language in LANGUAGES)


def words(text_: str) -> list[str]:
    return [w for w in _WORD.findall(text_.casefold()) if len(w) <= MAX_WORD]


def stems(word: str) -> tuple[str, ...]:
    """The word's stems in both languages, without repeats (English first)."""
    found: list[str] = []
    for stemmer in _stemmers():
        stem = stemmer.stemWord(word)
        if stem not in found:
            found.append(stem)
    return tuple(found)


def terms_of(*texts: str | None) -> str:
    """What is indexed for a document: each distinct stem once, space-separated."""
    seen: dict[str, None] = {}
    for part in texts:
        for word in words(part or ""):
            for stem in stems(word):
                seen.setdefault(stem, None)
    return " ".join(seen)


def query_groups(query: str) -> list[tuple[str, ...]]:
    """A query as groups of alternative stems: every group must match (AND), any stem
    of a group may (OR). Stop words are dropped unless nothing else is left."""
    found = list(dict.fromkeys(words(query)))[:MAX_QUERY_WORDS]
    kept = [w for w in found if w not in STOPWORDS] or found
    return [stems(w) for w in kept]


def _fts5_query(groups: list[tuple[str, ...]]) -> str:
    # Stems are \w+ only, quoted as FTS5 strings: no query syntax can come from users.
    return " AND ".join("(" + " OR ".join(f'"{s}"' for s in g) + ")" for g in groups)


def _tsquery(groups: list[tuple[str, ...]]) -> str:
    return " & ".join("(" + " | ".join(f"'{s}'" for s in g) + ")" for g in groups)


def item_terms(item: Item) -> str:
    title = item.title if item.title and item.title != item.url else None
    return terms_of(title, item.text, item.description, item.site_name, item.url)


# --- writing -------------------------------------------------------------------------------

_DOC_TYPES = {
    "kind": String(),
    "ref_id": Integer(),
    "item_id": Integer(),
    "group_id": Integer(),
    "created_at": DateTime(),
    "terms": String(),
}
INSERT = {
    dialect: Prebuilt(text(sql), _DOC_TYPES)
    for dialect, sql in (
        (
            "sqlite",
            "INSERT INTO search_docs (kind, ref_id, item_id, group_id, created_at, terms) "
            "VALUES (:kind, :ref_id, :item_id, :group_id, :created_at, :terms)",
        ),
        (
            "postgresql",
            "INSERT INTO search_docs (kind, ref_id, item_id, group_id, created_at, terms) "
            "VALUES (:kind, :ref_id, :item_id, :group_id, :created_at, "
            "to_tsvector('simple', :terms))",
        ),
    )
}
_UPDATE = {
    "sqlite": text("UPDATE search_docs SET terms = :terms WHERE kind = :kind AND ref_id = :ref_id"),
    "postgresql": text(
        "UPDATE search_docs SET terms = to_tsvector('simple', :terms) "
        "WHERE kind = :kind AND ref_id = :ref_id"
    ),
}


def _dialect(session: Session) -> str:
    return "postgresql" if session.get_bind().dialect.name == "postgresql" else "sqlite"


def _utc_naive(when: datetime) -> datetime:
    return when.astimezone(UTC).replace(tzinfo=None)


def index_item(session: Session, item: Item, *, update: bool = False) -> None:
    """Indexes a new post (or, with `update`, its changed text: a preview arrived)."""
    dialect = _dialect(session)
    params = {"kind": "item", "ref_id": item.id, "terms": item_terms(item)}
    if update and session.execute(_UPDATE[dialect], params).rowcount:  # type: ignore[attr-defined]
        return
    INSERT[dialect].run(
        connection_of(session),
        [
            params
            | {
                "item_id": item.id,
                "group_id": item.group_id,
                "created_at": _utc_naive(item.created_at),
            }
        ],
    )


def index_comment(session: Session, comment: Comment, group_id: int) -> None:
    INSERT[_dialect(session)].run(
        connection_of(session),
        [
            {
                "kind": "comment",
                "ref_id": comment.id,
                "item_id": comment.item_id,
                "group_id": group_id,
                "created_at": _utc_naive(comment.created_at),
                "terms": terms_of(comment.text),
            }
        ],
    )


# --- reading -------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Hit:
    kind: str  # "item" or "comment"
    ref_id: int  # the item's or the comment's id
    item_id: int


_SEARCH = {
    "sqlite": text(
        "SELECT d.kind, d.ref_id, d.item_id FROM search_fts "
        "JOIN search_docs d ON d.id = search_fts.rowid "
        "WHERE search_fts MATCH :q AND d.group_id IN :groups "
        "ORDER BY bm25(search_fts), d.id DESC LIMIT :limit OFFSET :offset"
    ).bindparams(bindparam("groups", expanding=True)),
    "postgresql": text(
        "SELECT d.kind, d.ref_id, d.item_id FROM search_docs d, to_tsquery('simple', :q) q "
        "WHERE d.terms @@ q AND d.group_id IN :groups "
        "ORDER BY ts_rank(d.terms, q) DESC, d.id DESC LIMIT :limit OFFSET :offset"
    ).bindparams(bindparam("groups", expanding=True)),
}
_COUNT = {
    "sqlite": text(
        "SELECT count(*) FROM search_fts JOIN search_docs d ON d.id = search_fts.rowid "
        "WHERE search_fts MATCH :q AND d.group_id IN :groups"
    ).bindparams(bindparam("groups", expanding=True)),
    "postgresql": text(
        "SELECT count(*) FROM search_docs d WHERE d.terms @@ to_tsquery('simple', :q) "
        "AND d.group_id IN :groups"
    ).bindparams(bindparam("groups", expanding=True)),
}


class SearchRepository:
    def __init__(self, session: Session) -> None:
        self.s = session

    def index_item(self, item: Item, *, update: bool = False) -> None:
        index_item(self.s, item, update=update)

    def search(
        self, query: str, group_ids: Collection[int], *, limit: int, offset: int = 0
    ) -> tuple[list[Hit], int]:
        """The hits on one page, best first, and how many there are in all."""
        groups = query_groups(query)
        if not groups or not group_ids:
            return [], 0
        dialect = _dialect(self.s)
        q = _fts5_query(groups) if dialect == "sqlite" else _tsquery(groups)
        params = {"q": q, "groups": list(group_ids)}
        total = int(self.s.execute(_COUNT[dialect], params).scalar_one())
        if total == 0 or offset >= total:
            return [], total
        rows = self.s.execute(_SEARCH[dialect], params | {"limit": limit, "offset": offset})
        return [Hit(kind, ref_id, item_id) for kind, ref_id, item_id in rows], total
