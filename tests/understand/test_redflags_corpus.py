"""Red flags per language: messages that must raise (and which reason), and messages that
must not (denials, near misses, everyday replies)."""

from __future__ import annotations

import pytest

from bot.engine.understand.redflags import detect_red_flags

CHEST, BREATH, SELF, BLEED, FAINT = (
    "chest_pain", "breathing_difficulty", "self_harm", "severe_bleeding", "fainting")

#: (language, message, the reasons it raises)
RAISE: list[tuple[str, str, set[str]]] = [
    # English
    ("en", "I have chest pain", {CHEST}),
    ("en", "CHEST PAIN!!!", {CHEST}),
    ("en", "my chest hurts really bad", {CHEST}),
    ("en", "there's a lot of pressure in my chest", {CHEST}),
    ("en", "I can't breathe", {BREATH}),
    ("en", "i cant breath", {BREATH}),
    ("en", "No I can't breathe", {BREATH}),
    ("en", "help im choking", {BREATH}),
    ("en", "I want to die", {SELF}),
    ("en", "I've been thinking about suicide", {SELF}),
    ("en", "I don't want to live anymore", {SELF}),
    ("en", "I'm not sure if it's chest pain", {CHEST}),
    ("en", "I fainted this morning", {FAINT}),
    ("en", "passed out in the kitchen", {FAINT}),
    ("en", "I'm bleeding a lot and it won't stop bleeding", {BLEED}),
    ("en", "vomiting blood since last night", {BLEED}),
    ("en", "No fever, but chest pain since yesterday", {CHEST}),
    ("en", "I don't have a fever but I fainted", {FAINT}),
    ("en", "no chest pain, I can't breathe", {BREATH}),
    ("en", "chest pain and I feel faint", {CHEST, FAINT}),
    ("en", "dolor de pecho", {CHEST}),  # another language's phrase counts too
    # Spanish
    ("es", "no puedo respirar", {BREATH}),
    ("es", "No puedo respirar bien", {BREATH}),
    ("es", "NO PUEDO RESPIRAR", {BREATH}),
    ("es", "no, no puedo respirar", {BREATH}),
    ("es", "tengo dolor de pecho", {CHEST}),
    ("es", "me duele el pecho desde anoche", {CHEST}),
    ("es", "dolor en el pecho y me desmayé", {CHEST, FAINT}),
    ("es", "quiero morir", {SELF}),
    ("es", "ya no quiero vivir", {SELF}),
    ("es", "a veces pienso en el suicidio", {SELF}),
    ("es", "me desmaye en la calle", {FAINT}),
    ("es", "estoy sangrando mucho", {BLEED}),
    ("es", "no para de sangrar", {BLEED}),
    ("es", "no puedo dormir por el dolor de pecho", {CHEST}),
    ("es", "no se me quita el dolor de pecho", {CHEST}),
    ("es", "sí, tengo dolor de pecho", {CHEST}),
    ("es", "si tengo dolor de pecho", {CHEST}),
    ("es", "no tengo fiebre pero me falta el aire", {BREATH}),
    ("es", "I can't breathe", {BREATH}),
    # French
    ("fr", "douleur à la poitrine", {CHEST}),
    ("fr", "j'ai mal a la poitrine", {CHEST}),
    ("fr", "je ne peux pas respirer", {BREATH}),
    ("fr", "j'arrive pas à respirer", {BREATH}),
    ("fr", "je veux mourir", {SELF}),
    ("fr", "je me suis évanouie ce matin", {FAINT}),
    ("fr", "je saigne beaucoup", {BLEED}),
    ("fr", "pas de fièvre mais douleur à la poitrine", {CHEST}),
    # Portuguese
    ("pt", "estou com dor no peito", {CHEST}),
    ("pt", "não consigo respirar", {BREATH}),
    ("pt", "nao consigo respirar direito", {BREATH}),
    ("pt", "quero morrer", {SELF}),
    ("pt", "desmaiei hoje de manhã", {FAINT}),
    ("pt", "não para de sangrar", {BLEED}),
    ("pt", "sem febre mas com falta de ar", {BREATH}),
    # Swahili
    ("sw", "nina maumivu ya kifua", {CHEST}),
    ("sw", "siwezi kupumua", {BREATH}),
    ("sw", "nataka kufa", {SELF}),
    ("sw", "nilizimia jana", {FAINT}),
    ("sw", "natoka damu nyingi", {BLEED}),
    ("sw", "sina homa lakini kifua kinauma", {CHEST}),
    # Arabic
    ("ar", "عندي ألم في الصدر", {CHEST}),
    ("ar", "الم في الصدر", {CHEST}),
    ("ar", "لا أستطيع التنفس", {BREATH}),
    ("ar", "لا استطيع التنفس", {BREATH}),
    ("ar", "أريد أن أموت", {SELF}),
    ("ar", "أغمي علي اليوم", {FAINT}),
    ("ar", "نزيف شديد", {BLEED}),
    ("ar", "ما عندي حرارة لكن عندي ألم في الصدر", {CHEST}),
    # Chinese
    ("zh", "我胸痛", {CHEST}),
    ("zh", "胸口疼得厉害", {CHEST}),
    ("zh", "我喘不过气", {BREATH}),
    ("zh", "我不能呼吸", {BREATH}),
    ("zh", "我想死", {SELF}),
    ("zh", "我不想活了", {SELF}),
    ("zh", "我今天晕倒了", {FAINT}),
    ("zh", "流血不止", {BLEED}),
    ("zh", "没有发烧但是胸痛", {CHEST}),
    # Vietnamese
    ("vi", "tôi bị đau ngực", {CHEST}),
    ("vi", "toi bi dau nguc", {CHEST}),
    ("vi", "tôi không thở được", {BREATH}),
    ("vi", "khong tho duoc", {BREATH}),
    ("vi", "tôi muốn chết", {SELF}),
    ("vi", "tôi muốn tự tử", {SELF}),
    ("vi", "tôi bị ngất sáng nay", {FAINT}),
    ("vi", "chảy máu nhiều", {BLEED}),
    ("vi", "không sốt nhưng đau ngực", {CHEST}),
    # Haitian Creole
    ("ht", "mwen gen doulè nan pwatrin", {CHEST}),
    ("ht", "mwen gen doule nan pwatrin", {CHEST}),
    ("ht", "mwen pa ka respire", {BREATH}),
    ("ht", "m pa ka respire", {BREATH}),
    ("ht", "mwen vle mouri", {SELF}),
    ("ht", "mwen te pèdi konesans", {FAINT}),
    ("ht", "m ap senyen anpil", {BLEED}),
    ("ht", "m pa gen lafyèv men mwen gen doulè nan pwatrin", {CHEST}),
]

