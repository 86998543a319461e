"""web/pages/keys.py, the keys' page: an admin key makes a key there (its secret shown on that
answer only), sees the keys without secrets and revokes one (its sessions end); a key without
'admin' gets neither the page nor its link; the page's changes are in the audit trail."""

from __future__ import annotations

import re
import uuid

from helpers import InProcess
from modelservice import modelservice

TOKEN = "keys-page-token"


def csrf(html: str) -> str:
    return re.search(r'name="csrf_token" value="([0-9a-f]+)"', html).group(1)


def test_make_list_and_revoke_keys_on_the_page(base_params):
    app = InProcess(
        modelservice({**base_params, "auth_token": TOKEN, "redis_key_prefix": f"kp{uuid.uuid4().hex[:6]}:"})
    )
    browser = app.app.test_client()
    token = csrf(browser.get("/ui/login").get_data(as_text=True))
    assert browser.post("/ui/login", data={"token": TOKEN, "csrf_token": token}).status_code == 303
    page = browser.get("/ui/keys").get_data(as_text=True)
    assert 'id="key-form"' in page and ">Keys</a>" in page
    made = browser.post("/ui/keys", data={"name": "dash", "scope": ["read"], "csrf_token": csrf(page)})
    text = made.get_data(as_text=True)
    assert made.status_code == 201
    secret = re.search(r'id="new-key-secret">(psk_[^<]+)<', text).group(1)
    assert app.get("/models/", headers={"Authorization": f"Bearer {secret}"}).status_code == 200
    again = browser.get("/ui/keys").get_data(as_text=True)
    assert "dash" in again and secret not in again
    bad = browser.post("/ui/keys", data={"name": "x", "scope": ["root"], "csrf_token": csrf(again)})
    assert bad.status_code == 400 and "unknown scope" in bad.get_data(as_text=True)
    reader = app.app.test_client()
    token = csrf(reader.get("/ui/login").get_data(as_text=True))
    reader.post("/ui/login", data={"token": secret, "csrf_token": token})
    assert ">Keys</a>" not in reader.get("/ui/jobs").get_data(as_text=True)
    assert reader.get("/ui/keys").status_code == 403
    (key,) = app.get("/keys/", headers={"Authorization": f"Bearer {TOKEN}"}).json()["keys"]
    revoked = browser.post(f"/ui/keys/{key['id']}/revoke", data={"csrf_token": csrf(again)})
    assert revoked.status_code == 303
    assert reader.get("/ui/jobs").status_code == 401  # its page session ended with it
    assert app.get("/models/", headers={"Authorization": f"Bearer {secret}"}).status_code == 401
    trail = app.get("/audit/", headers={"Authorization": f"Bearer {TOKEN}"}).json()["entries"]
    assert [e["route"] for e in trail[:2]] == ["/ui/keys/<id>/revoke", "/ui/keys"]
    assert secret not in str(trail)
