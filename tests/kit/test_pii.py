"""kit.pii: identity numbers sealed under a named key, bound to their column, found by a blind index."""

from __future__ import annotations

import base64
import json
from pathlib import Path

import pytest

from kit.pii import PiiKeyError, PiiKeys, key_file, replace_key_file
from kit.settings import Settings
from tests.conftest import new_signing_key

NATIONAL_ID = "prescription.patient_national_id"


class TestSealing:
    def test_a_value_round_trips_and_names_its_key(self) -> None:
        keys = PiiKeys.generate()
        stored = keys.encrypt("001180012345", NATIONAL_ID)
        assert stored.startswith(f"{keys.active}:") and "001180012345" not in stored
        assert keys.decrypt(stored, NATIONAL_ID) == "001180012345"

    def test_the_same_value_encrypts_differently_each_time(self) -> None:
        keys = PiiKeys.generate()
        assert keys.encrypt("001180012345", NATIONAL_ID) != keys.encrypt("001180012345", NATIONAL_ID)

    def test_a_value_moved_to_another_column_does_not_decrypt(self) -> None:
        keys = PiiKeys.generate()
        stored = keys.encrypt("001180012345", NATIONAL_ID)
        with pytest.raises(PiiKeyError, match="does not decrypt"):
            keys.decrypt(stored, "prescription.patient_insurance_no")

    def test_a_tampered_value_is_refused(self) -> None:
        keys = PiiKeys.generate()
        kid, body = keys.encrypt("001180012345", NATIONAL_ID).split(":")
        flipped = body[:-2] + ("A" if body[-2] != "A" else "B") + body[-1]
        with pytest.raises(PiiKeyError):
            keys.decrypt(f"{kid}:{flipped}", NATIONAL_ID)

    def test_a_value_under_an_unknown_key_names_it(self) -> None:
        stored = PiiKeys.generate().encrypt("001180012345", NATIONAL_ID)
        with pytest.raises(PiiKeyError, match="not configured"):
            PiiKeys.generate().decrypt(stored, NATIONAL_ID)


class TestRotation:
    def test_a_new_key_encrypts_while_the_old_one_still_decrypts(self) -> None:
        old = PiiKeys.generate()
        before = old.encrypt("DN4010112345678", NATIONAL_ID)
        rotated = old.with_new_key()
        assert rotated.active != old.active and set(old.keys) < set(rotated.keys)
        assert rotated.decrypt(before, NATIONAL_ID) == "DN4010112345678"
        assert rotated.key_of(rotated.encrypt("x", NATIONAL_ID)) == rotated.active

    def test_the_blind_index_survives_rotation(self) -> None:
        old = PiiKeys.generate()
        assert old.blind_index("001180012345", NATIONAL_ID) == old.with_new_key().blind_index(
            "001180012345", NATIONAL_ID
        )


class TestBlindIndex:
    def test_equal_values_meet_and_others_do_not(self) -> None:
        keys = PiiKeys.generate()
        first = keys.blind_index("001180012345", NATIONAL_ID)
        assert first == keys.blind_index("001180012345", NATIONAL_ID)
        assert first != keys.blind_index("001180012346", NATIONAL_ID)
        assert first != keys.blind_index("001180012345", "prescription.patient_insurance_no")
        assert "001180012345" not in first and len(first) == 32

    def test_another_index_key_gives_other_indexes(self) -> None:
        assert PiiKeys.generate().blind_index("001180012345", NATIONAL_ID) != PiiKeys.generate().blind_index(
            "001180012345", NATIONAL_ID
        )


class TestConfiguration:
    def test_keys_read_from_json_in_either_base64_alphabet(self) -> None:
        raw = bytes(range(32))
        text = json.dumps(
            {
                "active": "k2",
                "keys": {"k1": base64.b64encode(raw).decode(), "k2": base64.urlsafe_b64encode(raw).decode()},
                "index_key": base64.b64encode(raw[::-1]).decode(),
            }
        )
        keys = PiiKeys.from_json(text)
        assert keys.active == "k2" and keys.keys["k1"] == keys.keys["k2"] == raw
        assert PiiKeys.from_json(keys.to_json()) == keys

    @pytest.mark.parametrize(
        ("text", "message"),
        [
            ("not json", "must read like"),
            ('{"keys": {}}', "must read like"),
            (
                '{"active": "k9", "keys": {"k1": "' + "A" * 43 + '"}, "index_key": "' + "A" * 43 + '"}',
                "not among",
            ),
            ('{"active": "k1", "keys": {"k1": "c2hvcnQ"}, "index_key": "' + "A" * 43 + '"}', "32 bytes"),
            (
                '{"active": "a:b", "keys": {"a:b": "' + "A" * 43 + '"}, "index_key": "' + "A" * 43 + '"}',
                "without",
            ),
        ],
    )
    def test_malformed_keys_are_refused_with_the_reason(self, text: str, message: str) -> None:
        with pytest.raises(PiiKeyError, match=message):
            PiiKeys.from_json(text)

    def test_without_settings_a_key_file_is_made_once_and_kept(self, tmp_path: Path) -> None:
        settings = Settings(environment="test", data_dir=tmp_path)
        first = PiiKeys.load(settings)
        assert PiiKeys.load(settings) == first
        path = key_file(settings)
        assert path.stat().st_mode & 0o777 == 0o600
        rotated = first.with_new_key()
        replace_key_file(settings, rotated)
        assert PiiKeys.load(settings) == rotated

    def test_without_create_a_missing_file_is_an_error(self, tmp_path: Path) -> None:
        with pytest.raises(PiiKeyError, match="no PII keys"):
            PiiKeys.load(Settings(environment="test", data_dir=tmp_path), create=False)

    def test_production_refuses_to_start_without_identity_keys(self, tmp_path: Path) -> None:
        # Each process would otherwise generate keys of its own and encrypt what no other reads.
        # Production also needs the national signing keys (tests/erx/test_startup.py); here, one.
        values = {
            "environment": "production",
            "DATABASE_URL": "postgresql://x/y",
            "data_dir": tmp_path,
            "signing_key": new_signing_key(),
        }
        with pytest.raises(ValueError, match="production needs ERX_IDENTITY_KEY") as refused:
            Settings.model_validate({**values, "identity_key": None})
        assert "input_value" not in str(refused.value)  # settings errors never echo the secrets
        given = PiiKeys.generate()
        settings = Settings.model_validate({**values, "identity_key": given.to_json()})
        assert PiiKeys.load(settings) == given
        assert not key_file(settings).exists()

    def test_outside_production_the_key_file_stands_in(self, tmp_path: Path) -> None:
        for environment in ("development", "test"):
            settings = Settings.model_validate(
                {"environment": environment, "data_dir": tmp_path / environment, "identity_key": None}
            )
            assert PiiKeys.load(settings) == PiiKeys.load(settings) and key_file(settings).exists()

    def test_production_refuses_placeholder_keys(self) -> None:
        with pytest.raises(ValueError, match="ERX_IDENTITY_KEY holds a placeholder"):
            Settings(environment="production", DATABASE_URL="postgresql://x/y", identity_key="changeme")
