"""Agent tokens: the secret is shown once, only its hash is kept, revoking is final."""

import re

import pytest

from webapp.accounts.models import TOKEN_PREFIX, AgentToken, hash_token

pytestmark = pytest.mark.django_db


def create_token(client, name="laptop") -> str:
    """Create a token through the page; returns the secret the page showed."""
    response = client.post("/tokens/", {"name": name})
    assert response.status_code == 200
    match = re.search(r'id="token-secret">([^<]+)<', response.content.decode())
    assert match, "the new token's secret is not on the page"
    return match.group(1)


def test_creating_a_token_shows_the_secret_and_stores_only_its_hash(
    alice, alice_client
):
    secret = create_token(alice_client)
    token = AgentToken.objects.get(owner=alice)
    assert secret.startswith(TOKEN_PREFIX)
    assert token.token_hash == hash_token(secret)
    assert secret not in {token.token_hash, token.hint, token.name}
    assert secret.startswith(token.hint)
    assert AgentToken.find_active(secret) == token


def test_the_token_list_never_shows_the_secret_again(alice_client):
    secret = create_token(alice_client, name="desk pc")
    page = alice_client.get("/tokens/").content.decode()
    assert "desk pc" in page
    assert secret not in page
    assert secret[: len(TOKEN_PREFIX) + 4] in page  # the hint tells tokens apart


def test_a_token_needs_a_name(alice, alice_client):
    response = alice_client.post("/tokens/", {"name": ""})
    assert response.status_code == 200
    assert "name" in response.context["form"].errors
    assert not AgentToken.objects.filter(owner=alice).exists()


def test_revoking_a_token_retires_it(alice_client):
    secret = create_token(alice_client)
    token = AgentToken.find_active(secret)
    response = alice_client.post(f"/tokens/{token.pk}/revoke")
    assert response.status_code == 302
    token.refresh_from_db()
    assert token.revoked_at is not None
    assert AgentToken.find_active(secret) is None
    assert "revoked" in alice_client.get("/tokens/").content.decode()


def test_revoking_takes_a_post(alice, alice_client, make_token):
    token = make_token(alice)
    assert alice_client.get(f"/tokens/{token.pk}/revoke").status_code == 405
    token.refresh_from_db()
    assert token.revoked_at is None


def test_it_refuses_to_revoke_another_users_token(alice, bob_client, make_token):
    token = make_token(alice)
    assert bob_client.post(f"/tokens/{token.pk}/revoke").status_code == 404
    token.refresh_from_db()
    assert token.revoked_at is None


def test_the_token_page_lists_only_ones_own_tokens(alice, bob, bob_client, make_token):
    make_token(alice, name="alices-laptop")
    make_token(bob, name="bobs-laptop")
    page = bob_client.get("/tokens/").content.decode()
    assert "bobs-laptop" in page
    assert "alices-laptop" not in page
