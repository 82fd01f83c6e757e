"""app/part3/settings.py: the variables the service sets for the trainer it starts are the ones the
trainer's Settings read (trainer_keeper.py writes PARENT_ENV and LOCK_FD_ENV by name)."""

from app.part3.settings import LOCK_FD_ENV, PARENT_ENV, Settings


def test_the_trainers_handshake_variables_fill_its_fields(monkeypatch, tmp_path):
    monkeypatch.setenv(PARENT_ENV, "4242")
    monkeypatch.setenv(LOCK_FD_ENV, "7")
    settings = Settings(models_dir=tmp_path)
    assert (settings.trainer_parent, settings.trainer_lock_fd) == (4242, 7)


def test_unset_or_empty_handshake_variables_mean_no_parent_and_no_lock(monkeypatch, tmp_path):
    monkeypatch.delenv(PARENT_ENV, raising=False)
    monkeypatch.setenv(LOCK_FD_ENV, "")
    settings = Settings(models_dir=tmp_path)
    assert (settings.trainer_parent, settings.trainer_lock_fd) == (None, None)
