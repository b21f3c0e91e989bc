"""Configuration: defaults, site file, environment, and start-up refusals that say why."""

from __future__ import annotations

import subprocess

import pydantic
import pytest

from bridge.core.settings import SettingsError
from bridge.settings import load_settings
from tests.support import FAXBRIDGE, REPO


def test_defaults_describe_the_embedded_server():
    settings = load_settings(environ={})
    assert settings.database.url.startswith("sqlite+aiosqlite:///var/")
    assert settings.mail.transport == "maildir"
    assert [(listener.host, listener.port) for listener in settings.smtp.listeners] == [("127.0.0.1", 2525)]
    assert settings.smtp.max_message_size == 25 * 1024 * 1024
    assert settings.smtp.max_recipients == 50


def test_settings_are_frozen():
    settings = load_settings(environ={})
    with pytest.raises(pydantic.ValidationError):
        settings.smtp.max_recipients = 5  # type: ignore[misc]


def test_site_file_overlays_only_the_keys_it_names(tmp_path):
    site = tmp_path / "site.toml"
    site.write_text('[smtp]\nmax_recipients = 10\n[service]\nfax_domains = ["Fax.Example.COM"]\n')
    settings = load_settings(site, environ={})
    assert settings.smtp.max_recipients == 10
    assert settings.smtp.max_message_size == 25 * 1024 * 1024
    assert settings.service.fax_domains == ("fax.example.com",)


def test_environment_overrides_a_single_key_and_the_site_file_is_found_by_variable(tmp_path):
    site = tmp_path / "site.toml"
    site.write_text('[smtp]\nmax_recipients = 10\n')
    settings = load_settings(
        environ={
            "FAXBRIDGE_CONFIG": str(site),
            "FAXBRIDGE__SMTP__MAX_RECIPIENTS": "7",
            "FAXBRIDGE__MAIL__RELAY_HOST": "relay.example.com",
        }
    )
    assert settings.smtp.max_recipients == 7
    assert settings.mail.relay_host == "relay.example.com"


@pytest.mark.parametrize(
    "toml, expected",
    [
        ('[smtp]\nmax_message_size = "big"\n', "smtp.max_message_size = 'big': Input should be a valid integer"),
        ('[smtp]\nmax_recipients = 0\n', "smtp.max_recipients = 0: Input should be greater than or equal to 1"),
        ('[mail]\ntransport = "pigeon"\n', "mail.transport = 'pigeon': Input should be 'maildir' or 'smtp'"),
        ('[smtp]\nmax_recipent = 5\n', "smtp.max_recipent: unknown key"),
        ('[database]\nurl = "mysql://x"\n', "database.url = 'mysql://x': String should match pattern"),
        ("[smtp\n", "is not valid TOML"),
    ],
)
def test_invalid_configuration_names_the_key_the_value_and_what_is_allowed(tmp_path, toml, expected):
    site = tmp_path / "site.toml"
    site.write_text(toml)
    with pytest.raises(SettingsError) as refused:
        load_settings(site, environ={})
    assert expected in str(refused.value)


def test_a_misspelt_next_queue_is_refused_at_start_naming_the_queues_there_are():
    # A queue no runner reads would strand every accepted fax there.
    with pytest.raises(SettingsError) as refused:
        load_settings(environ={"FAXBRIDGE__INTAKE__NEXT_QUEUE": "transmitt"})
    assert "intake.next_queue = 'transmitt': Input should be 'intake', 'transmit', 'call', 'mail' or 'inbound'" in str(
        refused.value
    )


def test_serve_refuses_to_start_on_a_bad_configuration(tmp_path):
    site = tmp_path / "site.toml"
    site.write_text('[queue]\nlease_seconds = -1\n')
    result = subprocess.run(
        [*FAXBRIDGE, "--config", str(site), "serve"], capture_output=True, text=True, cwd=REPO, timeout=60
    )
    assert result.returncode == 2
    assert "queue.lease_seconds = -1: Input should be greater than 0" in result.stderr
    assert "Traceback" not in result.stderr


def test_unknown_pipeline_step_is_refused_at_start(tmp_path):
    site = tmp_path / "site.toml"
    site.write_text(
        f'[intake]\npipeline = ["authenticate", "teleport"]\n'
        f'[paths]\nvar_dir = "{tmp_path}/var"\nspool_dir = "{tmp_path}/var/spool"\n'
        f'[database]\nurl = "sqlite+aiosqlite:///{tmp_path}/var/f.db"\n'
        '[[smtp.listeners]]\nname = "mx"\nhost = "127.0.0.1"\nport = 0\ntls = "none"\n'
    )
    result = subprocess.run(
        [*FAXBRIDGE, "--config", str(site), "serve"], capture_output=True, text=True, cwd=REPO, timeout=60
    )
    assert result.returncode == 2, result.stderr
    assert "unknown step(s) ['teleport']" in result.stderr
