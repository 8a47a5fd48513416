"""FakeSlack and SlackRequests driven by slack_sdk's real clients."""

from __future__ import annotations

import asyncio
import hashlib
import json
import re
import time
from collections.abc import AsyncIterator, Iterator
from typing import Any
from urllib.parse import parse_qs

import aiohttp
import pytest
from aiohttp import web
from slack_sdk.errors import SlackApiError
from slack_sdk.signature import SignatureVerifier
from slack_sdk.web.async_client import AsyncWebClient

from tests.fakes.slack import (
    BOT_USER_ID,
    SIGNING_SECRET,
    FakeSlack,
    SlackRequests,
    validate_blocks,
)


@pytest.fixture
def fake() -> Iterator[FakeSlack]:
    with FakeSlack() as server:
        server.add_user("U1", "ada", real_name="Ada Lovelace", display_name="ada", locale="de-DE")
        server.add_user("U2", "guest", is_restricted=True)
        server.add_channel("C1", "general", members=["U1", "U2"])
        yield server
        assert server.errors == []


@pytest.fixture
async def client(fake: FakeSlack) -> AsyncWebClient:
    return AsyncWebClient(token=fake.bot_token, base_url=fake.api_url)


def button(action_id: str, value: str = "v", text: str = "Go") -> dict[str, Any]:
    return {
        "type": "button",
        "action_id": action_id,
        "value": value,
        "text": {"type": "plain_text", "text": text},
    }


BLOCKS: list[dict[str, Any]] = [
    {"type": "section", "block_id": "b1", "text": {"type": "mrkdwn", "text": "*hello*"}},
    {"type": "actions", "block_id": "b2", "elements": [button("pw:like"), button("pw:skip")]},
]


async def test_auth_users_and_dms(fake: FakeSlack, client: AsyncWebClient) -> None:
    auth = await client.auth_test()
    assert auth["user_id"] == BOT_USER_ID
    assert auth["team_id"] == "T0PINWALL"
    assert auth["bot_id"]

    info = await client.users_info(user="U1", include_locale=True)
    assert info["user"]["locale"] == "de-DE"
    assert info["user"]["profile"]["display_name"] == "ada"
    assert "locale" not in (await client.users_info(user="U1"))["user"]
    with pytest.raises(SlackApiError) as err:
        await client.users_info(user="U404")
    assert err.value.response["error"] == "user_not_found"

    first = await client.conversations_open(users="U1")
    second = await client.conversations_open(users="U1")
    assert first["channel"]["id"] == second["channel"]["id"] == fake.dm_channel("U1")
    assert first["channel"]["id"].startswith("D")

    wrong = AsyncWebClient(token="xoxb-wrong", base_url=fake.api_url)
    with pytest.raises(SlackApiError) as err:
        await wrong.auth_test()
    assert err.value.response["error"] == "invalid_auth"
    assert fake.calls.count("auth.test") == 2


async def test_post_update_ephemeral_reaction(fake: FakeSlack, client: AsyncWebClient) -> None:
    sent = await client.chat_postMessage(
        channel="C1", text="hello", blocks=BLOCKS, unfurl_links=False
    )
    assert sent["channel"] == "C1"
    assert sent["message"]["blocks"][0]["block_id"] == "b1"
    reply = await client.chat_postMessage(channel="C1", text="in thread", thread_ts=sent["ts"])
    assert float(reply["ts"]) > float(sent["ts"])

    await client.chat_update(channel="C1", ts=sent["ts"], text="changed", blocks=BLOCKS[:1])
    with pytest.raises(SlackApiError) as err:
        await client.chat_update(channel="C1", ts="1.000000", text="x")
    assert err.value.response["error"] == "message_not_found"

    eph = await client.chat_postEphemeral(channel="C1", user="U1", text="only you")
    assert eph["message_ts"]
    await client.reactions_add(channel="C1", timestamp=sent["ts"], name="eyes")

    posted = fake.posted
    assert [p.kind for p in posted] == ["message", "message", "ephemeral"]
    assert posted[0].text == "hello"
    assert posted[0].unfurl_links is False
    assert posted[1].thread_ts == sent["ts"]
    assert posted[2].user == "U1"
    now = fake.messages_in("C1")
    assert now[0].text == "changed"
    assert now[0].blocks == BLOCKS[:1]
    assert now[0].edited
    assert [u.text for u in fake.updates] == ["changed"]
    assert fake.reactions[0].name == "eyes"
    assert fake.ephemerals[0].text == "only you"


