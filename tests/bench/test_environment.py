"""The bench runs its servers as production runs them: with identity-number keys they all share.

Production refuses to start without ERX_IDENTITY_KEY; the bench passes the keys kept in its data
directory, the ones its seed encrypted the identity numbers under.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from bench import jose, project
from bench.__main__ import _env
from bench.pg import Cluster
from bench.seed import Registry
from kit.pii import PiiKeys, key_file
from kit.settings import Settings

# What a server process reads of its settings: the keys it decrypts identity numbers with.
SERVER_KEYS = "from kit.pii import PiiKeys; from kit.settings import Settings; print(PiiKeys.load(Settings()).to_json())"


def _registry() -> Registry:
    return Registry(
        secret="s",
        signing_key=jose.private_jwk(jose.generate()),
        facilities=[],
        prescribers=[],
        pharmacies=[],
        hot_code="",
        hot_registration_no="",
    )


class TestServerEnvironment:
    def test_a_server_starts_in_production_with_the_keys_the_seed_used(self, tmp_path: Path) -> None:
        data = tmp_path / "data"
        registry = _registry()
        env = _env(Cluster(tmp_path), registry, data)
        assert env["ERX_ENVIRONMENT"] == "production"
        seeded = PiiKeys.load(project.settings_for("postgresql://x/y", registry.signing_key, data))
        read = subprocess.run(
            [sys.executable, "-c", SERVER_KEYS], env=env, capture_output=True, text=True, check=False
        )
        assert read.returncode == 0, read.stderr
        assert PiiKeys.from_json(read.stdout) == seeded
        # The same keys run after run.
        assert _env(Cluster(tmp_path), registry, data)["ERX_IDENTITY_KEY"] == env["ERX_IDENTITY_KEY"]

    def test_keys_the_app_generated_there_before_are_kept(self, tmp_path: Path) -> None:
        # Before production required the setting, the seed's settings made the key file itself.
        earlier = PiiKeys.load(Settings.model_validate({"environment": "test", "data_dir": tmp_path}))
        assert key_file(Settings.model_validate({"environment": "test", "data_dir": tmp_path})).exists()
        assert PiiKeys.from_json(project.identity_key(tmp_path)) == earlier
