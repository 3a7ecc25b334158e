"""A revoked sign-in closes its open /ws/me/ sockets with 4401."""

import pytest
from channels.db import database_sync_to_async
from django.test import Client

from accounts.models import User, UserSession
from accounts.services import token_hash, user_deactivate
from accounts.tests.factories import UserFactory
from realtime.tests.conftest import session_cookie_for, socket_open, user_with_token

pytestmark = [
    pytest.mark.asyncio,
    pytest.mark.usefixtures("realtime"),
    pytest.mark.django_db(transaction=True),
]


async def assert_closed_with_4401(socket) -> None:
    assert await socket.receive_output(timeout=1) == {"type": "websocket.close", "code": 4401}


async def assert_still_open(socket) -> None:
    await socket.send_json_to({"type": "ping"})
    assert await socket.receive_json_from() == {"type": "pong"}


@database_sync_to_async
def api(method: str, path: str, token: str) -> int:
    client = Client()
    return getattr(client, method)(path, HTTP_AUTHORIZATION=f"Token {token}").status_code


@database_sync_to_async
def session_of(token_user: User) -> int:
    return UserSession.objects.filter(user=token_user).order_by("pk").first().pk


async def test_deleting_a_session_closes_that_devices_socket_only():
    user, token = await user_with_token()
    _, other_token = await user_with_token()
    mine = await socket_open(f"/ws/me/?token={token}")
    other_user = await socket_open(f"/ws/me/?token={other_token}")
    session_id = await session_of(user)
    # Signed in on a second device, the user revokes the first.
    client_token = f"device-two-{user.pk}"
    await database_sync_to_async(UserSession.objects.create)(
        user=user, token_hash=token_hash(client_token)
    )
    second = await socket_open(f"/ws/me/?token={client_token}")

    assert await api("delete", f"/api/customer/sessions/{session_id}", client_token) == 204

    await assert_closed_with_4401(mine)
    await assert_still_open(second)
    await assert_still_open(other_user)
    for socket in (second, other_user):
        await socket.disconnect()


async def test_logging_out_with_a_token_closes_that_tokens_socket():
    _, token = await user_with_token()
    socket = await socket_open(f"/ws/me/?token={token}")

    assert await api("post", "/api/customer/logout", token) == 204

    await assert_closed_with_4401(socket)


async def test_logging_out_of_a_browser_session_closes_its_cookie_socket(make_user):
    user = await make_user()
    cookie = await session_cookie_for(user)
    headers = [(b"origin", b"http://testserver"), (b"cookie", f"sessionid={cookie}".encode())]
    socket = await socket_open("/ws/me/", headers=headers)

    @database_sync_to_async
    def logout() -> int:
        client = Client()
        client.cookies["sessionid"] = cookie
        return client.post("/api/customer/logout").status_code

    assert await logout() == 204
    await assert_closed_with_4401(socket)


async def test_deactivating_a_user_closes_every_socket_of_theirs_and_no_other():
    user, token = await user_with_token()
    cookie = await session_cookie_for(user)
    _, other_token = await user_with_token()
    by_token = await socket_open(f"/ws/me/?token={token}")
    headers = [(b"origin", b"http://testserver"), (b"cookie", f"sessionid={cookie}".encode())]
    by_cookie = await socket_open("/ws/me/", headers=headers)
    other = await socket_open(f"/ws/me/?token={other_token}")

    await database_sync_to_async(user_deactivate)(user=user)

    await assert_closed_with_4401(by_token)
    await assert_closed_with_4401(by_cookie)
    await assert_still_open(other)
    await other.disconnect()


async def test_an_employee_signing_a_user_out_everywhere_closes_their_sockets():
    user, token = await user_with_token()
    socket = await socket_open(f"/ws/me/?token={token}")

    @database_sync_to_async
    def employee_action() -> int:
        employee = UserFactory(is_staff=True, is_superuser=True)
        client = Client()
        client.force_login(employee)
        response = client.post(
            "/admin/accounts/user/",
            {"action": "sign_out_everywhere", "_selected_action": [user.pk]},
        )
        return response.status_code

    assert await employee_action() == 302
    await assert_closed_with_4401(socket)
    assert not await database_sync_to_async(UserSession.objects.filter(user=user).exists)()


async def test_an_employee_deactivating_a_user_in_the_admin_closes_their_sockets():
    user, token = await user_with_token()
    socket = await socket_open(f"/ws/me/?token={token}")

    @database_sync_to_async
    def employee_unticks_active() -> int:
        employee = UserFactory(is_staff=True, is_superuser=True)
        client = Client()
        client.force_login(employee)
        return client.post(
            f"/admin/accounts/user/{user.pk}/change/",
            {
                "email": user.email,
                "display_name": user.display_name,
                "timezone": user.timezone,
                "is_staff": "",
                "is_active": "",
            },
        ).status_code

    assert await employee_unticks_active() == 302
    await assert_closed_with_4401(socket)