async def test_refusals(fake: FakeSlack, client: AsyncWebClient) -> None:
    too_long = [{"type": "section", "text": {"type": "mrkdwn", "text": "x" * 3001}}]
    with pytest.raises(SlackApiError) as err:
        await client.chat_postMessage(channel="C1", text="t", blocks=too_long)
    assert err.value.response["error"] == "invalid_blocks"
    assert "json-pointer:/blocks/0/text/text" in err.value.response["errors"][0]

    bad: list[list[dict[str, Any]]] = [
        [{"type": "divider"}] * 51,
        [{"type": "actions", "elements": [button("a"), button("a")]}],
        [{"type": "actions", "elements": [button(f"a{i}") for i in range(26)]}],
        [{"type": "actions", "elements": [button("a", text="x" * 76)]}],
        [{"type": "actions", "elements": [button("a", value="x" * 2001)]}],
        [{"type": "section", "fields": [{"type": "mrkdwn", "text": "f"}] * 11}],
    ]
    for blocks in bad:
        assert validate_blocks(blocks), blocks
        with pytest.raises(SlackApiError) as err:
            await client.chat_postMessage(channel="C1", text="t", blocks=blocks)
        assert err.value.response["error"] == "invalid_blocks"

    cases = [
        ({"channel": "C1", "text": "x" * 40_001}, "msg_too_long"),
        ({"channel": "C404", "text": "x"}, "channel_not_found"),
        ({"channel": "C1"}, "no_text"),
    ]
    for params, error in cases:  # api_call: chat_postMessage warns about a missing text
        with pytest.raises(SlackApiError) as err:
            await client.api_call("chat.postMessage", json=params)
        assert err.value.response["error"] == error

    dm = (await client.conversations_open(users="U1"))["channel"]["id"]
    fake.update_user("U1", deleted=True)
    with pytest.raises(SlackApiError) as err:
        await client.chat_postMessage(channel=dm, text="bye")
    assert err.value.response["error"] == "user_disabled"
    assert fake.posted == []


async def test_rate_limit_is_not_retried_by_the_client(
    fake: FakeSlack, client: AsyncWebClient
) -> None:
    fake.rate_limit(seconds=1, count=1, method="chat.postMessage")
    with pytest.raises(SlackApiError) as err:
        await client.chat_postMessage(channel="C1", text="one")
    assert err.value.response.status_code == 429
    assert err.value.response.headers["Retry-After"] == "1"
    assert err.value.response["error"] == "ratelimited"
    assert fake.calls == ["chat.postMessage"]  # AsyncWebClient did not retry by itself

    await client.auth_test()  # other methods are not limited
    with pytest.raises(SlackApiError):  # too early: 429 again, recorded
        await client.chat_postMessage(channel="C1", text="two")
    assert len(fake.early) == 1
    await asyncio.sleep(1.05)
    await client.chat_postMessage(channel="C1", text="three")
    assert [p.text for p in fake.posted] == ["three"]


async def test_files_upload_v2(fake: FakeSlack, client: AsyncWebClient) -> None:
    sent = await client.files_upload_v2(
        channel="C1", content=b"hello file", filename="a.txt", title="A", thread_ts="1.5"
    )
    file_id = sent["file"]["id"]
    assert fake.calls == [
        "files.getUploadURLExternal",
        "files.completeUploadExternal",
    ]
    (shared,) = fake.uploaded
    assert (shared.id, shared.name, shared.title, shared.channel) == (file_id, "a.txt", "A", "C1")
    assert shared.size == 10
    assert shared.thread_ts == "1.5"
    assert shared.sha256 == hashlib.sha256(b"hello file").hexdigest()
    assert shared.mimetype == "text/plain"
    info = await client.files_info(file=file_id)
    assert info["file"]["size"] == 10
    assert info["file"]["channels"] == ["C1"]
    assert fake.messages_in("C1")[-1].files[0]["id"] == file_id


async def test_user_file_needs_the_bot_token(fake: FakeSlack) -> None:
    f = fake.user_uploads("U1", "photo.png", b"\x89PNG-bytes", "image/png")
    assert f["mimetype"] == "image/png"
    assert f["size"] == 10
    async with aiohttp.ClientSession() as session:
        headers = {"Authorization": f"Bearer {fake.bot_token}"}
        async with session.get(f["url_private_download"], headers=headers) as resp:
            assert resp.status == 200
            assert resp.content_type == "image/png"
            assert await resp.read() == b"\x89PNG-bytes"
        async with session.get(f["url_private"]) as resp:
            assert resp.status == 200
            assert resp.content_type == "text/html"
            assert resp.history[0].status == 302
            assert "Sign in" in await resp.text()
    assert fake.downloads == [(f["id"], True), (f["id"], False)]


