"""Stop, start, help and language keywords, in every language, whatever the participant's."""

from __future__ import annotations

import pytest

from bot.engine.languages import SUPPORTED
from bot.engine.understand import Keyword, detect_keyword

STOP = Keyword("stop")
START = Keyword("start")
HELP = Keyword("help")

# Twilio's default opt-out keywords, as the whole message.
TWILIO_STOP = ["STOP", "STOPALL", "UNSUBSCRIBE", "END", "QUIT", "CANCEL", "REVOKE", "OPTOUT"]


@pytest.mark.parametrize("lang", SUPPORTED)
@pytest.mark.parametrize("word", TWILIO_STOP)
def test_twilio_stop_words_in_every_language(word: str, lang: str) -> None:
    assert detect_keyword(word, lang) == STOP
    assert detect_keyword(word.lower(), lang) == STOP


STOPS = [
    ("Stop", "en"),
    ("stop.", "en"),
    ("STOP!!!", "en"),
    ("stop please", "en"),
    ("Please stop", "en"),
    ("stop thanks", "en"),
    ("STOP 🛑", "en"),
    ("STOP 🙏", "en"),
    ("stop stop", "en"),
    ("s t o p".replace(" ", ""), "en"),
    ("\u200bSTOP\u200b", "en"),  # zero-width spaces from a copy-paste
    ("opt out", "en"),
    ("opt-out", "en"),
    ("stop texting me", "en"),
    ("Please stop texting me, I'm done with this", "en"),
    ("no more messages", "en"),
    ("unsubscribe me please", "en"),
    ("Can you stop?", "en"),
    ("cancel my subscription", "en"),
    ("don't text me anymore", "en"),
    ("STOP", "es"),  # a Spanish speaker texting the English keyword
    ("no más mensajes", "es"),
    ("no mas mensajes por favor", "es"),
    ("NO MAS MENSAJES", "es"),
    ("ya no quiero mensajes", "es"),
    ("ya no quiero recibir mensajes, gracias", "es"),
    ("dejen de escribirme", "es"),
    ("parar", "es"),
    ("cancelar", "es"),
    ("no más mensajes", "en"),  # participant's language does not matter
    ("arrêtez de m'écrire", "fr"),
    ("arretez de m'ecrire", "fr"),
    ("arretez", "fr"),
    ("Arrêtez svp", "fr"),
    ("je ne veux plus recevoir de messages", "fr"),
    ("désabonner", "fr"),
    ("parar", "pt"),
    ("pare", "pt"),
    ("não quero mais mensagens", "pt"),
    ("nao quero mais mensagens", "pt"),
    ("acha kunitumia ujumbe", "sw"),
    ("acha", "sw"),
    ("sitaki ujumbe tena", "sw"),
    ("توقف", "ar"),
    ("توقف من فضلك", "ar"),
    ("لا أريد رسائل", "ar"),
    ("إلغاء الاشتراك", "ar"),
    ("退订", "zh"),
    ("回复TD退订", "zh"),
    ("TD", "zh"),
    ("不要再发了", "zh"),
    ("请不要再发了", "zh"),
    ("停止", "zh"),
    ("dừng lại", "vi"),
    ("dung lai", "vi"),
    ("dừng", "vi"),
    ("đừng nhắn nữa", "vi"),
    ("dung nhan nua", "vi"),
    ("hủy đăng ký", "vi"),
    ("sispann", "ht"),
    ("Sispann tanpri", "ht"),
    ("pa voye m mesaj ankò", "ht"),
    ("pa voye m mesaj anko", "ht"),
]


@pytest.mark.parametrize(("text", "lang"), STOPS)
def test_stop(text: str, lang: str) -> None:
    assert detect_keyword(text, lang) == STOP


NOT_KEYWORDS = [
    ("my stomach pain won't stop", "en"),
    ("the headache did not stop", "en"),
    ("when do I stop taking the pills?", "en"),
    ("should I cancel my appointment?", "en"),
    ("the end of the week", "en"),
    ("yes", "en"),
    ("YES", "es"),  # "yes" answers questions here; it never restarts messages
    ("no", "en"),
    ("ok", "en"),
    ("please", "en"),
    ("", "en"),
    ("👍", "en"),
    ("7", "en"),
    ("help me understand the dosage", "en"),
    ("el dolor no para", "es"),
    ("ya me la tomé", "es"),
    ("alta", "es"),
    ("baja", "es"),
    ("j'ai arrêté le médicament", "fr"),
    ("la douleur ne s'arrête pas", "fr"),
    ("maumivu hayajaacha", "sw"),
    ("الألم لم يتوقف", "ar"),
    ("توقف الألم", "ar"),
    ("头疼停不下来", "zh"),
    ("đúng", "vi"),  # "right", not "dừng" (stop)
    ("dung", "vi"),  # without tone marks it could be either: not an opt-out
    ("doulè a pa sispann", "ht"),
    ("es", "en"),  # a bare language code is just a word
    ("en", "es"),
]


