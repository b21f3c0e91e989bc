"""The operator's command line: accounts and numbers, as a mail admin would use it."""

from __future__ import annotations

from tests.support import Site


def test_account_add_list_and_show(site: Site):
    added = site.cli(
        "account", "add", "Carol@Example.com", "carol@work.example", "--name", "Carol", "--plan", "pro", "--pin", "1234"
    )
    assert added.stdout.strip() == "account 1 (pro): carol@example.com, carol@work.example"
    listed = site.cli("account", "list").stdout
    assert "pro" in listed and "carol@example.com, carol@work.example" in listed
    shown = site.cli("account", "show", "carol@work.example").stdout
    assert "account 1  Carol" in shown and "PIN set:   yes" in shown and "state:     active" in shown
    assert "1234" not in shown


def test_an_address_cannot_belong_to_two_accounts(site: Site):
    site.cli("account", "add", "dave@example.com")
    again = site.cli("account", "add", "DAVE@example.com", check=False)
    assert again.returncode == 1
    assert "already registered to an account: dave@example.com" in again.stderr


def test_more_than_five_sender_addresses_are_refused(site: Site):
    result = site.cli("account", "add", *[f"u{n}@example.com" for n in range(6)], check=False)
    assert result.returncode == 1 and "at most 5 sender" in result.stderr


def test_numbers_are_normalised_assigned_and_listed(site: Site):
    site.cli("account", "add", "erin@example.com")
    added = site.cli("number", "add", "+1 (555) 030-0001", "--kind", "toll-free", "--account", "1")
    assert added.stdout.strip() == "+15550300001 (toll-free) assigned to account 1"
    site.cli("number", "add", "+15550300002")
    listed = site.cli("number", "list").stdout.splitlines()
    assert listed[0].split() == ["+15550300001", "toll-free", "assigned", "account", "1"]
    assert listed[1].split() == ["+15550300002", "local", "available", "account", "-"]
    assert "+15550300001" in site.cli("account", "show", "1").stdout
    duplicate = site.cli("number", "add", "+15550300001", check=False)
    assert duplicate.returncode == 1 and "already in the inventory" in duplicate.stderr


def test_db_upgrade_brings_the_database_to_every_migration_head(site: Site):
    from alembic.script import ScriptDirectory

    from bridge.core.schema import alembic_config

    heads = ScriptDirectory.from_config(alembic_config("sqlite://")).get_heads()
    result = site.cli("db", "upgrade")
    assert result.stdout.strip() == f"database at revision {', '.join(sorted(heads))}"


def test_serve_with_an_unknown_event_loop_says_so_and_exits_2(site: Site, monkeypatch):
    monkeypatch.setenv("FAXBRIDGE_EVENT_LOOP", "tokio")
    result = site.cli("serve", check=False)
    assert result.returncode == 2
    assert "FAXBRIDGE_EVENT_LOOP='tokio'" in result.stderr and "uvloop, asyncio" in result.stderr
    assert "Traceback" not in result.stderr and "never awaited" not in result.stderr


def test_serve_with_a_misspelt_next_queue_says_so_and_exits_2(site: Site, monkeypatch):
    monkeypatch.setenv("FAXBRIDGE__INTAKE__NEXT_QUEUE", "transmitt")
    result = site.cli("serve", check=False)
    assert result.returncode == 2
    assert "intake.next_queue = 'transmitt'" in result.stderr and "'transmit'" in result.stderr
    assert "Traceback" not in result.stderr