#: (language, message) that must raise nothing.
CALM: list[tuple[str, str]] = [
    ("en", "no chest pain"),
    ("en", "No chest pain today"),
    ("en", "I don't have chest pain"),
    ("en", "I do not have any chest pain"),
    ("en", "I have not had any chest pain"),
    ("en", "never fainted"),
    ("en", "no chest pain or shortness of breath"),
    ("en", "I'm not suicidal"),
    ("en", "no thoughts of suicide"),
    ("en", "I can breathe fine now"),
    ("en", "I feel much better, thanks"),
    ("en", "a little tired"),
    ("en", "headache and nausea"),
    ("en", "yes"),
    ("en", "7"),
    ("es", "no tengo dolor de pecho"),
    ("es", "sin dolor de pecho"),
    ("es", "No, no tengo dolor en el pecho"),
    ("es", "ya no me falta el aire"),
    ("es", "nunca me he desmayado"),
    ("es", "no quiero morir"),
    ("es", "dolor de cabeza"),
    ("es", "me siento bien"),
    ("es", "sí"),
    ("es", "muy grave"),
    ("fr", "je n'ai pas de douleur à la poitrine"),
    ("fr", "pas de douleur à la poitrine"),
    ("fr", "sans douleur à la poitrine"),
    ("fr", "je ne me suis jamais évanoui"),
    ("fr", "j'ai mal à la tête"),
    ("fr", "oui"),
    ("pt", "não tenho dor no peito"),
    ("pt", "sem dor no peito"),
    ("pt", "nunca desmaiei"),
    ("pt", "dor de cabeça"),
    ("pt", "apaguei a luz"),
    ("sw", "sina maumivu ya kifua"),
    ("sw", "hakuna maumivu ya kifua"),
    ("sw", "sijawahi kuzimia"),
    ("sw", "siwezi tena kuja kliniki"),
    ("sw", "ndiyo"),
    ("ar", "ليس لدي ألم في الصدر"),
    ("ar", "ما عندي ألم في الصدر"),
    ("ar", "بدون ألم في الصدر"),
    ("ar", "نعم"),
    ("zh", "我没有胸痛"),
    ("zh", "没有胸痛"),
    ("zh", "我不想死"),
    ("zh", "从来没有晕倒"),
    ("zh", "头痛"),
    ("zh", "是"),
    ("vi", "tôi không bị đau ngực"),
    ("vi", "toi khong bi dau nguc"),
    ("vi", "không đau ngực"),
    ("vi", "từ từ"),
    ("vi", "tu tu thoi"),
    ("vi", "một xíu"),
    ("vi", "có"),
    ("ht", "mwen pa gen doulè nan pwatrin"),
    ("ht", "m pa gen doule nan pwatrin"),
    ("ht", "mwen pa janm pèdi konesans"),
    ("ht", "wi"),
]


@pytest.mark.parametrize(("lang", "text", "reasons"), RAISE)
def test_raises(lang: str, text: str, reasons: set[str]) -> None:
    assert {f.reason for f in detect_red_flags(text, lang)} == reasons


@pytest.mark.parametrize(("lang", "text"), CALM)
def test_stays_calm(lang: str, text: str) -> None:
    assert detect_red_flags(text, lang) == ()


def test_every_language_has_both_lists() -> None:
    from bot.engine.languages import SUPPORTED

    assert {lang for lang, _, _ in RAISE} == set(SUPPORTED)
    assert {lang for lang, _ in CALM} == set(SUPPORTED)
