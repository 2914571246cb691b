"""The names the operator relies on are the names the predictors read."""

from __future__ import annotations

import rgpu_contract as contract
from rgpu_serving.settings import ServingSettings


def test_environment_variable_names_match_the_settings(monkeypatch):
    monkeypatch.setenv(contract.ENV_API_KEY, "a,b")
    monkeypatch.setenv(contract.ENV_API_KEY_FILE, "/keys")
    monkeypatch.setenv(contract.ENV_AUTH_DISABLED, "true")
    monkeypatch.setenv(contract.ENV_URL_ALLOWLIST, "10.0.0.0/8")
    s = ServingSettings()
    assert s.apikey == "a,b" and str(s.apikey_file) == "/keys" and s.auth_disabled
    assert s.url_allowlist_entries() == ["10.0.0.0/8"]


def test_every_transcriber_route_is_served_by_the_transcription_router():
    from rgpu_serving.settings import ServingSettings as S
    from rgpu_whisper.predictor import build_predictor

    paths = {r.path for r in build_predictor(settings=S(auth_disabled=True)).router().routes}
    wanted = set(contract.COMPONENT_ROUTES["transcriber-live"] + contract.COMPONENT_ROUTES["transcriber-file"])
    assert wanted <= paths
