"""A page title never poses as another address (issue 18, part 2): a link is labelled
with its preview title and the real host beside it, or with its URL where the title is
itself an address — the same in live posts, `items`, digests, search hits and the App
Home (bot.linklabel, one function for every renderer)."""

from __future__ import annotations

import pytest

from bot.home import home_of
from bot.linklabel import link_host, link_label, looks_like_address
from bot.markup import parse, to_plain
from store.models import Item, PreviewStatus
from tests.harness import World

EVIL = "http://evil.example/login"


def links(markup: str) -> list[tuple[str, str]]:
    """(visible text, target) of every link in a message's markup."""
    return [(s.text, s.url) for b in parse(markup) for s in b.spans if s.url]


async def shared_with_title(world: World, url: str, title: str) -> dict[str, str]:
    """bob shares `url`; its preview comes back with `title` before the delivery goes out.
    What each reader is shown as the link's label: alice's live post (instant), dave's
    digest, bob's `items`, a search hit, the App Home."""
    await world.say("admin", "/group create marketing Marketing")
    for who in ("alice", "bob", "dave"):
        await world.say(who, "/join marketing")
    await world.say("alice", "/notify marketing instant")
    adapter = world.adapter
    await world.hub.submit(adapter.event("bob", f"/share marketing Look {url}", world.clock.now()))
    with world.db.uow() as uow:  # what jobs.previews stores
        item = uow.session.get(Item, 1)
        assert item is not None
        item.title, item.preview_status = title, PreviewStatus.DONE
        uow.commit()
    before = len(adapter.sent)
    await world.worker.drain()
    [live] = [s for s in adapter.sent[before:] if s.target.address == "alice"]
    [digest] = (await world.say("dave", "/digest now")).to("dave")
    [items] = (await world.say("bob", "/items marketing")).to("bob")
    [found] = (await world.say("bob", "/search look")).to("bob")
    home = home_of(world.core, "memory", "bob")
    assert home is not None
    [post] = home.posts
    assert post.label is not None
    shown = {
        "live": links(live.message.text),
        "digest": links(digest.message.text),
        "items": links(items.message.text),
    }
    for where, found_links in shown.items():
        assert [target for _, target in found_links] == [url], where
    return {
        **{where: found_links[0][0] for where, found_links in shown.items()},
        "search": to_plain(found.message.text),
        "home": post.label,
    }


async def test_a_title_that_is_another_address_is_replaced_by_the_url(world: World) -> None:
    shown = await shared_with_title(world, EVIL, "https://www.bank.example/login")
    assert {k: v for k, v in shown.items() if k != "search"} == {
        "live": EVIL,
        "digest": EVIL,
        "items": EVIL,
        "home": EVIL,
    }
    assert "bank.example" not in shown["search"]
    assert "#1 · Marketing · @bob: Look" in shown["search"]


async def test_a_title_that_names_a_domain_without_a_scheme_is_replaced(world: World) -> None:
    shown = await shared_with_title(world, EVIL, "www.bank.example")
    assert set(shown.values()) - {shown["search"]} == {EVIL}
    assert "bank.example" not in shown["search"]


async def test_a_title_that_is_the_links_own_url_shows_the_url(world: World) -> None:
    shown = await shared_with_title(world, EVIL, EVIL)
    assert set(shown.values()) - {shown["search"]} == {EVIL}


async def test_a_normal_title_is_shown_with_the_real_domain(world: World) -> None:
    url = "https://www.example.com/poster"
    shown = await shared_with_title(world, url, "The new poster & its story")
    label = "The new poster & its story (example.com)"
    assert {k: v for k, v in shown.items() if k != "search"} == {
        "live": label,
        "digest": label,
        "items": label,
        "home": label,
    }
    assert (
        "#1 · Marketing · @bob: The new poster & its story (example.com) — Look"
        in (shown["search"])
    )


async def test_a_look_alike_host_shows_in_punycode(world: World) -> None:
    url = "https://b\u0430nk.example/login"  # a Cyrillic "а"
    shown = await shared_with_title(world, url, "Your bank: log in")
    assert shown["live"] == "Your bank: log in (xn--bnk-6cd.example)"
    assert shown["digest"] == shown["items"] == shown["home"] == shown["live"]


# --- the function itself ------------------------------------------------------------------


@pytest.mark.parametrize(
    "title",
    [
        "https://www.bank.example/login",
        "HTTPS://BANK.EXAMPLE",
        "www.bank.example",
        "bank.example",
        "bank.example/login?next=/",
        "bank.example:443",
        "  <https://bank.example>  ",
        "“bank.example”",
        "bank\u3002example",  # an ideographic full stop: a dot to IDNA
        "b\u0430nk.example",  # a Cyrillic "а"
        "192.168.0.1/admin",
        "[2001:db8::1]:8443/",
        "javascript:alert(1)",
        "https://bank.example\u200b",  # a zero-width space
    ],
)
def test_titles_that_are_addresses_are_dropped(title: str) -> None:
    assert link_label(EVIL, title) == EVIL
    assert link_label(EVIL, title, limit=40) == EVIL


@pytest.mark.parametrize("words", ["Bank login", "Version 3.14", "Re: bank.example", "v1.2"])
def test_words_are_no_address(words: str) -> None:
    assert not looks_like_address(words)


@pytest.mark.parametrize(
    ("title", "label"),
    [
        ("Bank login", "Bank login (evil.example)"),
        ("Version 3.14 released", "Version 3.14 released (evil.example)"),
        ("Login | bank.example", "Login | bank.example (evil.example)"),  # words, and the host
        ("  many\n\tspaces  ", "many spaces (evil.example)"),
        ("Log in\u202e elpmaxe.knab", "Log in elpmaxe.knab (evil.example)"),  # no bidi override
        ("", EVIL),
        (None, EVIL),
    ],
)
def test_titles_get_the_real_host(title: str | None, label: str) -> None:
    assert link_label(EVIL, title) == label


def test_a_long_title_is_shortened_and_keeps_the_host() -> None:
    label = link_label("https://example.com/a", "x" * 300, limit=60)
    assert len(label) == 60
    assert label.endswith("… (example.com)")


@pytest.mark.parametrize(
    ("url", "host"),
    [
        ("https://www.Example.COM:8443/a", "example.com"),
        ("https://bücher.example/", "xn--bcher-kva.example"),
        ("http://10.0.0.1/x", "10.0.0.1"),
        ("mailto:someone@example.com", None),
        ("https://[::1", None),
    ],
)
def test_the_host_shown(url: str, host: str | None) -> None:
    assert link_host(url) == host
    if host is None:
        assert link_label(url, "A title") == url
