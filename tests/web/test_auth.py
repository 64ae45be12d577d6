"""Bearer tokens from configuration, and `sambus serve token`."""

from __future__ import annotations

import pytest
from typer.testing import CliRunner

from sambus.contracts.errors import ConfigError
from sambus.router.cli.main import app
from sambus.router.web.auth import Principal, Role, TokenAuthenticator, mint_token, token_digest
from tests.database import upgraded


def test_a_minted_token_authenticates_only_through_its_digest():
    token, digest = mint_token()
    other, _ = mint_token()

    authenticator = TokenAuthenticator.from_setting(f"alice:operator:{digest}, bob:admin:{'0' * 64}")

    assert digest == token_digest(token)
    assert token not in digest
    assert authenticator.authenticate(token) == Principal("alice", Role.OPERATOR)
    assert authenticator.authenticate(other) is None
    assert authenticator.authenticate(digest) is None, "the digest itself is not a token"


@pytest.mark.parametrize(
    ("setting", "problem"),
    [
        ("alice:operator", "entry 1 is not name:role:sha256hex"),
        (f"alice:operator:{'a' * 64},bob:root:{'b' * 64}", "entry 2 has role 'root'"),
        ("alice:operator:abc", "entry 1 needs a 64-hex-digit SHA-256"),
    ],
)
def test_a_malformed_setting_names_the_entry_not_the_digest(setting, problem):
    with pytest.raises(ConfigError, match=problem) as caught:
        TokenAuthenticator.from_setting(setting)
    assert "b" * 64 not in str(caught.value)


def test_admins_may_do_what_every_role_may():
    assert Principal("a", Role.ADMIN).may(Role.OPERATOR)
    assert Principal("a", Role.ADMIN).may(Role.COMPLIANCE)
    assert not Principal("o", Role.OPERATOR).may(Role.COMPLIANCE)
    assert not Principal("c", Role.COMPLIANCE).may(Role.ADMIN)


def test_serve_token_prints_a_token_and_its_setting_entry(monkeypatch, tmp_path):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("COLUMNS", "300")

    result = CliRunner().invoke(app, ["serve", "token", "--name", "carla", "--role", "compliance"])

    assert result.exit_code == 0, result.output
    token = result.output.splitlines()[0].rsplit(" ", 1)[1]
    entry = result.output.splitlines()[1].rsplit(" ", 1)[1]
    assert TokenAuthenticator.from_setting(entry).authenticate(token) == Principal("carla", Role.COMPLIANCE)


def test_serve_without_tokens_says_how_to_make_one(monkeypatch, tmp_path):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("SAMBUS_KAFKA_BOOTSTRAP_SERVERS", "127.0.0.1:9")
    monkeypatch.setenv("SAMBUS_PSEUDONYM_KEY", "k" * 32)
    monkeypatch.setenv("SAMBUS_DATABASE_URL", upgraded(f"sqlite:///{tmp_path / 'db.sqlite'}"))
    monkeypatch.delenv("SAMBUS_WEB_TOKENS", raising=False)

    result = CliRunner().invoke(app, ["serve"])

    assert result.exit_code == 2
    assert "SAMBUS_WEB_TOKENS is not set" in result.output
    assert "sambus serve token" in result.output
