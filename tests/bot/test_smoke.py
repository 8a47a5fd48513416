from tests.harness import World


async def test_share_reaches_instant_member(world: World) -> None:
    await world.say("admin", "/group create marketing Marketing")
    await world.say("alice", "/join marketing")
    await world.say("alice", "/notify marketing instant")
    await world.say("bob", "/join marketing")
    out = await world.say("bob", "/share marketing https://example.com/poster New poster")
    assert "Shared as #1 in Marketing" in out.text("bob")
    assert "bob in Marketing" in out.text("alice")
    assert "https://example.com/poster" in out.text("alice")
