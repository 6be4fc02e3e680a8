from open_clip.tokenizer import SimpleTokenizer

from fuselip.text import TextTokenizer


def test_matches_open_clip_without_sot_eot():
    ours, ref = TextTokenizer(), SimpleTokenizer()
    for text in ["a large red circle in the top left", "rotate 45 degrees clockwise", "Grayscale!"]:
        assert ours.encode(text) == ref.encode(text)
        assert ours.decode(ours.encode(text)).strip() == ref.decode(ref.encode(text)).strip()


def test_edge_cases():
    tok = TextTokenizer(max_tokens=32)
    assert tok.encode("") == [] and tok.encode(None) == []
    assert len(tok.encode("word " * 10_000)) == 32          # huge text is cut, fast
    assert tok.encode("🙂 مرحبا") != []                      # emoji and right-to-left text tokenise
    assert tok.token_strings(tok.encode("red circle")) == ["red", "circle"]
