"""POST /translate through HTTP against the local mode with tiny real Marian and NLLB models."""

from __future__ import annotations

import asyncio
import random
import re

import httpx
import pytest

HEADER = "X-Translation-Sentences"

pytestmark = pytest.mark.slow


def test_reflector_query_only_style(api):
    """Reflector's client: text, source_language and target_language all as query parameters."""
    r = api.post("/translate", params={"text": "Hello everyone.", "source_language": "en", "target_language": "fr"})
    assert r.status_code == 200, r.text
    body = r.json()
    assert set(body) == {"text"} and set(body["text"]) == {"en", "fr"}
    assert body["text"]["en"] == "Hello everyone."
    assert isinstance(body["text"]["fr"], str) and body["text"]["fr"]
    assert r.headers[HEADER] == "1"


def test_reference_body_style_and_body_wins(api):
    """Reference servers: text in the query, languages in the JSON body; the body wins over the query."""
    r = api.post("/translate", params={"text": "Le budget."}, json={"source_language": "fr", "target_language": "en"})
    assert r.status_code == 200, r.text
    assert set(r.json()["text"]) == {"fr", "en"}
    r = api.post(
        "/translate",
        params={"text": "Le budget.", "source_language": "de", "target_language": "it"},
        json={"source_language": "fr", "target_language": "en"},
    )
    assert r.status_code == 200, r.text
    assert set(r.json()["text"]) == {"fr", "en"}
    # the query fills in only what the body lacks
    r = api.post("/translate", params={"text": "Le budget.", "target_language": "en"}, json={"source_language": "fr"})
    assert r.status_code == 200 and set(r.json()["text"]) == {"fr", "en"}, r.text


def test_defaults_are_the_reference_ones(api):
    r = api.post("/translate", params={"text": "Hello."})
    assert r.status_code == 200, r.text
    assert set(r.json()["text"]) == {"en", "fr"}


def test_same_language_is_returned_unchanged_without_model_call(api):
    text = "Nothing to translate here. Keep it exactly."
    r = api.post("/translate", params={"text": text, "source_language": "en", "target_language": "EN-us"})
    assert r.status_code == 200, r.text
    assert r.json() == {"text": {"en": text, "EN-us": text}}
    assert r.headers[HEADER] == "0"


def test_unsupported_pair_lists_supported_pairs(api):
    r = api.post("/translate", params={"text": "Hi.", "source_language": "en", "target_language": "de"})
    assert r.status_code == 400
    detail = r.json()["detail"]
    assert "en -> de" in detail and "en-fr" in detail and "fr-en" in detail


@pytest.mark.parametrize(
    "kwargs,fragment",
    [
        ({"params": {"source_language": "en", "target_language": "fr"}}, "text is required"),
        ({"params": {"text": "x"}, "content": b"{not json", "headers": {"Content-Type": "application/json"}}, "JSON"),
        ({"params": {"text": "x"}, "json": ["en", "fr"]}, "valid dictionary or object"),
        ({"params": {"text": "x"}, "json": {"source_language": 3}}, "source_language: Input should be a valid string"),
    ],
)
def test_bad_requests_are_400(api, kwargs, fragment):
    r = api.post("/translate", **kwargs)
    assert r.status_code == 400, r.text
    assert fragment in r.json()["detail"]


def test_auth(marian, connect, keys):
    params = {"text": "Hi.", "source_language": "en", "target_language": "fr"}
    assert httpx.post(marian.base + "/translate", params=params).status_code == 401
    with connect(marian, "wrong-key") as c:
        r = c.post("/translate", params=params)
        assert r.status_code == 401 and r.headers.get("www-authenticate", "").startswith("Bearer")
    with connect(marian, keys[1]) as c:
        assert c.post("/translate", params=params).status_code == 200


def _document(n_words: int, seed: int = 7) -> tuple[str, int, int]:
    """A text of about ``n_words`` words in paragraphs: (text, sentences, paragraphs)."""
    rng = random.Random(seed)
    vocab = "the meeting budget team project client report today we talk about deadline numbers".split()
    paragraphs, words, sentences = [], 0, 0
    while words < n_words:
        para = []
        for _ in range(rng.randint(2, 6)):
            k = rng.randint(6, 22)
            para.append(" ".join(rng.choice(vocab) for _ in range(k)).capitalize() + rng.choice(".?!"))
            words += k
            sentences += 1
        paragraphs.append(" ".join(para))
    return "\n\n".join(paragraphs), sentences, len(paragraphs)


