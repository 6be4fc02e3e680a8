"""The released FuseLIP format (fuselip.pretrained): the same ids and embeddings as the reference implementation, and a
one-line error for every file that does not fit.

How the fixture was made (tests/fixtures/README.md says the same). The public reference repository, chs20/fuselip at
commit 6a5766e, was unpacked into a scratch folder outside this project and run in a scratch environment (torch
2.14.1, CPU, float32, one thread). Its own FuseCLIP class (the FuseLIP class of its hub module, whose
`_save_pretrained` wrote the files) was built twice, with random weights, through its own code paths:
- "fuselip-s": TiTok-S layout (the legacy reshape, l2-normalised 12-dimensional codes, config name
  yucornetto/tokenizer_titok_s128_imagenet); "fuselip-b": TiTok-BL layout (no legacy reshape, plain 64-dimensional
  codes, yucornetto/tokenizer_titok_bl128_vq8k_imagenet).
- To fit in a few megabytes, the sizes are smaller than the releases': the fused transformer is 8 wide with 2 heads
  and 2 layers (its size table was replaced for the run), the TiTok encoder 32 wide with 2 blocks and 1 head (one
  "tiny" entry added to the vendored TiTok's size table, nothing else changed in its code), and the codebooks hold
  1,024 codes. Everything else is the release's layout: 256-pixel images, 16-pixel patches, 128 tokens, context 180,
  the [MASK] id, the MMM head with its tied output matrix, mask_pad=true.
- All weights random, LayerNorm gains and every bias included (so a mix-up of any two tensors shows).
- The reference then reloaded each pytorch_model.bin strictly, as its hub loader does, and computed, for four PNG images
  (non-square, small, square, tall) and five texts: the TiTok codes; the ids its transformer reads and the
  embeddings for images alone (encode_image), texts alone (encode_text) and image+text pairs (encode_multimodal,
  with a missing image and an empty text in the batch). Two texts hold the BPE token "!" (id 0, the pad id) inside
  the text, and one is long enough to be truncated alone and next to an image. The outputs are in
  reference.safetensors; the script that made them and the reference's code are not part of this project.
"""
import json
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from safetensors.torch import load_file, save_file

from fuselip import vocab
from fuselip.data.collate import side_sequences
from fuselip.pretrained import (PretrainedError, ReleasedFuseLIP, TIED_KEY, load_pretrained, main, release_kind,
                                titok_key, to_official, to_ours)
from fuselip.tokenizers.titok_official import OfficialTiTok, OfficialTiTokConfig

FIXTURE = Path(__file__).parent / "fixtures" / "released"
VARIANTS = ("fuselip-s", "fuselip-b")
INPUTS = json.loads((FIXTURE / "inputs.json").read_text())


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def images():
    return [Image.open(FIXTURE / "images" / name) for name in INPUTS["images"]]


@pytest.fixture(scope="module", params=VARIANTS)
def release(request):
    """(loaded model, the reference's outputs) per fixture."""
    return load_pretrained(FIXTURE / request.param), load_file(str(FIXTURE / request.param / "reference.safetensors"))


def fused_inputs(reference, images):
    pairs = reference["fused_pairs"].tolist()
    return [images[i] if i >= 0 else None for i, _ in pairs], [INPUTS["texts"][j] for _, j in pairs]


def our_ids(model, images, texts):
    """The (B, T) ids our model feeds its transformer for these samples."""
    prepared = [model.tokenizer.prepare(image) if image is not None else None for image in images]
    return vocab.pad_sequences(side_sequences(prepared, texts, model.token_cache(), model.config.context_length))


# ---------------------------------------------------------------------------------------------
# equivalence with the reference


def test_codes_and_ids_equal_the_reference(release, images):
    model, ref = release
    texts = INPUTS["texts"]
    assert torch.equal(model.tokenizer.tokenize(images), ref["codes"])
    assert torch.equal(our_ids(model, images, [None] * len(images)), ref["image_ids"])
    assert torch.equal(our_ids(model, [None] * 4, texts[:4]), ref["text_ids"])
    assert torch.equal(our_ids(model, *fused_inputs(ref, images)), ref["fused_ids"])


