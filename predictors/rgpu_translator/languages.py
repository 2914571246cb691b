"""ISO 639-1 codes (what Reflector sends) mapped to each model family's own language codes.

NLLB-200 uses FLORES-200 codes (``fra_Latn``); M2M100 uses its own, mostly ISO 639-1, list;
Marian models are per pair and named with ISO codes (``opus-mt-en-fr``). The NLLB table covers
the ~95 languages the reference SeamlessM4T translator mapped, plus a few common extras; codes
that are already in a model's own form (``fra_Latn``, ``__fr__`` style without underscores) are
accepted as is.
"""

from __future__ import annotations

#: ISO 639-1 (or 639-3 where no two-letter code exists) -> NLLB-200 / FLORES-200 code.
NLLB_CODES: dict[str, str] = {
    "af": "afr_Latn",
    "am": "amh_Ethi",
    "ar": "arb_Arab",
    "ary": "ary_Arab",
    "arz": "arz_Arab",
    "as": "asm_Beng",
    "ast": "ast_Latn",
    "az": "azj_Latn",
    "ba": "bak_Cyrl",
    "be": "bel_Cyrl",
    "bg": "bul_Cyrl",
    "bn": "ben_Beng",
    "bo": "bod_Tibt",
    "bs": "bos_Latn",
    "ca": "cat_Latn",
    "ceb": "ceb_Latn",
    "cs": "ces_Latn",
    "cy": "cym_Latn",
    "da": "dan_Latn",
    "de": "deu_Latn",
    "dz": "dzo_Tibt",
    "el": "ell_Grek",
    "en": "eng_Latn",
    "eo": "epo_Latn",
    "es": "spa_Latn",
    "et": "est_Latn",
    "eu": "eus_Latn",
    "fa": "pes_Arab",
    "ff": "fuv_Latn",
    "fi": "fin_Latn",
    "fj": "fij_Latn",
    "fo": "fao_Latn",
    "fr": "fra_Latn",
    "ga": "gle_Latn",
    "gaz": "gaz_Latn",
    "gd": "gla_Latn",
    "gl": "glg_Latn",
    "gn": "grn_Latn",
    "gu": "guj_Gujr",
    "ha": "hau_Latn",
    "he": "heb_Hebr",
    "hi": "hin_Deva",
    "hr": "hrv_Latn",
    "ht": "hat_Latn",
    "hu": "hun_Latn",
    "hy": "hye_Armn",
    "id": "ind_Latn",
    "ig": "ibo_Latn",
    "ilo": "ilo_Latn",
    "is": "isl_Latn",
    "it": "ita_Latn",
    "ja": "jpn_Jpan",
    "jv": "jav_Latn",
    "ka": "kat_Geor",
    "kk": "kaz_Cyrl",
    "khk": "khk_Cyrl",
    "km": "khm_Khmr",
    "kn": "kan_Knda",
    "ko": "kor_Hang",
    "ku": "ckb_Arab",
    "ky": "kir_Cyrl",
    "lb": "ltz_Latn",
    "lg": "lug_Latn",
    "ln": "lin_Latn",
    "lo": "lao_Laoo",
    "lt": "lit_Latn",
    "luo": "luo_Latn",
    "lv": "lvs_Latn",
    "mai": "mai_Deva",
    "mg": "plt_Latn",
    "mi": "mri_Latn",
    "mk": "mkd_Cyrl",
    "ml": "mal_Mlym",
    "mn": "khk_Cyrl",
    "mni": "mni_Beng",
    "mr": "mar_Deva",
    "ms": "zsm_Latn",
    "mt": "mlt_Latn",
    "my": "mya_Mymr",
    "nb": "nob_Latn",
    "ne": "npi_Deva",
    "nl": "nld_Latn",
    "nn": "nno_Latn",
    "no": "nob_Latn",
    "ny": "nya_Latn",
    "oc": "oci_Latn",
    "om": "gaz_Latn",
    "or": "ory_Orya",
    "pa": "pan_Guru",
    "pbt": "pbt_Arab",
    "pes": "pes_Arab",
    "pl": "pol_Latn",
    "ps": "pbt_Arab",
    "pt": "por_Latn",
    "qu": "quy_Latn",
    "ro": "ron_Latn",
    "ru": "rus_Cyrl",
    "rw": "kin_Latn",
    "sa": "san_Deva",
    "sc": "srd_Latn",
    "sd": "snd_Arab",
    "si": "sin_Sinh",
    "sk": "slk_Latn",
    "sl": "slv_Latn",
    "sm": "smo_Latn",
    "sn": "sna_Latn",
    "so": "som_Latn",
    "sq": "als_Latn",
    "sr": "srp_Cyrl",
    "ss": "ssw_Latn",
    "st": "sot_Latn",
    "su": "sun_Latn",
    "sv": "swe_Latn",
    "sw": "swh_Latn",
    "ta": "tam_Taml",
    "te": "tel_Telu",
    "tg": "tgk_Cyrl",
    "th": "tha_Thai",
    "ti": "tir_Ethi",
    "tk": "tuk_Latn",
    "tl": "tgl_Latn",
    "tn": "tsn_Latn",
    "tr": "tur_Latn",
    "ts": "tso_Latn",
    "tt": "tat_Cyrl",
    "ug": "uig_Arab",
    "uk": "ukr_Cyrl",
    "ur": "urd_Arab",
    "uz": "uzn_Latn",
    "vi": "vie_Latn",
    "wo": "wol_Latn",
    "xh": "xho_Latn",
    "yi": "ydd_Hebr",
    "yo": "yor_Latn",
    "yue": "yue_Hant",
    "zh": "zho_Hans",
    "zh-cn": "zho_Hans",
    "zh-hans": "zho_Hans",
    "zh-sg": "zho_Hans",
    "zh-tw": "zho_Hant",
    "zh-hk": "zho_Hant",
    "zh-hant": "zho_Hant",
    "cmn": "zho_Hans",
    "zu": "zul_Latn",
}

#: ISO codes that M2M100 spells differently (everything else is the ISO code itself).
M2M100_ALIASES: dict[str, str] = {
    "nb": "no",
    "nn": "no",
    "iw": "he",
    "in": "id",
    "fil": "tl",
    "zh-cn": "zh",
    "zh-tw": "zh",
}


def normalize(code: str) -> str:
    """``en``, ``EN``, ``en-US``, ``en_us`` -> ``en``; Chinese script/region variants kept (``zh-tw``)."""
    c = (code or "").strip().replace("_", "-").lower()
    if c.startswith("zh-"):
        return c
    return c.split("-", 1)[0] if "-" in c and len(c.split("-", 1)[0]) in (2, 3) else c


def nllb_code(code: str, available: frozenset[str]) -> str | None:
    """The NLLB code for ``code`` if the loaded model knows it."""
    raw = (code or "").strip()
    if raw in available:  # already a FLORES-200 code such as ``fra_Latn``
        return raw
    mapped = NLLB_CODES.get(normalize(raw))
    return mapped if mapped and mapped in available else None


def m2m100_code(code: str, available: frozenset[str]) -> str | None:
    c = normalize(code)
    c = M2M100_ALIASES.get(c, c)
    if c.startswith("zh-"):
        c = "zh"
    return c if c in available else None


def iso_codes_for(family: str, available: frozenset[str]) -> list[str]:
    """The client-facing codes a multilingual model supports (for error messages and listings)."""
    if family == "nllb":
        codes = {iso for iso, native in NLLB_CODES.items() if native in available and "-" not in iso}
    else:
        codes = set(available)
    return sorted(codes)
