"""The national signing keys: generated once, read from settings, rotated without breaking tokens."""

from __future__ import annotations

import json
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from joserfc.jwk import ECKey

from kit.errors import Forbidden
from kit.security import ClientKind, KeyRing, Principal, TokenService
from tests.conftest import make_settings


class TestKeyRing:
    def test_generated_once_into_the_data_directory(self, tmp_path: Path) -> None:
        settings = make_settings(tmp_path, None)
        first = KeyRing.load(settings)
        second = KeyRing.load(settings)
        assert first.active_kid == second.active_kid
        files = list((tmp_path / "keys").glob("signing-*.jwk.json"))
        assert len(files) == 1 and oct(files[0].stat().st_mode & 0o777) == "0o600"

    def test_processes_starting_together_share_one_key(self, tmp_path: Path) -> None:
        settings = make_settings(tmp_path, None)
        with ThreadPoolExecutor(max_workers=8) as pool:
            kids = set(pool.map(lambda _: KeyRing.load(settings).active_kid, range(16)))
        assert len(kids) == 1
        assert [p.name for p in (tmp_path / "keys").iterdir()] == ["signing-00000000T000000000000.jwk.json"]

    def test_read_from_settings(self, tmp_path: Path) -> None:
        key = ECKey.generate_key("P-256", private=True)
        settings = make_settings(tmp_path, None, signing_key=json.dumps(key.as_dict(private=True)))
        ring = KeyRing.load(settings)
        assert ring.active.thumbprint() == key.thumbprint()
        assert not (tmp_path / "keys").exists()

    def test_refuses_other_curves(self, tmp_path: Path) -> None:
        key = ECKey.generate_key("P-384", private=True)
        with pytest.raises(ValueError, match="P-256"):
            KeyRing.load(make_settings(tmp_path, None, signing_key=json.dumps(key.as_dict(private=True))))

    def test_rotation_keeps_old_tokens_and_qr_signatures_valid(self, tmp_path: Path) -> None:
        settings = make_settings(tmp_path, None)
        old_ring = KeyRing.load(settings)
        principal = Principal(ClientKind.FACILITY, "01001", 1)
        old_token = TokenService(settings, old_ring).issue(principal).access_token
        old_qr = old_ring.sign_compact({"c": "01001AAAAAAA-c"})

        KeyRing.rotate(tmp_path / "keys")
        new_ring = KeyRing.load(settings)
        assert new_ring.active_kid != old_ring.active_kid
        assert {k["kid"] for k in new_ring.jwks()["keys"]} == {old_ring.active_kid, new_ring.active_kid}
        service = TokenService(settings, new_ring)
        assert service.verify(old_token, expected=ClientKind.FACILITY) == principal
        assert new_ring.verify_compact(old_qr) == {"c": "01001AAAAAAA-c"}
        new_token = service.issue(principal).access_token
        assert service.verify(new_token, expected=ClientKind.FACILITY).client_id == "01001"
        with pytest.raises(Forbidden):
            service.verify(new_token, expected=ClientKind.PHARMACY)