def test_embeddings_equal_the_reference(release, images):
    model, ref = release
    torch.testing.assert_close(model.encode(images=images), ref["image_emb"], atol=1e-5, rtol=0)
    torch.testing.assert_close(model.encode(texts=INPUTS["texts"][:4]), ref["text_emb"], atol=1e-5, rtol=0)
    fused_images, fused_texts = fused_inputs(ref, images)
    torch.testing.assert_close(model.encode(images=fused_images, texts=fused_texts), ref["fused_emb"], atol=1e-5, rtol=0)


def test_the_fixture_covers_what_it_claims(release, images):
    """Both tokenizer layouts, "!" as id 0 inside a text, truncation alone and next to an image, 128 tokens of 256 px."""
    model, ref = release
    t = model.tokenizer.config
    assert (t.legacy, t.l2_codes, t.code_dim) == ((True, True, 12) if t.name.endswith("s128_imagenet")
                                                  else (False, False, 64))
    assert (t.image_size, model.tokenizer.num_tokens, model.config.context_length) == (256, 128, 180)
    texts = ref["text_ids"]
    assert all(int((row[1:int(vocab.eot_positions(row[None])[0])] == vocab.PAD).sum()) >= 1 for row in texts[1:3])
    assert int(vocab.eot_positions(texts[3:4])[0]) == 179, "the long text alone fills the context"
    long_fused = [r for r, (_, j) in enumerate(ref["fused_pairs"].tolist()) if j == 3]
    assert int(vocab.eot_positions(ref["fused_ids"][long_fused])[0]) == 179
    assert len({len(set(image.size)) for image in images}) == 2, "square and non-square images"


def test_bang_is_padding_as_in_the_reference(release):
    """Without hiding id 0 the texts with "!" inside change; the others do not (so the fixture pins that rule)."""
    model, ref = release
    model.pad_id_is_padding = False
    try:
        diff = (model.encode(texts=INPUTS["texts"][:4]) - ref["text_emb"]).abs().max(dim=1).values
    finally:
        model.pad_id_is_padding = True
    assert bool((diff[1:3] > 1e-2).all()) and bool((diff[[0, 3]] < 1e-5).all())


def test_the_legacy_reshape_is_what_the_config_says(release, images):
    model, ref = release
    model.tokenizer.config.legacy = not model.tokenizer.config.legacy
    try:
        flipped = model.tokenizer.tokenize(images[:1])
    finally:
        model.tokenizer.config.legacy = not model.tokenizer.config.legacy
    assert not torch.equal(flipped[0], ref["codes"][0])


def test_released_model_speaks_the_encode_api(release, images):
    model, _ = release
    out = model.encode(images=[images[0], None], texts=["", "a red square"])
    assert out.shape == (2, model.embed_dim) and torch.allclose(out.norm(dim=1), torch.ones(2), atol=1e-5)
    assert isinstance(model, ReleasedFuseLIP) and bool(model.token_seen.all()) and not model.compacted
    with pytest.raises(RuntimeError, match="no decoder weights"):
        model.tokenizer.decode(torch.zeros(1, 128, dtype=torch.long))
    with pytest.raises(ValueError, match=r"\(B, 3, 256, 256\) float tensor"):
        model.tokenizer.encode(torch.zeros(1, 3, 64, 64))


def test_key_names_round_trip():
    state = torch.load(FIXTURE / "fuselip-s" / "pytorch_model.bin", weights_only=True)
    model = load_pretrained(FIXTURE / "fuselip-s")
    ours = set(model.state_dict()) - {"token_seen"}
    assert {to_ours(k) for k in state if k != TIED_KEY} == ours
    assert all(to_ours(to_official(k)) == k for k in ours)
    assert to_ours("transformer.resblocks.3.attn.in_proj_weight") == "blocks.3.qkv.weight"
    assert to_ours("image_tokenizer.model.encoder.transformer.1.mlp.c_proj.bias") == "tokenizer.encoder.transformer.1.fc_out.bias"


