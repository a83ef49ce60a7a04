"""The guides for operators and IT staff (Bahasa Indonesia and English) stay true to the code.

- every command in their ``sh`` / ``powershell`` blocks is accepted by the real program's own
  option parser (argparse run up to parsing; the install scripts' option lists; amtool's
  ``--help``), and the station, provisioning and silencing commands are run for real;
- every check text, board text, alert name and dashboard title they quote exists in what the
  programs print and in the generated files, and every alert, output tag, output section and
  reason is explained;
- the Indonesian and English guides have the same structure: headings, code blocks, commands,
  quoted texts.

When this fails after a change to the agent's output, the board, an alert or an option: update
docs/panduan-*.md and docs/*-guide.md (both languages) as the failure says.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import guides_support as g
import pytest
import yaml
from harness import Alertmanager, TlsCerts

from pantau.agent import cli as agent_cli
from pantau.contract.vocabulary import LoginCause, PeripheralReason, ProbeReason
from pantau.tools import cli as pantau_cli

ALL = [name for pair in g.GUIDES.values() for name in pair]
OPERATOR = g.GUIDES["operator"]
IT = g.GUIDES["it"]
VENV_BIN = g.REPO / ".venv" / "bin"
#: Programs of the operating system or Docker the guides may name without an option check.
SYSTEM_PROGRAMS = {"tar", "cd", "sha256sum", "systemctl", "journalctl", "ln", "get-service"}
COMPOSE = yaml.safe_load((g.REPO / "deploy" / "compose.yaml").read_text())


def doc(name: str) -> g.Doc:
    return g.load(name)


# --------------------------------------------------------------------------- commands


def _amtool_problem(args: tuple[str, ...]) -> str:
    if not shutil.which("amtool"):
        return "amtool is not installed (apt-get install prometheus-alertmanager)"
    sub = [a for a in args if not a.startswith("-") and "=" not in a][:2]
    res = subprocess.run(
        ["amtool", *sub, "--help"], capture_output=True, text=True, timeout=30, check=False
    )
    if res.returncode != 0:
        return f"amtool {' '.join(sub)} --help: {res.stderr.strip()}"
    flags = {a.split("=", 1)[0] for a in args if a.startswith("--")}
    unknown = sorted(f for f in flags if f not in res.stdout + res.stderr)
    return f"amtool {' '.join(sub)} has no {unknown}" if unknown else ""


def _docker_problem(args: tuple[str, ...]) -> str:
    if args[:1] != ("compose",) or len(args) < 2:
        return "only `docker compose ...` is expected"
    services = set(COMPOSE["services"])
    verb, rest = args[1], list(args[2:])
    if verb == "exec":
        service, *command = rest
        if service not in services:
            return f"no compose service {service!r}"
        return problem(g.Command("", "", g._program(command[0]), tuple(command[1:])))
    if verb in ("kill", "restart", "logs", "ps"):
        named = [a for i, a in enumerate(rest) if not a.startswith("-") and rest[i - 1] != "-s"]
        unknown = [s for s in named if s not in services]
        return f"no compose service {unknown}" if unknown else ""
    return f"unexpected `docker compose {verb}`"


def _service_problem(prog: str, args: tuple[str, ...]) -> str:
    """The service a command names is the one the repository installs."""
    units = {p.stem for p in (g.REPO / "deploy" / "systemd").glob("*.service")}
    xml = (g.REPO / "deploy" / "windows" / "pantau-agent.xml").read_text()
    windows_ids = set(re.findall(r"<id>([^<]+)</id>", xml))
    named = [a for a in args if a.startswith("pantau")]
    known = windows_ids if prog == "get-service" else units
    unknown = [n for n in named if n.removesuffix(".service") not in known]
    return f"no service {unknown} (there are {sorted(known)})" if unknown else ""


def problem(cmd: g.Command) -> str:
    """Why ``cmd`` would not work as written ("" when it would)."""
    prog, args = cmd.program, cmd.args
    if prog == "pantau":
        return g.argparse_accepts(pantau_cli.main, args)
    if prog == "pantau-agent":
        if agent_cli.service_config(args) is not None:
            return ""
        return g.argparse_accepts(agent_cli.main, args)
    if prog in ("install.sh", "uninstall.sh"):
        options = g.shell_script_options(g.REPO / "deploy" / "systemd" / prog)
        unknown = [a for a in args if a.startswith("-") and a not in options]
        return f"{prog} has no {unknown} (it has {sorted(options)})" if unknown else ""
    if prog in ("install.ps1", "uninstall.ps1"):
        params = g.powershell_params(g.REPO / "deploy" / "windows" / prog)
        unknown = [a for a in args if a.startswith("-") and a.lower() not in params]
        return f"{prog} has no {unknown} (it has {sorted(params)})" if unknown else ""
    if prog == "install-secrets.sh":
        return "" if (g.REPO / "deploy" / "scripts" / prog).exists() else "no such script"
    if prog == "amtool":
        return _amtool_problem(args)
    if prog == "docker":
        return _docker_problem(args)
    if prog in ("systemctl", "journalctl", "get-service"):
        return _service_problem(prog, args)
    if prog in SYSTEM_PROGRAMS:
        return ""
    return f"unknown program {prog!r}: check it in tests/docs/test_guides.py"


@pytest.mark.parametrize("name", ALL)
def test_every_command_is_accepted_by_its_program(name: str) -> None:
    cmds = g.commands(doc(name))
    assert cmds, f"{name}: no commands found"
    bad = [f"{c.line}\n    -> {why}" for c in cmds if (why := problem(c))]
    assert not bad, f"{name}: commands the programs would refuse:\n" + "\n".join(bad)


def test_the_option_check_catches_mistakes() -> None:
    """Negative controls: a misspelt option, subcommand or script parameter is caught."""
    for line in (
        "pantau provision inv.csv --out d --brokerhost x",
        "pantau reprot --prometheus http://x",
        "sudo /opt/pantau/venv/bin/pantau-agent chek",
        "sudo ./install.sh --stationn /media/usb/x",
        "docker compose exec alertmanager amtool silence add --durations=1h a=b",
        "docker compose restart colector",
        "systemctl restart pantau-agnet",
    ):
        [cmd] = g.commands(g.Doc("t", f"```sh\n{line}\n```\n"))
        assert problem(cmd), line
    [ps] = g.commands(
        g.Doc("t", "```powershell\npowershell -File .\\install.ps1 -Statoin E:\\x\n```\n")
    )
    assert problem(ps)
    [svc] = g.commands(g.Doc("t", "```powershell\nGet-Service pantau_agent\n```\n"))
    assert problem(svc)


def _guide_command(name: str, program: str, first: str) -> g.Command:
    return next(c for c in g.commands(doc(name)) if c.program == program and c.args[0] == first)


def _with(args: tuple[str, ...], **values: str) -> list[str]:
    out = list(args)
    for option, value in values.items():
        flag = "--" + option.replace("_", "-")
        out[out.index(flag) + 1] = value
    return out


@pytest.mark.parametrize(("it_name", "operator_name"), list(zip(IT, OPERATOR, strict=True)))
def test_provision_and_check_run_for_real(
    it_name: str, operator_name: str, tmp_path: Path, tls_certs: TlsCerts
) -> None:
    """The IT guide's provisioning command makes the station folder; the operator guide's check
    runs on its config and prints only sections and tags the guide explains."""
    provision = _guide_command(it_name, "pantau", "provision")
    out = tmp_path / "provisioned"
    args = _with(provision.args, out=str(out), ca_cert=str(tls_certs.ca_cert))
    res = subprocess.run(
        [VENV_BIN / "pantau", *args],
        cwd=g.REPO,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert res.returncode == 0, res.stderr
    station = out / "stations" / "3310-juwiring-01"
    assert {p.name for p in station.iterdir()} >= {"agent.toml", "password", "ca.crt"}

    check = _guide_command(operator_name, "pantau-agent", "check")
    config = station / "agent.toml"
    res = subprocess.run(
        [VENV_BIN / "pantau-agent", *check.args, "--config", str(config)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    # 1: the Klaten kit is not plugged into this machine (or libusb is missing)
    assert res.returncode == agent_cli.EXIT_PROBLEM, res.stdout + res.stderr
    quoted = doc(operator_name).quoted("check")
    assert res.stdout.startswith("pantau-agent check: 3310-juwiring-01 (Juwiring)")
    assert g.check_headings(res.stdout) <= set(quoted), res.stdout
    assert g.check_tags(res.stdout) <= set(quoted), res.stdout
    assert "HASIL / RESULT" in res.stdout.splitlines()[-1]

    usb = _guide_command(it_name, "pantau-agent", "usb")  # needs no config: lists what is there
    listed = subprocess.run(
        [VENV_BIN / "pantau-agent", *usb.args],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert listed.returncode == agent_cli.EXIT_OK, listed.stderr
    assert listed.stdout.strip(), "usb prints a line per device, or says there is none"

    res = subprocess.run(
        [VENV_BIN / "pantau-agent", *check.args, "--config", str(tmp_path / "missing.toml")],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    # no config on this PC: one line saying so (the operator guides tell what to do), exit 2
    assert res.returncode == agent_cli.EXIT_CONFIG, res.stderr
    assert "Traceback" not in res.stderr
    [line] = res.stderr.splitlines()
    said = "pantau-agent: no config at"
    assert line.startswith(said)
    assert f"`{said}`" in doc(operator_name).text
    bad = tmp_path / "bad.toml"
    bad.write_text(config.read_text().replace("[station]", "[station]\nfavourite_colour = 1", 1))
    res = subprocess.run(
        [VENV_BIN / "pantau-agent", *check.args, "--config", str(bad)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert res.returncode == agent_cli.EXIT_CONFIG, res.stderr
    assert res.stderr.startswith("pantau-agent: config error:"), res.stderr
    assert "Traceback" not in res.stderr


def test_exit_codes_the_it_guides_state() -> None:
    codes = (agent_cli.EXIT_OK, agent_cli.EXIT_PROBLEM, agent_cli.EXIT_CONFIG)
    assert codes == (0, 1, 2)
    for name, words in zip(
        IT, ("0 semua baik, 1 ada masalah, 2", "0 all healthy, 1 a problem, 2"), strict=True
    ):
        assert words in " ".join(doc(name).text.split()), name


@pytest.mark.parametrize("name", IT)
def test_silence_commands_work_on_a_real_alertmanager(
    name: str, alertmanager: Alertmanager
) -> None:
    """The guide's amtool commands, in order, against a real Alertmanager: each silence added is
    listed by ``query`` and gone after ``expire``."""
    if not shutil.which("amtool"):
        pytest.skip("amtool is not installed (apt-get install prometheus-alertmanager)")
    cmds = [
        _docker_exec(c)
        for c in g.commands(doc(name))
        if c.program == "docker" and "amtool" in c.args
    ]
    assert [c[1] for c in cmds] == ["add", "add", "query", "expire"]
    added: list[str] = []
    for sub, verb, rest in cmds:
        argv = [
            a
            if not a.startswith("--alertmanager.url=")
            else f"--alertmanager.url={alertmanager.url}"
            for a in rest
        ]
        if verb == "expire":
            argv = [added[-1] if a == "SILENCE_ID" else a for a in argv]
            added.pop()
        res = subprocess.run(
            ["amtool", sub, verb, *argv], capture_output=True, text=True, timeout=30, check=False
        )
        assert res.returncode == 0, f"amtool {sub} {verb}: {res.stderr}"
        if verb == "add":
            added.append(res.stdout.strip())
            assert re.fullmatch(r"[0-9a-f-]{36}", added[-1]), res.stdout
        if verb == "query":
            for silence_id in added:
                assert silence_id[:8] in res.stdout or silence_id in res.stdout, res.stdout
    left = subprocess.run(
        ["amtool", "silence", "query", "-q", f"--alertmanager.url={alertmanager.url}"],
        capture_output=True,
        text=True,
        timeout=30,
        check=True,
    ).stdout.split()
    assert set(added) == set(left) & set(added)
    for silence_id in added:  # leave the session's Alertmanager as found
        subprocess.run(
            ["amtool", "silence", "expire", silence_id, f"--alertmanager.url={alertmanager.url}"],
            capture_output=True,
            timeout=30,
            check=True,
        )


def _docker_exec(c: g.Command) -> tuple[str, str, list[str]]:
    i = c.args.index("amtool")
    return c.args[i + 1], c.args[i + 2], list(c.args[i + 3 :])


# --------------------------------------------------------------------------- quoted texts


@pytest.fixture(scope="module")
def check_corpus() -> str:
    return g.check_corpus()


@pytest.mark.parametrize("name", OPERATOR)
def test_example_is_what_check_prints(name: str) -> None:
    blocks = [body for lang, body in doc(name).code_blocks() if lang == "text"]
    expected = g.example_output().rstrip("\n")
    assert blocks, f"{name}: no example output block"
    assert blocks[0] == expected, (
        f"{name}: the example output is not what `pantau-agent check` prints now; "
        f"replace the text block with:\n{expected}"
    )


@pytest.mark.parametrize("name", OPERATOR)
def test_quoted_check_texts_are_printed_by_check(name: str, check_corpus: str) -> None:
    quoted = doc(name).quoted("check")
    missing = [q for q in quoted if q not in check_corpus]
    assert not missing, f"{name} quotes texts `pantau-agent check` never prints: {missing}"


@pytest.mark.parametrize("name", OPERATOR)
def test_operator_guide_explains_every_tag_section_and_reason(name: str, check_corpus: str) -> None:
    quoted = set(doc(name).quoted("check"))
    wanted = {
        *g.check_tags(check_corpus),
        *g.check_headings(check_corpus),
        *(str(r) for r in PeripheralReason),
        *(str(r) for r in ProbeReason if r != ProbeReason.OK),
        *(str(c) for c in LoginCause if c != LoginCause.OK),
        "mqtt.password_file",
        "mqtt.ca_file",
    }
    unexplained = sorted(wanted - quoted)
    assert not unexplained, f"{name} does not explain what check can print: {unexplained}"


#: The language of each IT guide (the board's texts are quoted in it where the board has it).
LANG = {IT[0]: "id", IT[1]: "en"}


@pytest.fixture(scope="module")
def board() -> str:
    return g.board_text("en")


@pytest.mark.parametrize("name", IT)
def test_quoted_board_texts_are_on_the_board(name: str) -> None:
    board = g.board_text(LANG[name])
    quoted = doc(name).quoted("board")
    assert len(quoted) >= 6
    missing = [q for q in quoted if q not in board]
    assert not missing, f"{name} quotes texts the fleet board does not show: {missing}\n{board}"


def test_the_quote_checks_catch_mistakes(check_corpus: str, board: str) -> None:
    """Negative controls: plausible but wrong texts are not in the corpora."""
    for wrong in ("[MISSING]", "camera hilang", "PERANGKAT/DEVICES", "not_plugged"):
        assert wrong not in check_corpus
    for wrong in ("camera absent", "never_reported", "offline (lost)"):
        assert wrong not in board


HOURS = {
    "panduan-it.md": {"office": "jam kerja", "always": "kapan saja"},
    "it-guide.md": {"office": "office hours", "always": "always"},
}


@pytest.mark.parametrize("name", IT)
def test_every_alert_is_explained_with_its_severity_and_hours(name: str) -> None:
    rules = {r.name: r for r in g.alert_rules()}
    [table] = doc(name).tables("alerts")
    rows = {g.TICK_RE.findall(row[0])[0]: row for row in table}
    assert not set(rows) - set(rules), (
        f"{name} explains alerts that do not exist: {set(rows) - set(rules)}"
    )
    assert not set(rules) - set(rows), (
        f"{name} does not explain {sorted(set(rules) - set(rows))}: add a row (meaning, first "
        "steps) to the alerts table of both IT guides"
    )
    for alert, row in rows.items():
        rule = rules[alert]
        assert row[1] == rule.severity, f"{name}: {alert} is {rule.severity}, not {row[1]}"
        assert row[2] == HOURS[name][rule.hours], f"{name}: {alert} hours are {rule.hours}"


@pytest.mark.parametrize("name", IT)
def test_every_dashboard_is_explained(name: str) -> None:
    assert sorted(doc(name).quoted("dashboards")) == g.dashboard_titles()


# --------------------------------------------------------------------------- both languages


@pytest.mark.parametrize(("id_name", "en_name"), g.GUIDES.values())
def test_both_languages_have_the_same_structure(id_name: str, en_name: str) -> None:
    id_doc, en_doc = doc(id_name), doc(en_name)
    assert [lvl for lvl, _ in id_doc.headings()] == [lvl for lvl, _ in en_doc.headings()]
    num = re.compile(r"^(\d+)\.")
    assert [num.findall(h) for _, h in id_doc.headings()] == [
        num.findall(h) for _, h in en_doc.headings()
    ]
    assert [lang for lang, _ in id_doc.code_blocks()] == [lang for lang, _ in en_doc.code_blocks()]

    def skeleton(d: g.Doc) -> list[tuple[str, tuple[str, ...]]]:
        # the program and its options (values such as --comment texts may be translated)
        return [
            (c.program, tuple(a.split("=", 1)[0] for a in c.args if a.startswith("-")))
            for c in g.commands(d)
        ]

    assert skeleton(id_doc) == skeleton(en_doc)
    for kind in ("check", "alerts", "dashboards"):
        assert id_doc.quoted(kind) == en_doc.quoted(kind), kind
    # the board speaks the reader's language: the same rows, each in its own words
    assert [len(t) for t in id_doc.tables("board")] == [len(t) for t in en_doc.tables("board")]
    alerts = re.compile(r"\bPantau[A-Z]\w+")
    assert alerts.findall(id_doc.text) == alerts.findall(en_doc.text)


# --------------------------------------------------------------------------- standing alone


LINK_RE = re.compile(r"\]\(([^)#\s]+)(?:#[^)]*)?\)")


@pytest.mark.parametrize("name", ALL)
def test_links_stay_in_the_repository(name: str) -> None:
    text = doc(name).text
    for target in LINK_RE.findall(text):
        assert "://" not in target, f"{name} links outside the repository: {target}"
        assert (g.DOCS / target).resolve().exists(), f"{name}: broken link {target}"
    for path in re.findall(r"`((?:deploy|docs|scripts)/[\w./-]+)`", text):
        if path.startswith(("deploy/provisioned", "deploy/certs")) or "<" in path:
            continue
        assert (g.REPO / path.rstrip("/")).exists(), f"{name} names {path}, which does not exist"


def test_readme_points_to_the_guides_indonesian_first() -> None:
    readme = (g.REPO / "README.md").read_text()
    for id_name, en_name in g.GUIDES.values():
        assert f"(docs/{id_name})" in readme
        assert f"(docs/{en_name})" in readme
        assert readme.index(f"(docs/{id_name})") < readme.index(f"(docs/{en_name})")


# --------------------------------------------------------------------------- inline mentions


def _help(argv: list[str]) -> str:
    res = subprocess.run(argv, capture_output=True, text=True, timeout=60, check=False)
    return res.stdout + res.stderr


@pytest.fixture(scope="module")
def option_help() -> str:
    """The help of every program the guides name options of (their real ``--help``)."""
    texts = [_help([str(VENV_BIN / "pantau"), sub, "--help"]) for sub in pantau_cli.SUBCOMMANDS]
    texts += [_help([str(VENV_BIN / "pantau-agent"), sub, "--help"]) for sub in ("check", "usb")]
    texts += [
        " ".join(sorted(g.shell_script_options(g.REPO / "deploy" / "systemd" / s)))
        for s in ("install.sh", "uninstall.sh")
    ]
    for tool in (["amtool", "silence", "add"], ["prometheus"]):
        if not shutil.which(tool[0]):
            pytest.skip(
                f"{tool[0]} is not installed (apt-get install prometheus prometheus-alertmanager)"
            )
        texts.append(_help([*tool, "--help"]))
    return "\n".join(texts)


@pytest.mark.parametrize("name", ALL)
def test_inline_mentions_of_commands_and_options_exist(name: str, option_help: str) -> None:
    """Outside code blocks: `pantau SUB` names a subcommand, every `--option` is one of the
    programs' options, every `-Param` one of the PowerShell scripts', `pantau-agent: ...` is a
    line the agent's command prints."""
    spans = [s for line in doc(name).lines_outside_code() for s in g.TICK_RE.findall(line)]
    ps_params = set().union(
        *(
            g.powershell_params(g.REPO / "deploy" / "windows" / s)
            for s in ("install.ps1", "uninstall.ps1")
        )
    )
    agent_source = (g.REPO / "pantau" / "agent" / "cli.py").read_text()
    bad = []
    for span in spans:
        words = span.split()
        if words[0] == "pantau" and len(words) > 1 and words[1] not in pantau_cli.SUBCOMMANDS:
            bad.append(f"{span}: no such subcommand")
        bad += [
            f"{span}: no program has {option}"
            for option in re.findall(r"(?<![\w-])--[a-z][\w.-]*", span)
            if not re.search(rf"(?<![\w-]){re.escape(option)}(?![\w-])", option_help)
        ]
        bad += [
            f"{span}: the PowerShell scripts have no {param}"
            for param in re.findall(r"(?<![\w-])-[A-Z]\w+", span)
            if param.lower() not in ps_params
        ]
        if (
            span.startswith("pantau-agent: ")
            and span.removeprefix("pantau-agent: ") not in agent_source
        ):
            bad.append(f"{span}: the agent's command never prints it")
    assert not bad, f"{name}:\n" + "\n".join(bad)