def test_five_thousand_words_split_into_every_sentence(api):
    text, sentences, paragraphs = _document(5000)
    assert len(text.split()) >= 5000
    r = api.post("/translate", params={"text": text, "source_language": "en", "target_language": "fr"})
    assert r.status_code == 200, r.text
    out = r.json()["text"]
    assert out["en"] == text
    # every sentence went through the model (none truncated away) ...
    assert int(r.headers[HEADER]) == sentences
    # ... and the translation keeps the paragraph structure of the source
    assert out["fr"].count("\n\n") == paragraphs - 1


def test_one_overlong_sentence_is_split_within_the_token_limit(api):
    text = " ".join(["budget meeting"] * 1500)  # ~3000 words, no punctuation, far over 512 tokens
    r = api.post("/translate", params={"text": text, "source_language": "en", "target_language": "fr"})
    assert r.status_code == 200, r.text
    assert int(r.headers[HEADER]) > 5


def test_concurrent_requests_are_batched_and_pairs_swap_in_a_bounded_cache(marian, keys):
    def batch_stats() -> tuple[float, float]:
        text = httpx.get(marian.base + "/metrics").text

        def get(n: str) -> float:
            pattern = rf'^reflector_gpu_batch_items_{n}{{predictor="translator"}} (\S+)'
            return float(re.search(pattern, text, re.M).group(1))

        return get("count"), get("sum")

    async def run() -> list[httpx.Response]:
        async with httpx.AsyncClient(
            base_url=marian.base, headers={"Authorization": f"Bearer {keys[0]}"}, timeout=300
        ) as c:
            jobs = []
            for i in range(12):
                src, tgt = ("en", "fr") if i % 2 == 0 else ("fr", "en")
                jobs.append(
                    c.post(
                        "/translate",
                        params={"text": f"Sentence number {i}.", "source_language": src, "target_language": tgt},
                    )
                )
            return await asyncio.gather(*jobs)

    calls0, items0 = batch_stats()
    responses = asyncio.run(run())
    assert all(r.status_code == 200 for r in responses), [r.text for r in responses if r.status_code != 200]
    for r in responses:
        assert set(r.json()["text"]) == {"en", "fr"}
    calls, items = batch_stats()
    assert items - items0 == 12
    assert calls - calls0 < 12, "concurrent requests were not batched"


def test_kserve_v1_predict(api):
    r = api.post(
        "/v1/models/translator:predict",
        json={
            "instances": [
                {"text": "Hello.", "source_language": "en", "target_language": "fr"},
                {"text": "Same.", "source_language": "en", "target_language": "en"},
            ]
        },
    )
    assert r.status_code == 200, r.text
    preds = r.json()["predictions"]
    assert set(preds[0]["text"]) == {"en", "fr"} and preds[1] == {"text": {"en": "Same."}}


# ---- NLLB: one multilingual model, ISO 639-1 codes mapped to FLORES-200 -------------------
@pytest.fixture(scope="module")
def nllb_api(nllb, connect):
    with connect(nllb) as c:
        yield c


@pytest.mark.parametrize(
    "src,tgt",
    [
        ("en", "fr"),
        ("de-DE", "pt"),
        ("en", "zh-TW"),
        ("ja", "ko"),
        ("eng_Latn", "fra_Latn"),
        ("nb", "uk"),
        ("sw", "he"),
    ],
)
def test_nllb_maps_client_codes(nllb_api, src, tgt):
    r = nllb_api.post(
        "/translate", params={"text": "Hello everyone. Welcome.", "source_language": src, "target_language": tgt}
    )
    assert r.status_code == 200, r.text
    assert set(r.json()["text"]) == {src, tgt}
    assert r.headers[HEADER] == "2"


def test_nllb_unsupported_language_lists_about_95_supported(nllb_api):
    r = nllb_api.post("/translate", params={"text": "Hi."}, json={"source_language": "en", "target_language": "xx"})
    assert r.status_code == 400
    detail = r.json()["detail"]
    assert "'xx'" in detail
    listed = detail.split("supported languages:", 1)[1].split(",")
    assert len(listed) >= 95 and " fr" in listed and " de" in listed