# ---------------------------------------------------------------------------------------------
# errors: one line, naming what is wrong


def _broken_copy(tmp_path: Path, change) -> Path:
    folder = tmp_path / "broken"
    folder.mkdir()
    (folder / "config.json").write_text((FIXTURE / "fuselip-s" / "config.json").read_text())
    state = torch.load(FIXTURE / "fuselip-s" / "pytorch_model.bin", weights_only=True)
    change(state)
    torch.save(state, folder / "pytorch_model.bin")
    return folder


def _one_line_error(path, match: str):
    with pytest.raises(PretrainedError, match=match) as info:
        load_pretrained(path)
    assert "\n" not in str(info.value)
    return str(info.value)


def test_missing_key(tmp_path):
    folder = _broken_copy(tmp_path, lambda s: s.pop("ln_final.weight"))
    _one_line_error(folder, r"missing key 'ln_final.weight' \(shape \(8,\)\)")


def test_unexpected_key(tmp_path):
    folder = _broken_copy(tmp_path, lambda s: s.update({"text_projection": torch.zeros(8, 8)}))
    _one_line_error(folder, r"unexpected key 'text_projection' \(shape \(8, 8\)\)")


def test_wrong_shape_names_the_key_and_both_shapes(tmp_path):
    def shrink(state):
        state["positional_embedding"] = state["positional_embedding"][:77]
    folder = _broken_copy(tmp_path, shrink)
    _one_line_error(folder, r"key 'positional_embedding' has shape \(77, 8\) in the file, the config implies \(180, 8\)")


def test_untied_head_and_unknown_tokenizer(tmp_path):
    def untie(state):
        state[TIED_KEY] = state[TIED_KEY] + 1
    _one_line_error(_broken_copy(tmp_path, untie), "differs from token_embedding.weight")
    other = tmp_path / "other"
    other.mkdir()
    config = json.loads((FIXTURE / "fuselip-s" / "config.json").read_text())
    (other / "config.json").write_text(json.dumps({**config, "image_tokenizer": "someone/tokenizer_vqgan"}))
    (other / "pytorch_model.bin").write_bytes((FIXTURE / "fuselip-s" / "pytorch_model.bin").read_bytes())
    _one_line_error(other, "image_tokenizer 'someone/tokenizer_vqgan' is not one of")


def test_unreadable_or_incomplete_folders(tmp_path):
    (tmp_path / "empty").mkdir()
    _one_line_error(tmp_path / "empty", "needs config.json and one of")
    _one_line_error(tmp_path / "no-such-folder", "no such folder, and not a Hugging Face model name")
    pickled = tmp_path / "pickled"
    pickled.mkdir()
    (pickled / "config.json").write_text((FIXTURE / "fuselip-s" / "config.json").read_text())
    torch.save({"weights": object()}, pickled / "pytorch_model.bin")  # needs unpickling code: refused
    _one_line_error(pickled, "not a readable weights file")


def test_a_name_not_in_the_cache_says_how_to_fetch_it(tmp_path, monkeypatch):
    """Offline, nothing downloads and nothing hangs: a one-line error naming the model and the command."""
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(PretrainedError) as info:
        load_pretrained("chs20/FuseLIP-B-CC3M-MM", cache_dir=tmp_path)
    message = str(info.value)
    assert "\n" not in message and message.startswith("chs20/FuseLIP-B-CC3M-MM is not in the Hugging Face cache")
    assert "python -m fuselip.pretrained --download chs20/FuseLIP-B-CC3M-MM" in message and str(tmp_path) in message
    with pytest.raises(PretrainedError, match="download asked for, but HF_HUB_OFFLINE is set"):
        load_pretrained("chs20/FuseLIP-B-CC3M-MM", download=True, cache_dir=tmp_path)
    assert release_kind("chs20/FuseLIP-B-CC3M-MM", cache_dir=tmp_path) == "fuselip"
    assert not any(p.suffix in (".bin", ".json", ".safetensors") for p in tmp_path.rglob("*")), "nothing fetched"