async def test_views_publish(fake: FakeSlack, client: AsyncWebClient) -> None:
    view = {"type": "home", "blocks": BLOCKS}
    answer = await client.views_publish(user_id="U1", view=view)
    assert answer["view"]["type"] == "home"
    assert fake.home_views["U1"]["blocks"] == BLOCKS
    with pytest.raises(SlackApiError) as err:
        await client.views_publish(
            user_id="U1", view={"type": "home", "blocks": [{"type": "divider"}] * 101}
        )
    assert err.value.response["error"] == "invalid_arguments"


class Receiver:
    """A loopback endpoint that checks Slack signatures like an app would."""

    def __init__(self) -> None:
        self.verifier = SignatureVerifier(SIGNING_SECRET)
        self.seen: list[tuple[bool, dict[str, str], bytes]] = []

    async def handle(self, request: web.Request) -> web.Response:
        body = await request.read()
        valid = self.verifier.is_valid_request(body, dict(request.headers))
        self.seen.append((valid, dict(request.headers), body))
        return web.Response(status=200 if valid else 401)


@pytest.fixture
async def receiver() -> AsyncIterator[tuple[Receiver, str]]:
    recv = Receiver()
    app = web.Application()
    app.router.add_post("/slack/events", recv.handle)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    yield recv, f"http://127.0.0.1:{port}/slack/events"
    await runner.cleanup()


async def test_signed_requests(fake: FakeSlack, receiver: tuple[Receiver, str]) -> None:
    recv, url = receiver
    requests = SlackRequests(url, SIGNING_SECRET, fake=fake)
    assert (await requests.slash_command("U1", "C1", "help")).status_code == 200
    assert (await requests.slash_command("U1", "C1", "x", bad_signature=True)).status_code == 401
    assert (await requests.slash_command("U1", "C1", "x", timestamp_offset=-400)).status_code == 401

    form = parse_qs(recv.seen[0][2].decode())
    assert form["command"] == ["/pinwall"]
    assert form["text"] == ["help"]
    assert form["trigger_id"] != parse_qs(recv.seen[1][2].decode())["trigger_id"]

    client = AsyncWebClient(token=fake.bot_token, base_url=fake.api_url)
    sent = await client.chat_postMessage(channel="C1", text="t", blocks=BLOCKS)
    await requests.block_action("U1", "C1", sent["ts"], "pw:skip", "v2")
    payload = json.loads(parse_qs(recv.seen[-1][2].decode())["payload"][0])
    assert payload["type"] == "block_actions"
    assert payload["container"] == {
        "type": "message",
        "message_ts": sent["ts"],
        "channel_id": "C1",
        "is_ephemeral": False,
    }
    assert payload["actions"][0]["block_id"] == "b2"
    assert payload["actions"][0]["value"] == "v2"
    assert payload["message"]["blocks"] == BLOCKS

    await requests.home_action("U1", "pw:open", "1")
    payload = json.loads(parse_qs(recv.seen[-1][2].decode())["payload"][0])
    assert payload["container"]["type"] == "view"
    assert "channel" not in payload

    await requests.message_shortcut("U1", "C1", {"type": "message", "ts": "1.2", "text": "hi"})
    event = requests.message_event("U1", "D1", "hi", files=[fake.user_uploads("U1", "a", b"1")])
    await requests.event(event, retry_num=1)
    await requests.event(requests.reaction_added("U1", "eyes", "C1", sent["ts"]))
    await requests.url_verification("chal")
    assert all(valid for valid, _, _ in recv.seen[3:])

    _, headers, body = recv.seen[-3]
    callback = json.loads(body)
    assert callback["type"] == "event_callback"
    assert callback["event_id"].startswith("Ev")
    assert callback["event"]["subtype"] == "file_share"
    assert headers["X-Slack-Retry-Num"] == "1"
    assert headers["X-Slack-Retry-Reason"] == "http_timeout"
    assert json.loads(recv.seen[-2][2])["event_id"] != callback["event_id"]

    # the verifier accepts what SlackRequests.headers builds and refuses a stale one
    verifier = SignatureVerifier(SIGNING_SECRET)
    assert verifier.is_valid_request(b"x", requests.headers(b"x", "text/plain"))
    stale = requests.headers(b"x", "text/plain", timestamp_offset=-400)
    assert not verifier.is_valid_request(b"x", stale)


