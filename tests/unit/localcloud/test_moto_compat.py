"""tools.localcloud.moto_compat: the work-around for moto's Docker probe (the rest are exercised by the deploy
rehearsal), and
the check that names a patch which no longer fits the installed moto."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest
from moto import settings

from tools.localcloud import moto_compat
from tools.localcloud.moto_compat import moto_version


@pytest.fixture
def compat() -> Iterator[list[str]]:
    applied = moto_compat.apply()
    yield applied
    moto_compat.revert()


def test_custom_resources_get_a_callback_host_without_probing_docker(
    compat: list[str], monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    # GIVEN the work-arounds applied on a machine where moto believes it runs in Docker (as it does here: /.dockerenv)
    monkeypatch.setattr(settings, "is_docker", lambda: True)
    probes: list[str] = []
    monkeypatch.setattr(os, "popen", lambda command: probes.append(command))
    # WHEN moto works out the callback URL for a custom resource
    host = settings.moto_server_host()
    # THEN it uses its no-Docker default, never asks the Docker socket, and prints nothing
    assert host == "http://host.docker.internal"
    assert probes == []
    assert capsys.readouterr().out == ""
    assert any("Docker" in fix for fix in compat)


def test_revert_gives_back_moto_s_own_probe() -> None:
    original = settings.moto_server_host
    moto_compat.apply()
    patched = settings.moto_server_host
    moto_compat.revert()
    assert patched is not original
    assert settings.moto_server_host is original


def test_revert_leaves_an_enclosing_key_length_limit_in_place() -> None:
    # GIVEN S3's key length limit enforced for a block (a session-long server), and stock moto's put_object
    from moto.s3.models import S3Backend

    stock = S3Backend.put_object
    with moto_compat.s3_key_length_enforced():
        limited = S3Backend.put_object
        # WHEN every work-around is applied and reverted inside the block (a test's own server)
        moto_compat.apply()
        moto_compat.revert()
        # THEN the block's limit is still in place, and stock moto comes back after the block
        assert S3Backend.put_object is limited is not stock
    assert S3Backend.put_object is stock


def test_s3_events_with_version_ids_alone_patch_only_the_s3_events_and_only_within_the_block() -> None:
    # GIVEN stock moto's S3 event builder
    from moto.s3 import notifications

    stock = notifications._get_s3_event
    # WHEN the S3 events alone are fixed for a block
    with moto_compat.s3_events_with_version_ids():
        # THEN the builder is wrapped, without counting as applied (nothing else was patched)
        assert notifications._get_s3_event is not stock
        assert notifications._get_s3_event.__wrapped__ is stock
        assert moto_compat.APPLIED == []
    # AND stock moto comes back after the block
    assert notifications._get_s3_event is stock


def test_a_kms_key_gets_its_private_key_at_its_first_use_and_keeps_it() -> None:
    # GIVEN KMS private keys made when used
    from moto.kms import models

    stock = models.generate_private_key
    with moto_compat.kms_private_keys_when_used():
        # WHEN moto asks for a key's private key (as it does for every key it creates)
        key = models.generate_private_key("RSA_2048")
        # THEN none is made yet
        assert key._key is None
        # WHEN the key is used (its public key, DER) THEN a real key is made, once: a second use gives the same key
        public = key.public_key()
        assert key._key is not None
        assert public == key.public_key() and public.startswith(b"0\x82")
    # AND stock moto comes back after the block
    assert models.generate_private_key is stock


def test_every_patch_still_finds_what_it_patches_in_the_installed_moto() -> None:
    # GIVEN the installed moto WHEN each patch's targets are looked up THEN none is missing or changed (else the
    # failure names the patch and what moved)
    problems = {
        patch.__name__: problem
        for patch, targets in moto_compat.PATCH_TARGETS.items()
        for problem in (target.problem() for target in targets)
        if problem
    }
    assert problems == {}
    assert moto_version() in moto_compat.TESTED_WITH


def test_a_patch_whose_target_moved_is_named_and_nothing_is_applied(monkeypatch: pytest.MonkeyPatch) -> None:
    # GIVEN a moto release in which the function one patch wraps is gone (as if renamed)
    from moto.s3 import notifications

    monkeypatch.delattr(notifications, "_get_s3_event")

    # WHEN the work-arounds are applied THEN it refuses, naming the patch and the missing function, and applies none
    with pytest.raises(moto_compat.MotoPatchError) as raised:
        moto_compat.apply()
    assert "_s3_event_version_id (moto.s3.notifications._get_s3_event is gone)" in str(raised.value)
    assert "1 patch(es) no longer apply" in str(raised.value)
    assert moto_compat.APPLIED == []


def test_a_patch_whose_target_changed_its_parameters_is_named(monkeypatch: pytest.MonkeyPatch) -> None:
    # GIVEN a moto release whose S3 backend takes the key before the bucket in put_object
    from moto.s3.models import S3Backend

    def put_object(self: S3Backend, key_name: str, bucket_name: str, value: bytes) -> None: ...

    monkeypatch.setattr(S3Backend, "put_object", put_object)

    # WHEN the patches are checked THEN the key-length patch is named, with the parameters it expected
    with pytest.raises(moto_compat.MotoPatchError, match=r"_s3_key_length \(moto\.s3\.models\.S3Backend\.put_object "):
        moto_compat.check_patches()


def test_an_untested_release_whose_targets_are_all_there_is_accepted_with_a_warning() -> None:
    # GIVEN a moto release not in TESTED_WITH whose internals still fit every patch
    # WHEN the patches are checked THEN there is no error, only a warning that names the release and what to do
    with pytest.warns(UserWarning, match=r"moto 9\.9\.9 is not among the releases .* add it to TESTED_WITH"):
        moto_compat.check_patches("9.9.9")