def test_check_command_prints_size_and_norm(capsys, tmp_path):
    assert main(["--check", str(FIXTURE / "fuselip-b")]) == 0
    out = capsys.readouterr().out.splitlines()
    assert "M parameters" in out[0] and "width 8" in out[0] and "128 tokens of 256 px" in out[0]
    assert out[1].startswith("sample embedding norm (image + text): ") and abs(float(out[1].split()[-1]) - 1) < 1e-5
    assert main(["--check", "no/such-model-here", "--cache-dir", str(tmp_path)]) == 1
    assert "no/such-model-here is not in the Hugging Face cache" in capsys.readouterr().err


# ---------------------------------------------------------------------------------------------
# the tokenizers' own releases (config.json + model.safetensors, decoder included)


def _tokenizer_release(folder: Path, legacy: bool) -> Path:
    """A tiny TiTok release written in the official layout: TiTok's config.json and official key names."""
    config = OfficialTiTokConfig(width=32, layers=1, heads=1, code_dim=12 if legacy else 16, codebook_size=64,
                                 l2_codes=legacy, legacy=legacy, decoder_width=32, decoder_layers=1, decoder_heads=1)
    torch.manual_seed(0)
    titok = OfficialTiTok(config)
    for param in titok.parameters():
        torch.nn.init.normal_(param, std=0.05)
    folder.mkdir()
    save_file({titok_key(k, official_to_ours=False): v.contiguous() for k, v in titok.state_dict().items()},
              str(folder / "model.safetensors"))
    vq = {"codebook_size": 64, "token_size": config.code_dim, "use_l2_norm": legacy, "vit_enc_model_size": "small",
          "vit_dec_model_size": "small", "vit_enc_patch_size": 16, "num_latent_tokens": 128,
          "finetune_decoder": legacy, "is_legacy": legacy}
    (folder / "config.json").write_text(json.dumps({"model": {"vq_model": vq},
                                                    "dataset": {"preprocessing": {"crop_size": 256}}}))
    return folder


def test_tokenizer_release_encodes_and_decodes(tmp_path):
    tok = load_pretrained(_tokenizer_release(tmp_path / "bl", legacy=False))
    assert isinstance(tok, OfficialTiTok) and tok.can_decode and release_kind(tmp_path / "bl") == "tokenizer"
    codes = tok.tokenize([np.full((40, 60, 3), 200, np.uint8), FIXTURE / "images" / "wide.png"])
    assert codes.shape == (2, 128) and int(codes.max()) < 64
    pixels = tok.decode(codes)
    assert pixels.shape == (2, 3, 256, 256) and float(pixels.min()) >= 0 and float(pixels.max()) <= 1
    maps = tok.token_maps(FIXTURE / "images" / "wide.png")
    assert maps.shape == (128, 16, 16) and torch.allclose(maps.sum(dim=(1, 2)), torch.ones(128), atol=1e-4)


def test_legacy_decoder_without_the_maskgit_decoder_says_so(tmp_path):
    tok = load_pretrained(_tokenizer_release(tmp_path / "s", legacy=True))
    assert not tok.can_decode
    with pytest.raises(RuntimeError, match="proxy codes of a frozen MaskGIT-VQGAN"):
        tok.decode(torch.zeros(1, 128, dtype=torch.long))


def test_token_maps_memo_matches_a_fresh_pass(release, images):
    """`encode` of one image records its maps; asking for them later gives what a fresh pass computes."""
    model, _ = release
    tok = model.tokenizer
    array = tok.prepare(images[1])
    tok.tokenize([array])
    remembered = tok.token_maps(array)
    tok._maps.clear()
    torch.testing.assert_close(tok.token_maps(array), remembered)


def test_squash_is_the_reference_resize(images):
    """fuselip.images.squash == torchvision Resize((256, 256), bicubic) on a PIL image, the reference's eval transform."""
    from torchvision import transforms
    from fuselip.images import squash
    resize = transforms.Resize((256, 256), interpolation=transforms.InterpolationMode.BICUBIC, antialias=True)
    for image in images:
        assert np.array_equal(squash(image, 256), np.asarray(resize(image.convert("RGB"))))