async def test_socket_mode(fake: FakeSlack) -> None:
    from slack_sdk.socket_mode.aiohttp import SocketModeClient
    from slack_sdk.socket_mode.async_client import AsyncBaseSocketModeClient
    from slack_sdk.socket_mode.request import SocketModeRequest
    from slack_sdk.socket_mode.response import SocketModeResponse

    got: list[SocketModeRequest] = []

    async def listener(client: AsyncBaseSocketModeClient, req: SocketModeRequest) -> None:
        got.append(req)
        await client.send_socket_mode_response(SocketModeResponse(envelope_id=req.envelope_id))

    web_client = AsyncWebClient(base_url=fake.api_url)
    client = SocketModeClient(app_token=fake.app_token, web_client=web_client)
    client.socket_mode_request_listeners.append(listener)
    try:
        await client.connect()  # type: ignore[no-untyped-call]
        await fake.wait_for_async(lambda: fake.socket_connections == 1, what="a connection")
        requests = SlackRequests("unused", fake=fake)
        envelope_id = fake.socket_push("events_api", {"event": requests.app_home_opened("U1")})
        await fake.wait_for_async(lambda: len(fake.acks) == 1, what="the ack")
    finally:
        await client.close()  # type: ignore[no-untyped-call]
    assert fake.acks[0]["envelope_id"] == envelope_id
    assert got[0].type == "events_api"
    assert got[0].payload["event"]["type"] == "app_home_opened"
    started = time.monotonic()
    with pytest.raises(SlackApiError) as err:
        await AsyncWebClient(token=fake.bot_token, base_url=fake.api_url).apps_connections_open(
            app_token=fake.bot_token
        )
    assert err.value.response["error"] == "not_allowed_token_type"
    assert time.monotonic() - started < 2


async def test_slack_bolt_accepts_the_requests(fake: FakeSlack) -> None:
    """slack-bolt (as Pinwall's HTTP mode uses it) verifies and routes what SlackRequests
    sends, and authorizes itself against the fake with auth.test."""
    from slack_bolt.async_app import AsyncAck, AsyncApp

    seen: list[str] = []
    app = AsyncApp(
        client=AsyncWebClient(token=fake.bot_token, base_url=fake.api_url),
        signing_secret=SIGNING_SECRET,
    )

    @app.command("/pinwall")
    async def on_command(ack: AsyncAck, body: dict[str, Any]) -> None:
        await ack()
        seen.append(f"command:{body['text']}")

    @app.action(re.compile(r"^pw:"))
    async def on_action(ack: AsyncAck, body: dict[str, Any]) -> None:
        await ack()
        seen.append(f"action:{body['container']['type']}:{body['actions'][0]['value']}")

    @app.shortcut("share_to_pinwall")
    async def on_share(ack: AsyncAck, body: dict[str, Any]) -> None:
        await ack()
        seen.append(f"share:{body['message']['text']}")

    @app.event("message")
    async def on_message(body: dict[str, Any]) -> None:
        seen.append(f"message:{body['event']['text']}")

    @app.event("reaction_added")
    async def on_reaction(body: dict[str, Any]) -> None:
        seen.append(f"reaction:{body['event']['reaction']}")

    @app.event("app_mention")
    async def on_mention(body: dict[str, Any]) -> None:
        seen.append(f"mention:{body['event']['text']}")

    runner = web.AppRunner(app.web_app(path="/slack/events"), access_log=None)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    url = f"http://127.0.0.1:{runner.addresses[0][1]}/slack/events"
    try:
        requests = SlackRequests(url, SIGNING_SECRET, fake=fake)
        sent = await AsyncWebClient(token=fake.bot_token, base_url=fake.api_url).chat_postMessage(
            channel="C1", text="t", blocks=BLOCKS
        )
        answers = [
            await requests.slash_command("U1", "C1", "help"),
            await requests.block_action("U1", "C1", sent["ts"], "pw:like", "7"),
            await requests.home_action("U1", "pw:home", "8"),
            await requests.message_shortcut(
                "U1", "C1", {"type": "message", "ts": "1.2", "text": "s"}
            ),
            await requests.event(requests.message_event("U1", "D1", "hi")),
            await requests.event(requests.reaction_added("U1", "eyes", "C1", sent["ts"])),
            await requests.event(requests.app_mention("U1", "C1", "hey")),
        ]
        assert [a.status_code for a in answers] == [200] * len(answers)
        challenge = await requests.url_verification("abc")
        assert challenge.json() == {"challenge": "abc"}
        refused = await requests.slash_command("U1", "C1", "x", bad_signature=True)
        assert refused.status_code == 401
        stale = await requests.event(requests.message_event("U1", "D1", "x"), timestamp_offset=-400)
        assert stale.status_code == 401
        await fake.wait_for_async(lambda: len(seen) == 7, what="bolt to handle everything")
    finally:
        await runner.cleanup()
    assert sorted(seen) == sorted(
        [
            "command:help",
            "action:message:7",
            "action:view:8",
            "share:s",
            "message:hi",
            "reaction:eyes",
            "mention:<@UBOT> hey",
        ]
    )
    assert "auth.test" in fake.calls
