"""Key files (civicgrid_common.keyfiles): made once and never replaced, even by a racing
writer; handed to the services' uid; the key command prints the path, never the key."""
from __future__ import annotations

import os
import threading
from pathlib import Path

import pytest

from civicgrid_common import keyfiles
from civicgrid_common.keyfiles import KeyFileError, hand_over, key_command, write_once

SERVICE_UID = 10001
SECRET = "s3cr3t-key-material"


def test_a_key_file_is_made_once_private_and_then_left_as_it_is(tmp_path):
    path = tmp_path / "keys" / "master.key"
    assert write_once(path, "first") is True
    assert path.read_text() == "first" and path.stat().st_mode & 0o777 == 0o600
    assert write_once(path, "second") is False
    assert path.read_text() == "first"
    assert [p.name for p in path.parent.iterdir()] == ["master.key"], "no temporary file is left behind"


def test_of_writers_racing_for_one_key_file_exactly_one_wins_and_none_replaces_it(tmp_path):
    path = tmp_path / "keyring.json"
    start, won = threading.Barrier(8), []

    def writer(n: int) -> None:
        start.wait()
        if write_once(path, f"writer {n}\n" * 1000):
            won.append(n)

    threads = [threading.Thread(target=writer, args=(n,)) for n in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(won) == 1
    assert path.read_text() == f"writer {won[0]}\n" * 1000, "the winner's whole file, never a mix"


def test_handing_a_key_file_over_gives_it_to_the_uid_read_only_or_says_why_not(tmp_path):
    path = tmp_path / "master.key"
    write_once(path, SECRET)
    if os.geteuid() == 0:
        hand_over(path, SERVICE_UID)
        st = path.stat()
        assert (st.st_uid, st.st_gid, st.st_mode & 0o777) == (SERVICE_UID, SERVICE_UID, 0o400)
    else:
        with pytest.raises(KeyFileError, match=f"only root can hand it to uid {SERVICE_UID}"):
            hand_over(path, SERVICE_UID)
    hand_over(path, path.stat().st_uid)  # already the owner's: nothing to do, no error


def _command(tmp_path: Path, made: list[Path]):
    def create(path: Path) -> Path:
        made.append(path)
        write_once(path, SECRET)
        return path

    return key_command("the test key", command="python -m civicgrid_test.entrypoints.keys", setting="CIVICGRID_TEST_KEY",
                       default_file=lambda: tmp_path / "default" / "test.key", create=create)


def test_the_key_command_makes_the_file_where_asked_or_by_default_and_prints_only_its_path(tmp_path, capsys):
    made: list[Path] = []
    main = _command(tmp_path, made)
    assert main(["init", "--file", str(tmp_path / "asked.key")]) == 0
    assert main(["init"]) == 0
    assert made == [tmp_path / "asked.key", tmp_path / "default" / "test.key"]
    out = capsys.readouterr()
    assert out.out.splitlines() == [f"the test key: {tmp_path / 'asked.key'} (made now)",
                                    f"the test key: {tmp_path / 'default' / 'test.key'} (made now)"]
    assert SECRET not in out.out + out.err
    # Again: the file is there and stays as it is.
    assert main(["init", "--file", str(tmp_path / "asked.key")]) == 0
    assert capsys.readouterr().out == f"the test key: {tmp_path / 'asked.key'} (already there, left as it is)\n"
    assert (tmp_path / "asked.key").read_text() == SECRET


def test_the_key_command_hands_the_file_to_the_owner_when_run_as_root(tmp_path, capsys):
    main = _command(tmp_path, [])
    path = tmp_path / "owned.key"
    status = main(["init", "--file", str(path), "--owner", str(SERVICE_UID)])
    if os.geteuid() == 0:
        assert status == 0
        st = path.stat()
        assert (st.st_uid, st.st_gid, st.st_mode & 0o777) == (SERVICE_UID, SERVICE_UID, 0o400)
    else:  # the service could not read it: an error now rather than at its start
        assert status == 1 and "only root can hand it to uid" in capsys.readouterr().err


def test_the_key_command_fails_with_a_message_when_the_file_cannot_be_made(tmp_path, capsys):
    (tmp_path / "a-file").write_text("")
    main = _command(tmp_path, [])
    assert main(["init", "--file", str(tmp_path / "a-file" / "under-a-file.key")]) == 1
    err = capsys.readouterr().err
    assert err.startswith("python -m civicgrid_test.entrypoints.keys: the test key at ") and SECRET not in err


def test_the_key_command_wants_its_subcommand_and_a_numeric_owner(tmp_path, capsys):
    main = _command(tmp_path, [])
    for argv in ([], ["init", "--owner", "civicgrid"], ["rotate"]):
        with pytest.raises(SystemExit) as exit_:
            main(argv)
        assert exit_.value.code == 2, argv
    assert "usage: python -m civicgrid_test.entrypoints.keys" in capsys.readouterr().err


class NoKey(RuntimeError):
    pass


def _locate(configured, environment, made):
    return keyfiles.mounted_or_local(configured, environment=environment, setting="CIVICGRID_TEST_KEY_FILE",
                                     what="the test key", command="civicgrid_test.entrypoints.keys",
                                     make_local=lambda: made.append(1) or Path("/local/key"), error=NoKey)


def test_a_key_is_made_up_on_the_local_stack_alone(tmp_path):
    made: list[int] = []
    assert _locate(None, "local", made) == Path("/local/key") and made == [1]
    with pytest.raises(NoKey, match="CIVICGRID_TEST_KEY_FILE is not set.*ENVIRONMENT=kubernetes.*civicgrid_test"):
        _locate(None, "kubernetes", made)
    with pytest.raises(NoKey, match="does not exist: mount its Secret"):
        _locate(tmp_path / "absent", "local", made)
    (tmp_path / "mounted").write_text("k")
    assert _locate(tmp_path / "mounted", "kubernetes", made) == tmp_path / "mounted"
    assert made == [1], "nothing was made anywhere but on the local stack without a setting"
