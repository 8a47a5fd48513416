"""The per-outlet preview hook (bot/outlet_preview.py): the text as the network's feed
cuts it, the link card, and the images, as the publishers will send them."""

from __future__ import annotations

from bot.outlet_preview import Draft, LinkCard, fold, preview


def test_the_fold_cuts_by_characters_between_words_or_by_lines() -> None:
    assert fold("short", 210, 3) == ("short", False)
    text = "word " * 60  # 300 characters
    shown, folded = fold(text, 210, 3)
    assert folded
    assert len(shown) <= 210
    assert shown.endswith("word")
    assert fold("one\ntwo\nthree\nfour", 210, 3) == ("one\ntwo\nthree", True)
    assert fold("x" * 300, 210, 3) == ("x" * 210, True)  # no space to cut at


def test_a_link_alone_is_a_card_and_stays_out_of_the_text() -> None:
    seen = preview(
        "linkedin",
        Draft("Our new store", "https://www.acme.example/a", "Acme in Leipzig", picture=True),
    )
    assert seen is not None
    assert seen.shown == "Our new store"
    assert not seen.folded
    assert seen.card == LinkCard("acme.example", "Acme in Leipzig", True)
    assert seen.images == 0


def test_with_images_the_link_goes_into_the_text_and_there_is_no_card() -> None:
    for kind in ("linkedin", "facebook"):
        seen = preview(kind, Draft("Two photos", "https://acme.example/a", "Title", images=2))
        assert seen is not None
        assert seen.shown == "Two photos\nhttps://acme.example/a"
        assert seen.card is None
        assert seen.images == 2


def test_facebook_folds_later_than_linkedin_and_other_kinds_have_no_preview() -> None:
    text = "Neuigkeiten " * 30  # 360 characters
    linkedin = preview("linkedin", Draft(text))
    facebook = preview("facebook", Draft(text))
    assert linkedin is not None
    assert facebook is not None
    assert linkedin.folded
    assert not facebook.folded
    assert facebook.network == "outlet.facebook.network"
    assert preview("mastodon", Draft(text)) is None
