from serving.stack import cli_has_command


def test_cli_has_command_finds_nested_typer_commands():
    assert cli_has_command("llm", "serve")
    assert cli_has_command("stack", "up")
    assert cli_has_command("serve")


def test_cli_has_command_rejects_missing_commands():
    assert not cli_has_command("llm", "nope")
    assert not cli_has_command("serve", "deeper")
    assert not cli_has_command("nope")
