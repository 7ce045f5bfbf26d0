"""The CLI never loses a result: outputs checked before a run, decode errors with their line,
filter words of the ioctl's width, a trace's failed `expect` as exit 1, plugin names free."""

from __future__ import annotations

import errno
import json
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

import vpmu_core as vpmu
from vpmu_core import api, output
from vpmu_core.cli import app
from vpmu_core.errors import ConfigError, FilterError
from vpmu_core.filter import build_filter
from vpmu_core.output import check_output

ROOT = Path(__file__).resolve().parent.parent
INTEL = str(ROOT / "configs" / "intel-kvm.toml")
ENV = {"COLUMNS": "200"}


def _invoke(*args: str) -> Any:
    return CliRunner().invoke(app, list(args), env=ENV)


@pytest.fixture
def no_run(monkeypatch: pytest.MonkeyPatch) -> None:
    """A run that must not start: the check comes first."""

    def refuse(*a: Any, **k: Any) -> None:
        raise AssertionError("the run started")

    monkeypatch.setattr(api, "run", refuse)


def _one_error_line(res: Any, *needles: str) -> None:
    assert res.exit_code == 2, res.output
    lines = [ln for ln in res.output.splitlines() if ln.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: "), res.output
    for n in needles:
        assert n in lines[0], lines[0]


# ------------------------------------------------------------ output checked first
@pytest.mark.parametrize(
    "where",
    [
        pytest.param(lambda tmp: "/proc/x.json", id="proc"),
        pytest.param(lambda tmp: str(tmp), id="directory"),
        pytest.param(lambda tmp: str(tmp / "plain" / "x.json"), id="under-a-file"),
        pytest.param(lambda tmp: str(tmp / "plain" / "a" / "b.json"), id="deep-under-a-file"),
        pytest.param(lambda tmp: INTEL, id="the-config"),
    ],
)
def test_run_refuses_an_output_it_cannot_write_before_running(
    tmp_path: Path, no_run: None, where: Any
) -> None:
    (tmp_path / "plain").write_text("a user's file\n")
    target = where(tmp_path)
    before = Path(INTEL).read_bytes()
    res = _invoke("run", INTEL, "--json", target)
    _one_error_line(res, "--json", target)
    assert Path(INTEL).read_bytes() == before
    assert (tmp_path / "plain").read_text() == "a user's file\n"


def test_the_config_is_refused_through_another_spelling_and_a_symlink(tmp_path: Path) -> None:
    link = tmp_path / "link.toml"
    link.symlink_to(INTEL)
    for spelling in (str(link), str(Path(INTEL).parent / ".." / "configs" / "intel-kvm.toml")):
        with pytest.raises(ConfigError, match="is an input of this run"):
            check_output(spelling, "--json", inputs=[INTEL])


def test_check_output_creates_nothing(tmp_path: Path) -> None:
    target = tmp_path / "new" / "dir" / "r.json"
    assert check_output(target) == target
    assert list(tmp_path.iterdir()) == []


def test_report_json_key_is_checked_too(tmp_path: Path, no_run: None) -> None:
    cfg = tmp_path / "c.toml"
    cfg.write_text(Path(INTEL).read_text() + f'\n[report]\njson = "{tmp_path}"\n')
    _one_error_line(_invoke("run", str(cfg)), "report.json")


def test_compare_refuses_an_output_before_running(tmp_path: Path, monkeypatch: Any) -> None:
    from vpmu_core import compare

    def refuse(*a: Any, **k: Any) -> None:
        raise AssertionError("the comparison started")

    monkeypatch.setattr(compare, "compare", refuse)
    _one_error_line(_invoke("compare", INTEL, "--json", "/proc/x.json"), "--json")


def test_a_write_failing_after_the_run_prints_the_report_and_one_error_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def full(path: Any, text: str) -> None:
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(output, "atomic_write_text", full)
    res = _invoke("run", INTEL, "--json", str(tmp_path / "r.json"))
    assert res.exit_code == 2
    assert "mechanism events (ledger)" in res.output  # the report came first
    errors = [ln for ln in res.output.splitlines() if ln.startswith("error: ")]
    assert errors == [
        f"error: --json = '{tmp_path / 'r.json'}': cannot be written "
        "(No space left on device); nothing was written"
    ]


def test_a_good_output_is_written(tmp_path: Path) -> None:
    res = _invoke("run", INTEL, "--json", str(tmp_path / "out" / "r.json"))
    assert res.exit_code == 0, res.output
    assert json.loads((tmp_path / "out" / "r.json").read_text())["machine"] == "intel-kvm"


# ------------------------------------------------------------------ decode errors
def test_a_non_utf8_config_names_file_line_and_column(tmp_path: Path) -> None:
    cfg = tmp_path / "latin1.toml"
    cfg.write_bytes(b'[machine]\nname = "caf\xe9"\n[pmu]\nbackend = "intel"\n')
    res = _invoke("validate", str(cfg))
    _one_error_line(res, str(cfg), "line 2, column 12", "0xe9", "UTF-8")
    assert "position" not in res.output


def test_a_non_utf8_trace_names_file_and_line(tmp_path: Path) -> None:
    trace = tmp_path / "t.trace"
    trace.write_bytes(b"wrmsr 0x38f 0\n# r\xe9sum\xe9\nrdmsr 0x38f\n")
    cfg = tmp_path / "c.toml"
    cfg.write_text(f'[pmu]\nbackend = "intel"\n[workload]\nkind = "trace"\npath = "{trace}"\n')
    _one_error_line(_invoke("run", str(cfg)), str(trace), "line 2, column 4", "0xe9")


# ----------------------------------------------------------- filter of the ioctl
@pytest.mark.parametrize("word", [0x1_0000_0000_0000_00C4, -1, 1 << 64])
def test_filter_words_outside_64_bits_are_refused(word: int) -> None:
    with pytest.raises(FilterError, match=r"events\[1\].*__u64"):
        build_filter(action="deny", events=[0xC0, word])
    data = {"pmu": {"backend": "intel"}, "filter": {"action": "deny", "events": [0xC0, word]}}
    with pytest.raises(ConfigError, match=r"filter\.events\[1\]"):
        vpmu.Machine.from_dict(data)
    machine = vpmu.Machine.from_dict({"pmu": {"backend": "intel"}})
    with pytest.raises(FilterError):
        machine.set_event_filter("deny", [word])
    assert machine.event_filter is None


def test_the_largest_64_bit_word_is_kept_as_kvm_would() -> None:
    # all-ones is a valid __u64; as a plain entry it can never match and KVM drops it
    assert build_filter(action="deny", events=[(1 << 64) - 1, 0xC4]).nevents == 1


@pytest.mark.parametrize("bitmap", [-1, 1 << 32])
def test_fixed_counter_bitmap_and_flags_are_u32(bitmap: int) -> None:
    with pytest.raises(FilterError, match="__u32"):
        build_filter(action="deny", events=[], fixed_counter_bitmap=bitmap)


# ------------------------------------------------------------ trace expectations
def _trace_run(tmp_path: Path, text: str) -> Any:
    trace = tmp_path / "t.trace"
    trace.write_text(text)
    cfg = tmp_path / "c.toml"
    cfg.write_text(f'[pmu]\nbackend = "intel"\n[workload]\nkind = "trace"\npath = "{trace}"\n')
    return _invoke("run", str(cfg))


def test_a_failing_expect_prints_the_mismatch_and_exits_1(tmp_path: Path) -> None:
    res = _trace_run(tmp_path, "wrmsr 0xc1 5\nrdmsr 0xc1\nexpect rdmsr 0xc1 6\n")
    assert res.exit_code == 1, res.output
    assert "expect failed at trace line 3: rdmsr 0xc1 answered 0x5, expected 0x6" in res.output


def test_an_expect_without_the_access_fails(tmp_path: Path) -> None:
    res = _trace_run(tmp_path, "expect rdpmc 0 0\n")
    assert res.exit_code == 1
    assert "rdpmc 0x0 answered nothing" in res.output


def test_a_guest_fault_is_printed_and_is_no_failure_by_itself(tmp_path: Path) -> None:
    # EVTSEL0 bit 21 is reserved: #GP
    res = _trace_run(tmp_path, "wrmsr 0x186 0x200000\nrdmsr 0x186\nexpect rdmsr 0x186 0\n")
    assert res.exit_code == 0, res.output
    assert "trace line 1: guest fault #GP" in res.output
    assert "(expected)" not in res.output


def test_an_expected_fault_is_marked_and_an_unexpected_one_fails_when_stated(
    tmp_path: Path,
) -> None:
    res = _trace_run(tmp_path, "wrmsr 0x186 0x200000\nexpect wrmsr 0x186 gp\n")
    assert res.exit_code == 0, res.output
    assert "(expected)" in res.output
    res = _trace_run(tmp_path, "wrmsr 0x186 0x200000\nexpect wrmsr 0x186 ok\n")
    assert res.exit_code == 1
    assert "wrmsr 0x186 answered gp, expected ok" in res.output
    res = _trace_run(tmp_path, "rdpmc 0x40000007\nexpect rdpmc 0x40000007 gp\n")
    assert res.exit_code == 0, res.output
    res = _trace_run(tmp_path, "rdmsr 0xc1\nexpect rdmsr 0xc1 gp\n")
    assert res.exit_code == 1
    assert "rdmsr 0xc1 answered 0x0, expected gp" in res.output


def test_a_malformed_expect_is_a_trace_error(tmp_path: Path) -> None:
    _one_error_line(_trace_run(tmp_path, "expect wrmsr 0x186 5\n"), "trace line 1", "ok or gp")


# ------------------------------------------------------------------- new-plugin
@pytest.mark.parametrize(
    ("name", "why"),
    [
        ("intel", "installed plugin"),
        ("amd", "installed plugin"),
        ("emulated", "installed strategies"),
        ("trace", "installed workloads"),
        ("core", "installed plugin"),
    ],
)
def test_new_plugin_refuses_a_taken_name(tmp_path: Path, name: str, why: str) -> None:
    res = _invoke("new-plugin", name, "--dir", str(tmp_path / "p"))
    _one_error_line(res, f"NAME = '{name}'", why)
    assert not (tmp_path / "p").exists()


def test_new_plugin_refuses_a_name_whose_module_is_importable(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "vpmu_mine.py").write_text("")
    monkeypatch.syspath_prepend(str(tmp_path))
    res = _invoke("new-plugin", "mine", "--dir", str(tmp_path / "p"))
    _one_error_line(res, "module vpmu_mine is importable")


@pytest.mark.parametrize("where", ["/proc/x", "plain/x", "plain"])
def test_new_plugin_refuses_a_directory_it_cannot_write(tmp_path: Path, where: str) -> None:
    (tmp_path / "plain").write_text("a user's file\n")
    target = where if where.startswith("/") else str(tmp_path / where)
    _one_error_line(_invoke("new-plugin", "free-name", "--dir", target), "--dir")
    assert (tmp_path / "plain").read_text() == "a user's file\n"


def test_run_refuses_to_write_over_its_trace(tmp_path: Path, no_run: None) -> None:
    trace = tmp_path / "t.trace"
    trace.write_text("rdmsr 0xc1\n")
    cfg = tmp_path / "c.toml"
    cfg.write_text(f'[pmu]\nbackend = "intel"\n[workload]\nkind = "trace"\npath = "{trace}"\n')
    _one_error_line(_invoke("run", str(cfg), "--json", str(trace)), "is an input of this run")
    assert trace.read_text() == "rdmsr 0xc1\n"