@pytest.mark.parametrize(("text", "lang"), NOT_KEYWORDS)
def test_not_a_keyword(text: str, lang: str) -> None:
    assert detect_keyword(text, lang) is None


STARTS = [
    ("START", "en"),
    ("start", "es"),
    ("UNSTOP", "en"),
    ("resume", "en"),
    ("Start please", "en"),
    ("reanudar", "es"),
    ("comenzar", "es"),
    ("commencer", "fr"),
    ("reprendre", "fr"),
    ("começar", "pt"),
    ("anza", "sw"),
    ("ابدأ", "ar"),
    ("开始", "zh"),
    ("bắt đầu", "vi"),
    ("bat dau", "vi"),
    ("kòmanse", "ht"),
    ("komanse", "ht"),
    ("please start texting me again", "en"),
]


@pytest.mark.parametrize(("text", "lang"), STARTS)
def test_start(text: str, lang: str) -> None:
    assert detect_keyword(text, lang) == START


HELPS = [
    ("HELP", "en"),
    ("help", "fr"),
    ("Help!", "en"),
    ("help please", "en"),
    ("INFO", "en"),
    ("AYUDA", "es"),
    ("ayuda por favor", "es"),
    ("AIDE", "fr"),
    ("AJUDA", "pt"),
    ("MSAADA", "sw"),
    ("msaada tafadhali", "sw"),
    ("مساعدة", "ar"),
    ("帮助", "zh"),
    ("GIÚP", "vi"),
    ("giup", "vi"),
    ("giúp tôi", "vi"),
    ("ED", "ht"),
    ("èd", "ht"),
]


@pytest.mark.parametrize(("text", "lang"), HELPS)
def test_help(text: str, lang: str) -> None:
    assert detect_keyword(text, lang) == HELP


LANGUAGES = [
    ("ESPAÑOL", "en", "es"),
    ("espanol", "en", "es"),
    ("Español por favor", "en", "es"),
    ("en español", "en", "es"),
    ("idioma español", "en", "es"),
    ("LANGUAGE es", "en", "es"),
    ("Spanish", "en", "es"),
    ("English", "es", "en"),
    ("ENGLISH PLEASE", "es", "en"),
    ("in English", "fr", "en"),
    ("inglés", "es", "en"),
    ("LANG en", "fr", "en"),
    ("FRANÇAIS", "en", "fr"),
    ("francais", "en", "fr"),
    ("LANG fr", "en", "fr"),
    ("langue fr", "en", "fr"),
    ("português", "en", "pt"),
    ("Portugues", "es", "pt"),
    ("Kiswahili", "en", "sw"),
    ("swahili", "en", "sw"),
    ("lugha sw", "en", "sw"),
    ("العربية", "en", "ar"),
    ("عربي", "en", "ar"),
    ("arabic", "en", "ar"),
    ("中文", "en", "zh"),
    ("Chinese", "en", "zh"),
    ("普通话", "en", "zh"),
    ("Tiếng Việt", "en", "vi"),
    ("tieng viet", "en", "vi"),
    ("Vietnamese", "en", "vi"),
    ("Kreyòl", "en", "ht"),
    ("kreyol", "en", "ht"),
    ("Haitian Creole", "en", "ht"),
    ("lang ht", "en", "ht"),
]


@pytest.mark.parametrize(("text", "lang", "code"), LANGUAGES)
def test_language_switch(text: str, lang: str, code: str) -> None:
    assert detect_keyword(text, lang) == Keyword("language", code)


def test_language_code_must_be_supported() -> None:
    assert detect_keyword("LANG de", "en") is None
    assert detect_keyword("language", "en") is None


def test_stop_wins_over_other_keywords() -> None:
    assert detect_keyword("stop help", "en") == STOP
    assert detect_keyword("stop, in English please", "en") == STOP


def test_regional_tag_is_accepted() -> None:
    assert detect_keyword("no más mensajes", "es-MX") == STOP
